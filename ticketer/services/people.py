"""People: invitations by email, roles, deactivation, and passwords (change, reset links).

Invitation and reset links carry a random token; only its SHA-256 is stored, so a database leak
gives no usable link. Links are single use and expire after INVITATION_TTL_DAYS.

Mail goes out after the caller commits: `invite` / `resend_invitation` / `send_password_reset`
return an IssuedLink (the only place the plain token lives), the caller commits, then calls
`deliver_invitation` / `deliver_password_reset`, which send and record the outcome, and commits again.
A mail server that is down therefore never loses the invitation; the admin sees the error and resends.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from ticketer import mail
from ticketer.clock import utcnow
from ticketer.errors import Conflict, LinkUnusable, NotFound, PermissionDenied, ValidationError
from ticketer.extensions import db
from ticketer.models import User, new_session_token
from ticketer.models.people import Invitation, LinkStatus, PasswordReset
from ticketer.roles import Capability, Role
from ticketer.services import tickets as ticket_service
from ticketer.services import users as user_service

INVITATION_PATH = "/invitations/"
PASSWORD_RESET_PATH = "/password-reset/"
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


def _new_token() -> tuple[str, str]:
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def link_url(path: str, token: str) -> str:
    """An absolute link based on PUBLIC_URL (mail is read outside this site)."""
    return f"{current_app.config['PUBLIC_URL'].rstrip('/')}{path}{token}"


def _expiry(now: datetime) -> datetime:
    return now + timedelta(days=int(current_app.config.get("INVITATION_TTL_DAYS", 7)))


def _require_admin(by: User) -> None:
    if by is None or not by.can(Capability.MANAGE_PEOPLE):
        raise PermissionDenied("Only admins can manage people.")


def _get_user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("That person doesn't exist.")
    return user


def _get_invitation(invitation_id: int) -> Invitation:
    invitation = db.session.get(Invitation, invitation_id)
    if invitation is None:
        raise NotFound("That invitation doesn't exist.")
    return invitation


# --- reading -------------------------------------------------------------------------------------


def pending_invitations() -> list[Invitation]:
    """Invitations not yet accepted or cancelled (expired ones included, so they can be re-sent), newest first."""
    return list(
        db.session.execute(
            select(Invitation)
            .where(Invitation.accepted_on.is_(None), Invitation.cancelled_on.is_(None))
            .options(joinedload(Invitation.invited_by))
            .order_by(Invitation.created_on.desc(), Invitation.id.desc())
        ).scalars()
    )


def list_people() -> list[User]:
    """Everyone with a login, active first, by name."""
    return list(
        db.session.execute(select(User).order_by(User.active.desc(), func.lower(User.name), User.email)).scalars()
    )


# --- invitations ---------------------------------------------------------------------------------


def _pending_invitation_for(email: str) -> Invitation | None:
    return db.session.execute(
        select(Invitation).where(
            Invitation.email == email, Invitation.accepted_on.is_(None), Invitation.cancelled_on.is_(None)
        )
    ).scalar_one_or_none()


def _link(invitation: Invitation, token: str, by: User, *, resent: bool) -> IssuedLink:
    return IssuedLink(
        id=invitation.id,
        email=invitation.email,
        token=token,
        expires_on=invitation.expires_on,
        path=INVITATION_PATH,
        role=invitation.role,
        by_name=by.display_name,
        resent=resent,
    )


def _reissue(invitation: Invitation, by: User) -> IssuedLink:
    """Give the invitation a new token and expiry (the previous link stops working)."""
    token, digest = _new_token()
    invitation.token_hash = digest
    invitation.expires_on = _expiry(utcnow())
    db.session.flush()
    return _link(invitation, token, by, resent=True)


def invite(email: str, role: str, *, by: User) -> IssuedLink:
    """Invite an email with a role. Inviting an email with a pending invitation re-issues that one.

    Refused (ValidationError on "email") when the email already belongs to a member.
    """
    _require_admin(by)
    address = user_service.normalise_email(email)
    role_value = user_service.check_role(role).value
    member = user_service.find_user_by_email(address)
    if member is not None:
        if not member.active:
            raise ValidationError(f"{address} is already a member, but deactivated: reactivate them.", field="email")
        raise ValidationError(f"{address} is already a member.", field="email")
    existing = _pending_invitation_for(address)
    if existing is not None:
        existing.role = role_value
        existing.created_on = utcnow()
        existing.invited_by_id = by.id
        return _reissue(existing, by)
    token, digest = _new_token()
    now = utcnow()
    invitation = Invitation(
        email=address, role=role_value, token_hash=digest, invited_by_id=by.id, created_on=now, expires_on=_expiry(now)
    )
    try:
        with db.session.begin_nested():
            db.session.add(invitation)
            db.session.flush()
    except IntegrityError:
        # Another admin invited the same email at the same moment: theirs stands, ours re-sends it.
        existing = _pending_invitation_for(address)
        if existing is None:
            raise
        return _reissue(existing, by)
    return _link(invitation, token, by, resent=False)


def resend_invitation(invitation_id: int, *, by: User) -> IssuedLink:
    """Issue a fresh link (and 7 more days) for a pending or expired invitation; the old link stops working."""
    _require_admin(by)
    invitation = _get_invitation(invitation_id)
    if invitation.status in (LinkStatus.USED, LinkStatus.CANCELLED):
        raise Conflict(f"The invitation to {invitation.email} was already {invitation.status.value}.")
    if user_service.find_user_by_email(invitation.email) is not None:
        raise Conflict(f"{invitation.email} is already a member.")
    return _reissue(invitation, by)


def cancel_invitation(invitation_id: int, *, by: User) -> bool:
    """Cancel a pending invitation: its link stops working. Returns whether it changed."""
    _require_admin(by)
    invitation = _get_invitation(invitation_id)
    if invitation.accepted_on is not None or invitation.cancelled_on is not None:
        return False
    invitation.cancelled_on = utcnow()
    db.session.flush()
    return True


_LINK_MESSAGES = {
    LinkStatus.EXPIRED: "This {what} link has expired. Ask an admin to send you a new one.",
    LinkStatus.USED: "This {what} link has already been used. Sign in with your email and password.",
    LinkStatus.CANCELLED: "This {what} link was cancelled. Ask an admin if you still need it.",
}
_UNKNOWN_LINK = "This {what} link isn't valid. Check you copied all of it, or ask an admin for a new one."


def _check_usable(link: Invitation | PasswordReset | None, what: str) -> None:
    if link is None:
        raise NotFound(_UNKNOWN_LINK.format(what=what))
    if link.status != LinkStatus.PENDING:
        raise LinkUnusable(_LINK_MESSAGES[link.status].format(what=what))


def _claim_once(model, link_id: int, used_column, now: datetime, what: str) -> None:
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


def find_invitation(token: str) -> Invitation:
    """The pending invitation of this token, or NotFound / LinkUnusable (expired, used, cancelled)."""
    invitation = db.session.execute(
        select(Invitation).where(Invitation.token_hash == hash_token(token))
    ).scalar_one_or_none()
    _check_usable(invitation, "invitation")
    return invitation


def accept_invitation(token: str, *, name: str, password: str) -> User:
    """Create the invited person with a name and password; the link can't be used again."""
    invitation = find_invitation(token)
    name = (name or "").strip()
    if not name:
        raise ValidationError("Enter your name.", field="name")
    if len(name) > 128:
        raise ValidationError("Use at most 128 characters.", field="name")
    user_service.check_password(password, email=invitation.email)
    now = utcnow()
    _claim_once(Invitation, invitation.id, Invitation.accepted_on, now, "invitation")
    if user_service.find_user_by_email(invitation.email) is not None:
        raise Conflict(f"{invitation.email} is already a member. Sign in with your email and password.")
    user = user_service.create_user(invitation.email, role=invitation.role, password=password, name=name)
    user.last_login_on = now
    db.session.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id)
        .values(accepted_by_id=user.id)
        .execution_options(synchronize_session=False)
    )
    db.session.expire(invitation)
    db.session.flush()
    return user


