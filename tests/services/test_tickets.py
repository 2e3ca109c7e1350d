"""Ticket rules from PRODUCT.md, tested on the services directly."""

import threading

import pytest
from sqlalchemy import func, select

from tests.factories import make_contact, make_ticket
from ticketer.errors import Conflict, PermissionDenied, ValidationError
from ticketer.models import Message, Ticket, TicketEvent, TicketStatus, User
from ticketer.services import tickets as ticket_service

Kind = TicketEvent.Kind


def events(db, ticket_id):
    return [
        (e.kind, e.note)
        for e in db.session.execute(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)
        ).scalars()
    ]


def user(db, user_id) -> User:
    return db.session.get(User, user_id)


def test_open_ticket_records_opened_event_and_default_topic(db):
    ticket = make_ticket(body="Help please")
    db.session.commit()
    assert ticket.status == TicketStatus.OPEN
    assert ticket.topic.name == "General"
    assert events(db, ticket.id) == [(Kind.OPENED, None)]


def test_open_ticket_creates_unknown_topic_ignoring_case(db):
    first = make_ticket(topic="Billing")
    second = make_ticket(topic="  billing ")
    assert first.topic_id == second.topic_id
    assert first.topic.name == "Billing"


def test_body_expressions_are_evaluated(db):
    contact = make_contact(name="Ana", urn="tel:+593911111111", fields={"city": "Quito"})
    ticket, _ = ticket_service.open_ticket(
        contact_id=contact.id,
        topic_name="Delivery",
        body="Order @results.order (@results.order.category) for @contact.name at @contact.urn "
        "in @fields.city, topic @ticket.topic. Missing: [@results.nope][@fields.nope] mail bob@example.com",
        results={"order": {"value": "1234", "category": "Has Number"}},
    )
    assert ticket.body == (
        "Order 1234 (Has Number) for Ana at tel:+593911111111 in Quito, topic Delivery. "
        "Missing: [][] mail bob@example.com"
    )


def test_second_open_returns_the_open_ticket_with_the_body_as_a_note(db):
    contact = make_contact()
    first, created = ticket_service.open_ticket(contact_id=contact.id, body="first")
    again, created_again = ticket_service.open_ticket(contact_id=contact.id, body="second")
    assert created and not created_again
    assert again.id == first.id
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 1
    assert events(db, first.id) == [(Kind.OPENED, None), (Kind.NOTE_ADDED, "second")]


def test_close_twice_and_reopen_open_change_nothing(db, make_user):
    agent = user(db, make_user("agent"))
    ticket = make_ticket()
    assert ticket_service.reopen(ticket.id, by=agent) is False
    assert ticket_service.close(ticket.id, by=agent) is True
    closed_on = db.session.get(Ticket, ticket.id).closed_on
    assert ticket_service.close(ticket.id, by=agent) is False
    assert db.session.get(Ticket, ticket.id).closed_on == closed_on
    assert ticket_service.reopen(ticket.id, by=agent) is True
    assert ticket_service.reopen(ticket.id, by=agent) is False
    assert [k for k, _ in events(db, ticket.id)] == [Kind.OPENED, Kind.CLOSED, Kind.REOPENED]
    assert db.session.get(Ticket, ticket.id).closed_on is None


def test_reopen_refused_when_contact_has_another_open_ticket(db, make_user):
    agent = user(db, make_user("agent"))
    contact = make_contact()
    old = make_ticket(contact)
    ticket_service.close(old.id, by=agent)
    make_ticket(contact)
    with pytest.raises(Conflict):
        ticket_service.reopen(old.id, by=agent)


def test_assign_only_to_active_people_who_take_tickets(db, make_user):
    supervisor = user(db, make_user("supervisor"))
    viewer_id = make_user("viewer")
    inactive_id = make_user("agent")
    user(db, inactive_id).active = False
    ticket = make_ticket()
    for bad in (viewer_id, inactive_id, 999_999):
        with pytest.raises(ValidationError) as error:
            ticket_service.assign(ticket.id, bad, by=supervisor)
        assert "assignee" in error.value.fields
    assert events(db, ticket.id) == [(Kind.OPENED, None)]


def test_assign_with_note_then_unassign(db, make_user):
    agent_id = make_user("agent")
    supervisor = user(db, make_user("supervisor"))
    ticket = make_ticket()
    assert ticket_service.assign(ticket.id, agent_id, by=supervisor, note="Yours, thanks") is True
    assert db.session.get(Ticket, ticket.id).assignee_id == agent_id
    assert ticket_service.assign(ticket.id, agent_id, by=supervisor) is False
    assert ticket_service.assign(ticket.id, None, by=supervisor) is True
    assert db.session.get(Ticket, ticket.id).assignee_id is None
    assert events(db, ticket.id) == [
        (Kind.OPENED, None),
        (Kind.ASSIGNED, "Yours, thanks"),
        (Kind.ASSIGNED, None),
    ]


def test_note_limit_is_10000_characters(db, make_user):
    agent = user(db, make_user("agent"))
    ticket = make_ticket()
    ticket_service.add_note(ticket.id, "x" * 10_000, by=agent)
    with pytest.raises(ValidationError) as error:
        ticket_service.add_note(ticket.id, "x" * 10_001, by=agent)
    assert error.value.fields == {"note": error.value.message}
    with pytest.raises(ValidationError):
        ticket_service.add_note(ticket.id, "   ", by=agent)
    assert [k for k, _ in events(db, ticket.id)] == [Kind.OPENED, Kind.NOTE_ADDED]


