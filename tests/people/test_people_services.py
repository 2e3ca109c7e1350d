"""People rules from PRODUCT.md and issue 3, tested on the services directly."""

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.factories import make_ticket
from ticketer import clock
from ticketer.errors import Conflict, LinkUnusable, NotFound, PermissionDenied, ValidationError
from ticketer.models import Ticket, TicketEvent, User
from ticketer.models.people import Invitation, LinkStatus, PasswordReset
from ticketer.services import invitations as invitation_service
from ticketer.services import password_resets as password_reset_service
from ticketer.services import users as user_service

NEW_PASSWORD = "a-brand-new-secret"


def user(db, user_id) -> User:
    return db.session.get(User, user_id)


@pytest.fixture
def admin(db, make_user):
    return user(db, make_user("admin", email="boss@example.com", name="Boss"))


def test_invitation_stores_only_a_hash_of_a_random_token(db, admin):
    link = invitation_service.invite("  Ana@Example.com ", "agent", by=admin)
    other = invitation_service.invite("bob@example.com", "viewer", by=admin)
    db.session.commit()
    invitation = db.session.get(Invitation, link.id)
    assert invitation.email == "ana@example.com" and invitation.role == "agent"
    assert len(link.token) >= 40 and link.token != other.token
    assert invitation.token_hash == hashlib.sha256(link.token.encode()).hexdigest()
    stored = " ".join(str(v) for v in db.session.execute(select(Invitation.__table__)).all())
    assert link.token not in stored
    assert link.url == f"http://127.0.0.1:5000/invitations/{link.token}"
    assert invitation.expires_on - invitation.created_on == timedelta(days=7)
    assert invitation.status == LinkStatus.PENDING


def test_ttl_comes_from_config(app, db, admin, monkeypatch):
    monkeypatch.setitem(app.config, "INVITATION_TTL_DAYS", 2)
    link = invitation_service.invite("ana@example.com", "agent", by=admin)
    invitation = db.session.get(Invitation, link.id)
    assert invitation.expires_on - invitation.created_on == timedelta(days=2)


def test_only_admins_invite(db, make_user):
    supervisor = user(db, make_user("supervisor"))
    with pytest.raises(PermissionDenied):
        invitation_service.invite("ana@example.com", "agent", by=supervisor)


def test_inviting_a_member_is_refused(db, admin, make_user):
    make_user("agent", email="ana@example.com")
    with pytest.raises(ValidationError, match="already a member") as error:
        invitation_service.invite("ANA@example.com", "agent", by=admin)
    assert error.value.fields == {"email": error.value.message}


def test_bad_email_or_role_is_refused_by_field(db, admin):
    with pytest.raises(ValidationError) as error:
        invitation_service.invite("not-an-email", "agent", by=admin)
    assert "email" in error.value.fields
    with pytest.raises(ValidationError) as error:
        invitation_service.invite("ana@example.com", "owner", by=admin)
    assert "role" in error.value.fields


def test_inviting_a_pending_email_again_reissues_the_same_invitation(db, admin):
    first = invitation_service.invite("ana@example.com", "agent", by=admin)
    db.session.commit()
    again = invitation_service.invite("ana@example.com", "supervisor", by=admin)
    db.session.commit()
    assert again.id == first.id and again.resent and not first.resent
    assert again.token != first.token
    assert db.session.execute(select(Invitation)).scalars().all() == [db.session.get(Invitation, first.id)]
    assert db.session.get(Invitation, first.id).role == "supervisor"
    with pytest.raises(NotFound):
        invitation_service.find_invitation(first.token)  # the old link stopped working
    assert invitation_service.find_invitation(again.token).id == first.id


def test_accept_creates_the_member_and_the_link_is_single_use(db, admin):
    link = invitation_service.invite("ana@example.com", "agent", by=admin)
    db.session.commit()
    member = invitation_service.accept_invitation(link.token, name=" Ana Pérez ", password=NEW_PASSWORD)
    db.session.commit()
    assert (member.email, member.role, member.name, member.active) == ("ana@example.com", "agent", "Ana Pérez", True)
    assert member.check_password(NEW_PASSWORD) and member.password_hash.startswith("scrypt:")
    invitation = db.session.get(Invitation, link.id)
    assert invitation.status == LinkStatus.USED and invitation.accepted_by_id == member.id
    with pytest.raises(LinkUnusable, match="already been used"):
        invitation_service.accept_invitation(link.token, name="Again", password=NEW_PASSWORD)


