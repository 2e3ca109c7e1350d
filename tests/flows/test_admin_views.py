"""The admin pages: flows, triggers and the deliveries lists (admins only), Flask-Admin model views."""

import re

import pytest
from sqlalchemy import event, select, update

from tests.factories import make_contact, make_ticket
from ticketer.models import Message, User
from ticketer.models.flows import Flow, FlowStart, Trigger
from ticketer.services import flows as flow_service
from ticketer.services import tickets as ticket_service

PAGES = [
    "/admin/flows/",
    "/admin/flows/new/",
    "/admin/triggers/",
    "/admin/triggers/new/",
    "/admin/deliveries/",
    "/admin/deliveries/messages/",
]


@pytest.mark.parametrize("role", ["supervisor", "agent", "viewer"])
def test_only_admins_enter(client, login_as, role):
    login_as(role)
    for url in PAGES:
        assert client.get(url).status_code == 403, url
    assert client.post("/admin/flows/new/", data={"name": "x", "engine": "builtin"}).status_code == 403
    assert client.post("/admin/deliveries/action/", data={"action": "retry", "rowid": "1"}).status_code == 403


def test_anonymous_goes_to_sign_in(client, app):
    for url in PAGES:
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"], url


def test_admin_adds_a_builtin_flow_and_errors_show_by_the_field(client, login_as, db):
    login_as("admin")
    for url in PAGES:
        assert client.get(url).status_code == 200, url
    response = client.post("/admin/flows/new/", data={"name": "Thanks", "engine": "builtin", "templates": "  "})
    assert response.status_code == 200  # Flask-Admin shows the form again
    page = response.get_data(as_text=True)
    assert re.search(r'id="templates"[^>]*>\s*</textarea>\s*<div class="invalid-feedback">', page)
    assert "Write at least one message" in page
    assert db.session.scalar(select(Flow.id)) is None

    response = client.post(
        "/admin/flows/new/", data={"name": "Thanks", "engine": "builtin", "templates": "Thanks @contact.name\nBye"}
    )
    assert response.status_code == 302
    flow = db.session.execute(select(Flow)).scalar_one()
    assert (flow.engine, flow.templates) == ("builtin", ["Thanks @contact.name", "Bye"])
    flow_id = flow.id
    db.session.commit()
    page = client.get("/admin/flows/").get_data(as_text=True)
    assert "Thanks" in page and "2 messages" in page
    edit = client.get(f"/admin/flows/edit/?id={flow_id}").get_data(as_text=True)
    assert "Thanks @contact.name\nBye</textarea>" in edit


def test_rapidpro_flow_needs_its_uuid_and_keeps_the_token_when_edited(client, login_as, db):
    login_as("admin")
    data = {"name": "Survey", "engine": "rapidpro", "base_url": "https://rp.example.org", "api_token": "tok123"}
    response = client.post("/admin/flows/new/", data=data)
    assert response.status_code == 200 and "Enter the UUID of the flow" in response.get_data(as_text=True)
    data["uuid"] = "9b5f1c1e-7d0a-4c55-8f5e-2f7f2a3f6b10"
    data["sends_replies"] = "y"
    assert client.post("/admin/flows/new/", data=data).status_code == 302
    flow_id = db.session.scalar(select(Flow.id))
    db.session.commit()
    edit = client.get(f"/admin/flows/edit/?id={flow_id}").get_data(as_text=True)
    assert "tok123" not in edit  # the token is never shown again
    data.update(name="Survey 2", api_token="")
    assert client.post(f"/admin/flows/edit/?id={flow_id}", data=data).status_code == 302
    flow = db.session.get(Flow, flow_id)
    assert (flow.name, flow.api_token, flow.sends_replies) == ("Survey 2", "tok123", True)
    db.session.commit()
    missing = client.get("/admin/flows/edit/?id=999", follow_redirects=True)
    assert "Record does not exist." in missing.get_data(as_text=True)


