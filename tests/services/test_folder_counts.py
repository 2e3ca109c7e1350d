"""The maintained folder counts stay exactly equal to COUNT(*) through any sequence of changes."""

import random

from tests.factories import make_contact, make_ticket
from ticketer.errors import TicketerError
from ticketer.models import Ticket, User
from ticketer.services import folder_counts
from ticketer.services import tickets as ticket_service
from ticketer.ticket_lists import folder_counts as folder_badges


def test_counts_follow_a_random_sequence_of_single_and_bulk_changes(db, make_user):
    rng = random.Random(8)
    supervisor = db.session.get(User, make_user("supervisor"))
    agents = [make_user("agent") for _ in range(3)]
    contacts = [make_contact(f"Person {i}") for i in range(12)]
    db.session.commit()
    assert folder_counts.stored_counts() == folder_counts.counted_from_tickets() == {}

    def ticket_ids() -> list[int]:
        return list(db.session.scalars(db.select(Ticket.id)))

    steps = [
        lambda ids: make_ticket(rng.choice(contacts), assignee_id=rng.choice([None, *agents])),
        lambda ids: ticket_service.assign(rng.choice(ids), rng.choice([None, *agents]), by=supervisor, note="n"),
        lambda ids: ticket_service.close(rng.choice(ids), by=supervisor),
        lambda ids: ticket_service.reopen(rng.choice(ids), by=supervisor),
        lambda ids: ticket_service.add_note(rng.choice(ids), "just a note", by=supervisor),
        lambda ids: ticket_service.assign_tickets(rng.sample(ids, min(5, len(ids))), rng.choice(agents), by=supervisor),
        lambda ids: ticket_service.assign_tickets(ids, None, by=supervisor, note="back to the pool"),
        lambda ids: ticket_service.close_tickets(rng.sample(ids, min(6, len(ids))), by=supervisor),
        lambda ids: ticket_service.reopen_tickets(ids, by=supervisor),
        lambda ids: ticket_service.unassign_tickets_of(rng.choice(agents), by=supervisor),
    ]
    make_ticket(contacts[0])
    for step in range(80):
        action = steps[0] if step < 8 else rng.choice(steps)
        try:
            action(ticket_ids())
        except TicketerError:
            db.session.rollback()
        if step % 3 == 0:
            db.session.commit()
        assert folder_counts.stored_counts() == folder_counts.counted_from_tickets(), f"after step {step}"
    db.session.commit()
    counted = folder_counts.counted_from_tickets()
    assert sum(counted.values()) == len(ticket_ids()) >= 8
    assert {status for _, status in counted} == {"open", "closed"}


def test_badges_read_the_counts_and_rebuild_repairs_them(db, make_user):
    me = db.session.get(User, make_user("agent"))
    make_ticket(assignee_id=me.id)
    make_ticket()
    closed = make_ticket(assignee_id=me.id)
    ticket_service.close(closed.id, by=None)
    db.session.commit()
    expected = {
        "mine": {"open": 1, "closed": 1},
        "unassigned": {"open": 1, "closed": 0},
        "all": {"open": 2, "closed": 1},
    }
    assert folder_badges(me) == expected
    db.session.execute(db.delete(folder_counts.TicketFolderCount))
    assert folder_badges(me)["all"] == {"open": 0, "closed": 0}
    folder_counts.rebuild_folder_counts()
    db.session.commit()
    assert folder_badges(me) == expected


def test_unassigning_someones_tickets_moves_them_to_unassigned(db, make_user):
    admin = db.session.get(User, make_user("admin"))
    agent_id = make_user("agent")
    for _ in range(3):
        make_ticket(assignee_id=agent_id)
    closed = make_ticket(assignee_id=agent_id)
    ticket_service.close(closed.id, by=admin)
    db.session.commit()
    assert folder_counts.stored_counts() == {(agent_id, "open"): 3, (agent_id, "closed"): 1}
    ticket_service.unassign_tickets_of(agent_id, by=admin)
    db.session.commit()
    assert folder_counts.stored_counts() == folder_counts.counted_from_tickets()
    assert folder_counts.stored_counts() == {(0, "open"): 3, (agent_id, "closed"): 1}
