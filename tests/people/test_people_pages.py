"""People and invitations (Flask-Admin model views), invitation links, password pages: through the test
client, with a real SMTP server."""

import re
import socket
from contextlib import contextmanager

from sqlalchemy import select

from tests.conftest import PASSWORD
from tests.factories import make_ticket
from ticketer.extensions import db as _db
from ticketer.models import Ticket, User
from ticketer.models.people import Invitation, PasswordReset
from ticketer.services import users as user_service

NEW_PASSWORD = "a-brand-new-secret"


@contextmanager
def database(app):
    """The database in an app context of its own: requests never share it (nor Flask-Login's cached user)."""
    with app.app_context():
        yield _db.session
        _db.session.commit()


def invite(client, *rows):
    """Invite through the create form, one post per role (emails one per line); the last answer."""
    by_role: dict[str, list[str]] = {}
    for email, role in rows:
        by_role.setdefault(role, []).append(email)
    for role, emails in by_role.items():
        response = client.post("/admin/invitations/new/", data={"emails": "\n".join(emails), "role": role})
        if response.status_code != 302:
            break
    return response


def act(client, view: str, action: str, row_id: int, follow: bool = False):
    """One of a list's @actions on one row, as its row button posts it."""
    return client.post(f"/admin/{view}/action/", data={"action": action, "rowid": row_id}, follow_redirects=follow)


def change_role(client, user_id: int, role: str, follow: bool = False):
    return client.post(f"/admin/people/edit/?id={user_id}", data={"role": role}, follow_redirects=follow)


def path_of(link: str) -> str:
    return re.sub(r"^https?://[^/]+", "", link)