def test_triggers_one_active_per_topic(client, login_as, db, make_user):
    admin = login_as("admin")
    flow = flow_service.create_flow(
        flow_service.FlowSettings(name="Thanks", engine="builtin", templates="Hi"), by=db.session.get(User, admin)
    )
    topic_id = make_ticket(topic="Billing").topic_id
    flow_id = flow.id
    db.session.commit()
    form = client.get("/admin/triggers/new/").get_data(as_text=True)
    assert f'<option value="{flow_id}">Thanks</option>' in form and "All topics" in form
    data = {"flow_id": flow_id, "topic_id": "", "delay_minutes": 5, "active": "y"}
    assert client.post("/admin/triggers/new/", data=data).status_code == 302
    clash = client.post("/admin/triggers/new/", data={"flow_id": flow_id, "topic_id": "", "active": "y"})
    assert clash.status_code == 200
    assert "already an active trigger for all topics" in clash.get_data(as_text=True)
    billing = client.post("/admin/triggers/new/", data={"flow_id": flow_id, "topic_id": topic_id, "active": "y"})
    assert billing.status_code == 302
    no_flow = client.post("/admin/triggers/new/", data={"flow_id": "", "topic_id": ""})
    assert no_flow.status_code == 200 and "Pick a flow" in no_flow.get_data(as_text=True)
    triggers = db.session.execute(
        select(Trigger.id, Trigger.topic_id, Trigger.delay_minutes).order_by(Trigger.id)
    ).all()
    assert [row[1:] for row in triggers] == [(None, 5), (topic_id, 0)]
    db.session.commit()
    page = client.get("/admin/triggers/").get_data(as_text=True)
    assert "All topics" in page and "Billing" in page and "5 min" in page
    edit = client.get(f"/admin/triggers/edit/?id={triggers[1][0]}").get_data(as_text=True)
    assert f'<option selected value="{topic_id}">Billing</option>' in edit
    off = {"flow_id": flow_id, "topic_id": topic_id, "delay_minutes": 0}
    assert client.post(f"/admin/triggers/edit/?id={triggers[1][0]}", data=off).status_code == 302
    assert db.session.get(Trigger, triggers[1][0]).active is False


def _starts(db, admin_id, count, delay_minutes=60):
    admin = db.session.get(User, admin_id)
    tickets = [make_ticket(make_contact(name=f"Contact {n}")) for n in range(count)]
    ticket_service.close_tickets([t.id for t in tickets], by=admin)
    db.session.commit()


def test_deliveries_list_filters_by_status_and_retries(client, login_as, db):
    admin_id = login_as("admin")
    admin = db.session.get(User, admin_id)
    flow = flow_service.create_flow(
        flow_service.FlowSettings(name="Thanks", engine="builtin", templates="Hi"), by=admin
    )
    flow_service.create_trigger(flow_id=flow.id, delay_minutes=60, by=admin)
    _starts(db, admin_id, 6)
    failed_id = db.session.scalars(select(FlowStart.id).order_by(FlowStart.id)).first()
    db.session.execute(
        update(FlowStart).where(FlowStart.id == failed_id).values(status="failed", attempts=12, last_error="HTTP 502")
    )
    db.session.commit()

    everything = client.get("/admin/deliveries/").get_data(as_text=True)
    assert everything.count('class="badge badge-') >= 6 and "HTTP 502" in everything
    failed_url = re.search(r'href="([^"]+)" data-status="failed"', everything).group(1).replace("&amp;", "&")
    failed = client.get(failed_url).get_data(as_text=True)
    assert failed.count("start-status") == 1 and 'class="btn btn-sm btn-outline-primary retry"' in failed
    pending_url = re.search(r'href="([^"]+)" data-status="pending"', everything).group(1).replace("&amp;", "&")
    pending = client.get(pending_url).get_data(as_text=True)
    assert pending.count("start-status") == 5 and "HTTP 502" not in pending and "btn-sm retry" not in pending

    # The row's Retry button posts the `retry` action for its row.
    (action, inputs), *others = [
        (target, inputs)
        for target, inputs in re.findall(r'<form method="post" action="([^"]+)"[^>]*>(.*?)</form>', failed, re.S)
        if 'name="rowid"' in inputs
    ]
    assert others == []
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', inputs))
    assert fields["action"] == "retry" and fields["rowid"] == str(failed_id)
    retried = client.post(action, data={**fields, "url": fields["url"].replace("&amp;", "&")})
    assert retried.status_code == 302 and retried.location.startswith("/admin/deliveries/")
    start = db.session.get(FlowStart, failed_id)
    assert (start.status, start.attempts) == ("pending", 0)
    db.session.commit()
    again = client.post(
        "/admin/deliveries/action/", data={"action": "retry", "rowid": failed_id}, follow_redirects=True
    )
    assert "Only failed starts can be retried" in again.get_data(as_text=True)
    unknown = client.post("/admin/deliveries/action/", data={"action": "retry", "rowid": 99999}, follow_redirects=True)
    assert "That flow start doesn&#39;t exist." in unknown.get_data(as_text=True)


