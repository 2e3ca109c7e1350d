"""In real Chromium: an admin invites an agent; the agent follows the mailed link, sets a password, and is in."""

import pytest
from sqlalchemy import select

from tests.conftest import sign_in
from ticketer.extensions import db as _db
from ticketer.models import User


@pytest.fixture
def live_public_url(live_app, live_server):
    """Mailed links point at the live server, as PUBLIC_URL does in a deployment."""
    previous = live_app.config["PUBLIC_URL"]
    live_app.config["PUBLIC_URL"] = live_server.url
    yield live_server.url
    live_app.config["PUBLIC_URL"] = previous


def test_admin_invites_an_agent_who_accepts_from_the_mail(
    app, browser, page, live_app, live_server, live_public_url, make_user, smtp_server
):
    make_user("admin", email="boss@example.com", name="Boss Admin")
    smtp_server.use_for(live_app)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    sign_in(page, live_server, "boss@example.com")
    page.goto(f"{live_server.url}/admin/invitations/")
    for email, role in (("ana@example.com", "agent"), ("val@example.com\nzoe@example.com", "viewer")):
        page.click("#create-record")
        page.fill("#emails", email)
        page.select_option("#role", role)
        page.click("input[type=submit][value=Save]")
        page.wait_for_selector(f"text=Invitation sent to {email.split()[-1]}.")
    assert "val@example.com" in page.inner_text("table.model-list")

    # Zoe's invitation is cancelled with the bulk action (a button: the CSP refuses Flask-Admin's dropdown).
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("table.model-list tbody tr", has_text="zoe@example.com").locator("input.action-checkbox").check()
    page.click(".model-action[data-action=cancel]")
    page.wait_for_selector("text=Invitation cancelled: its link no longer works.")
    assert "zoe@example.com" not in page.inner_text("table.model-list")

    mails = {m["To"]: m for m in smtp_server.wait_for(3)}
    (link,) = smtp_server.links(mails["ana@example.com"])
    assert link.startswith(f"{live_server.url}/invitations/")

    agent_context = browser.new_context()
    try:
        agent = agent_context.new_page()
        agent.set_default_timeout(10_000)
        agent.on("pageerror", lambda error: errors.append(str(error)))
        agent.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        agent.goto(link)
        assert "ana@example.com" in agent.inner_text("form")
        agent.fill("input[name=name]", "Ana Agent")
        agent.fill("input[name=password]", "short")
        agent.fill("input[name=confirm]", "short")
        agent.click("button[type=submit]")
        agent.wait_for_selector("text=Use at least 10 characters.")
        agent.fill("input[name=password]", "ana-secret-password")
        agent.fill("input[name=confirm]", "ana-secret-password")
        agent.click("button[type=submit]")
        agent.wait_for_url(f"{live_server.url}/admin/tickets/")
        assert "Welcome to Ticketer, Ana Agent." in agent.inner_text("body")
        assert "Ana Agent" in agent.inner_text("#user-menu")
        agent.goto(link)
        assert "already been used" in agent.inner_text("#link-problem")
    finally:
        agent_context.close()

    with app.app_context():
        ana = _db.session.execute(select(User).where(User.email == "ana@example.com")).scalar_one()
        assert (ana.role, ana.name, ana.active) == ("agent", "Ana Agent", True)
    page.goto(f"{live_server.url}/admin/invitations/")
    assert "ana@example.com" not in page.inner_text("table.model-list")
    page.goto(f"{live_server.url}/admin/people/")
    row = page.locator("table.model-list tbody tr", has_text="Ana Agent")
    row.locator("button.deactivate").click()  # the row's button posts the deactivate action
    page.wait_for_selector("text=Deactivated: they are signed out and can't sign in.")
    assert "deactivated" in page.locator("table.model-list tbody tr", has_text="Ana Agent").inner_text()
    # The 400 (short password) and 410 (used link) pages are expected; nothing else may fail (e.g. CSP).
    expected = ("status of 400 (BAD REQUEST)", "status of 410 (GONE)")
    assert [e for e in errors if not e.endswith(expected)] == []
