"""Single-use links sent by mail (invitations, password resets): tokens, expiry, claiming, delivery records.

A link carries a random token; only its SHA-256 is stored, so a database leak gives no usable link.
Links are single use and expire after INVITATION_TTL_DAYS.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import update

from ticketer.clock import utcnow
from ticketer.errors import LinkUnusable, NotFound
from ticketer.extensions import db
from ticketer.models.people import Invitation, LinkStatus, PasswordReset

SEND_ERROR_MAX_LENGTH = 500


@dataclass(frozen=True)
class IssuedLink:
    """A freshly made invitation or reset link: what the mail needs, including the plain token."""

    id: int
    email: str
    token: str
    expires_on: datetime
    path: str  # INVITATION_PATH or PASSWORD_RESET_PATH
    role: str = ""
    by_name: str = ""
    resent: bool = False

    @property
    def url(self) -> str:
        return link_url(self.path, self.token)


def hash_token(token: str) -> str:
    return hashlib.sha256((token or "").encode("utf-8", "replace")).hexdigest()


def new_token() -> tuple[str, str]:
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def link_url(path: str, token: str) -> str:
    """An absolute link based on PUBLIC_URL (mail is read outside this site)."""
    return f"{current_app.config['PUBLIC_URL'].rstrip('/')}{path}{token}"


def expiry(now: datetime) -> datetime:
    return now + timedelta(days=int(current_app.config.get("INVITATION_TTL_DAYS", 7)))


_LINK_MESSAGES = {
    LinkStatus.EXPIRED: "This {what} link has expired. Ask an admin to send you a new one.",
    LinkStatus.USED: "This {what} link has already been used. Sign in with your email and password.",
    LinkStatus.CANCELLED: "This {what} link was cancelled. Ask an admin if you still need it.",
}
_UNKNOWN_LINK = "This {what} link isn't valid. Check you copied all of it, or ask an admin for a new one."


def check_usable(link: Invitation | PasswordReset | None, what: str) -> None:
    if link is None:
        raise NotFound(_UNKNOWN_LINK.format(what=what))
    if link.status != LinkStatus.PENDING:
        raise LinkUnusable(_LINK_MESSAGES[link.status].format(what=what))


def claim_once(model, link_id: int, used_column, now: datetime, what: str) -> None:
    """Mark a single-use link used. Even when it is submitted twice at once, only one UPDATE
    matches; every other caller gets LinkUnusable."""
    claimed = db.session.execute(
        update(model)
        .where(
            model.id == link_id,
            used_column.is_(None),
            model.cancelled_on.is_(None),
            model.expires_on > now,
        )
        .values({used_column: now})
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        raise LinkUnusable(_LINK_MESSAGES[LinkStatus.USED].format(what=what))


def record_delivery(model: type[Invitation] | type[PasswordReset], link_id: int, error: str | None) -> None:
    values: dict = {"send_error": error[:SEND_ERROR_MAX_LENGTH] if error else None}
    if error is None:
        values["last_sent_on"] = utcnow()
    db.session.execute(
        update(model).where(model.id == link_id).values(**values).execution_options(synchronize_session=False)
    )
    for key, obj in list(db.session.identity_map.items()):
        if key[0] is model and key[1][0] == link_id:
            db.session.expire(obj)