def test_deliveries_list_never_counts_nor_offsets(client, login_as, db, count_queries, monkeypatch):
    """Deliveries reach millions of rows: every page is one keyset query, whatever the page or filter."""
    admin_id = login_as("admin")
    admin = db.session.get(User, admin_id)
    flow = flow_service.create_flow(
        flow_service.FlowSettings(name="Thanks", engine="builtin", templates="Hi"), by=admin
    )
    flow_service.create_trigger(flow_id=flow.id, delay_minutes=60, by=admin)
    _starts(db, admin_id, 7)
    ids = db.session.scalars(select(FlowStart.id).order_by(FlowStart.id.desc())).all()
    db.session.commit()
    from admin_views.deliveries import DeliveriesView

    monkeypatch.setattr(DeliveriesView, "page_size", 3)

    statements = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement.lower(), parameters))

    def page(url):
        statements.clear()
        event.listen(db.engine, "before_cursor_execute", record)
        try:
            with count_queries() as queries:
                response = client.get(url)
        finally:
            event.remove(db.engine, "before_cursor_execute", record)
        assert response.status_code == 200
        text = response.get_data(as_text=True)
        rows = [int(i) for i in re.findall(r'class="action-checkbox" value="(\d+)"', text)]
        older = re.search(r'href="([^"]+)" id="older"', text)
        for statement, parameters in statements:
            assert "count(" not in statement, statement
            # SQLite's LIMIT always comes with an OFFSET: it must be 0 (no rows skipped by scanning).
            if "offset" in statement:
                assert statement.rstrip().endswith("offset ?") and parameters[-1] == 0, (statement, parameters)
        assert len(queries) <= 2  # the signed-in user, and the page
        list_queries = [statement for statement, _ in statements if "from flow_starts" in statement]
        return rows, older.group(1).replace("&amp;", "&") if older else None, len(list_queries)

    first, older, cost = page("/admin/deliveries/")
    assert first == ids[:3] and "before=" in older and cost == 1
    second, older, second_cost = page(older)
    assert second == ids[3:6] and second_cost == cost
    third, older, _ = page(older)
    assert third == ids[6:] and older is None
    _, _, filtered_cost = page("/admin/deliveries/?flt0_status_equals=pending&before=999999999")
    assert filtered_cost == cost
    assert page("/admin/deliveries/?before=99999999999999999999999")[0] == ids[:3]  # out of range: ignored


def test_outgoing_messages_list_shows_failures_and_retries(client, login_as, db):
    admin_id = login_as("admin")
    ticket = make_ticket()
    message = ticket_service.reply(ticket.id, "<b>Hi</b>", by=db.session.get(User, admin_id))
    message.status, message.attempts, message.last_error = "failed", 12, "RapidPro refused it"
    message_id = message.id
    db.session.commit()
    page = client.get("/admin/deliveries/messages/?flt0_status_equals=failed").get_data(as_text=True)
    assert "RapidPro refused it" in page and "&lt;b&gt;Hi&lt;/b&gt;" in page and "<b>Hi</b>" not in page
    assert ticket.uuid[:8] in page
    retry = client.post("/admin/deliveries/messages/action/", data={"action": "retry", "rowid": message_id})
    assert retry.status_code == 302
    assert db.session.get(Message, message_id).status == "queued"


def test_a_generated_webhook_secret_is_shown_to_the_admin(client, login_as, db):
    login_as("admin")
    data = {"name": "Hook", "engine": "webhook", "webhook_url": "https://receiver.example/hook"}
    assert client.post("/admin/flows/new/", data=data).status_code == 302
    flow = db.session.execute(select(Flow)).scalar_one()
    secret, flow_id = flow.webhook_secret, flow.id
    db.session.commit()
    page = client.get(f"/admin/flows/edit/?id={flow_id}").get_data(as_text=True)
    assert len(secret) >= 32 and f"<code>{secret}</code>" in page
