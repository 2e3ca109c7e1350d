"""Auto-assignment: fairness, capacity, availability, deactivated agents, concurrency, the backlog."""

import threading

import pytest
from sqlalchemy import select, update

from tests.factories import make_contact, make_ticket
from ticketer import jobs
from ticketer.errors import PermissionDenied, ValidationError
from ticketer.extensions import db as _db
from ticketer.models import Ticket, TicketEvent, User
from ticketer.services import assignment
from ticketer.services import tickets as ticket_service
from ticketer.services import topics as topic_service

Kind = TicketEvent.Kind


def topic_with_pool(db, pool, *, strategy="round_robin", capacity=10, name="Billing"):
    topic = topic_service.get_or_create_topic(name)
    assignment.configure(topic.id, enabled=True, strategy=strategy, capacity=capacity, pool=pool, by=None)
    db.session.commit()
    return topic.id


def assignees(db, tickets):
    ids = [t.id for t in tickets]
    rows = dict(db.session.execute(select(Ticket.id, Ticket.assignee_id).where(Ticket.id.in_(ids))).all())
    return [rows[i] for i in ids]


def open_tickets(n, topic="Billing"):
    return [make_ticket(topic=topic) for _ in range(n)]


def test_round_robin_goes_around_the_pool_in_order(db, make_user):
    a, b, c = (make_user("agent") for _ in range(3))
    topic_with_pool(db, [c, a, b])
    tickets = open_tickets(7)
    db.session.commit()
    assert assignees(db, tickets) == [a, b, c, a, b, c, a]
    event = db.session.execute(
        select(TicketEvent).where(TicketEvent.ticket_id == tickets[0].id, TicketEvent.kind == Kind.ASSIGNED)
    ).scalar_one()
    assert event.assignee_id == a
    assert event.created_by_id is None
    assert event.note == "Assigned automatically (round robin)"


def test_round_robin_resumes_after_the_last_assigned_across_transactions(db, make_user):
    a, b = make_user("agent"), make_user("agent")
    topic_with_pool(db, [a, b])
    first = open_tickets(1)
    db.session.commit()
    second = open_tickets(1)
    db.session.commit()
    assert assignees(db, first + second) == [a, b]


def test_fewest_open_picks_the_least_loaded_agent(db, make_user):
    a, b, c = (make_user("agent") for _ in range(3))
    for _ in range(2):
        make_ticket(topic="Other", assignee_id=a)
    make_ticket(topic="Other", assignee_id=b)
    topic_with_pool(db, [a, b, c], strategy="fewest_open")
    tickets = open_tickets(4)
    db.session.commit()
    # loads a=2, b=1, c=0 -> c (0->1), then b and c tie at 1: b comes next in the rotation after c.
    assert assignees(db, tickets) == [c, b, c, a]
    assert (
        "fewest open tickets"
        in db.session.execute(
            select(TicketEvent.note).where(TicketEvent.ticket_id == tickets[0].id, TicketEvent.kind == Kind.ASSIGNED)
        ).scalar_one()
    )


def test_capacity_is_never_exceeded_and_the_rest_waits_unassigned(db, make_user):
    a, b = make_user("agent"), make_user("agent")
    make_ticket(topic="Elsewhere", assignee_id=a)  # open tickets in any topic count
    topic_with_pool(db, [a, b], capacity=2)
    tickets = open_tickets(5)
    db.session.commit()
    assert assignees(db, tickets) == [a, b, b, None, None]


def test_unavailable_agents_get_nothing_until_they_come_back(db, make_user):
    a, b = make_user("agent"), make_user("agent")
    topic_with_pool(db, [a, b], capacity=5)
    assert assignment.set_available(a, False, by=db.session.get(User, a)) is True
    db.session.commit()
    tickets = open_tickets(3)
    db.session.commit()
    assert assignees(db, tickets) == [b, b, b]
    assert not assignment.is_available(a)
    # b is full at capacity 3: the next ones wait, then go to a when a comes back online
    _db.session.execute(update(assignment.AutoAssignment).values(capacity=3))
    waiting = open_tickets(2)
    db.session.commit()
    assert assignees(db, waiting) == [None, None]
    assignment.set_available(a, True, by=db.session.get(User, a))
    db.session.commit()
    assert assignees(db, waiting) == [a, a]


def test_only_yourself_unless_supervisor(db, make_user):
    a, b, boss = make_user("agent"), make_user("agent"), make_user("supervisor")
    with pytest.raises(PermissionDenied):
        assignment.set_available(b, False, by=db.session.get(User, a))
    assert assignment.set_available(b, False, by=db.session.get(User, boss)) is True
    viewer = make_user("viewer")
    with pytest.raises(ValidationError):
        assignment.set_available(viewer, False, by=db.session.get(User, viewer))


