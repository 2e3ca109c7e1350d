"""SLA targets: deadlines (wall clock and business hours), the Overdue condition, breaches marked
once, and their mail sent once to the assignee or the supervisors."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from tests.factories import make_contact, make_ticket
from ticketer import jobs, ticket_deadlines
from ticketer.clock import frozen
from ticketer.errors import PermissionDenied, ValidationError
from ticketer.models import Ticket, User
from ticketer.models.supervision import BusinessHours, SLABreach, TicketDeadline
from ticketer.services import sla
from ticketer.services import tickets as ticket_service
from ticketer.services import topics as topic_service

MONDAY_9 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday


def target(db, *, first=None, resolution=None, business=False, name="Billing"):
    topic = topic_service.get_or_create_topic(name)
    sla.configure_target(
        topic.id, first_reply_minutes=first, resolution_minutes=resolution, business_hours_only=business, by=None
    )
    db.session.commit()
    return topic.id


def deadline(db, ticket_id):
    return db.session.execute(
        select(TicketDeadline).where(TicketDeadline.ticket_id == ticket_id).execution_options(populate_existing=True)
    ).scalar_one_or_none()


def overdue_ids(db, now):
    return set(db.session.execute(select(Ticket.id).where(ticket_deadlines.overdue_condition(now))).scalars())


def test_deadlines_follow_the_topic_target(db):
    target(db, first=30, resolution=240)
    with frozen(MONDAY_9):
        ticket = make_ticket(topic="Billing")
        plain = make_ticket(topic="No target")
    db.session.commit()
    due = deadline(db, ticket.id)
    assert due.first_reply_due_on == MONDAY_9 + timedelta(minutes=30)
    assert due.resolution_due_on == MONDAY_9 + timedelta(minutes=240)
    assert deadline(db, plain.id) is None
    # changing the target moves open tickets' deadlines
    target(db, first=60, resolution=None)
    due = deadline(db, ticket.id)
    assert due.first_reply_due_on == MONDAY_9 + timedelta(minutes=60)
    assert due.resolution_due_on is None


def test_business_hours_only_counts_open_hours_in_the_workspace_time_zone():
    hours = BusinessHours(days="1,2,3,4,5", start_minute=9 * 60, end_minute=17 * 60, time_zone="America/Guayaquil")
    # Friday 16:00 in Guayaquil (UTC-5) = 21:00 UTC; 120 business minutes -> Monday 10:00 local = 15:00 UTC
    friday_4pm = datetime(2026, 11, 27, 21, 0, tzinfo=UTC)
    assert sla.add_business_minutes(friday_4pm, 120, hours) == datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
    # Saturday counts from Monday's opening
    saturday = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
    assert sla.add_business_minutes(saturday, 30, hours) == datetime(2026, 11, 30, 14, 30, tzinfo=UTC)
    # Two full days of 8 hours
    monday_9_local = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
    assert sla.add_business_minutes(monday_9_local, 16 * 60, hours) == datetime(2026, 11, 24, 22, 0, tzinfo=UTC)


def test_business_hours_settings_are_validated_and_used(db, make_user):
    with pytest.raises(ValidationError):
        sla.set_business_hours(days=[], start_minute=540, end_minute=1020, time_zone="UTC", by=None)
    with pytest.raises(ValidationError):
        sla.set_business_hours(days=[1], start_minute=600, end_minute=540, time_zone="UTC", by=None)
    with pytest.raises(ValidationError):
        sla.set_business_hours(days=[1], start_minute=540, end_minute=600, time_zone="Mars/Olympus", by=None)
    agent = db.session.get(User, make_user("agent"))
    with pytest.raises(PermissionDenied):
        sla.set_business_hours(days=[1], start_minute=540, end_minute=600, time_zone="UTC", by=agent)
    target(db, first=60, business=True)
    with frozen(datetime(2026, 11, 23, 16, 30, tzinfo=UTC)):  # Monday 16:30 UTC
        ticket = make_ticket(topic="Billing")
    db.session.commit()
    assert deadline(db, ticket.id).first_reply_due_on == datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    sla.set_business_hours(days=[1, 2, 3, 4, 5], start_minute=0, end_minute=24 * 60, time_zone="UTC", by=None)
    db.session.commit()
    assert deadline(db, ticket.id).first_reply_due_on == datetime(2026, 11, 23, 17, 30, tzinfo=UTC)


def test_overdue_condition_first_reply_and_resolution(db, make_user):
    agent = db.session.get(User, make_user("agent"))
    target(db, first=30, resolution=120)
    with frozen(MONDAY_9):
        replied = make_ticket(topic="Billing")
        waiting = make_ticket(topic="Billing")
        closed = make_ticket(topic="Billing")
    with frozen(MONDAY_9 + timedelta(minutes=10)):
        ticket_service.reply(replied.id, "On it", by=agent)
        ticket_service.close(closed.id, by=agent)
    db.session.commit()
    assert overdue_ids(db, MONDAY_9 + timedelta(minutes=29)) == set()
    assert overdue_ids(db, MONDAY_9 + timedelta(minutes=31)) == {waiting.id}
    assert overdue_ids(db, MONDAY_9 + timedelta(minutes=121)) == {waiting.id, replied.id}
    assert deadline(db, closed.id) is None  # only open tickets keep deadlines
    clocks = ticket_deadlines.clocks_for(
        [db.session.get(Ticket, waiting.id), db.session.get(Ticket, replied.id)], MONDAY_9
    )
    assert clocks[waiting.id].label == "30m left to reply"
    assert clocks[replied.id].label == "2h left to resolve"
    late = ticket_deadlines.clocks_for([db.session.get(Ticket, waiting.id)], MONDAY_9 + timedelta(minutes=95))[
        waiting.id
    ]
    assert late.overdue and late.label == "Overdue 1h 5m"


def test_reopen_restarts_the_resolution_clock(db):
    target(db, resolution=60)
    with frozen(MONDAY_9):
        ticket = make_ticket(topic="Billing")
        ticket_service.close(ticket.id, by=None)
    with frozen(MONDAY_9 + timedelta(hours=5)):
        ticket_service.reopen(ticket.id, by=None)
    db.session.commit()
    assert deadline(db, ticket.id).resolution_due_on == MONDAY_9 + timedelta(hours=6)


def test_breaches_are_marked_once_and_mailed_once_to_the_assignee(db, make_user, smtp_server):
    agent_id = make_user("agent", email="carla@example.com")
    target(db, first=30)
    with frozen(MONDAY_9):
        ticket = make_ticket(make_contact("Ana Torres"), topic="Billing", assignee_id=agent_id)
        make_ticket(topic="Billing")  # unassigned: the supervisors hear about it
    make_user("supervisor", email="sam@example.com")
    make_user("supervisor", email="sue@example.com")
    make_user("admin", email="ada@example.com")
    db.session.commit()
    with frozen(MONDAY_9 + timedelta(minutes=20)):
        assert jobs.mark_sla_breaches() == 0
    with frozen(MONDAY_9 + timedelta(minutes=31)):
        assert jobs.mark_sla_breaches() == 2
        assert jobs.mark_sla_breaches() == 0
        assert sla.mark_breaches() == 0
    mails = smtp_server.wait_for(2)
    by_to = {m["To"]: m for m in mails}
    assert set(by_to) == {"carla@example.com", "sam@example.com, sue@example.com"}
    mail = by_to["carla@example.com"]
    assert "Ana Torres" in mail["Subject"] and "first reply" in mail["Subject"]
    assert f"/admin/tickets/{ticket.uuid}" in mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert f'href="http://127.0.0.1:5000/admin/tickets/{ticket.uuid}"' in html and "Ana Torres" in html
    assert db.session.scalar(select(func.count()).select_from(SLABreach)) == 2
    assert db.session.scalar(select(func.count()).select_from(SLABreach).where(SLABreach.notified_on.is_(None))) == 0
    with frozen(MONDAY_9 + timedelta(hours=3)):
        assert jobs.mark_sla_breaches() == 0
    assert len(smtp_server.messages) == 2


def test_a_failed_mail_is_retried_later_and_then_sent_once(db, app, make_user, smtp_server):
    make_user("agent", email="carla@example.com")
    agent_id = db.session.execute(select(User.id).where(User.email == "carla@example.com")).scalar_one()
    target(db, resolution=10)
    with frozen(MONDAY_9):
        make_ticket(topic="Billing", assignee_id=agent_id)
    db.session.commit()
    port = app.config["MAIL_PORT"]
    app.config["MAIL_PORT"] = 1  # nothing listens there
    try:
        with frozen(MONDAY_9 + timedelta(minutes=11)):
            assert jobs.mark_sla_breaches() == 0
    finally:
        app.config["MAIL_PORT"] = port
    breach = db.session.execute(select(SLABreach)).scalar_one()
    assert breach.notified_on is None and breach.attempts == 1
    with frozen(MONDAY_9 + timedelta(minutes=12)):
        assert jobs.mark_sla_breaches() == 1
        assert jobs.mark_sla_breaches() == 0
    assert len(smtp_server.wait_for(1)) == 1


def test_replied_and_closed_tickets_are_not_breached(db, make_user):
    agent = db.session.get(User, make_user("agent"))
    target(db, first=30, resolution=60)
    with frozen(MONDAY_9):
        replied = make_ticket(topic="Billing")
        closed = make_ticket(topic="Billing")
        ticket_service.reply(replied.id, "hi", by=agent)
        ticket_service.close(closed.id, by=agent)
    db.session.commit()
    with frozen(MONDAY_9 + timedelta(minutes=45)):
        assert sla.mark_breaches() == 0
    with frozen(MONDAY_9 + timedelta(minutes=61)):
        assert sla.mark_breaches() == 1
    kinds = db.session.execute(select(SLABreach.ticket_id, SLABreach.kind)).all()
    assert kinds == [(replied.id, "resolution")]


def test_two_schedulers_at_once_mail_each_breach_once(app, db, make_user, smtp_server):
    import threading

    agent_id = make_user("agent", email="carla@example.com")
    target(db, first=5)
    with frozen(MONDAY_9):
        for _ in range(6):
            make_ticket(topic="Billing", assignee_id=agent_id)
    db.session.commit()
    db.session.remove()
    jobs.bind_app(app)
    barrier = threading.Barrier(3)
    sent: list[int] = []

    def run():  # no app context in the thread: the job uses the bound app, like the scheduler
        barrier.wait()
        sent.append(jobs.mark_sla_breaches())

    with frozen(MONDAY_9 + timedelta(minutes=6)):
        threads = [threading.Thread(target=run) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sum(sent) == 6
    assert len(smtp_server.wait_for(6)) == 6
    assert db.session.scalar(select(func.count()).select_from(SLABreach)) == 6


def test_the_breach_mail_escapes_the_contact_and_topic_in_its_html_part(db, make_user, smtp_server):
    agent_id = make_user("agent", email="carla@example.com", name="Carla <i>Ruiz</i>")
    target(db, first=30, name="<b>Billing</b>")
    with frozen(MONDAY_9):
        make_ticket(make_contact('<img src=x onerror="alert(1)"> Ana'), topic="<b>Billing</b>", assignee_id=agent_id)
    db.session.commit()
    with frozen(MONDAY_9 + timedelta(minutes=31)):
        assert jobs.mark_sla_breaches() == 1
    (mail,) = smtp_server.wait_for(1)
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert '<img src=x onerror="alert(1)"> Ana' in text and "<b>Billing</b>" in text and "Carla <i>Ruiz</i>" in text
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt; Ana" in html
    assert "&lt;b&gt;Billing&lt;/b&gt;" in html and "Carla &lt;i&gt;Ruiz&lt;/i&gt;" in html
    assert "<img" not in html and "<b>" not in html and "<i>" not in html
