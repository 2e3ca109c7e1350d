"""Password reset links an admin sends: make one, find it, set the new password through it.

Mail goes out after the caller commits, as for invitations (see invitations.py).
"""

from sqlalchemy import select, update

from ticketer import mail
from ticketer.clock import utcnow
from ticketer.errors import LinkUnusable, ValidationError
from ticketer.extensions import db
from ticketer.models import User, new_session_token
from ticketer.models.people import PasswordReset
from ticketer.roles import Capability, require
from ticketer.services import users as user_service
from ticketer.services.links import IssuedLink, check_usable, claim_once, expiry, hash_token, new_token, record_delivery

PASSWORD_RESET_PATH = "/password-reset/"


def send_password_reset(user_id: int, *, by: User) -> IssuedLink:
    """Make a single-use link for someone to set a new password; earlier unused links stop working."""
    require(by, Capability.MANAGE_PEOPLE, system=False)
    user = user_service.get_user(user_id)
    if not user.active:
        raise ValidationError(f"{user.display_name} is deactivated: reactivate them first.", field="user")
    now = utcnow()
    db.session.execute(
        update(PasswordReset)
        .where(PasswordReset.user_id == user.id, PasswordReset.used_on.is_(None), PasswordReset.cancelled_on.is_(None))
        .values(cancelled_on=now)
        .execution_options(synchronize_session=False)
    )
    token, digest = new_token()
    reset = PasswordReset(
        user_id=user.id, token_hash=digest, created_by_id=by.id, created_on=now, expires_on=expiry(now)
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
    check_usable(reset, "password reset")
    if not reset.user.active:
        raise LinkUnusable("This password reset link was cancelled. Ask an admin if you still need it.")
    return reset


def reset_password(token: str, password: str) -> User:
    """Set a new password through a reset link; the link can't be used again and old sessions end."""
    reset = find_password_reset(token)
    user = reset.user
    user_service.check_password(password, email=user.email)
    now = utcnow()
    claim_once(PasswordReset, reset.id, PasswordReset.used_on, now, "password reset")
    db.session.expire(reset)
    user.set_password(password)
    user.session_token = new_session_token()
    user_service.end_every_sign_in(user)
    user.last_login_on = now
    db.session.flush()
    return user


def password_reset_mail(link: IssuedLink) -> mail.Mail:
    """The password reset mail (templates/mail/password_reset.txt and .html)."""
    return mail.render_mail("password_reset", subject="Set a new Ticketer password", link=link)


def deliver_password_reset(link: IssuedLink) -> str | None:
    """Send the reset mail and record the outcome. Returns the error, or None when it went out."""
    try:
        mail.send_mail(link.email, password_reset_mail(link))
    except mail.MailDeliveryError as error:
        record_delivery(PasswordReset, link.id, str(error))
        return str(error)
    record_delivery(PasswordReset, link.id, None)
    return None