def test_accept_checks_the_password(db, admin):
    link = invitation_service.invite("ana@example.com", "agent", by=admin)
    db.session.commit()
    cases = [("short", "at least 10"), ("ana@example.com", "can't be your email"), ("ANA@EXAMPLE.COM", "your email")]
    for password, message in cases:
        with pytest.raises(ValidationError, match=message) as error:
            invitation_service.accept_invitation(link.token, name="Ana", password=password)
        assert "password" in error.value.fields
        db.session.rollback()
        assert db.session.get(Invitation, link.id).accepted_on is None


def test_accept_needs_a_name(db, admin):
    link = invitation_service.invite("ana@example.com", "agent", by=admin)
    with pytest.raises(ValidationError) as error:
        invitation_service.accept_invitation(link.token, name="   ", password=NEW_PASSWORD)
    assert "name" in error.value.fields


def test_expired_cancelled_and_unknown_links(db, admin):
    start = datetime(2026, 3, 1, 12, tzinfo=UTC)
    with clock.frozen(start):
        expiring = invitation_service.invite("ana@example.com", "agent", by=admin)
        cancelled = invitation_service.invite("bob@example.com", "agent", by=admin)
        db.session.commit()
    assert invitation_service.cancel_invitation(cancelled.id, by=admin) is True
    assert invitation_service.cancel_invitation(cancelled.id, by=admin) is False
    db.session.commit()
    with clock.frozen(start + timedelta(days=7, seconds=-1)):
        assert invitation_service.find_invitation(expiring.token).email == "ana@example.com"
    with clock.frozen(start + timedelta(days=7, seconds=1)):
        with pytest.raises(LinkUnusable, match="expired"):
            invitation_service.accept_invitation(expiring.token, name="Ana", password=NEW_PASSWORD)
        with pytest.raises(LinkUnusable, match="cancelled"):
            invitation_service.find_invitation(cancelled.token)
        with pytest.raises(NotFound, match="isn't valid"):
            invitation_service.find_invitation("made-up-token")
        # Resending an expired invitation gives it a fresh link and 7 more days.
        fresh = invitation_service.resend_invitation(expiring.id, by=admin)
        assert invitation_service.find_invitation(fresh.token).status == LinkStatus.PENDING
    with pytest.raises(Conflict, match="cancelled"):
        invitation_service.resend_invitation(cancelled.id, by=admin)


def test_a_cancelled_email_can_be_invited_again(db, admin):
    first = invitation_service.invite("ana@example.com", "agent", by=admin)
    invitation_service.cancel_invitation(first.id, by=admin)
    second = invitation_service.invite("ana@example.com", "viewer", by=admin)
    db.session.commit()
    assert second.id != first.id and not second.resent


# --- roles and deactivation -------------------------------------------------------------------


def test_change_role(db, admin, make_user):
    agent_id = make_user("agent")
    assert user_service.change_role(agent_id, "supervisor", by=admin) is True
    assert user_service.change_role(agent_id, "supervisor", by=admin) is False
    assert user(db, agent_id).role == "supervisor"
    with pytest.raises(ValidationError):
        user_service.change_role(agent_id, "boss", by=admin)
    with pytest.raises(PermissionDenied):
        user_service.change_role(admin.id, "agent", by=user(db, agent_id))


def test_last_active_admin_can_not_be_demoted_or_deactivated(db, admin, make_user):
    with pytest.raises(Conflict, match="last active admin"):
        user_service.change_role(admin.id, "agent", by=admin)
    other_id = make_user("admin")
    user_service.deactivate(other_id, by=admin)
    # An inactive admin doesn't count.
    with pytest.raises(Conflict, match="last active admin"):
        user_service.change_role(admin.id, "supervisor", by=admin)
    other = user(db, other_id)
    user_service.reactivate(other_id, by=admin)
    assert user_service.change_role(admin.id, "supervisor", by=admin) is True
    with pytest.raises(Conflict, match="last active admin"):
        user_service.change_role(other_id, "agent", by=other)
    assert user(db, other_id).role == "admin"


def test_nobody_deactivates_themselves(db, admin, make_user):
    make_user("admin")
    with pytest.raises(ValidationError, match="yourself"):
        user_service.deactivate(admin.id, by=admin)


