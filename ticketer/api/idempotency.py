"""Run a write handler at most once per Idempotency-Key, replaying the first answer to retries."""

from collections.abc import Callable

from flask import jsonify, request
from marshmallow import Schema

from ticketer.api.auth import caller
from ticketer.extensions import db
from ticketer.services import idempotency

HEADER = "Idempotency-Key"
HEADER_DOC = {
    "in": "header",
    "name": HEADER,
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": idempotency.KEY_MAX_LENGTH},
    "description": "A retry with the same key (and the same body) gets the first answer and changes nothing.",
}


def _json(body: object, status: int, replayed: bool = False):
    response = jsonify(body)
    response.status_code = status
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def respond_once(work: Callable[[], tuple[object, int]], schema: Schema | None = None):
    """Call `work` (returns the body and status), commit, and answer with JSON.

    `schema` dumps the body when given (after the commit: on SQLite the write lock is held for the
    work only). With an Idempotency-Key header the key is reserved, and the dumped answer kept, in
    the same transaction as the work.
    """
    key = request.headers.get(HEADER)
    if key is None:
        body, status = work()
        db.session.commit()
        return _json(schema.dump(body) if schema is not None else body, status)
    fingerprint = idempotency.fingerprint(request.method, request.path, request.get_data(cache=True))
    who = caller()
    reserved = idempotency.reserve(who.idempotency_scope, key, fingerprint, token_id=who.token_id)
    if isinstance(reserved, idempotency.StoredAnswer):
        db.session.rollback()
        return _json(reserved.body, reserved.status, replayed=True)
    body, status = work()
    if schema is not None:
        body = schema.dump(body)
    idempotency.remember(reserved, status, body)
    db.session.commit()
    return _json(body, status)
