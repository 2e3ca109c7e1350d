"""Who is calling: `Authorization: Token <key>`, or the signed-in panel session (with a CSRF token).

A token acts as the admin who created it: their role decides what it may do, and a token of a
deactivated person stops working. Tickets and messages a token posts are recorded as coming from
the flow (opened_by is empty, the flow is noted), not from that admin.
"""

from dataclasses import dataclass

from flask import current_app, g, request
from flask_login import current_user

from ticketer.api.errors import ApiError
from ticketer.extensions import csrf, db
from ticketer.models import User
from ticketer.roles import Capability
from ticketer.services import api_tokens

_CHALLENGE = {"WWW-Authenticate": 'Token realm="ticketer"'}


@dataclass(frozen=True)
class Caller:
    user: User
    token_id: int | None  # None for a panel session

    @property
    def idempotency_scope(self) -> str:
        return f"token:{self.token_id}" if self.token_id is not None else f"user:{self.user.id}"


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers=_CHALLENGE)


def authenticate() -> Caller:
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, key = header.partition(" ")
        if scheme.lower() not in ("token", "bearer") or not key.strip():
            raise _unauthorized("Send the header as `Authorization: Token <key>`.")
        resolved = api_tokens.resolve_key(key.strip())
        if resolved is None:
            raise _unauthorized("This API token is not valid or was revoked.")
        token_id, owner_id = resolved
        user = db.session.get(User, owner_id)
        if user is None or not user.active:
            raise _unauthorized("The person who created this API token is deactivated.")
        return Caller(user=user, token_id=token_id)
    if current_user.is_authenticated:
        # A browser sends the session cookie on its own: its writes need the CSRF token too.
        if request.method not in ("GET", "HEAD", "OPTIONS") and current_app.config.get("WTF_CSRF_ENABLED", True):
            csrf.protect()
        return Caller(user=current_user._get_current_object(), token_id=None)
    raise _unauthorized("Send `Authorization: Token <key>` (admins create tokens in the panel).")


def caller() -> Caller:
    return g.api_caller


def require(capability: Capability) -> User:
    """The calling user, or 403 when their role lacks `capability`."""
    user = caller().user
    if not user.can(capability):
        raise ApiError(403, "forbidden", "Your role doesn't allow this.")
    return user
