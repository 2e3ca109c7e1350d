"""Invitations by email: invite, resend, cancel, accept (the link is made in links.py).

Mail goes out after the caller commits: `invite` / `resend_invitation` return an IssuedLink (the
only place the plain token lives), the caller commits, then calls `deliver_invitation`, which sends
and records the outcome, and commits again. A mail server that is down therefore never loses the
invitation; the admin sees the error and resends.
"""

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from ticketer import mail
from ticketer.clock import utcnow
from ticketer.errors import Conflict, NotFound, ValidationError
from ticketer.extensions import db
from ticketer.models import User
from ticketer.models.people import Invitation, LinkStatus
from ticketer.roles import Capability, require
from ticketer.services import users as user_service
from ticketer.services.links import IssuedLink, check_usable, claim_once, expiry, hash_token, new_token, record_delivery

INVITATION_PATH = "/invitations/"


def _get_invitation(invitation_id: int) -> Invitation:
    invitation = db.session.get(Invitation, invitation_id)
    if invitation is None:
        raise NotFound("That invitation doesn't exist.")
    return invitation


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
    token, digest = new_token()
    invitation.token_hash = digest
    invitation.expires_on = expiry(utcnow())
    db.session.flush()
    return _link(invitation, token, by, resent=True)


def invite(email: str, role: str, *, by: User) -> IssuedLink:
    """Invite an email with a role. Inviting an email with a pending invitation re-issues that one.

    Refused (ValidationError on "email") when the email already belongs to a member.
    """
    require(by, Capability.MANAGE_PEOPLE, system=False)
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
    token, digest = new_token()
    now = utcnow()
    invitation = Invitation(
        email=address, role=role_value, token_hash=digest, invited_by_id=by.id, created_on=now, expires_on=expiry(now)
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
    require(by, Capability.MANAGE_PEOPLE, system=False)
    invitation = _get_invitation(invitation_id)
    if invitation.status in (LinkStatus.USED, LinkStatus.CANCELLED):
        raise Conflict(f"The invitation to {invitation.email} was already {invitation.status.value}.")
    if user_service.find_user_by_email(invitation.email) is not None:
        raise Conflict(f"{invitation.email} is already a member.")
    return _reissue(invitation, by)


def cancel_invitation(invitation_id: int, *, by: User) -> bool:
    """Cancel a pending invitation: its link stops working. Returns whether it changed."""
    require(by, Capability.MANAGE_PEOPLE, system=False)
    invitation = _get_invitation(invitation_id)
    if invitation.accepted_on is not None or invitation.cancelled_on is not None:
        return False
    invitation.cancelled_on = utcnow()
    db.session.flush()
    return True


def find_invitation(token: str) -> Invitation:
    """The pending invitation of this token, or NotFound / LinkUnusable (expired, used, cancelled)."""
    invitation = db.session.execute(
        select(Invitation).where(Invitation.token_hash == hash_token(token))
    ).scalar_one_or_none()
    check_usable(invitation, "invitation")
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
    claim_once(Invitation, invitation.id, Invitation.accepted_on, now, "invitation")
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


def invitation_mail(link: IssuedLink) -> mail.Mail:
    """The invitation mail (templates/mail/invitation.txt and .html)."""
    return mail.render_mail("invitation", subject="You're invited to Ticketer", link=link)


def deliver_invitation(link: IssuedLink) -> str | None:
    """Send the invitation mail and record the outcome. Returns the error, or None when it went out.

    Call after committing the invitation, and commit afterwards.
    """
    try:
        mail.send_mail(link.email, invitation_mail(link))
    except mail.MailDeliveryError as error:
        record_delivery(Invitation, link.id, str(error))
        return str(error)
    record_delivery(Invitation, link.id, None)
    return None
