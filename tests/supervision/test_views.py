"""Supervisor pages through the test client: bulk actions on the ticket list, the Overdue folder and
SLA clocks, auto-assignment and SLA settings, business hours and the "available" toggle."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.factories import make_contact, make_ticket
from ticketer.clock import frozen
from ticketer.models import Ticket, TicketEvent, User
from ticketer.models.supervision import AutoAssignment, BusinessHours, SLATarget
from ticketer.services import assignment, sla
from ticketer.services import tickets as ticket_service
from ticketer.services import topics as topic_service

Kind = TicketEvent.Kind


def ticket_uuids(html: bytes) -> list[str]:
    return re.findall(r'data-ticket="([0-9a-f-]{36})"', html.decode())


def state(db, ids):
    rows = db.session.execute(
        select(Ticket.id, Ticket.assignee_id, Ticket.status, Ticket.topic_id)
        .where(Ticket.id.in_(ids))
        .execution_options(populate_existing=True)
    ).all()
    return {row.id: row for row in rows}


@pytest.mark.parametrize("role", ["agent", "viewer"])
def test_agents_and_viewers_see_no_checkboxes_and_get_403(db, client, login_as, role):
    login_as(role)
    ticket = make_ticket()
    db.session.commit()
    html = client.get("/admin/tickets/?folder=all").data.decode()
    assert ticket.uuid in html
    assert "select-ticket" not in html and "bulk-form" not in html
    response = client.post("/admin/tickets/bulk", data={"action": "close", "ids": [ticket.id], "confirmed": "1"})
    assert response.status_code == 403
    assert state(db, [ticket.id])[ticket.id].status == "open"


def test_anonymous_bulk_goes_to_sign_in(client):
    response = client.post("/admin/tickets/bulk", data={"action": "close"})
    assert response.status_code == 302 and "/login" in response.location


def test_supervisor_assigns_selected_rows_with_a_note_after_confirming(db, client, login_as, make_user):
    boss = login_as("supervisor")
    carla = make_user("agent", name="Carla")
    tickets = [make_ticket() for _ in range(3)]
    done = make_ticket()
    ticket_service.close(done.id, by=None)
    db.session.commit()
    html = client.get("/admin/tickets/?folder=all").data.decode()
    assert html.count('class="select-ticket"') == 3
    form = {
        "action": "assign",
        "scope": "selected",
        "assignee_id": str(carla),
        "note": "Carla covers <b>these</b>",
        "ids": [str(tickets[0].id), str(tickets[1].id), str(done.id)],
        "folder": "all",
        "status": "open",
    }
    confirm = client.post("/admin/tickets/bulk", data=form)
    page = confirm.data.decode()
    assert confirm.status_code == 200
    assert "Assign 3 tickets to Carla?" in page
    assert "Carla covers &lt;b&gt;these&lt;/b&gt;" in page
    assert state(db, [tickets[0].id])[tickets[0].id].assignee_id is None  # nothing happened yet
    done_response = client.post("/admin/tickets/bulk", data={**form, "confirmed": "1"})
    assert done_response.status_code == 302
    assert done_response.location.startswith("/admin/tickets/?folder=all")
    rows = state(db, [t.id for t in tickets])
    assert [rows[t.id].assignee_id for t in tickets] == [carla, carla, None]
    event = db.session.execute(
        select(TicketEvent).where(TicketEvent.ticket_id == tickets[0].id, TicketEvent.kind == Kind.ASSIGNED)
    ).scalar_one()
    assert (event.created_by_id, event.assignee_id, event.note) == (boss, carla, "Carla covers <b>these</b>")
    flashed = client.get(done_response.location).data.decode()
    assert "2 tickets updated; 1 skipped" in flashed


def test_all_matching_uses_folder_search_and_filters(db, client, login_as, make_user):
    login_as("admin")
    bea = make_user("agent", name="Bea")
    refunds = [make_ticket(make_contact(f"Refund {n}"), topic="Billing", body="refund please") for n in range(4)]
    other_topic = make_ticket(make_contact("Refund elsewhere"), topic="Delivery", body="refund please")
    unrelated = make_ticket(make_contact("Luis"), topic="Billing", body="late box")
    db.session.commit()
    billing = topic_service.find_topic_by_name("Billing").id
    listing = client.get(f"/admin/tickets/?folder=unassigned&q=refund&topic={billing}").data.decode()
    assert "All 4 matching" in listing
    form = {
        "action": "assign",
        "scope": "all",
        "assignee_id": str(bea),
        "note": "Bea takes refunds",
        "folder": "unassigned",
        "status": "open",
        "q": "refund",
        "topic": str(billing),
    }
    assert "Assign 4 tickets to Bea?" in client.post("/admin/tickets/bulk", data=form).data.decode()
    client.post("/admin/tickets/bulk", data={**form, "confirmed": "1"})
    rows = state(db, [t.id for t in refunds] + [other_topic.id, unrelated.id])
    assert [rows[t.id].assignee_id for t in refunds] == [bea] * 4
    assert rows[other_topic.id].assignee_id is None and rows[unrelated.id].assignee_id is None


def test_close_reopen_unassign_and_change_topic_in_bulk(db, client, login_as, make_user):
    login_as("supervisor")
    agent = make_user("agent")
    tickets = [make_ticket(topic="General", assignee_id=agent) for _ in range(3)]
    returns = topic_service.get_or_create_topic("Returns").id
    db.session.commit()
    ids = [str(t.id) for t in tickets]

    def run(action, scope="selected", **extra):
        data = {"action": action, "scope": scope, "ids": ids, "folder": "all", "status": "open", "confirmed": "1"}
        response = client.post("/admin/tickets/bulk", data={**data, **extra})
        assert response.status_code == 302
        return {t.id: row for t, row in zip(tickets, state(db, [t.id for t in tickets]).values(), strict=True)}

    rows = run("topic", new_topic=str(returns))
    assert {r.topic_id for r in rows.values()} == {returns}
    rows = run("unassign", note="back to the pool")
    assert {r.assignee_id for r in rows.values()} == {None}
    rows = run("close")
    assert {r.status for r in rows.values()} == {"closed"}
    rows = run("reopen", scope="all", status="closed")
    assert {r.status for r in rows.values()} == {"open"}


def test_bulk_asks_for_what_it_needs(db, client, login_as):
    login_as("supervisor")
    ticket = make_ticket()
    db.session.commit()
    base = {"scope": "selected", "ids": [str(ticket.id)], "folder": "all", "status": "open"}
    response = client.post("/admin/tickets/bulk", data={**base, "action": "assign"}, follow_redirects=True)
    assert "Pick who gets the tickets." in response.data.decode()
    response = client.post("/admin/tickets/bulk", data={**base, "action": "topic"}, follow_redirects=True)
    assert "Pick the new topic." in response.data.decode()
    response = client.post("/admin/tickets/bulk", data={**base, "action": "close", "ids": []}, follow_redirects=True)
    assert "Select some tickets first." in response.data.decode()
    response = client.post("/admin/tickets/bulk", data={**base, "action": "explode"}, follow_redirects=True)
    assert response.status_code == 200 and "Not a valid choice" in response.data.decode()


def test_overdue_folder_and_clocks_with_a_fixed_number_of_queries(db, client, login_as, count_queries):
    login_as("supervisor")
    topic = topic_service.get_or_create_topic("Billing")
    sla.configure_target(topic.id, first_reply_minutes=30, resolution_minutes=None, by=None)
    now = datetime.now(UTC)
    with frozen(now - timedelta(hours=1)):
        late = make_ticket(make_contact("Late Lara"), topic="Billing")
    fresh = make_ticket(make_contact("Fresh Fred"), topic="Billing")
    no_target = make_ticket(make_contact("Plain Pat"), topic="General")
    db.session.commit()
    html = client.get("/admin/tickets/?folder=overdue").data.decode()
    assert ticket_uuids(html.encode()) == [late.uuid]
    assert re.search(r'data-count="overdue.open"[^>]*>1<', html)
    assert "Overdue 30m" in html
    listing = client.get("/admin/tickets/?folder=all").data.decode()
    assert "29m left to reply" in listing or "30m left to reply" in listing
    assert set(ticket_uuids(listing.encode())) == {late.uuid, fresh.uuid, no_target.uuid}
    assert client.get("/admin/tickets/counts.json").json["overdue"] == {"open": 1}

    db.session.commit()  # as below: the signed-in user is reloaded once after a commit
    with count_queries() as few:
        client.get("/admin/tickets/?folder=all")
    for _ in range(30):
        make_ticket(topic="Billing")
    db.session.commit()
    with count_queries() as many:
        client.get("/admin/tickets/?folder=all")
    assert len(many) == len(few) <= 8


def test_supervision_pages_send_anonymous_visitors_to_sign_in(client):
    response = client.get("/admin/supervision/")
    assert response.status_code == 302 and "/login" in response.location


@pytest.mark.parametrize("role", ["agent", "viewer"])
def test_supervision_pages_need_manage_topics(db, client, login_as, role):
    topic = topic_service.get_or_create_topic("Billing")
    db.session.commit()
    login_as(role)
    assert client.get("/admin/supervision/").status_code == 403
    assert client.get(f"/admin/supervision/topics/{topic.id}").status_code == 403
    assert client.post(f"/admin/supervision/topics/{topic.id}", data={"capacity": "3"}).status_code == 403
    assert client.post("/admin/supervision/hours", data={}).status_code == 403
    assert db.session.get(AutoAssignment, topic.id) is None


def test_supervisor_sets_auto_assignment_and_sla_of_a_topic(db, client, login_as, make_user):
    login_as("supervisor")
    a, b = make_user("agent", name="Ann"), make_user("agent", name="Ben")
    topic = topic_service.get_or_create_topic("Billing")
    waiting = make_ticket(topic="Billing")
    db.session.commit()
    page = client.get(f"/admin/supervision/topics/{topic.id}").data.decode()
    assert "Ann (agent)" in page and "Ben (agent)" in page
    bad = client.post(
        f"/admin/supervision/topics/{topic.id}",
        data={"enabled": "y", "strategy": "round_robin", "capacity": "5"},
    )
    assert bad.status_code == 400
    assert re.search(r"Add at least one agent to the pool.*?</fieldset>", bad.data.decode(), re.S)
    response = client.post(
        f"/admin/supervision/topics/{topic.id}",
        data={
            "enabled": "y",
            "strategy": "fewest_open",
            "capacity": "5",
            "pool": [str(a), str(b)],
            "first_reply_minutes": "15",
            "resolution_minutes": "",
            "business_hours_only": "y",
        },
    )
    assert response.status_code == 302
    settings = db.session.get(AutoAssignment, topic.id)
    assert (settings.enabled, settings.strategy, settings.capacity) == (True, "fewest_open", 5)
    assert assignment.pool_user_ids(topic.id) == sorted([a, b])
    target = db.session.get(SLATarget, topic.id)
    assert (target.first_reply_minutes, target.resolution_minutes, target.business_hours_only) == (15, None, True)
    assert state(db, [waiting.id])[waiting.id].assignee_id in (a, b)  # turning it on handed out the backlog
    assignment.set_available(b, False, by=db.session.get(User, b))
    db.session.commit()
    status = client.get(f"/admin/supervision/topics/{topic.id}").data.decode()
    table = status[status.index('id="pool-status"') :]
    assert re.search(r"Ann</td>\s*<td><span class=\"badge badge-success\">Available", table)
    assert re.search(r"Ben</td>\s*<td>.*?Away", table, re.S)
    assert "1 / 5" in table
    overview = client.get("/admin/supervision/").data.decode()
    assert "fewest open" in overview and "15 min" in overview


def test_business_hours_form_shows_errors_by_the_field(db, client, login_as):
    login_as("admin")
    bad = client.post(
        "/admin/supervision/hours", data={"days": ["1", "2"], "start": "09:00", "end": "17:00", "time_zone": "Mars/X"}
    )
    assert bad.status_code == 400
    assert re.search(r'id="time_zone".*?Unknown time zone', bad.data.decode(), re.S)
    ok = client.post(
        "/admin/supervision/hours",
        data={"days": ["1", "2", "3"], "start": "08:30", "end": "18:00", "time_zone": "America/Guayaquil"},
    )
    assert ok.status_code == 302
    hours = db.session.get(BusinessHours, 1)
    assert (hours.days, hours.start_minute, hours.end_minute, hours.time_zone) == (
        "1,2,3",
        510,
        1080,
        "America/Guayaquil",
    )


def test_the_available_toggle(db, client, login_as):
    me = login_as("agent")
    html = client.get("/admin/tickets/").data.decode()
    assert 'id="availability">Available<' in html
    response = client.post("/admin/availability/", data={"available": "0", "next": "/admin/tickets/?folder=mine"})
    assert response.status_code == 302 and response.location == "/admin/tickets/?folder=mine"
    assert assignment.is_available(me) is False
    assert 'id="availability">Away<' in client.get("/admin/tickets/").data.decode()
    client.post("/admin/availability/", data={"available": "1", "next": "https://evil.example/"})
    assert assignment.is_available(me) is True


def test_viewers_have_no_toggle(db, client, login_as):
    login_as("viewer")
    assert "availability-form" not in client.get("/admin/tickets/").data.decode()
    assert client.post("/admin/availability/", data={"available": "0"}).status_code == 403
