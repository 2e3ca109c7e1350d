"""The agent's day in real Chromium: sign in, open a ticket, assign with a note, close, reopen."""

import os
from pathlib import Path

from sqlalchemy import select

from tests.conftest import sign_in
from tests.factories import make_contact
from ticketer.models import Ticket, TicketEvent
from ticketer.services import tickets as ticket_service

ROOT = Path(__file__).resolve().parents[2]
# The README's screenshot is refreshed on request only, so a test run leaves the tree clean.
SCREENSHOT = ROOT / ("docs/img" if os.environ.get("UPDATE_SCREENSHOTS") else "test-artifacts") / "workspace.png"


def test_agent_assigns_with_note_closes_and_reopens(db, page, live_server, make_user):
    make_user("agent", email="alex@example.com", name="Alex Agent")
    make_user("agent", email="bea@example.com", name="Bea Agent")
    contact = make_contact(
        "María García", urn="tel:+593987654321", fields={"city": "Quito", "plan": "pro"}, language="spa"
    )
    ticket, _ = ticket_service.open_ticket(
        contact_id=contact.id,
        topic_name="Billing",
        body="Order @results.order: @results.problem",
        results={"order": {"value": "4521", "category": "Has Number"}, "problem": {"value": "charged twice"}},
        flow_name="Support bot",
    )
    ticket_service.receive_message(contact.id, "Hola, me cobraron dos veces")
    ticket_uuid, ticket_id = ticket.uuid, ticket.id
    db.session.commit()
    db.session.remove()  # hold no transaction while the live server writes

    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    sign_in(page, live_server, "alex@example.com")
    page.click("#folder-unassigned-open")
    page.click(f"tr[data-ticket='{ticket_uuid}'] a.ticket-link")
    page.wait_for_selector("#timeline")
    assert page.inner_text("#ticket-body") == "Order 4521: charged twice"
    assert "Quito" in page.inner_text("#contact-details")
    assert "tel:+593987654321" in page.inner_text("#contact-details")
    assert "Has Number" in page.inner_text("#flow-results")

    page.select_option("#assign-form select[name=assignee]", label="Bea Agent (agent)")
    page.fill("#assign-note", "Bea handles billing refunds")
    page.click("#assign-form button[type=submit]")
    page.wait_for_selector("text=Ticket assigned.")
    assert "Assigned to Bea Agent" in page.inner_text("#ticket-assignee")
    assert "Bea handles billing refunds" in page.inner_text("#timeline")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    page.click("#close-ticket")
    page.wait_for_selector("#reopen-ticket")
    assert page.inner_text("#ticket-status") == "Closed"
    page.click("#reopen-ticket")
    page.wait_for_selector("#close-ticket")
    assert page.inner_text("#ticket-status") == "Open"
    assert errors == []

    db.session.expire_all()
    assert db.session.get(Ticket, ticket_id).status == "open"
    events = db.session.execute(
        select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)
    ).scalars()
    assert [(e.kind, e.note) for e in events] == [
        ("opened", None),
        ("assigned", "Bea handles billing refunds"),
        ("closed", None),
        ("reopened", None),
    ]