def _record_delivery(model: type[Invitation] | type[PasswordReset], link_id: int, error: str | None) -> None:
    values: dict = {"send_error": error[:SEND_ERROR_MAX_LENGTH] if error else None}
    if error is None:
        values["last_sent_on"] = utcnow()
    db.session.execute(
        update(model).where(model.id == link_id).values(**values).execution_options(synchronize_session=False)
    )
    for key, obj in list(db.session.identity_map.items()):
        if key[0] is model and key[1][0] == link_id:
            db.session.expire(obj)


def invitation_mail(link: IssuedLink) -> tuple[str, str]:
    """The subject and body of an invitation mail."""
    subject = "You're invited to Ticketer"
    body = (
        f"Hello,\n\n{link.by_name} invited you to Ticketer, the help desk, as {link.role}.\n\n"
        f"Open this link to choose your name and password:\n\n{link.url}\n\n"
        f"The link works once and expires on {link.expires_on:%Y-%m-%d %H:%M} UTC.\n"
        "If you didn't expect this invitation, you can ignore this mail.\n"
    )
    return subject, body


def deliver_invitation(link: IssuedLink) -> str | None:
    """Send the invitation mail and record the outcome. Returns the error, or None when it went out.

    Call after committing the invitation, and commit afterwards.
    """
    subject, body = invitation_mail(link)
    try:
        mail.send_mail(link.email, subject, body)
    except mail.MailDeliveryError as error:
        _record_delivery(Invitation, link.id, str(error))
        return str(error)
    _record_delivery(Invitation, link.id, None)
    return None


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
    _require_admin(by)
    new_role = user_service.check_role(role).value
    user = _get_user(user_id)
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
    """Deactivate someone: they can't sign in, their sessions end, and their open tickets are unassigned
    (an event on each). The last active admin can't be deactivated. Returns the number of tickets unassigned.
    """
    _require_admin(by)
    user = _get_user(user_id)
    if user.id == by.id:
        raise ValidationError("You can't deactivate yourself; ask another admin.", field="user")
    if not user.active:
        return 0
    if user.role == Role.ADMIN:
        _keep_an_admin(user)
    now = utcnow()
    user.active = False
    user.session_token = new_session_token()  # every signed-in session of theirs ends
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
    _require_admin(by)
    user = _get_user(user_id)
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
    user = _get_user(user_id)
    user_service.check_attempt_limit(user.email, address)
    if not user.check_password(current_password or ""):
        user_service.record_failed_attempt(user.email, address)
        raise ValidationError("That isn't your current password.", field="current_password")
    if current_password == new_password:
        raise ValidationError("Choose a password different from the current one.", field="password")
    user.set_password(user_service.check_password(new_password, email=user.email))
    user.session_token = new_session_token()
    db.session.flush()
    return user


