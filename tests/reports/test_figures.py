"""Dashboard figures against sums done by hand on the known desk (see conftest.build_known_desk)."""

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.factories import make_contact, make_ticket
from tests.reports.conftest import T0
from ticketer import reports
from ticketer.clock import frozen
from ticketer.models import User
from ticketer.models.supervision import SLABreach
from ticketer.services import daily_counts
from ticketer.services import sla as sla_service
from ticketer.services import tickets as ticket_service

PERIOD = reports.Period(date(2026, 2, 1), date(2026, 3, 4))


def test_median_times_overall_per_agent_and_per_topic(db, known_desk):
    table = reports.median_times(PERIOD)
    # first replies: all [30, 60, 100, 120, 300]; A [30, 60, 120, 300]; B [100]
    # resolutions:   all [100, 600, 900, 1200, 3000]; A [600, 1200, 3000]; B [100, 900]
    assert (table.overall.first_reply, table.overall.replied) == (100, 5)
    assert (table.overall.resolution, table.overall.resolved) == (900, 5)
    a, b = table.by_agent[known_desk.agent_a], table.by_agent[known_desk.agent_b]
    assert (a.first_reply, a.replied, a.resolution, a.resolved) == (90, 4, 1200, 3)
    assert (b.first_reply, b.replied, b.resolution, b.resolved) == (100, 1, 500, 2)
    billing, delivery = table.by_topic[known_desk.billing], table.by_topic[known_desk.delivery]
    # Billing: replies [60, 100, 120], closes [600, 900, 1200]; Delivery: replies [30, 300], closes [100, 3000]
    assert (billing.first_reply, billing.resolution) == (100, 900)
    assert (delivery.first_reply, delivery.resolution) == (165, 1550)
    assert set(table.by_agent) == {known_desk.agent_a, known_desk.agent_b}


def test_medians_include_the_older_ticket_when_the_period_does(db, known_desk):
    table = reports.median_times(reports.Period(date(2026, 1, 1), date(2026, 3, 4)))
    # A's resolutions become [600, 1200, 3000, 99999]
    assert table.by_agent[known_desk.agent_a].resolution == 2100
    assert table.by_agent[known_desk.agent_a].first_reply == 60  # [10, 30, 60, 120, 300]


def test_median_times_for_one_agent(db, known_desk):
    table = reports.median_times(PERIOD, assignee_id=known_desk.agent_b)
    assert set(table.by_agent) == {known_desk.agent_b}
    assert table.overall.resolution == 500


def test_period_edges_use_local_days(db, make_user, workspace_tz):
    workspace_tz("America/Guayaquil")
    agent = db.session.get(User, make_user("agent"))
    for closed_utc in (datetime(2026, 3, 11, 4, 30, tzinfo=UTC), datetime(2026, 3, 11, 5, 30, tzinfo=UTC)):
        with frozen(closed_utc - timedelta(hours=1)):
            ticket = make_ticket(make_contact(name="x"), assignee_id=agent.id)
        with frozen(closed_utc):
            ticket_service.close(ticket.id, by=agent)
    db.session.commit()
    march_10 = reports.median_times(reports.Period(date(2026, 3, 10), date(2026, 3, 10)))
    assert march_10.overall.resolved == 1  # closed 23:30 local on March 10
    march_11 = reports.median_times(reports.Period(date(2026, 3, 11), date(2026, 3, 11)))
    assert march_11.overall.resolved == 1


def test_open_load_by_topic_and_assignee(db, known_desk):
    assert [(b.label, b.value) for b in reports.open_by_topic()] == [("Billing", 1), ("Delivery", 1)]
    by_assignee = {b.key: (b.label, b.value) for b in reports.open_by_assignee()}
    assert by_assignee == {known_desk.agent_a: ("Ana Agent", 1), None: ("Unassigned", 1)}


def test_daily_counts_of_the_known_desk(db, known_desk):
    series = reports.daily_counts(reports.Period(date(2026, 3, 1), date(2026, 3, 3)))
    # 7 tickets opened on March 2 (14:00-20:00 UTC); five closed the same day
    assert [(d.day.day, d.opened, d.closed) for d in series] == [(1, 0, 0), (2, 7, 5), (3, 0, 0)]
    mine = reports.daily_counts(reports.Period(date(2026, 3, 2), date(2026, 3, 2)), assignee_id=known_desk.agent_b)
    assert [(d.opened, d.closed) for d in mine] == [(2, 2)]


def test_agent_summary(db, known_desk):
    with frozen(known_desk.now):
        summary = reports.agent_summary(known_desk.agent_a, PERIOD)
    assert summary.open_load == 1
    assert [(b.label, b.value) for b in summary.open_by_topic] == [("Delivery", 1)]
    assert summary.week_start == date(2026, 3, 2)
    assert summary.closed_this_week == 3
    assert summary.closed_today == 0
    assert (summary.medians.first_reply, summary.medians.resolution) == (90, 1200)


