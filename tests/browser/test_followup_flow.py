"""Follow-up flow in real Chromium: an admin sets up a built-in flow and its trigger, an agent closes
a ticket, and with the scheduler process running the flow's message appears in the conversation,
sent, while the deliveries panel shows the start `sent`."""

import time

from playwright.sync_api import expect
from sqlalchemy import select

from tests.conftest import sign_in
from tests.factories import make_contact
from tests.flows.conftest import start_dispatcher, stop
from ticketer.database import read_only_transactions
from ticketer.models import Message
from ticketer.models.flows import FlowStart
from ticketer.services import tickets as ticket_service

HANG_SECONDS = 240  # waits give up only after this: a hang, never a busy machine being slow


def sent_by_the_scheduler(db, text: str) -> bool:
    """The start and its message are recorded `sent` (read without holding a lock the scheduler needs)."""
    db.session.remove()
    with read_only_transactions():
        start = db.session.execute(select(FlowStart.status)).scalar_one_or_none()
        message = db.session.execute(select(Message.status).where(Message.text == text)).scalar_one_or_none()
    db.session.remove()
    return start == "sent" and message == "sent"


def test_closing_a_ticket_starts_the_builtin_flow(db, browser, page, live_server, make_user, database_url):
    make_user("admin", email="ada@example.com", name="Ada Admin")
    make_user("agent", email="alex@example.com", name="Alex Agent")
    contact = make_contact("María García", urn="tel:+593987654321")
    ticket, _ = ticket_service.open_ticket(contact_id=contact.id, topic_name="Billing", body="Charged twice")
    ticket_uuid = ticket.uuid
    db.session.commit()
    db.session.remove()  # hold no transaction while the live server and the scheduler write

    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    # The admin adds the built-in flow (the form shows only the picked engine's settings) and its trigger.
    sign_in(page, live_server, "ada@example.com")
    page.goto(f"{live_server.url}/admin/flows/")
    page.click("text=Create")
    page.fill("#name", "Satisfaction")
    page.select_option("#engine", "rapidpro")
    # The form's script shows the picked engine's fields: wait for it (it may run late on a busy machine).
    expect(page.locator("#base_url")).to_be_visible(timeout=30_000)
    expect(page.locator("#templates")).to_be_hidden(timeout=30_000)
    page.select_option("#engine", "builtin")
    expect(page.locator("#templates")).to_be_visible(timeout=30_000)
    expect(page.locator("#base_url")).to_be_hidden(timeout=30_000)
    page.fill("#templates", "Thanks @contact.name! Your @ticket.topic ticket is closed.")
    page.click("input[type=submit][value=Save]")
    page.wait_for_selector("text=Record was successfully created.")
    assert "Satisfaction" in page.inner_text("table.model-list")
    page.goto(f"{live_server.url}/admin/triggers/new/")
    page.select_option("#flow_id", label="Satisfaction")
    page.click("input[type=submit][value=Save]")
    page.wait_for_selector("text=Record was successfully created.")
    assert "All topics" in page.inner_text("table.model-list")

    dispatcher = start_dispatcher(database_url, DISPATCH_INTERVAL_SECONDS="0.3")
    try:
        agent = browser.new_context(viewport={"width": 1366, "height": 900})
        agent_page = agent.new_page()
        agent_page.set_default_timeout(10_000)
        sign_in(agent_page, live_server, "alex@example.com")
        agent_page.goto(f"{live_server.url}/admin/tickets/{ticket_uuid}")
        agent_page.click("#close-ticket")
        agent_page.wait_for_selector("#reopen-ticket")
        expected = "Thanks María García! Your Billing ticket is closed."
        closed_at = time.monotonic()
        while not sent_by_the_scheduler(db, expected):
            assert time.monotonic() - closed_at < HANG_SECONDS, "the scheduler never sent the flow's message"
            time.sleep(0.3)
        agent_page.reload()
        message = agent_page.locator(".msg-out", has_text=expected)
        assert "Flow" in message.inner_text()
        assert message.locator(".msg-status").inner_text() == "sent"
        agent.close()
    finally:
        output = stop(dispatcher)
    assert dispatcher.returncode == 0, output

    page.goto(f"{live_server.url}/admin/deliveries/")
    page.click("#status-filter [data-status=sent]")
    row = page.locator("table.model-list tbody tr")
    assert row.count() == 1
    assert row.locator(".start-status").inner_text() == "sent"
    assert "María García" in row.inner_text() and "Satisfaction" in row.inner_text()
    assert db.session.execute(select(FlowStart.status)).scalar_one() == "sent"
    assert errors == [], "\n".join(errors)
