"""API tokens: created and revoked by admins, shown once, stored as a SHA-256 hash."""

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import joinedload

from ticketer.clock import utcnow
from ticketer.errors import NotFound, PermissionDenied
from ticketer.extensions import db
from ticketer.models import User
from ticketer.models.api import ApiToken
from ticketer.roles import Capability
from ticketer.services.validation import clean_text

TOKEN_NAME_MAX_LENGTH = 64
KEY_PREFIX = "tkt_"
PREFIX_LENGTH = 12
# last_used_on is refreshed at most this often, so busy integrations don't write on every request.
LAST_USED_PRECISION = timedelta(minutes=1)


def hash_key(key: str) -> str:
    # The key is 256 random bits: a plain SHA-256 is enough (no dictionary to guard against).
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _require(by: User | None) -> None:
    if by is None or not by.can(Capability.INTEGRATIONS):
        raise PermissionDenied("Only admins can manage API tokens.")


def create_token(name: str, *, by: User) -> tuple[ApiToken, str]:
    """Create a token named `name` for `by` (an admin). Returns (token, key): the key is shown only now."""
    _require(by)
    cleaned = " ".join(clean_text(name, field="name", max_length=TOKEN_NAME_MAX_LENGTH, required=True).split())
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        name=cleaned,
        prefix=key[:PREFIX_LENGTH],
        token_hash=hash_key(key),
        created_by_id=by.id,
        created_on=utcnow(),
    )
    db.session.add(token)
    db.session.flush()
    return token, key


def revoke_token(token_id: int, *, by: User) -> bool:
    """Revoke a token; it stops working at once. Returns False when it was already revoked."""
    _require(by)
    token = db.session.get(ApiToken, token_id)
    if token is None:
        raise NotFound("That token doesn't exist.")
    if token.revoked_on is not None:
        return False
    token.revoked_on = utcnow()
    db.session.flush()
    return True


def list_tokens() -> list[ApiToken]:
    """Every token, active ones first, newest first, with their creators (one query)."""
    return list(
        db.session.execute(
            select(ApiToken)
            .options(joinedload(ApiToken.created_by))
            .order_by(ApiToken.revoked_on.is_not(None), ApiToken.created_on.desc(), ApiToken.id.desc())
        ).scalars()
    )


def resolve_key(key: str) -> tuple[int, int] | None:
    """(token id, owner id) of the active token with this key, or None; notes when it was used.

    Called first thing in a request: the "last used" time is committed at once (at most once a
    minute per token), and a busy SQLite database only skips it.
    """
    if not key or len(key) > 200:
        return None
    token = db.session.execute(
        select(ApiToken).where(ApiToken.token_hash == hash_key(key), ApiToken.revoked_on.is_(None))
    ).scalar_one_or_none()
    if token is None:
        return None
    token_id, owner_id = token.id, token.created_by_id
    now = utcnow()
    if token.last_used_on is None or now - token.last_used_on >= LAST_USED_PRECISION:
        try:
            db.session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_on=now))
            db.session.commit()
        except OperationalError:
            db.session.rollback()  # best effort: a busy database must not fail the request over it
    return token_id, owner_id
