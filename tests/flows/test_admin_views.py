"""The admin pages: flows, triggers and the deliveries panel (admins only)."""

import pytest
from sqlalchemy import select, update

from tests.factories import make_contact, make_ticket
from ticketer.models import Message, User
from ticketer.models.flows import Flow, FlowStart, Trigger
from ticketer.services import flows as flow_service
from ticketer.services import tickets as ticket_service

PAGES = [
    "/admin/flows/",
    "/admin/flows/new",
    "/admin/triggers/",
    "/admin/triggers/new",
    "/admin/deliveries/",
    "/admin/deliveries/messages",
]


@pytest.mark.parametrize("role", ["supervisor", "agent", "viewer"])
def test_only_admins_enter(client, login_as, role):
    login_as(role)
    for url in PAGES:
        assert client.get(url).status_code == 403, url
    assert client.post("/admin/flows/new", data={"name": "x", "engine": "builtin"}).status_code == 403
    assert client.post("/admin/deliveries/starts/1/retry").status_code == 403


def test_anonymous_goes_to_sign_in(client, app):
    for url in PAGES:
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"], url


def test_admin_adds_a_builtin_flow_and_errors_show_by_the_field(client, login_as, db):
    login_as("admin")
    for url in PAGES:
        assert client.get(url).status_code == 200, url
    response = client.post("/admin/flows/new", data={"name": "Thanks", "engine": "builtin", "templates": "  "})
    assert response.status_code == 400
    assert "Write at least one message" in response.get_data(as_text=True)
    assert db.session.scalar(select(Flow.id)) is None

    response = client.post(
        "/admin/flows/new", data={"name": "Thanks", "engine": "builtin", "templates": "Thanks @contact.name\nBye"}
    )
    assert response.status_code == 302
    flow = db.session.execute(select(Flow)).scalar_one()
    assert (flow.engine, flow.templates) == ("builtin", ["Thanks @contact.name", "Bye"])
    page = client.get("/admin/flows/").get_data(as_text=True)
    assert "Thanks" in page and "2 messages" in page


def test_rapidpro_flow_needs_its_uuid_and_keeps_the_token_when_edited(client, login_as, db):
    login_as("admin")
    data = {"name": "Survey", "engine": "rapidpro", "base_url": "https://rp.example.org", "api_token": "tok123"}
    response = client.post("/admin/flows/new", data=data)
    assert response.status_code == 400 and "Enter the UUID of the flow" in response.get_data(as_text=True)
    data["uuid"] = "9b5f1c1e-7d0a-4c55-8f5e-2f7f2a3f6b10"
    data["sends_replies"] = "y"
    assert client.post("/admin/flows/new", data=data).status_code == 302
    flow_id = db.session.scalar(select(Flow.id))
    db.session.commit()
    edit = client.get(f"/admin/flows/{flow_id}/edit").get_data(as_text=True)
    assert "tok123" not in edit  # the token is never shown again
    data.update(name="Survey 2", api_token="")
    assert client.post(f"/admin/flows/{flow_id}/edit", data=data).status_code == 302
    flow = db.session.get(Flow, flow_id)
    assert (flow.name, flow.api_token, flow.sends_replies) == ("Survey 2", "tok123", True)
    assert client.get("/admin/flows/999/edit").status_code == 404


def test_triggers_one_active_per_topic(client, login_as, db, make_user):
    admin = login_as("admin")
    flow = flow_service.create_flow(name="Thanks", engine="builtin", templates="Hi", by=db.session.get(User, admin))
    topic_id = make_ticket(topic="Billing").topic_id
    db.session.commit()
    flow_id = flow.id
    db.session.commit()
    ok = client.post("/admin/triggers/new", data={"flow": flow_id, "topic": "", "delay_minutes": 5, "active": "y"})
    assert ok.status_code == 302
    clash = client.post("/admin/triggers/new", data={"flow": flow_id, "topic": "", "active": "y"})
    assert clash.status_code == 400
    assert "already an active trigger for all topics" in clash.get_data(as_text=True)
    billing = client.post("/admin/triggers/new", data={"flow": flow_id, "topic": topic_id, "active": "y"})
    assert billing.status_code == 302
    no_flow = client.post("/admin/triggers/new", data={"flow": "", "topic": ""})
    assert no_flow.status_code == 400 and "Pick a flow" in no_flow.get_data(as_text=True)
    triggers = db.session.execute(select(Trigger.topic_id, Trigger.delay_minutes).order_by(Trigger.id)).all()
    assert triggers == [(None, 5), (topic_id, 0)]
    page = client.get("/admin/triggers/").get_data(as_text=True)
    assert "All topics" in page and "Billing" in page and "5 min" in page