def test_deactivated_and_non_taking_roles_never_get_tickets(db, make_user):
    a, b = make_user("agent"), make_user("agent")
    topic_with_pool(db, [a, b])
    db.session.get(User, a).active = False
    db.session.commit()
    tickets = open_tickets(3)
    db.session.commit()
    assert assignees(db, tickets) == [b, b, b]
    db.session.get(User, b).role = "viewer"
    db.session.commit()
    assert assignees(db, open_tickets(1)) == [None]


def test_pool_must_hold_people_who_take_tickets(db, make_user):
    viewer = make_user("viewer")
    topic = topic_service.get_or_create_topic("Billing")
    with pytest.raises(ValidationError) as error:
        assignment.configure(topic.id, enabled=True, strategy="round_robin", capacity=3, pool=[viewer], by=None)
    assert "pool" in error.value.fields
    with pytest.raises(ValidationError):
        assignment.configure(topic.id, enabled=True, strategy="random", capacity=3, pool=[], by=None)
    with pytest.raises(ValidationError):
        assignment.configure(topic.id, enabled=True, strategy="round_robin", capacity=0, pool=[], by=None)
    agent = make_user("agent")
    with pytest.raises(PermissionDenied):
        assignment.configure(
            topic.id, enabled=False, strategy="round_robin", capacity=3, pool=[], by=db.session.get(User, agent)
        )


def test_topics_without_auto_assignment_and_explicit_assignees_are_left_alone(db, make_user):
    a, b = make_user("agent"), make_user("agent")
    topic_with_pool(db, [a])
    other = make_ticket(topic="Not pooled")
    chosen = make_ticket(topic="Billing", assignee_id=b)
    db.session.commit()
    assert assignees(db, [other, chosen]) == [None, b]


def test_moving_a_ticket_into_an_auto_topic_assigns_it(db, make_user):
    a = make_user("agent")
    topic_id = topic_with_pool(db, [a])
    ticket = make_ticket(topic="Somewhere")
    ticket_service.change_topic(ticket.id, topic_id, by=None)
    db.session.commit()
    assert assignees(db, [ticket]) == [a]


def test_backlog_job_hands_out_oldest_first_as_agents_free_up(db, make_user):
    a = make_user("agent")
    topic = topic_service.get_or_create_topic("Billing")
    old = [make_ticket(topic="Billing") for _ in range(3)]  # before auto-assignment was on
    db.session.commit()
    assignment.configure(topic.id, enabled=True, strategy="round_robin", capacity=1, pool=[a], by=None)
    db.session.commit()
    assert assignees(db, old) == [a, None, None]  # turning it on hands out what fits
    ticket_service.close(old[0].id, by=None)
    db.session.commit()
    assert jobs.hand_out_backlog() == 1
    assert assignees(db, old) == [a, a, None]
    assert jobs.hand_out_backlog() == 0


def test_concurrent_opens_do_not_overfill_an_agent(app, db, make_user):
    a = make_user("agent")
    b = make_user("agent")
    topic_with_pool(db, [a, b], capacity=3, strategy="fewest_open")
    contact_ids = [make_contact().id for _ in range(12)]
    db.session.commit()
    db.session.remove()
    barrier = threading.Barrier(len(contact_ids))
    errors = []

    def open_one(contact_id):
        with app.app_context():
            try:
                barrier.wait()
                ticket_service.open_ticket(contact_id=contact_id, topic_name="Billing", body="hi")
                _db.session.commit()
            except Exception as error:  # pragma: no cover - reported below
                errors.append(error)
            finally:
                _db.session.remove()

    threads = [threading.Thread(target=open_one, args=(cid,)) for cid in contact_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    rows = db.session.execute(select(Ticket.assignee_id)).scalars().all()
    assert len(rows) == 12
    assert rows.count(a) == 3 and rows.count(b) == 3 and rows.count(None) == 6


def test_deactivating_someone_sends_their_tickets_back_to_the_pool(db, make_user):
    from ticketer.services import users as user_service

    admin = db.session.get(User, make_user("admin"))
    a, b = make_user("agent"), make_user("agent")
    topic_with_pool(db, [a, b], capacity=5)
    tickets = open_tickets(4)
    db.session.commit()
    assert assignees(db, tickets) == [a, b, a, b]
    assert user_service.deactivate(a, by=admin) == 2
    db.session.commit()
    assert assignees(db, tickets) == [None, b, None, b]
    assert jobs.hand_out_backlog() == 2
    assert assignees(db, tickets) == [b, b, b, b]
    assert assignees(db, open_tickets(2)) == [b, None]  # b is at capacity; a never comes back


def test_folder_counts_follow_automatic_assignments(db, make_user):
    from ticketer import ticket_lists

    a = make_user("agent")
    topic_with_pool(db, [a], capacity=2)
    open_tickets(3)
    db.session.commit()
    counts = ticket_lists.folder_counts(db.session.get(User, a))
    assert counts["mine"]["open"] == 2 and counts["unassigned"]["open"] == 1 and counts["all"]["open"] == 3
