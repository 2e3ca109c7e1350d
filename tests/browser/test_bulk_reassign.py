"""A supervisor reassigns every ticket matching a search, with one note, in real Chromium."""

from sqlalchemy import select

from tests.conftest import sign_in
from tests.factories import make_contact, make_ticket
from ticketer.models import Ticket, TicketEvent


def test_supervisor_reassigns_all_matching_with_a_note(db, page, live_server, live_app, make_user):
    boss = make_user("supervisor", email="sam@example.com", name="Sam Supervisor")
    bea = make_user("agent", email="bea@example.com", name="Bea Agent")
    alex = make_user("agent", email="alex@example.com", name="Alex Agent")
    live_app.config["TICKETS_PER_PAGE"] = 5  # more matching tickets than one page shows
    refunds = [make_ticket(make_contact(f"Refund {n}"), body="refund please", assignee_id=alex) for n in range(12)]
    other = make_ticket(make_contact("Luis Vega"), body="late delivery", assignee_id=alex)
    refund_ids, other_id = [t.id for t in refunds], other.id
    db.session.commit()
    db.session.remove()  # hold no transaction while the live server writes

    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    try:
        sign_in(page, live_server, "sam@example.com")
        page.goto(f"{live_server.url}/admin/tickets/?folder=all")
        page.fill("input[name=q]", "refund")
        page.press("input[name=q]", "Enter")
        page.wait_for_url("**q=refund**")
        assert page.locator("#ticket-list tbody tr").count() == 5

        page.check("#select-page")
        assert page.locator(".select-ticket:checked").count() == 5
        assert page.inner_text("#selected-count") == "5 selected"
        assert "All 12 matching" in page.inner_text("#bulk-apply-to")
        page.check("#scope-all")
        page.select_option("#bulk-action", "assign")
        assert page.is_hidden("#bulk-topic")
        page.select_option("#bulk-assignee", label="Bea Agent (agent)")
        page.fill("#bulk-note", "Bea takes over refunds this week")
        page.click("#bulk-apply")

        page.wait_for_selector("#bulk-summary")
        assert page.inner_text("#bulk-summary") == "Assign 12 tickets to Bea Agent?"
        assert page.inner_text("#bulk-note-preview") == "Bea takes over refunds this week"
        page.click("#bulk-confirm")
        page.wait_for_selector("text=12 tickets updated.")
        assert errors == []
    finally:
        live_app.config["TICKETS_PER_PAGE"] = 50

    rows = dict(db.session.execute(select(Ticket.id, Ticket.assignee_id)).all())
    assert {rows[i] for i in refund_ids} == {bea}
    assert rows[other_id] == alex
    events = db.session.execute(
        select(TicketEvent).where(TicketEvent.kind == TicketEvent.Kind.ASSIGNED, TicketEvent.assignee_id == bea)
    ).scalars()
    assert {(e.ticket_id, e.created_by_id, e.note) for e in events} == {
        (i, boss, "Bea takes over refunds this week") for i in refund_ids
    }
