"""Closing a ticket records its flow start in the same transaction; reopening cancels it."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from tests.factories import make_contact, make_ticket
from tests.flows.conftest import run_dispatcher
from ticketer.clock import frozen
from ticketer.models import Contact, Message, Ticket, User
from ticketer.models.flows import FlowStart
from ticketer.services import flows as flow_service
from ticketer.services import tickets as ticket_service

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def starts(db):
    return db.session.execute(select(FlowStart).order_by(FlowStart.id)).scalars().all()


def test_closing_records_a_start_with_the_trigger_delay(db, admin, builtin_flow):
    flow_service.create_trigger(flow_id=builtin_flow.id, delay_minutes=15, by=admin)
    ticket = make_ticket()
    with frozen(T0):
        ticket_service.close(ticket.id, by=admin)
    [start] = starts(db)
    assert (start.ticket_id, start.flow_id, start.contact_id) == (ticket.id, builtin_flow.id, ticket.contact_id)
    assert start.status == "pending" and start.attempts == 0
    assert start.due_on == start.next_attempt_on == T0 + timedelta(minutes=15)
    assert len(start.delivery_id) == 36


def test_close_rolled_back_records_no_start(db, admin, builtin_flow):
    flow_service.create_trigger(flow_id=builtin_flow.id, by=admin)
    ticket = make_ticket()
    db.session.commit()
    ticket_service.close(ticket.id, by=admin)
    db.session.rollback()
    assert starts(db) == []


def test_no_active_trigger_no_start(db, admin, builtin_flow):
    flow_service.create_trigger(flow_id=builtin_flow.id, active=False, by=admin)
    ticket = make_ticket()
    ticket_service.close(ticket.id, by=admin)
    assert starts(db) == []


def test_a_topics_own_trigger_wins_over_the_all_topics_one(db, admin, builtin_flow, webhook_flow):
    billing = make_ticket(topic="Billing")
    other = make_ticket(topic="Delivery")
    flow_service.create_trigger(flow_id=builtin_flow.id, by=admin)
    flow_service.create_trigger(flow_id=webhook_flow.id, topic_id=billing.topic_id, by=admin)
    ticket_service.close_tickets([billing.id, other.id], by=admin)
    assert {(s.ticket_id, s.flow_id) for s in starts(db)} == {
        (billing.id, webhook_flow.id),
        (other.id, builtin_flow.id),
    }


def test_an_inactive_topic_trigger_leaves_the_all_topics_one(db, admin, builtin_flow, webhook_flow):
    billing = make_ticket(topic="Billing")
    flow_service.create_trigger(flow_id=builtin_flow.id, by=admin)
    flow_service.create_trigger(flow_id=webhook_flow.id, topic_id=billing.topic_id, active=False, by=admin)
    ticket_service.close(billing.id, by=admin)
    assert [s.flow_id for s in starts(db)] == [builtin_flow.id]


def test_reopening_before_a_delayed_start_runs_cancels_it(db, admin, builtin_flow):
    flow_service.create_trigger(flow_id=builtin_flow.id, delay_minutes=60, by=admin)
    ticket = make_ticket(make_contact(name="Ana"))
    ticket_id = ticket.id
    with frozen(T0):
        ticket_service.close(ticket_id, by=admin)
        db.session.commit()
    with frozen(T0 + timedelta(minutes=59)):
        assert run_dispatcher().sent == 0  # not due yet
        ticket_service.reopen(ticket_id, by=db.session.get(User, admin.id))
        db.session.commit()
    with frozen(T0 + timedelta(minutes=61)):
        assert run_dispatcher().sent == 0
    [start] = starts(db)
    assert start.status == "cancelled"
    assert db.session.scalar(select(func.count()).select_from(Message)) == 0


def test_delayed_trigger_runs_when_due_with_a_frozen_clock(db, admin, builtin_flow):
    flow_service.create_trigger(flow_id=builtin_flow.id, delay_minutes=30, by=admin)
    ticket_id = make_ticket(make_contact(name="Ana"), topic="Billing").id
    with frozen(T0):
        ticket_service.close(ticket_id, by=admin)
        db.session.commit()
    with frozen(T0 + timedelta(minutes=29, seconds=59)):
        assert run_dispatcher().sent == 0
    assert starts(db)[0].status == "pending"
    with frozen(T0 + timedelta(minutes=30)):
        report = run_dispatcher()
    assert report.sent == 3  # the start, then its two messages (no reply engine: kept in Ticketer)
    [start] = starts(db)
    assert start.status == "sent" and start.sent_on == T0 + timedelta(minutes=30)
    texts = db.session.execute(
        select(Message.text, Message.status, Message.direction)
        .where(Message.ticket_id == ticket_id)
        .order_by(Message.id)
    ).all()
    assert texts == [
        ("Thanks Ana, your Billing ticket is closed.", "sent", "out"),
        ("Reply 1 if we solved it.", "sent", "out"),
    ]


def test_reopen_then_close_again_records_a_new_start(db, admin, builtin_flow):
    flow_service.create_trigger(flow_id=builtin_flow.id, delay_minutes=5, by=admin)
    ticket = make_ticket()
    ticket_service.close(ticket.id, by=admin)
    ticket_service.reopen(ticket.id, by=admin)
    ticket_service.close(ticket.id, by=admin)
    assert [s.status for s in starts(db)] == ["cancelled", "pending"]
    assert len({s.delivery_id for s in starts(db)}) == 2


def test_bulk_close_of_10000_tickets_records_10000_starts_set_based(db, admin, builtin_flow, count_queries):
    flow_service.create_trigger(flow_id=builtin_flow.id, delay_minutes=10, by=admin)
    topic_id = make_ticket().topic_id
    now = datetime.now(UTC)
    n = 10_000
    db.session.execute(
        Contact.__table__.insert(),
        [
            {
                "uuid": f"00000000-0000-4000-8000-{i:012d}",
                "name": f"C{i}",
                "fields": {},
                "created_on": now,
                "modified_on": now,
            }
            for i in range(n)
        ],
    )
    contact_ids = list(db.session.execute(select(Contact.id).where(Contact.name.like("C%"))).scalars())
    db.session.execute(
        Ticket.__table__.insert(),
        [
            {
                "uuid": f"10000000-0000-4000-8000-{i:012d}",
                "contact_id": cid,
                "topic_id": topic_id,
                "status": "open",
                "body": "",
                "results": {},
                "opened_on": now,
                "last_activity_on": now,
            }
            for i, cid in enumerate(contact_ids)
        ],
    )
    ids = list(db.session.execute(select(Ticket.id).where(Ticket.uuid.like("10000000-%"))).scalars())
    db.session.commit()
    by = db.session.get(User, admin.id)
    with count_queries() as queries:
        result = ticket_service.close_tickets(ids, by=by)
    assert result.changed == n
    inserts = [q for q in queries if q.lstrip().upper().startswith("INSERT INTO FLOW_STARTS")]
    assert len(inserts) == 2  # one INSERT ... SELECT per 5,000 tickets
    assert len(queries) < 15
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(FlowStart)) == n
    assert db.session.scalar(select(func.count(func.distinct(FlowStart.delivery_id)))) == n
    assert db.session.scalar(select(func.count(func.distinct(FlowStart.ticket_id)))) == n
