"""Accounts: creating users, signing in, roles, deactivation, and changing one's password.

(Invitations: invitations.py; password reset links: password_resets.py.)
"""

import hashlib
import re
import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, func, select, update
from werkzeug.security import check_password_hash, generate_password_hash

from ticketer.clock import utcnow
from ticketer.errors import Conflict, NotFound, TooManyAttempts, ValidationError
from ticketer.extensions import db
from ticketer.models import User, new_session_token
from ticketer.models.people import PasswordReset, SignIn, SignInFailure
from ticketer.roles import Capability, Role, require
from ticketer.services import api_tokens
from ticketer.services import tickets as ticket_service

PASSWORD_MIN_LENGTH = 10
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")


def normalise_email(email: str | None) -> str:
    value = (email or "").strip().lower()
    if not _EMAIL.match(value) or len(value) > 254:
        raise ValidationError("Enter a valid email address.", field="email")
    return value


def check_role(role: str | None) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise ValidationError(f"Role must be one of: {', '.join(r.value for r in Role)}.", field="role") from None


def check_password(password: str | None, *, email: str) -> str:
    """Refuse passwords shorter than 10 characters or equal to the email."""
    password = password or ""
    if len(password) < PASSWORD_MIN_LENGTH:
        raise ValidationError(f"Use at least {PASSWORD_MIN_LENGTH} characters.", field="password")
    if password.strip().lower() == email.lower():
        raise ValidationError("The password can't be your email address.", field="password")
    return password


def find_user_by_email(email: str) -> User | None:
    return db.session.execute(db.select(User).where(User.email == email.strip().lower())).scalar_one_or_none()


def create_user(email: str, *, role: str, password: str | None = None, name: str = "") -> User:
    """Create an active user (CLI, demo data and accepted invitations)."""
    address = normalise_email(email)
    if find_user_by_email(address) is not None:
        raise ValidationError("Someone with that email is already a member.", field="email")
    user = User(email=address, role=check_role(role).value, name=(name or "").strip()[:128], active=True)
    if password is not None:
        user.set_password(check_password(password, email=address))
    db.session.add(user)
    db.session.flush()
    return user


def _dummy_hash() -> str:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = generate_password_hash(secrets.token_hex(16))
    return _DUMMY_HASH


_DUMMY_HASH: str | None = None


def _sign_in_limits() -> tuple[int, int, timedelta]:
    config = current_app.config
    return (
        int(config.get("SIGNIN_MAX_FAILURES", 10)),
        int(config.get("SIGNIN_MAX_FAILURES_PER_ADDRESS", 30)),
        timedelta(minutes=int(config.get("SIGNIN_WINDOW_MINUTES", 15))),
    )


def _too_many_failures(email: str, address: str, since) -> bool:
    per_account, per_address, _ = _sign_in_limits()
    recent = select(func.count()).select_from(SignInFailure).where(SignInFailure.created_on > since)
    by_account, by_address = db.session.execute(
        select(
            recent.where(SignInFailure.email == email).scalar_subquery(),
            recent.where(SignInFailure.address == address).scalar_subquery(),
        )
    ).one()
    return by_account >= per_account or by_address >= per_address


