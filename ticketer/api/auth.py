"""Who is calling: `Authorization: Token <key>`, or the signed-in panel session (with a CSRF token).

A token acts as the admin who created it: their role decides what it may do, and a token of a
deactivated person stops working. Tickets and messages a token posts are recorded as coming from
the flow (opened_by is empty, the flow is noted), not from that admin.
"""

from flask import current_app, g, request
from flask_login import current_user

from ticketer.api.errors import ApiError
from ticketer.extensions import csrf, db
from ticketer.models import User
from ticketer.roles import Capability, role_can
from ticketer.services import api_tokens

_CHALLENGE = {"WWW-Authenticate": 'Token realm="ticketer"'}


class Caller:
    """Who is calling: the person (loaded only when a handler needs them), their role and the token."""

    def __init__(self, user_id: int, role: str, token_id: int | None, user: User | None = None):
        self.user_id = user_id
        self.role = role
        self.token_id = token_id  # None for a panel session
        self._user = user

    @property
    def user(self) -> User:
        if self._user is None:
            self._user = db.session.get(User, self.user_id)
        return self._user

    @property
    def idempotency_scope(self) -> str:
        return f"token:{self.token_id}" if self.token_id is not None else f"user:{self.user_id}"


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers=_CHALLENGE)


def authenticate() -> tuple[Caller, api_tokens.ResolvedToken | None]:
    """The caller, and the token they used (None for a panel session). Only reads the database."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, key = header.partition(" ")
        if scheme.lower() not in ("token", "bearer") or not key.strip():
            raise _unauthorized("Send the header as `Authorization: Token <key>`.")
        token = api_tokens.resolve_key(key.strip())
        if token is None:
            raise _unauthorized("This API token is not valid or was revoked.")
        if not token.owner_active:
            raise _unauthorized("The person who created this API token is deactivated.")
        return Caller(token.owner_id, token.owner_role, token.token_id), token
    if current_user.is_authenticated:
        # A browser sends the session cookie on its own: its writes need the CSRF token too.
        if request.method not in ("GET", "HEAD", "OPTIONS") and current_app.config.get("WTF_CSRF_ENABLED", True):
            csrf.protect()
        user = current_user._get_current_object()
        return Caller(user.id, user.role, None, user), None
    raise _unauthorized("Send `Authorization: Token <key>` (admins create tokens in the panel).")


def caller() -> Caller:
    return g.api_caller


def require(capability: Capability) -> Caller:
    """The caller, or 403 when their role lacks `capability` (deactivated people never get this far)."""
    who = caller()
    if not role_can(who.role, capability):
        raise ApiError(403, "forbidden", "Your role doesn't allow this.")
    return who
