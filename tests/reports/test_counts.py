"""The maintained daily counts: what each event adds, on which local day, set-based."""

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from tests.factories import make_contact, make_ticket
from tests.reports.conftest import T0
from ticketer import reports
from ticketer.clock import frozen
from ticketer.models import User
from ticketer.models.reports import TicketDailyCount
from ticketer.services import daily_counts
from ticketer.services import tickets as ticket_service
from ticketer.services import topics as topic_service


def counts(db) -> dict[tuple, tuple[int, int, int]]:
    """{(day, topic_id, assignee_id): (opened, closed, reopened)} summed over the delta rows."""
    c = TicketDailyCount
    rows = db.session.execute(
        select(c.day, c.topic_id, c.assignee_id, func.sum(c.opened), func.sum(c.closed), func.sum(c.reopened)).group_by(
            c.day, c.topic_id, c.assignee_id
        )
    ).all()
    return {(d, t, a): (int(o), int(cl), int(r)) for d, t, a, o, cl, r in rows if (o, cl, r) != (0, 0, 0)}


def test_open_close_reopen_count_with_the_topic_and_assignee_of_the_moment(db, make_user):
    agent = db.session.get(User, make_user("agent"))
    other = db.session.get(User, make_user("agent"))
    with frozen(T0):
        ticket = make_ticket(topic="Billing", assignee_id=agent.id)
    billing = ticket.topic_id
    delivery = topic_service.get_or_create_topic("Delivery").id
    with frozen(T0 + timedelta(hours=1)):
        ticket_service.change_topic(ticket.id, delivery, by=agent)
        ticket_service.assign(ticket.id, other.id, by=agent, note="yours")
        ticket_service.add_note(ticket.id, "a note", by=agent)
    with frozen(T0 + timedelta(days=1)):
        ticket_service.close(ticket.id, by=other)
    with frozen(T0 + timedelta(days=2)):
        ticket_service.reopen(ticket.id, by=other)
        ticket_service.close(ticket.id, by=other)
    db.session.commit()
    day = T0.date()
    assert counts(db) == {
        (day, billing, agent.id): (1, 0, 0),
        (day + timedelta(days=1), delivery, other.id): (0, 1, 0),
        (day + timedelta(days=2), delivery, other.id): (0, 1, 1),
    }


def test_a_ticket_closed_at_23_30_local_counts_on_that_local_day(db, workspace_tz):
    workspace_tz("America/Guayaquil")  # UTC-5 all year
    # 20:00 local on March 10 is 01:00 UTC on March 11.
    with frozen(datetime(2026, 3, 11, 1, 0, tzinfo=UTC)):
        late = make_ticket(topic="Billing")
        early = make_ticket(topic="Billing")
    with frozen(datetime(2026, 3, 11, 4, 30, tzinfo=UTC)):  # 23:30 local, March 10
        ticket_service.close(late.id, by=None)
    with frozen(datetime(2026, 3, 11, 5, 30, tzinfo=UTC)):  # 00:30 local, March 11
        ticket_service.close(early.id, by=None)
    db.session.commit()
    topic = late.topic_id
    assert counts(db) == {
        (date(2026, 3, 10), topic, None): (2, 1, 0),
        (date(2026, 3, 11), topic, None): (0, 1, 0),
    }
    series = reports.daily_counts(reports.Period(date(2026, 3, 9), date(2026, 3, 11)))
    assert [(d.day.day, d.opened, d.closed) for d in series] == [(9, 0, 0), (10, 2, 1), (11, 0, 1)]


def test_in_utc_the_same_tickets_count_on_the_utc_day(db, workspace_tz):
    workspace_tz("UTC")
    with frozen(datetime(2026, 3, 11, 4, 30, tzinfo=UTC)):
        make_ticket()
    db.session.commit()
    assert [key[0] for key in counts(db)] == [date(2026, 3, 11)]


def test_local_day_boundaries_follow_daylight_saving(app, workspace_tz):
    workspace_tz("America/New_York")
    with app.app_context():
        # Clocks go forward on 2026-03-08: that local day is 23 hours long.
        start, end = reports.Period(date(2026, 3, 8), date(2026, 3, 8)).utc_bounds()
        assert start == datetime(2026, 3, 8, 5, 0, tzinfo=UTC)
        assert end == datetime(2026, 3, 9, 4, 0, tzinfo=UTC)
        assert daily_counts.local_day(datetime(2026, 3, 9, 3, 59, tzinfo=UTC)) == date(2026, 3, 8)
        assert daily_counts.local_day(datetime(2026, 3, 9, 4, 0, tzinfo=UTC)) == date(2026, 3, 9)


