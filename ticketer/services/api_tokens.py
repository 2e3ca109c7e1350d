"""API tokens: created and revoked by admins, shown once, stored as a SHA-256 hash."""

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import joinedload

from ticketer import database
from ticketer.clock import utcnow
from ticketer.errors import NotFound
from ticketer.extensions import db
from ticketer.models import User
from ticketer.models.api import ApiToken
from ticketer.roles import Capability, require
from ticketer.services.validation import clean_text

TOKEN_NAME_MAX_LENGTH = 64
KEY_PREFIX = "tkt_"
PREFIX_LENGTH = 12
# last_used_on is refreshed at most this often, so busy integrations don't write on every request.
LAST_USED_PRECISION = timedelta(minutes=1)


def hash_key(key: str) -> str:
    # The key is 256 random bits: a plain SHA-256 is enough (no dictionary to guard against).
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(name: str, *, by: User) -> tuple[ApiToken, str]:
    """Create a token named `name` for `by` (an admin). Returns (token, key): the key is shown only now."""
    require(by, Capability.INTEGRATIONS, system=False)
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
    require(by, Capability.INTEGRATIONS, system=False)
    token = db.session.get(ApiToken, token_id)
    if token is None:
        raise NotFound("That token doesn't exist.")
    if token.revoked_on is not None:
        return False
    token.revoked_on = utcnow()
    db.session.flush()
    return True


def revoke_tokens_of(user_id: int) -> int:
    """Revoke every active token `user_id` created (they are being deactivated). Returns how many.

    For good: reactivating the person doesn't bring the tokens back; an admin makes new ones.
    """
    return db.session.execute(
        update(ApiToken)
        .where(ApiToken.created_by_id == user_id, ApiToken.revoked_on.is_(None))
        .values(revoked_on=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount


def list_tokens() -> list[ApiToken]:
    """Every token, active ones first, newest first, with their creators (one query)."""
    return list(
        db.session.execute(
            select(ApiToken)
            .options(joinedload(ApiToken.created_by))
            .order_by(ApiToken.revoked_on.is_not(None), ApiToken.created_on.desc(), ApiToken.id.desc())
        ).scalars()
    )


class ResolvedToken(NamedTuple):
    """An active token with its owner, as authentication needs them."""

    token_id: int
    owner_id: int
    owner_role: str
    owner_active: bool
    last_used_on: datetime | None


_TOKENS = ApiToken.__table__
_USERS = User.__table__
# Built once: every API request runs it, and a prebuilt statement skips SQLAlchemy's per-call compiling.
_TOKEN_BY_HASH = (
    select(_TOKENS.c.id, _TOKENS.c.created_by_id, _USERS.c.role, _USERS.c.active, _TOKENS.c.last_used_on)
    .join(_USERS, _USERS.c.id == _TOKENS.c.created_by_id)
    .where(_TOKENS.c.token_hash == bindparam("token_hash"), _TOKENS.c.revoked_on.is_(None))
)
_TOUCH = update(_TOKENS).where(_TOKENS.c.id == bindparam("token_id")).values(last_used_on=bindparam("now"))


def resolve_key(key: str) -> ResolvedToken | None:
    """The active token with this key and its owner, or None. Only reads (one query)."""
    if not key or len(key) > 200:
        return None
    row = db.session.connection().execute(_TOKEN_BY_HASH, {"token_hash": hash_key(key)}).first()
    return ResolvedToken(*row) if row is not None else None


def note_use(token: ResolvedToken) -> None:
    """Note when the token was used, at most once a minute (busy integrations don't write on every request).

    Its own short write transaction, committed here, outside the request's own transactions: a
    GET's stay read-only, and on SQLite this one begins IMMEDIATE, so it waits its turn behind
    other writers instead of failing.
    """
    now = utcnow()
    if token.last_used_on is not None and now - token.last_used_on < LAST_USED_PRECISION:
        return
    with database.write_transactions():
        db.session.execute(_TOUCH, {"token_id": token.token_id, "now": now})
        db.session.commit()