def test_change_topic_records_event_once(db, make_user):
    agent = user(db, make_user("agent"))
    ticket = make_ticket(topic="Billing")
    other = make_ticket(topic="Returns")
    assert ticket_service.change_topic(ticket.id, other.topic_id, by=agent) is True
    assert ticket_service.change_topic(ticket.id, other.topic_id, by=agent) is False
    assert db.session.get(Ticket, ticket.id).topic.name == "Returns"
    assert [k for k, _ in events(db, ticket.id)] == [Kind.OPENED, Kind.TOPIC_CHANGED]


def test_viewer_cannot_change_tickets(db, make_user):
    viewer = user(db, make_user("viewer"))
    ticket = make_ticket()
    with pytest.raises(PermissionDenied):
        ticket_service.close(ticket.id, by=viewer)
    with pytest.raises(PermissionDenied):
        ticket_service.add_note(ticket.id, "hi", by=viewer)


def test_agent_cannot_use_bulk_actions(db, make_user):
    agent = user(db, make_user("agent"))
    ticket = make_ticket()
    with pytest.raises(PermissionDenied):
        ticket_service.close_tickets([ticket.id], by=agent)


def test_reply_sets_first_reply_and_incoming_message_bumps_activity(db, make_user):
    agent = user(db, make_user("agent"))
    ticket = make_ticket()
    opened_activity = ticket.last_activity_on
    message = ticket_service.reply(ticket.id, "Hello!", by=agent)
    assert message.status == Message.Status.QUEUED and message.direction == "out"
    first_reply = db.session.get(Ticket, ticket.id).first_reply_on
    assert first_reply is not None and first_reply >= opened_activity
    ticket_service.reply(ticket.id, "Again", by=agent)
    assert db.session.get(Ticket, ticket.id).first_reply_on == first_reply
    incoming = ticket_service.receive_message(ticket.contact_id, "Thanks")
    assert incoming.ticket_id == ticket.id
    assert db.session.get(Ticket, ticket.id).last_activity_on == incoming.created_on


def test_reply_to_closed_ticket_is_refused(db, make_user):
    agent = user(db, make_user("agent"))
    ticket = make_ticket()
    ticket_service.close(ticket.id, by=agent)
    with pytest.raises(ValidationError):
        ticket_service.reply(ticket.id, "Hello?", by=agent)


def test_message_without_open_ticket_is_kept_unattached(db):
    ticket = make_ticket()
    ticket_service.close(ticket.id, by=None)
    message = ticket_service.receive_message(ticket.contact_id, "Hi again")
    assert message.ticket_id is None


def test_bulk_actions_are_set_based(db, make_user, count_queries):
    supervisor = user(db, make_user("supervisor"))
    agent_id = make_user("agent")
    tickets = [make_ticket() for _ in range(30)]
    ids = [t.id for t in tickets]
    ticket_service.close(ids[0], by=supervisor)
    db.session.commit()
    with count_queries() as queries:
        result = ticket_service.assign_tickets(ids, agent_id, by=supervisor, note="All yours")
    # get assignee, UPDATE ... RETURNING, INSERT ... SELECT, upsert of the folder counts: the same
    # for 30 tickets as for 3.
    assert len(queries) <= 5
    assert (result.changed, result.skipped) == (29, 1)
    assigned = db.session.scalar(
        select(func.count())
        .select_from(TicketEvent)
        .where(TicketEvent.kind == Kind.ASSIGNED, TicketEvent.note == "All yours")
    )
    assert assigned == 29
    result = ticket_service.close_tickets(ids, by=supervisor)
    assert (result.changed, result.skipped) == (29, 1)
    assert "29 tickets updated; 1 skipped" in result.message
    result = ticket_service.reopen_tickets(ids, by=supervisor)
    assert result.changed == 30
    assert db.session.scalar(select(func.count()).select_from(Ticket).where(Ticket.status == "open")) == 30


def test_bulk_reopen_keeps_one_open_ticket_per_contact(db, make_user):
    supervisor = user(db, make_user("supervisor"))
    contact = make_contact()
    first = make_ticket(contact)
    ticket_service.close(first.id, by=supervisor)
    second = make_ticket(contact)
    ticket_service.close(second.id, by=supervisor)
    result = ticket_service.reopen_tickets([first.id, second.id], by=supervisor)
    assert (result.changed, result.skipped) == (1, 1)
    assert db.session.get(Ticket, second.id).status == "open"
    assert db.session.get(Ticket, first.id).status == "closed"


def test_concurrent_opens_leave_one_open_ticket(app, db):
    contact_id = make_contact().id
    db.session.commit()  # and hold no transaction while the threads write
    barrier = threading.Barrier(12)
    results, errors = [], []

    def open_one(n: int) -> None:
        with app.app_context():
            try:
                barrier.wait()
                ticket, created = ticket_service.open_ticket(contact_id=contact_id, body=f"attempt {n}")
                db.session.commit()
                results.append((ticket.id, created))
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=open_one, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len({ticket_id for ticket_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Ticket).where(Ticket.contact_id == contact_id)) == 1
    notes = db.session.scalar(select(func.count()).select_from(TicketEvent).where(TicketEvent.kind == Kind.NOTE_ADDED))
    assert notes == 11
