"""Run a write handler at most once per Idempotency-Key, replaying the first answer to retries."""

from collections.abc import Callable

from flask import jsonify, request

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


def respond_once(work: Callable[[], tuple[object, int]]):
    """Call `work` (returns the dumped body and status), commit, and answer with JSON.

    With an Idempotency-Key header the key is reserved in the same transaction as the work.
    """
    key = request.headers.get(HEADER)
    if key is None:
        body, status = work()
        db.session.commit()
        return _json(body, status)
    fingerprint = idempotency.fingerprint(request.method, request.path, request.get_data(cache=True))
    who = caller()
    reserved = idempotency.reserve(who.idempotency_scope, key, fingerprint, token_id=who.token_id)
    if isinstance(reserved, idempotency.StoredAnswer):
        db.session.rollback()
        return _json(reserved.body, reserved.status, replayed=True)
    body, status = work()
    idempotency.remember(reserved, status, body)
    db.session.commit()
    return _json(body, status)
