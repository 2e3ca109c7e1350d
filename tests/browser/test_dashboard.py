"""The dashboard in real Chromium: a month of a small desk, every chart drawn, no CSP or script errors,
and the README screenshot (docs/img/dashboard.png)."""

import os
import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.conftest import sign_in
from tests.factories import make_contact, make_ticket
from ticketer.clock import frozen
from ticketer.models import User
from ticketer.services import sla as sla_service
from ticketer.services import tickets as ticket_service

ROOT = Path(__file__).resolve().parents[2]
# The README's screenshot is refreshed on request only, so a test run leaves the tree clean.
SCREENSHOT = ROOT / ("docs/img" if os.environ.get("UPDATE_SCREENSHOTS") else "test-artifacts") / "dashboard.png"
NOW = datetime(2026, 3, 20, 15, 0, tzinfo=UTC)
TOPICS = ["Billing", "Delivery", "Returns", "Account", "Other"]


def build_month(db, make_user) -> dict[str, int]:
    """30 days of tickets: a weekly rhythm, replies within minutes to hours, most closed."""
    rng = random.Random(7)
    names = ["Alex Agent", "Bea Agent", "Carla Supervisor", "Dario Agent", "Eva Agent"]
    agents = [db.session.get(User, make_user("agent", name=n)) for n in names]
    first = make_ticket(make_contact(name="First"), topic=TOPICS[0])
    for minutes, topic in ((30, "Billing"), (120, "Delivery")):
        topic_id = ticket_service.topic_service.get_or_create_topic(topic).id
        sla_service.configure_target(topic_id, first_reply_minutes=minutes, resolution_minutes=minutes * 24, by=None)
    ticket_service.close(first.id, by=None)
    start = NOW - timedelta(days=29)
    n = 0
    for day in range(30):
        base = datetime(start.year, start.month, start.day, 8, tzinfo=UTC) + timedelta(days=day)
        busy = 2 + (3 if base.weekday() < 5 else 0) + rng.randint(0, 2)
        for _ in range(busy):
            n += 1
            opened = base + timedelta(minutes=rng.randint(0, 600))
            agent = rng.choice(agents + [None])
            with frozen(opened):
                ticket = make_ticket(
                    make_contact(name=f"Contact {n}"),
                    topic=rng.choices(TOPICS, weights=[5, 4, 2, 2, 1])[0],
                    assignee_id=agent.id if agent else None,
                )
            if agent is None or opened > NOW:
                continue
            replied = opened + timedelta(minutes=rng.choice([3, 8, 15, 25, 40, 90, 180]))
            if replied < NOW:
                with frozen(replied):
                    ticket_service.reply(ticket.id, "Hi! Looking into it.", by=agent)
            closed = replied + timedelta(minutes=rng.randint(20, 60 * 30))
            if closed < NOW and rng.random() < 0.85:
                with frozen(closed):
                    ticket_service.close(ticket.id, by=agent)
        sla_service.mark_breaches(min(NOW, base + timedelta(hours=16)))
    db.session.commit()
    return {"agent_id": agents[0].id}


def test_dashboard_draws_every_chart(db, page, live_server, make_user):
    make_user("supervisor", email="sam@example.com", name="Sam Supervisor")
    with frozen(NOW - timedelta(days=29, hours=10)):
        ids = build_month(db, make_user)
    db.session.remove()  # hold no transaction while the live server reads

    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    with frozen(NOW):
        sign_in(page, live_server, "sam@example.com")
        page.goto(f"{live_server.url}/admin/")
        page.wait_for_selector("#chart-daily")
        assert page.url.endswith("/admin/dashboard/")

        assert page.locator("#chart-daily rect.bar-opened").count() == 30
        assert page.locator("#chart-daily rect.bar-closed").count() == 30
        box = page.locator("#chart-daily").bounding_box()
        assert box["width"] > 600 and box["height"] > 100
        # bars are drawn with real heights, and the CSS (served by the app) colours them
        heights = page.eval_on_selector_all("#chart-daily rect.bar-opened", "els => els.map(e => e.getBBox().height)")
        assert sum(1 for h in heights if h > 0) >= 25
        fill = page.eval_on_selector("#chart-daily rect.bar-opened", "e => getComputedStyle(e).fill")
        assert fill == "rgb(78, 121, 167)"
        page.wait_for_selector("#medians-loaded")  # the median panel arrives after the first paint
        assert re.fullmatch(r"\d+[smhd]( \d+[mh])?", page.inner_text("#tile-first-reply").strip())
        assert re.fullmatch(r"\d+[smhd]( \d+[mh])?", page.inner_text("#tile-resolution").strip())
        for chart in ("#chart-open-topic", "#chart-open-assignee", "#chart-median-agent", "#chart-median-topic"):
            assert page.locator(f"{chart} rect.bar").count() > 0, chart
        assert "Billing" in page.text_content("#chart-open-topic")
        assert "Alex Agent" in page.text_content("#chart-median-agent")
        assert page.locator("#chart-sla rect.bar-first_reply").count() == 30
        sla_heights = page.eval_on_selector_all("#chart-sla rect.bar", "els => els.map(e => e.getBBox().height)")
        assert any(h > 0 for h in sla_heights)
        assert int(page.inner_text("#tile-opened").replace(",", "")) > 100

        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)

        page.click("#period-7")
        page.wait_for_url("**/admin/dashboard/?days=7")
        assert page.locator("#chart-daily rect.bar-opened").count() == 7

        page.click(f"#agent-table a[href*='/agents/{ids['agent_id']}']")
        page.wait_for_selector("#chart-agent-daily")
        assert "Alex Agent" in page.inner_text("h1")
        assert page.locator("#chart-agent-daily rect.bar-closed").count() == 7
        assert int(page.inner_text("#agent-closed-week")) >= 0
    assert errors == []