def send_password_reset(user_id: int, *, by: User) -> IssuedLink:
    """Make a single-use link for someone to set a new password; earlier unused links stop working."""
    _require_admin(by)
    user = _get_user(user_id)
    if not user.active:
        raise ValidationError(f"{user.display_name} is deactivated: reactivate them first.", field="user")
    now = utcnow()
    db.session.execute(
        update(PasswordReset)
        .where(PasswordReset.user_id == user.id, PasswordReset.used_on.is_(None), PasswordReset.cancelled_on.is_(None))
        .values(cancelled_on=now)
        .execution_options(synchronize_session=False)
    )
    token, digest = _new_token()
    reset = PasswordReset(
        user_id=user.id, token_hash=digest, created_by_id=by.id, created_on=now, expires_on=_expiry(now)
    )
    db.session.add(reset)
    db.session.flush()
    return IssuedLink(
        id=reset.id,
        email=user.email,
        token=token,
        expires_on=reset.expires_on,
        path=PASSWORD_RESET_PATH,
        by_name=by.display_name,
    )


def find_password_reset(token: str) -> PasswordReset:
    """The usable reset of this token, or NotFound / LinkUnusable (expired, used, cancelled)."""
    reset = db.session.execute(
        select(PasswordReset).where(PasswordReset.token_hash == hash_token(token))
    ).scalar_one_or_none()
    _check_usable(reset, "password reset")
    if not reset.user.active:
        raise LinkUnusable("This password reset link was cancelled. Ask an admin if you still need it.")
    return reset


def reset_password(token: str, password: str) -> User:
    """Set a new password through a reset link; the link can't be used again and old sessions end."""
    reset = find_password_reset(token)
    user = reset.user
    user_service.check_password(password, email=user.email)
    now = utcnow()
    _claim_once(PasswordReset, reset.id, PasswordReset.used_on, now, "password reset")
    db.session.expire(reset)
    user.set_password(password)
    user.session_token = new_session_token()
    user.last_login_on = now
    db.session.flush()
    return user


def password_reset_mail(link: IssuedLink) -> tuple[str, str]:
    subject = "Set a new Ticketer password"
    body = (
        f"Hello,\n\n{link.by_name} sent you a link to set a new password for Ticketer ({link.email}):\n\n"
        f"{link.url}\n\n"
        f"The link works once and expires on {link.expires_on:%Y-%m-%d %H:%M} UTC.\n"
        "If you didn't ask for this, you can ignore this mail; your password stays as it is.\n"
    )
    return subject, body


def deliver_password_reset(link: IssuedLink) -> str | None:
    """Send the reset mail and record the outcome. Returns the error, or None when it went out."""
    subject, body = password_reset_mail(link)
    try:
        mail.send_mail(link.email, subject, body)
    except mail.MailDeliveryError as error:
        _record_delivery(PasswordReset, link.id, str(error))
        return str(error)
    _record_delivery(PasswordReset, link.id, None)
    return None