def signed_in_client(app, user_id):
    other = app.test_client()
    with database(app) as session:
        cookie_id = user_service.start_sign_in(session.get(User, user_id)).get_id()
        session.commit()
    with other.session_transaction() as session:
        session["_user_id"] = cookie_id
        session["_fresh"] = True
    return other


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_admin_invites_and_the_person_accepts_from_the_mailed_link(app, client, login_as, smtp_server):
    login_as("admin", name="Boss")
    response = invite(client, ("ana@example.com", "agent"), ("", "agent"), ("Bob@Example.com", "viewer"))
    assert response.status_code == 302
    page = client.get("/admin/invitations/").get_data(as_text=True)
    assert "Invitation sent to ana@example.com." in page and "Invitation sent to bob@example.com." in page
    assert "ana@example.com" in page and "bob@example.com" in page

    mails = smtp_server.wait_for(2)
    by_recipient = {m["To"]: m for m in mails}
    assert set(by_recipient) == {"ana@example.com", "bob@example.com"}
    mail = by_recipient["ana@example.com"]
    assert mail["Subject"] == "You're invited to Ticketer"
    assert "Boss invited you" in mail.get_body(("plain",)).get_content()
    assert "Boss invited you" in mail.get_body(("html",)).get_content()
    (link,) = smtp_server.links(mail)
    assert link.startswith("http://127.0.0.1:5000/invitations/")

    visitor = app.test_client()
    form = visitor.get(path_of(link))
    assert form.status_code == 200 and "ana@example.com" in form.get_data(as_text=True)
    short = visitor.post(path_of(link), data={"name": "Ana", "password": "short", "confirm": "short"})
    assert short.status_code == 400 and "Use at least 10 characters." in short.get_data(as_text=True)
    mismatch = visitor.post(path_of(link), data={"name": "Ana", "password": NEW_PASSWORD, "confirm": "x" * 12})
    assert mismatch.status_code == 400 and "The two passwords don&#39;t match." in mismatch.get_data(as_text=True)
    accepted = visitor.post(path_of(link), data={"name": "Ana", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert accepted.status_code == 302 and accepted.location == "/admin/tickets/"
    assert visitor.get("/admin/tickets/").status_code == 200  # signed in
    with database(app) as session:
        member = session.execute(select(User).where(User.email == "ana@example.com")).scalar_one()
        assert (member.name, member.role) == ("Ana", "agent")

    again = app.test_client().get(path_of(link))
    assert again.status_code == 410 and "already been used" in again.get_data(as_text=True)
    reuse = app.test_client().post(path_of(link), data={"name": "X", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert reuse.status_code == 410


def test_invite_refuses_members_and_duplicates_by_the_field_and_saves_nothing(client, app, login_as, make_user):
    login_as("admin")
    make_user("agent", email="taken@example.com")
    twice = invite(client, ("new@example.com", "agent"), ("taken@example.com", "agent"), ("NEW@example.com", "agent"))
    assert twice.status_code == 200  # the form again, the error by the field
    assert re.search(
        r'id="emails"[^>]*>[^<]*</textarea>\s*<div class="invalid-feedback">', twice.get_data(as_text=True)
    )
    assert "Listed twice: new@example.com." in twice.get_data(as_text=True)
    member = invite(client, ("new@example.com", "agent"), ("taken@example.com", "agent"))
    assert member.status_code == 200 and "taken@example.com is already a member." in member.get_data(as_text=True)
    with database(app) as session:
        assert session.execute(select(Invitation)).scalars().all() == []  # all or nothing
    empty = invite(client, ("", "agent"))
    assert empty.status_code == 200 and "Enter at least one email address." in empty.get_data(as_text=True)
    bad = invite(client, ("not-an-email", "agent"))
    assert bad.status_code == 200 and "Enter a valid email address." in bad.get_data(as_text=True)


def test_inviting_a_pending_email_again_resends(client, app, login_as, smtp_server):
    login_as("admin")
    invite(client, ("ana@example.com", "agent"))
    invite(client, ("ana@example.com", "supervisor"))
    assert "Invitation sent again to ana@example.com." in client.get("/admin/invitations/").get_data(as_text=True)
    first, second = smtp_server.wait_for(2)
    assert client.get(path_of(smtp_server.links(first)[0])).status_code == 404  # replaced by the new link
    assert client.get(path_of(smtp_server.links(second)[0])).status_code == 200
    with database(app) as session:
        (invitation,) = session.execute(select(Invitation)).scalars().all()
        assert invitation.role == "supervisor"


def test_mail_server_down_keeps_the_invitation_and_resend_works(app, client, login_as, smtp_server, monkeypatch):
    login_as("admin")
    monkeypatch.setitem(app.config, "MAIL_PORT", closed_port())
    response = invite(client, ("ana@example.com", "agent"))
    assert response.status_code == 302
    page = client.get("/admin/invitations/").get_data(as_text=True)
    assert "The invitation to ana@example.com is saved, but sending the email failed" in page
    assert "Sending failed" in page
    with database(app) as session:
        invitation = session.execute(select(Invitation)).scalar_one()
        assert invitation.send_error and invitation.last_sent_on is None
        invitation_id = invitation.id

    monkeypatch.setitem(app.config, "MAIL_PORT", smtp_server.port)
    assert act(client, "invitations", "resend", invitation_id).status_code == 302
    (mail,) = smtp_server.wait_for(1)
    with database(app) as session:
        invitation = session.get(Invitation, invitation_id)
        assert invitation.send_error is None and invitation.last_sent_on is not None
    assert "Sending failed" not in client.get("/admin/invitations/").get_data(as_text=True)
    assert app.test_client().get(path_of(smtp_server.links(mail)[0])).status_code == 200


def test_without_a_mail_server_the_mail_is_printed_with_its_link(app, client, login_as, capsys):
    login_as("admin")
    assert invite(client, ("ana@example.com", "agent")).status_code == 302
    printed = capsys.readouterr().out
    (link,) = re.findall(r"http://127\.0\.0\.1:5000/invitations/\S+", printed)
    assert "To: ana@example.com" in printed
    page = client.get("/admin/invitations/").get_data(as_text=True)
    assert "No mail server is set up: the invitation to ana@example.com was printed on the console." in page
    assert app.test_client().get(path_of(link)).status_code == 200


def test_cancelled_expired_and_unknown_links_get_a_clear_page(app, client, login_as, smtp_server):
    from datetime import timedelta

    from ticketer import clock

    login_as("admin")
    invite(client, ("ana@example.com", "agent"), ("bob@example.com", "agent"))
    ana, bob = sorted(smtp_server.wait_for(2), key=lambda m: m["To"])
    with database(app) as session:
        ana_id = session.execute(select(Invitation.id).where(Invitation.email == "ana@example.com")).scalar_one()
    cancelled = act(client, "invitations", "cancel", ana_id, follow=True).get_data(as_text=True)
    assert "Invitation cancelled: its link no longer works." in cancelled
    listed = client.get("/admin/invitations/").get_data(as_text=True)
    assert "bob@example.com" in listed and "ana@example.com" not in listed
    visitor = app.test_client()
    cancelled = visitor.get(path_of(smtp_server.links(ana)[0]))
    assert cancelled.status_code == 410 and "was cancelled" in cancelled.get_data(as_text=True)
    unknown = visitor.get("/invitations/not-a-real-token")
    assert unknown.status_code == 404 and "isn&#39;t valid" in unknown.get_data(as_text=True)
    with clock.frozen(clock.utcnow() + timedelta(days=8)):
        expired = visitor.get(path_of(smtp_server.links(bob)[0]))
        posted = visitor.post(path_of(smtp_server.links(bob)[0]), data={"name": "B", "password": NEW_PASSWORD})
    assert expired.status_code == 410 and "has expired" in expired.get_data(as_text=True)
    assert posted.status_code == 410
    assert visitor.get("/password-reset/not-a-real-token").status_code == 404


def test_people_list_shows_roles_and_costs_a_fixed_number_of_queries(app, client, login_as, make_user, count_queries):
    login_as("admin")

    def queries_for_page() -> int:
        with count_queries() as queries:
            response = client.get("/admin/people/")
        assert response.status_code == 200
        return len(queries)

    def queries_for_invitations() -> int:
        with count_queries() as queries:
            response = client.get("/admin/invitations/")
        assert response.status_code == 200
        return len(queries)

    make_user("agent")
    invite(client, ("one@example.com", "agent"))
    few, few_invitations = queries_for_page(), queries_for_invitations()
    for n in range(6):
        make_user("viewer")
        invite(client, (f"more{n}@example.com", "supervisor"))
    assert queries_for_page() == few <= 4
    assert queries_for_invitations() == few_invitations <= 4
    page = client.get("/admin/people/").get_data(as_text=True)
    assert len(re.findall(r">\s*viewer\s*<", page)) == 6 and "Viewer 7" in page


def test_change_role_and_last_admin_rules_through_the_page(client, app, login_as, make_user):
    admin_id = login_as("admin")
    agent_id = make_user("agent")
    assert change_role(client, agent_id, "supervisor").status_code == 302
    with database(app) as session:
        assert session.get(User, agent_id).role == "supervisor"
    assert "Role changed to agent: 1." in act(client, "people", "make_agent", agent_id, follow=True).get_data(True)
    with database(app) as session:
        assert session.get(User, agent_id).role == "agent"
    bad = change_role(client, agent_id, "owner")
    assert bad.status_code == 200 and "Not a valid choice" in bad.get_data(as_text=True)
    last = change_role(client, admin_id, "agent")
    assert last.status_code == 200 and "is the last active admin" in last.get_data(as_text=True)
    last_again = act(client, "people", "make_viewer", admin_id, follow=True)
    assert "is the last active admin" in last_again.get_data(as_text=True)
    yourself = act(client, "people", "deactivate", admin_id, follow=True)
    assert "You can&#39;t deactivate yourself" in yourself.get_data(as_text=True)
    with database(app) as session:
        assert session.get(User, admin_id).role == "admin" and session.get(User, admin_id).active
    missing = change_role(client, 999999, "agent", follow=True)
    assert "Record does not exist." in missing.get_data(as_text=True)
    make_user("admin")
    demoted = change_role(client, admin_id, "supervisor")
    assert demoted.status_code == 302 and demoted.location == "/admin/tickets/"  # no longer allowed here
    assert client.get("/admin/people/").status_code == 403
    other_admin = login_as("admin")
    made_viewer = act(client, "people", "make_viewer", other_admin)  # the same, through the action
    assert made_viewer.status_code == 302 and made_viewer.location == "/admin/tickets/"


def test_deactivating_ends_their_session_and_unassigns_their_tickets(app, client, login_as, make_user):
    login_as("admin")
    agent_id = make_user("agent")
    with database(app):
        ticket_id = make_ticket(assignee_id=agent_id).id
    agent_client = signed_in_client(app, agent_id)
    assert agent_client.get("/admin/tickets/").status_code == 200
    response = act(client, "people", "deactivate", agent_id)
    assert response.status_code == 302
    assert "1 open ticket unassigned." in client.get("/admin/people/").get_data(as_text=True)
    assert agent_client.get("/admin/tickets/").status_code == 302  # signed out
    with database(app) as session:
        assert session.get(Ticket, ticket_id).assignee_id is None
    assert act(client, "people", "reactivate", agent_id).status_code == 302
    with database(app) as session:
        assert session.get(User, agent_id).active
    assert agent_client.get("/admin/tickets/").status_code == 302  # the old session stays ended


def test_password_reset_link_from_the_page(app, client, login_as, make_user, smtp_server):
    login_as("admin")
    agent_id = make_user("agent", email="ana@example.com")
    agent_client = signed_in_client(app, agent_id)
    assert act(client, "people", "password_reset", agent_id).status_code == 302
    assert "Password reset link sent to ana@example.com." in client.get("/admin/people/").get_data(as_text=True)
    (mail,) = smtp_server.wait_for(1)
    assert mail["To"] == "ana@example.com" and mail["Subject"] == "Set a new Ticketer password"
    link = path_of(smtp_server.links(mail)[0])
    visitor = app.test_client()
    assert visitor.get(link).status_code == 200
    bad = visitor.post(link, data={"password": "ana@example.com", "confirm": "ana@example.com"})
    assert bad.status_code == 400 and "can&#39;t be your email" in bad.get_data(as_text=True)
    done = visitor.post(link, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 302 and visitor.get("/admin/tickets/").status_code == 200
    assert agent_client.get("/admin/tickets/").status_code == 302  # old sessions ended
    assert visitor.get(link).status_code == 410
    with database(app) as session:
        assert session.execute(select(PasswordReset)).scalar_one().used_on is not None
    fresh = app.test_client()
    assert fresh.post("/login", data={"email": "ana@example.com", "password": NEW_PASSWORD}).status_code == 302


def test_change_own_password(app, client, login_as):
    user_id = login_as("agent", email="ana@example.com")
    other_session = signed_in_client(app, user_id)
    assert client.get("/account/password").status_code == 200
    wrong = client.post(
        "/account/password", data={"current_password": "nope", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )
    assert wrong.status_code == 400 and "That isn&#39;t your current password." in wrong.get_data(as_text=True)
    done = client.post(
        "/account/password", data={"current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )
    assert done.status_code == 302
    assert client.get("/admin/tickets/").status_code == 200  # this session continues
    assert other_session.get("/admin/tickets/").status_code == 302  # the others end
    with database(app) as session:
        assert session.get(User, user_id).check_password(NEW_PASSWORD)


def test_only_admins_manage_people(app, make_user):
    target = make_user("agent")
    for role in ("supervisor", "agent", "viewer"):
        client = signed_in_client(app, make_user(role))
        assert client.get("/admin/people/").status_code == 403
        assert act(client, "people", "deactivate", target).status_code == 403
        assert invite(client, ("x@example.com", "admin")).status_code == 403
    with database(app) as session:
        assert session.get(User, target).active
        assert session.execute(select(Invitation)).first() is None


def test_guessing_the_current_password_hits_the_sign_in_limit(app, client, login_as, monkeypatch):
    monkeypatch.setitem(app.config, "SIGNIN_MAX_FAILURES", 3)
    login_as("agent", email="ana@example.com")
    data = {"current_password": "a-wrong-guess", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    for _ in range(3):
        assert client.post("/account/password", data=data).status_code == 400
    right = client.post("/account/password", data={**data, "current_password": PASSWORD})
    assert right.status_code == 429 and "Try again in 15 minutes" in right.get_data(as_text=True)
    assert app.test_client().post("/login", data={"email": "ana@example.com", "password": PASSWORD}).status_code == 429