def test_closed_this_week_starts_on_monday(db, make_user):
    agent = db.session.get(User, make_user("agent"))
    for day in (date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 4)):  # Sunday, Monday, Wednesday
        moment = datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
        with frozen(moment):
            ticket = make_ticket(make_contact(name="x"), assignee_id=agent.id)
            ticket_service.close(ticket.id, by=agent)
    db.session.commit()
    with frozen(datetime(2026, 3, 4, 18, tzinfo=UTC)):
        summary = reports.agent_summary(agent.id, reports.Period.last_days(30))
    assert (summary.closed_this_week, summary.closed_today) == (2, 1)


@pytest.mark.parametrize(
    ("args", "expected", "errors"),
    [
        ({}, (date(2026, 2, 3), date(2026, 3, 4)), {}),
        ({"days": "7"}, (date(2026, 2, 26), date(2026, 3, 4)), {}),
        ({"days": "13"}, (date(2026, 2, 3), date(2026, 3, 4)), {}),
        ({"start": "2026-01-01", "end": "2026-01-31"}, (date(2026, 1, 1), date(2026, 1, 31)), {}),
        ({"start": "2026-02-01", "end": "2026-01-31"}, (date(2026, 2, 3), date(2026, 3, 4)), {"end"}),
        ({"start": "nope"}, (date(2026, 2, 3), date(2026, 3, 4)), {"start"}),
        ({"start": "2024-01-01", "end": "2026-01-01"}, (date(2026, 2, 3), date(2026, 3, 4)), {"end"}),
    ],
)
def test_parse_period(app, args, expected, errors):
    with app.app_context(), frozen(datetime(2026, 3, 4, 12, tzinfo=UTC)):
        period, found = reports.parse_period(args)
    assert (period.first, period.last) == expected
    assert set(found) == set(errors)


def test_sla_breaches_per_local_day_of_their_deadline(db, workspace_tz):
    workspace_tz("America/Guayaquil")
    with frozen(datetime(2026, 3, 11, 4, 25, tzinfo=UTC)):  # 23:25 local, March 10
        ticket = make_ticket(topic="Billing")
        sla_service.configure_target(ticket.topic_id, first_reply_minutes=10, resolution_minutes=60, by=None)
        make_ticket(make_contact(name="on time"), topic="Delivery")
    # first reply due 23:35 local on March 10; resolution due 00:25 local on March 11
    assert sla_service.mark_breaches(datetime(2026, 3, 11, 8, 0, tzinfo=UTC)) == 2
    db.session.commit()
    series = reports.sla_breaches_per_day(reports.Period(date(2026, 3, 9), date(2026, 3, 11)))
    assert [(d.day.day, d.first_reply, d.resolution) for d in series] == [(9, 0, 0), (10, 1, 0), (11, 0, 1)]


def test_csv_cells_that_start_a_formula_are_quoted():
    assert [reports.csv_cell(v) for v in ("=1+1", "+593", "-2", "@SUM(A1)", "\tx", "Ana", 5, "")] == [
        "'=1+1",
        "'+593",
        "'-2",
        "'@SUM(A1)",
        "'\tx",
        "Ana",
        5,
        "",
    ]


def test_t0_is_a_monday():
    assert T0.weekday() == 0


@pytest.mark.parametrize(
    "zone", ["UTC", "America/Guayaquil", "America/New_York", "America/Santiago", "Europe/Berlin", "Asia/Kolkata"]
)
def test_local_day_sql_matches_python_across_dst(db, workspace_tz, zone):
    """Breaches an hour apart for a year: SQL puts each on the same local day Python does."""
    workspace_tz(zone)
    ticket = make_ticket()
    start = datetime(2026, 1, 1, 0, 30, tzinfo=UTC)
    moments = [start + timedelta(minutes=37 * i) for i in range(0, 365 * 24 * 60 // 37, 11)]
    db.session.execute(
        SLABreach.__table__.insert(),
        [{"ticket_id": ticket.id, "kind": f"k{i}", "due_on": m, "breached_on": m} for i, m in enumerate(moments)],
    )
    period = reports.Period(date(2026, 1, 2), date(2026, 12, 30))
    first, end = period.utc_bounds()
    day = reports._local_day_sql(SLABreach.due_on, period)
    rows = db.session.execute(select(SLABreach.due_on, day).where(SLABreach.due_on >= first, SLABreach.due_on < end))
    seen = 0
    for due_on, local in rows:
        assert local == daily_counts.local_day(due_on).isoformat(), due_on
        seen += 1
    assert seen > 1000


def test_offset_segments_split_at_the_exact_second_of_a_dst_change(app, workspace_tz):
    workspace_tz("America/Santiago")  # changes at local midnight, so a day boundary meets the change
    with app.app_context():
        period = reports.Period(date(2026, 4, 1), date(2026, 4, 10))
        start, end = period.utc_bounds()
        segments = reports._offset_segments(start, end, daily_counts.workspace_timezone())
    assert segments == [(datetime(2026, 4, 5, 3, 0, tzinfo=UTC), -3 * 3600), (end, -4 * 3600)]
