"""What a ticket change sets off (ticketer/services/effects.py): one table, one order, whatever is imported."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.conftest import throwaway_database
from tests.factories import make_ticket
from ticketer.clock import utcnow
from ticketer.models import Ticket, TicketEvent
from ticketer.models.reports import TicketDailyCount
from ticketer.services import assignment, effects, folder_counts
from ticketer.services import tickets as ticket_service
from ticketer.services.ticket_changes import Change

Kind = TicketEvent.Kind

ROOT = Path(__file__).resolve().parents[2]

# Opens one ticket in an auto-assigned topic, in a fresh process that first imports `first` (if any),
# and prints where the daily "opened" count and the folder count went.
_OPEN_ONE = """
import importlib, json, sys
if sys.argv[2]:
    importlib.import_module(sys.argv[2])
from app import create_app
from ticketer.config import TestConfig
from ticketer.extensions import db
from sqlalchemy import select, func
app = create_app(TestConfig(sys.argv[1]))
with app.app_context():
    db.create_all()
    from ticketer.models.reports import TicketDailyCount as C
    from ticketer.models.folder_counts import TicketFolderCount as F
    from ticketer.services import assignment, contacts, tickets, topics, users
    agent = users.create_user("agent@example.com", role="agent", password="correct-horse-battery", name="A")
    topic = topics.get_or_create_topic("Billing")
    assignment.configure(topic.id, enabled=True, strategy="round_robin", capacity=5, pool=[agent.id], by=None)
    contact = contacts.upsert_contact(urns=["tel:+593991234567"], name="Ana")
    ticket, _ = tickets.open_ticket(contact_id=contact.id, topic_name="Billing", body="help")
    db.session.commit()
    daily = db.session.execute(select(C.assignee_id, func.sum(C.opened)).group_by(C.assignee_id)).all()
    folders = db.session.execute(select(F.assignee_key, F.status, F.tickets).where(F.tickets != 0)).all()
    print(json.dumps({
        "assignee_is_agent": ticket.assignee_id == agent.id,
        "daily_opened": sorted(["agent" if a == agent.id else a, int(n)] for a, n in daily if n),
        "folders": sorted(["agent" if k == agent.id else k, s, n] for k, s, n in folders),
    }))
"""


def _open_one_after_importing(first: str, tmp_path) -> dict:
    with throwaway_database(tmp_path / f"{first or 'plain'}.db", prefix="ticketer_effects") as url:
        result = subprocess.run(
            [sys.executable, "-c", _OPEN_ONE, url, first],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_an_auto_assigned_ticket_counts_the_same_whatever_is_imported_first(tmp_path):
    plain = _open_one_after_importing("", tmp_path)
    # The decision (effects.py, docs/architecture.md): the ticket never was unassigned in any
    # committed state, so its "opened" counts under the agent auto-assignment gave it.
    assert plain == {"assignee_is_agent": True, "daily_opened": [["agent", 1]], "folders": [["agent", "open", 1]]}
    for first in ("ticketer.services.assignment", "ticketer.services.sla", "ticketer.services.flows"):
        assert _open_one_after_importing(first, tmp_path) == plain, first


def test_every_event_kind_has_its_row_and_auto_assignment_never_loops():
    assert set(effects.EFFECTS) == set(Kind)
    assert effects.assign_automatically not in effects.ON_ASSIGNED
    assert not hasattr(ticket_service, "after_change_hooks")


def test_a_change_runs_only_its_own_row(db):
    with pytest.raises(ValueError):
        effects.run(effects.ON_OPENED, Change(Kind.CLOSED, [1], None, utcnow()))


def _daily(db, column):
    c = TicketDailyCount
    rows = db.session.execute(select(c.assignee_id, func.sum(getattr(c, column))).group_by(c.assignee_id)).all()
    return {assignee: int(n) for assignee, n in rows if n}


def test_a_reopened_ticket_that_auto_assignment_takes_leaves_closed_from_unassigned(db, make_user):
    agent = make_user("agent")
    ticket = make_ticket(topic="Billing")
    ticket_service.close(ticket.id, by=None)
    topic_id = ticket.topic_id
    assignment.configure(topic_id, enabled=True, strategy="round_robin", capacity=5, pool=[agent], by=None)
    db.session.commit()

    assert ticket_service.reopen(ticket.id, by=None)
    db.session.commit()

    assert db.session.get(Ticket, ticket.id).assignee_id == agent
    assert folder_counts.stored_counts() == folder_counts.counted_from_tickets() == {(agent, "open"): 1}
    assert _daily(db, "reopened") == {agent: 1}
    assert _daily(db, "closed") == {None: 1}
