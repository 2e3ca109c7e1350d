"""A small desk with hand-computed figures, built at known instants."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from tests.factories import make_contact, make_ticket
from ticketer.clock import frozen
from ticketer.models import User
from ticketer.services import tickets as ticket_service

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # a Monday; the "now" of the known desk is T0 + 2 days


@pytest.fixture
def workspace_tz(app, monkeypatch):
    """set(name): the workspace time zone for this test."""

    def set_zone(name: str) -> None:
        monkeypatch.setitem(app.config, "WORKSPACE_TIMEZONE", name)

    return set_zone


@dataclass
class KnownDesk:
    agent_a: int
    agent_b: int
    billing: int
    delivery: int
    now: datetime


def build_known_desk(db, make_user) -> KnownDesk:
    """Tickets with known first-reply and resolution seconds (see test_figures.py for the sums).

    (assignee, topic, first reply after s, closed after s):
      1 A Billing   60   600      5 B Billing   100  900
      2 A Billing  120  1200      6 B Delivery    -  100
      3 A Delivery 300  3000      7 -  Billing    -    -  (open)
      4 A Delivery  30     -  (open)
      8 A Billing   10 99999  (40 days earlier: outside a 30-day period)
    """
    a = make_user("agent", name="Ana Agent")
    b = make_user("agent", name="Beto Agent")
    agent_a, agent_b = db.session.get(User, a), db.session.get(User, b)
    plan = [
        (agent_a, "Billing", 60, 600),
        (agent_a, "Billing", 120, 1200),
        (agent_a, "Delivery", 300, 3000),
        (agent_a, "Delivery", 30, None),
        (agent_b, "Billing", 100, 900),
        (agent_b, "Delivery", None, 100),
        (None, "Billing", None, None),
    ]
    topics = {}
    for i, (agent, topic, reply_after, close_after) in enumerate(plan):
        opened = T0 + timedelta(hours=i)
        _ticket_at(opened, agent, topic, reply_after, close_after, topics)
    _ticket_at(T0 - timedelta(days=40), agent_a, "Billing", 10, 99999, topics)
    db.session.commit()
    return KnownDesk(a, b, topics["Billing"], topics["Delivery"], T0 + timedelta(days=2))


def _ticket_at(opened, agent, topic, reply_after, close_after, topics):
    with frozen(opened):
        ticket = make_ticket(make_contact(name=f"{topic} person"), topic=topic, assignee_id=agent.id if agent else None)
    topics[topic] = ticket.topic_id
    if reply_after is not None:
        with frozen(opened + timedelta(seconds=reply_after)):
            ticket_service.reply(ticket.id, "On it", by=agent)
    if close_after is not None:
        with frozen(opened + timedelta(seconds=close_after)):
            ticket_service.close(ticket.id, by=agent)
    return ticket


@pytest.fixture
def known_desk(db, make_user) -> KnownDesk:
    return build_known_desk(db, make_user)
