"""apply_action(action, ids, by): one place decides single versus bulk, for the API and the panel."""

import pytest
from sqlalchemy import func, select

from tests.factories import make_contact, make_ticket
from ticketer.errors import Conflict, PermissionDenied, ValidationError
from ticketer.models import Ticket, TicketEvent, User
from ticketer.services import tickets as ticket_service
from ticketer.services import topics as topic_service

Kind = TicketEvent.Kind


def _user(db, make_user, role: str) -> User:
    return db.session.get(User, make_user(role))


def _events(db, ticket_ids, kind) -> list[tuple]:
    return list(
        db.session.execute(
            select(TicketEvent.ticket_id, TicketEvent.note)
            .where(TicketEvent.ticket_id.in_(ticket_ids), TicketEvent.kind == kind)
            .order_by(TicketEvent.ticket_id)
        )
    )


def test_one_ticket_follows_the_single_ticket_rules(db, make_user):
    agent = _user(db, make_user, "agent")
    ticket = make_ticket(assignee_id=agent.id)
    # Assigning to whoever has it, with a note: the single-ticket rule adds the note.
    result = ticket_service.apply_action("assign", [ticket.id], by=agent, assignee_id=agent.id, note="Still mine")
    assert result == ticket_service.BulkResult(changed=1, skipped=0)
    assert _events(db, [ticket.id], Kind.NOTE_ADDED) == [(ticket.id, "Still mine")]
    assert ticket_service.apply_action("close", [ticket.id], by=agent) == ticket_service.BulkResult(1, 0)
    assert ticket_service.apply_action("close", [ticket.id], by=agent) == ticket_service.BulkResult(0, 1)
    make_ticket(ticket.contact)  # the contact has another open ticket now
    with pytest.raises(Conflict):
        ticket_service.apply_action("reopen", [ticket.id], by=agent)


def test_many_tickets_need_bulk_rights_and_change_nothing_without(db, make_user):
    agent = _user(db, make_user, "agent")
    ids = [make_ticket().id for _ in range(3)]
    for action in ticket_service.ACTIONS:
        with pytest.raises(PermissionDenied):
            ticket_service.apply_action(action, ids, by=agent, note="x", topic_id=1)
    assert db.session.execute(select(func.count()).where(Ticket.id.in_(ids), Ticket.status == "open")).scalar() == 3
    viewer = _user(db, make_user, "viewer")
    with pytest.raises(PermissionDenied):
        ticket_service.apply_action("close", ids[:1], by=viewer)


def test_every_action_on_many_tickets(db, make_user):
    supervisor = _user(db, make_user, "supervisor")
    agent = _user(db, make_user, "agent")
    ids = [make_ticket(make_contact(f"Person {n}")).id for n in range(4)]
    apply = ticket_service.apply_action
    assert apply("assign", ids, by=supervisor, assignee_id=agent.id, note="Yours") == ticket_service.BulkResult(4, 0)
    assert apply("assign", ids[:2], by=supervisor, assignee_id=None) == ticket_service.BulkResult(2, 0)
    assert apply("add_note", ids, by=supervisor, note="Called back") == ticket_service.BulkResult(4, 0)
    assert _events(db, ids, Kind.NOTE_ADDED) == [(i, "Called back") for i in ids]
    sales = topic_service.get_or_create_topic("Sales")
    assert apply("change_topic", ids, by=supervisor, topic_id=sales.id) == ticket_service.BulkResult(4, 0)
    assert apply("close", ids[:3], by=supervisor) == ticket_service.BulkResult(3, 0)
    assert apply("reopen", ids, by=supervisor) == ticket_service.BulkResult(3, 1)
    statuses = db.session.execute(select(Ticket.status, Ticket.topic_id).where(Ticket.id.in_(ids))).all()
    assert set(statuses) == {("open", sales.id)}


def test_the_action_and_its_values_are_checked(db, make_user):
    supervisor = _user(db, make_user, "supervisor")
    ids = [make_ticket().id, make_ticket().id]
    cases = [
        (("explode", ids), {}, "action"),
        (("add_note", ids), {"note": "  "}, "note"),
        (("add_note", ids[:1]), {}, "note"),
        (("change_topic", ids), {}, "topic"),
        (("change_topic", ids[:1]), {"topic_id": 10**9}, "topic"),
        (("assign", ids), {"assignee_id": 10**9}, "assignee"),
    ]
    for args, values, field in cases:
        with pytest.raises(ValidationError) as raised:
            ticket_service.apply_action(*args, by=supervisor, **values)
        assert field in raised.value.fields, (args, values, raised.value.fields)
    with pytest.raises(ValidationError):
        ticket_service.apply_action("close", [], by=supervisor)


def test_a_note_on_many_tickets_is_two_statements_whatever_their_number(db, make_user, count_queries):
    supervisor = _user(db, make_user, "supervisor")
    few = [make_ticket().id for _ in range(2)]
    many = [make_ticket().id for _ in range(40)]
    db.session.commit()
    assert supervisor.role == "supervisor"  # reloaded after the commit, before counting
    with count_queries() as for_few:
        ticket_service.apply_action("add_note", few, by=supervisor, note="Hello")
    with count_queries() as for_many:
        ticket_service.apply_action("add_note", many, by=supervisor, note="Hello")
    assert len(for_many) == len(for_few)