def test_deliveries_panel_filters_by_status_and_retries(client, login_as, db, count_queries):
    admin_id = login_as("admin")
    admin = db.session.get(User, admin_id)
    flow = flow_service.create_flow(name="Thanks", engine="builtin", templates="Hi", by=admin)
    flow_service.create_trigger(flow_id=flow.id, delay_minutes=60, by=admin)
    tickets = [make_ticket(make_contact(name=f"Contact {n}")) for n in range(6)]
    ticket_service.close_tickets([t.id for t in tickets], by=admin)
    failed_id = db.session.scalars(select(FlowStart.id).order_by(FlowStart.id)).first()
    db.session.execute(
        update(FlowStart).where(FlowStart.id == failed_id).values(status="failed", attempts=12, last_error="HTTP 502")
    )
    db.session.commit()
    db.session.commit()

    def panel(url):
        with count_queries() as queries:
            page = client.get(url)
        assert page.status_code == 200
        return page.get_data(as_text=True), len(queries)

    all_rows, queries_for_6 = panel("/admin/deliveries/")
    assert all_rows.count('data-start="') == 6 and "HTTP 502" in all_rows
    failed, _ = panel("/admin/deliveries/?status=failed")
    assert failed.count('data-start="') == 1 and "Retry" in failed
    pending, _ = panel("/admin/deliveries/?status=pending")
    assert pending.count('data-start="') == 5 and "HTTP 502" not in pending
    # A fixed number of queries whatever the number of rows.
    more = [make_ticket(make_contact(name=f"More {n}")) for n in range(10)]
    ticket_service.close_tickets([t.id for t in more], by=db.session.get(User, admin_id))
    db.session.commit()
    db.session.commit()
    _, queries_for_16 = panel("/admin/deliveries/")
    assert queries_for_16 == queries_for_6

    assert client.post(f"/admin/deliveries/starts/{failed_id}/retry").status_code == 302
    start = db.session.get(FlowStart, failed_id)
    assert (start.status, start.attempts) == ("pending", 0)
    db.session.commit()
    again = client.post(f"/admin/deliveries/starts/{failed_id}/retry", follow_redirects=True)
    assert "Only failed starts can be retried" in again.get_data(as_text=True)
    assert client.post("/admin/deliveries/starts/99999/retry").status_code == 404


def test_outgoing_messages_tab_shows_failures_and_retries(client, login_as, db):
    admin_id = login_as("admin")
    ticket = make_ticket()
    message = ticket_service.reply(ticket.id, "<b>Hi</b>", by=db.session.get(User, admin_id))
    message.status, message.attempts, message.last_error = "failed", 12, "RapidPro refused it"
    message_id = message.id
    db.session.commit()
    db.session.commit()
    page = client.get("/admin/deliveries/messages?status=failed").get_data(as_text=True)
    assert "RapidPro refused it" in page and "&lt;b&gt;Hi&lt;/b&gt;" in page and "<b>Hi</b>" not in page
    assert client.post(f"/admin/deliveries/messages/{message_id}/retry").status_code == 302
    assert db.session.get(Message, message_id).status == "queued"


def test_a_generated_webhook_secret_is_shown_to_the_admin(client, login_as, db):
    login_as("admin")
    data = {"name": "Hook", "engine": "webhook", "webhook_url": "https://receiver.example/hook"}
    assert client.post("/admin/flows/new", data=data).status_code == 302
    flow = db.session.execute(select(Flow)).scalar_one()
    secret, flow_id = flow.webhook_secret, flow.id
    db.session.commit()
    page = client.get(f"/admin/flows/{flow_id}/edit").get_data(as_text=True)
    assert len(secret) >= 32 and f"<code>{secret}</code>" in page
