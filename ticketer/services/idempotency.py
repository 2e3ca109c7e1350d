"""Idempotency-Key: a retried request gets the first answer and changes nothing more.

The caller reserves the key in the same transaction as the work (`reserve`), does the work,
records the answer (`remember`) and commits. A concurrent retry blocks on the unique index until
the first commits, then finds the answer; if the first failed and rolled back, the retry does the
work itself. Only successful answers are remembered, for KEY_TTL: a failed request leaves no trace.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from ticketer.clock import utcnow
from ticketer.errors import ValidationError
from ticketer.extensions import db
from ticketer.models.api import IdempotencyKey

KEY_MAX_LENGTH = 255
# How long an answer is kept for retries (RapidPro and most clients retry within minutes).
KEY_TTL = timedelta(hours=24)


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    body: object


def check_key(key: str) -> str:
    key = key.strip()
    if not key or len(key) > KEY_MAX_LENGTH or not key.isprintable():
        raise ValidationError(
            f"Idempotency-Key must be 1 to {KEY_MAX_LENGTH} printable characters.", field="Idempotency-Key"
        )
    return key


def fingerprint(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _find(scope: str, key: str) -> IdempotencyKey | None:
    return db.session.execute(
        select(IdempotencyKey).where(IdempotencyKey.scope == scope, IdempotencyKey.key == key)
    ).scalar_one_or_none()


def _answer(row: IdempotencyKey, fingerprint_: str) -> StoredAnswer:
    if row.fingerprint != fingerprint_:
        raise ValidationError("This Idempotency-Key was already used for a different request.", field="Idempotency-Key")
    return StoredAnswer(row.response_status, json.loads(row.response_body or "null"))


def reserve(scope: str, key: str, fingerprint_: str, *, token_id: int | None = None) -> StoredAnswer | IdempotencyKey:
    """The stored answer for this key, or a new reservation row to fill with `remember`.

    Raises ValidationError when the key was used for a different request.
    """
    key = check_key(key)
    # Each client's expired keys go as it makes new ones: one indexed DELETE, no sweeper needed.
    db.session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.scope == scope, IdempotencyKey.created_on < utcnow() - KEY_TTL)
    )
    row = _find(scope, key)
    if row is not None:
        return _answer(row, fingerprint_)
    row = IdempotencyKey(scope=scope, key=key, token_id=token_id, fingerprint=fingerprint_, created_on=utcnow())
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:
        # A concurrent request with this key committed first (we waited for it): replay its answer.
        existing = _find(scope, key)
        if existing is None:
            raise
        return _answer(existing, fingerprint_)
    return row


def remember(row: IdempotencyKey, status: int, body: object) -> None:
    """Record the answer given to the request that reserved `row` (committed with its work)."""
    row.response_status = status
    row.response_body = json.dumps(body)
    db.session.flush()