def test_deactivating_unassigns_open_tickets_with_an_event_each_and_ends_sessions(db, admin, make_user):
    agent_id = make_user("agent", name="Ana")
    other_id = make_user("agent")
    mine = [make_ticket(assignee_id=agent_id) for _ in range(3)]
    closed = make_ticket(assignee_id=agent_id)
    closed_id = closed.id
    theirs = make_ticket(assignee_id=other_id)
    db.session.commit()
    from ticketer.services import tickets as ticket_service

    ticket_service.close(closed_id, by=admin)
    old_cookie = user(db, agent_id).get_id()
    reset = password_reset_service.send_password_reset(agent_id, by=admin)
    db.session.commit()

    assert user_service.deactivate(agent_id, by=admin) == 3
    db.session.commit()
    agent = user(db, agent_id)
    assert not agent.active and agent.get_id() != old_cookie
    assert [db.session.get(Ticket, t.id).assignee_id for t in mine] == [None, None, None]
    assert db.session.get(Ticket, closed_id).assignee_id == agent_id  # closed tickets keep their history
    assert db.session.get(Ticket, theirs.id).assignee_id == other_id
    events = (
        db.session.execute(select(TicketEvent).where(TicketEvent.kind == "assigned", TicketEvent.assignee_id.is_(None)))
        .scalars()
        .all()
    )
    assert sorted(e.ticket_id for e in events) == sorted(t.id for t in mine)
    assert all(e.created_by_id == admin.id and "Ana was deactivated" in e.note for e in events)
    assert user_service.authenticate(agent.email, "correct-horse-battery") is None
    with pytest.raises(LinkUnusable):
        password_reset_service.find_password_reset(reset.token)
    assert user_service.deactivate(agent_id, by=admin) == 0
    assert user_service.reactivate(agent_id, by=admin) is True
    assert user_service.reactivate(agent_id, by=admin) is False
    assert user_service.authenticate(agent.email, "correct-horse-battery").id == agent_id


def test_demoting_to_viewer_unassigns_their_tickets(db, admin, make_user):
    agent_id = make_user("agent")
    ticket = make_ticket(assignee_id=agent_id)
    user_service.change_role(agent_id, "viewer", by=admin)
    assert db.session.get(Ticket, ticket.id).assignee_id is None


# --- passwords --------------------------------------------------------------------------------


def test_change_password(db, make_user):
    agent_id = make_user("agent", email="ana@example.com")
    old_cookie = user(db, agent_id).get_id()
    with pytest.raises(ValidationError) as error:
        user_service.change_password(agent_id, "wrong-password", NEW_PASSWORD)
    assert "current_password" in error.value.fields
    with pytest.raises(ValidationError) as error:
        user_service.change_password(agent_id, "correct-horse-battery", "ana@example.com")
    assert "password" in error.value.fields
    member = user_service.change_password(agent_id, "correct-horse-battery", NEW_PASSWORD)
    assert member.check_password(NEW_PASSWORD) and member.get_id() != old_cookie


def test_password_reset_link(db, admin, make_user):
    agent_id = make_user("agent", email="ana@example.com")
    first = password_reset_service.send_password_reset(agent_id, by=admin)
    second = password_reset_service.send_password_reset(agent_id, by=admin)
    db.session.commit()
    assert second.url == f"http://127.0.0.1:5000/password-reset/{second.token}"
    with pytest.raises(LinkUnusable, match="cancelled"):
        password_reset_service.find_password_reset(first.token)  # a newer link replaces it
    stored = db.session.get(PasswordReset, second.id)
    assert stored.token_hash == hashlib.sha256(second.token.encode()).hexdigest()
    old_cookie = user(db, agent_id).get_id()
    with pytest.raises(ValidationError):
        password_reset_service.reset_password(second.token, "short")
    member = password_reset_service.reset_password(second.token, NEW_PASSWORD)
    db.session.commit()
    assert member.check_password(NEW_PASSWORD) and member.get_id() != old_cookie
    with pytest.raises(LinkUnusable, match="already been used"):
        password_reset_service.reset_password(second.token, "another-long-password")
    with pytest.raises(PermissionDenied):
        password_reset_service.send_password_reset(admin.id, by=member)


def test_password_reset_expires(db, admin, make_user):
    agent_id = make_user("agent")
    start = datetime(2026, 3, 1, 12, tzinfo=UTC)
    with clock.frozen(start):
        link = password_reset_service.send_password_reset(agent_id, by=admin)
    with clock.frozen(start + timedelta(days=8)):
        with pytest.raises(LinkUnusable, match="expired"):
            password_reset_service.reset_password(link.token, NEW_PASSWORD)