def test_bulk_close_adds_one_grouped_insert_not_a_row_per_ticket(db, make_user, count_queries):
    a, b = make_user("agent"), make_user("agent")
    supervisor = db.session.get(User, make_user("supervisor"))
    ids = []
    with frozen(T0):
        for i in range(120):
            topic, assignee = ("Billing", "Delivery")[i % 2], (a, b)[i % 3 % 2]
            ticket = make_ticket(make_contact(name=f"c{i}"), topic=topic, assignee_id=assignee)
            ids.append(ticket.id)
    db.session.commit()
    before = db.session.scalar(select(func.count()).select_from(TicketDailyCount))
    with frozen(T0 + timedelta(hours=2)), count_queries() as queries:
        result = ticket_service.close_tickets(ids, by=supervisor)
    assert result.changed == 120
    writes = [q for q in queries if "ticket_daily_counts" in q]
    assert len(writes) == 1 and writes[0].lstrip().upper().startswith("INSERT")
    added = db.session.scalar(select(func.count()).select_from(TicketDailyCount)) - before
    assert added == 4  # 2 topics x 2 assignees
    assert sum(closed for (_, closed, _) in counts(db).values()) == 120


def test_squash_folds_rows_and_keeps_the_sums(db, make_user):
    agent = db.session.get(User, make_user("agent"))
    with frozen(T0):
        tickets = [make_ticket(make_contact(name=f"c{i}"), topic="Billing", assignee_id=agent.id) for i in range(5)]
    for minutes, t in enumerate(tickets[:3], start=1):
        with frozen(T0 + timedelta(minutes=minutes)):
            ticket_service.close(t.id, by=agent)
    db.session.commit()
    before = counts(db)
    rows_before = db.session.scalar(select(func.count()).select_from(TicketDailyCount))
    assert rows_before == 8
    removed = daily_counts.squash_daily_counts()
    db.session.commit()
    assert removed == 7
    assert db.session.scalar(select(func.count()).select_from(TicketDailyCount)) == 1
    assert counts(db) == before
    assert daily_counts.squash_daily_counts() == 0


def test_the_hourly_job_squashes_only_recent_days(db, make_user):
    from ticketer import jobs

    agent = db.session.get(User, make_user("agent"))
    for when in (T0 - timedelta(days=10), T0 - timedelta(days=10), T0, T0 + timedelta(minutes=5)):
        with frozen(when):
            make_ticket(make_contact(name="x"), topic="Billing", assignee_id=agent.id)
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(TicketDailyCount)) == 4
    with frozen(T0 + timedelta(hours=1)):
        assert jobs.squash_daily_counts() == 1  # today's two rows became one; 10 days ago untouched
    assert db.session.scalar(select(func.count()).select_from(TicketDailyCount)) == 3
    assert sum(o for o, _, _ in counts(db).values()) == 4


def test_rebuild_from_tickets_matches_the_hook_when_nothing_moved(db, make_user, workspace_tz):
    workspace_tz("America/Guayaquil")
    agent = db.session.get(User, make_user("agent"))
    for i, hour in enumerate((1, 4, 6, 30)):
        with frozen(datetime(2026, 3, 11, hour % 24, 0, tzinfo=UTC) + timedelta(days=hour // 24)):
            ticket = make_ticket(make_contact(name=f"c{i}"), topic="Billing", assignee_id=agent.id)
        if i % 2 == 0:
            with frozen(datetime(2026, 3, 11, 4, 30, tzinfo=UTC) + timedelta(days=i)):
                ticket_service.close(ticket.id, by=agent)
    db.session.commit()
    by_hook = counts(db)
    written = daily_counts.rebuild_daily_counts()
    db.session.commit()
    assert written > 0
    assert counts(db) == by_hook


def test_the_scheduler_squashes_hourly_even_without_an_app_context(app):
    from apscheduler.schedulers.background import BackgroundScheduler
    from flask import has_app_context

    from ticketer import jobs
    from ticketer.scheduler import build_scheduler

    scheduler = build_scheduler(app, BackgroundScheduler)  # binds the app, as the scheduler process does
    job = {job.id: job for job in scheduler.get_jobs()}["squash-daily-counts"]
    assert job.func is jobs.squash_daily_counts
    assert job.trigger.interval.total_seconds() == 3600
    assert not has_app_context()
    assert jobs.squash_daily_counts() == 0


def test_a_wrong_workspace_timezone_says_what_is_wrong(app, workspace_tz):
    for name in ("Mars/Olympus", "America", "../etc/passwd"):
        workspace_tz(name)
        with app.app_context(), pytest.raises(RuntimeError, match="WORKSPACE_TIMEZONE"):
            daily_counts.workspace_timezone()