def check_attempt_limit(email: str, address: str | None) -> None:
    """Raise TooManyAttempts when this email or address failed too often within the window."""
    _, _, window = _sign_in_limits()
    if _too_many_failures((email or "").strip().lower()[:254], (address or "unknown")[:64], utcnow() - window):
        minutes = max(1, int(window.total_seconds() // 60))
        raise TooManyAttempts(f"Too many failed sign-in attempts. Try again in {minutes} minutes.")


def record_failed_attempt(email: str, address: str | None) -> None:
    """Count a wrong password for this email and address (and forget those older than the window)."""
    now = utcnow()
    _, _, window = _sign_in_limits()
    db.session.execute(delete(SignInFailure).where(SignInFailure.created_on <= now - window))
    db.session.add(SignInFailure(email=(email or "").strip().lower()[:254], address=(address or "unknown")[:64]))
    db.session.flush()


def authenticate(email: str, password: str, *, address: str | None = None) -> User | None:
    """The active user with these credentials, or None (never says which part was wrong).

    Failed attempts are counted per email and per address (`address`: the client's IP) in the
    database, so every web worker sees them; past the limit, TooManyAttempts is raised whether or
    not the email exists, and even for the right password, until the window has passed.
    Every attempt spends exactly one password-hash check, so the time taken doesn't tell unknown,
    deactivated and active accounts apart.
    """
    key = (email or "").strip().lower()[:254]
    check_attempt_limit(key, address)
    user = find_user_by_email(key) if key else None
    stored_hash = user.password_hash if user is not None and user.password_hash else None
    matches = check_password_hash(stored_hash or _dummy_hash(), password or "") and stored_hash is not None
    if user is None or not user.active or not matches:
        record_failed_attempt(key, address)
        return None
    db.session.execute(delete(SignInFailure).where(SignInFailure.email == key))
    user.last_login_on = utcnow()
    return user


# --- sign-ins: one row per browser, so signing out ends that browser's cookies -------------------


def _hash_sign_in_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def _sign_in_lifetime(remember: bool) -> timedelta:
    """As long as the cookie that will carry the sign-in: Flask-Login's remember cookie, or Flask's session."""
    if remember:
        duration = current_app.config.get("REMEMBER_COOKIE_DURATION", timedelta(days=365))
        return duration if isinstance(duration, timedelta) else timedelta(seconds=int(duration))
    return current_app.permanent_session_lifetime


def start_sign_in(user: User, *, remember: bool = False) -> User:
    """Record a new sign-in of `user` (one browser); `user.get_id()` then holds its token for the cookies.

    Forgets the person's sign-ins whose cookies have expired.
    """
    now = utcnow()
    token = secrets.token_urlsafe(24)
    db.session.execute(delete(SignIn).where(SignIn.user_id == user.id, SignIn.expires_on <= now))
    db.session.add(
        SignIn(
            user_id=user.id,
            token_hash=_hash_sign_in_token(token),
            created_on=now,
            expires_on=now + _sign_in_lifetime(remember),
        )
    )
    db.session.flush()
    user.sign_in_token = token
    return user


def signed_in_user(cookie_id: str | None) -> User | None:
    """The active user of a login cookie ("<id>:<session token>:<sign-in token>") whose sign-in is
    still live, or None. One query."""
    raw_id, _, rest = (cookie_id or "").partition(":")
    session_token, _, sign_in_token = rest.partition(":")
    if not raw_id.isdigit() or len(raw_id) > 18 or not session_token or not sign_in_token:
        return None
    user = db.session.execute(
        select(User)
        .join(SignIn, SignIn.user_id == User.id)
        .where(
            User.id == int(raw_id),
            User.active.is_(True),
            User.session_token == session_token,
            SignIn.token_hash == _hash_sign_in_token(sign_in_token),
            SignIn.expires_on > utcnow(),
        )
    ).scalar_one_or_none()
    if user is not None:
        user.sign_in_token = sign_in_token
    return user


def end_sign_in(user: User) -> None:
    """Sign out this browser: the sign-in's cookies stop working, wherever they were copied to.
    The person's other sign-ins (other devices) go on."""
    if user.sign_in_token:
        db.session.execute(delete(SignIn).where(SignIn.token_hash == _hash_sign_in_token(user.sign_in_token)))
    user.sign_in_token = ""


def end_every_sign_in(user: User) -> None:
    """Forget every sign-in of `user` (password reset, deactivation): no cookie of theirs works any more."""
    db.session.execute(delete(SignIn).where(SignIn.user_id == user.id))
    user.sign_in_token = ""


def end_other_sign_ins(user: User) -> None:
    """Forget every sign-in of `user` but the one this object was loaded through (a password change)."""
    statement = delete(SignIn).where(SignIn.user_id == user.id)
    if user.sign_in_token:
        statement = statement.where(SignIn.token_hash != _hash_sign_in_token(user.sign_in_token))
    db.session.execute(statement)


def get_user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("That person doesn't exist.")
    return user


def list_people() -> list[User]:
    """Everyone with a login, active first, by name."""
    return list(
        db.session.execute(select(User).order_by(User.active.desc(), func.lower(User.name), User.email)).scalars()
    )


# --- roles and deactivation ----------------------------------------------------------------------


def _keep_an_admin(user: User) -> None:
    """Refuse when `user` is the last active admin. Locks the admins' rows so two demotions can't race."""
    admin_ids = set(
        db.session.execute(
            select(User.id).where(User.role == Role.ADMIN.value, User.active.is_(True)).with_for_update()
        ).scalars()
    )
    if admin_ids <= {user.id}:
        raise Conflict(f"{user.display_name} is the last active admin: make someone else an admin first.")


def change_role(user_id: int, role: str, *, by: User) -> bool:
    """Give someone another role. The last active admin can't be demoted. Returns whether it changed."""
    require(by, Capability.MANAGE_PEOPLE, system=False)
    new_role = check_role(role).value
    user = get_user(user_id)
    if user.role == new_role:
        return False
    if user.role == Role.ADMIN and user.active:
        _keep_an_admin(user)
    user.role = new_role
    db.session.flush()
    if not user.can_take_tickets:
        # A viewer can't hold tickets: hand theirs back to the queue.
        ticket_service.unassign_tickets_of(user.id, by=by, note=f"Unassigned: {user.display_name} became a {new_role}.")
    return True


def deactivate(user_id: int, *, by: User) -> int:
    """Deactivate someone: they can't sign in, their sessions end, the API tokens they made are revoked,
    and their open tickets are unassigned (an event on each). The last active admin can't be deactivated.
    Returns the number of tickets unassigned.
    """
    require(by, Capability.MANAGE_PEOPLE, system=False)
    user = get_user(user_id)
    if user.id == by.id:
        raise ValidationError("You can't deactivate yourself; ask another admin.", field="user")
    if not user.active:
        return 0
    if user.role == Role.ADMIN:
        _keep_an_admin(user)
    now = utcnow()
    user.active = False
    user.session_token = new_session_token()  # every signed-in session of theirs ends
    end_every_sign_in(user)
    api_tokens.revoke_tokens_of(user.id)  # for good: reactivation doesn't revive them
    db.session.execute(
        update(PasswordReset)
        .where(PasswordReset.user_id == user.id, PasswordReset.used_on.is_(None), PasswordReset.cancelled_on.is_(None))
        .values(cancelled_on=now)
        .execution_options(synchronize_session=False)
    )
    db.session.flush()
    unassigned = ticket_service.unassign_tickets_of(
        user.id, by=by, note=f"Unassigned: {user.display_name} was deactivated."
    )
    return len(unassigned)


def reactivate(user_id: int, *, by: User) -> bool:
    """Let a deactivated person sign in again (with their old password). Returns whether it changed."""
    require(by, Capability.MANAGE_PEOPLE, system=False)
    user = get_user(user_id)
    if user.active:
        return False
    user.active = True
    db.session.flush()
    return True


# --- passwords -----------------------------------------------------------------------------------


def change_password(user_id: int, current_password: str, new_password: str, *, address: str | None = None) -> User:
    """Change one's own password (the current one is required). Other sessions of theirs end.

    A wrong current password counts as a failed sign-in (the caller commits it): a stolen session
    can't be used to guess the password.
    """
    user = get_user(user_id)
    check_attempt_limit(user.email, address)
    if not user.check_password(current_password or ""):
        record_failed_attempt(user.email, address)
        raise ValidationError("That isn't your current password.", field="current_password")
    if current_password == new_password:
        raise ValidationError("Choose a password different from the current one.", field="password")
    user.set_password(check_password(new_password, email=user.email))
    user.session_token = new_session_token()
    end_other_sign_ins(user)
    db.session.flush()
    return user
