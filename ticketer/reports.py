"""The figures behind the dashboard, the per-agent page and the CSV export (read side only).

Each figure is one query whatever the size of the desk: daily figures come from the maintained
`ticket_daily_counts`, open load from partial indexes of open tickets, medians from covering
indexes over the chosen date range, and the export streams rows through a server-side cursor.
"""

import csv
import io
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from statistics import median

from sqlalchemy import case, func, literal_column, select, tuple_
from sqlalchemy.orm import aliased

from ticketer.clock import utcnow
from ticketer.extensions import db
from ticketer.models import Contact, ContactURN, Ticket, Topic, User
from ticketer.models.reports import TicketDailyCount
from ticketer.models.supervision import SLABreach
from ticketer.roles import ASSIGNABLE_ROLES
from ticketer.services.daily_counts import day_start_utc, local_day, workspace_timezone
from ticketer.ticket_lists import TicketFilter, filter_conditions

MAX_PERIOD_DAYS = 366
# Inline, not a bound parameter: SQLite uses a partial index (WHERE status = 'open') only then.
OPEN = literal_column("'open'")
PERIOD_CHOICES = (7, 30, 90, 365)
# Far inside the calendar, so a period's UTC bounds (a day later, 14 hours either way) exist.
EARLIEST_DAY, LATEST_DAY = date(1900, 1, 1), date(9998, 12, 31)


@dataclass(frozen=True)
class Period:
    """Local days `first` to `last`, both included."""

    first: date
    last: date

    @classmethod
    def last_days(cls, days: int, last: date | None = None) -> "Period":
        last = last or today()
        return cls(last - timedelta(days=days - 1), last)

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]

    def utc_bounds(self) -> tuple[datetime, datetime]:
        """[start, end) in UTC: the first day's local midnight to the midnight after the last day."""
        tz = workspace_timezone()
        return day_start_utc(self.first, tz), day_start_utc(self.last + timedelta(days=1), tz)


def today() -> date:
    """The workspace-local date now."""
    return local_day(utcnow())


def parse_period(args) -> tuple[Period, dict[str, str]]:
    """The period asked for in a query string (?days=30 or ?start=&end=), and errors by field."""
    errors: dict[str, str] = {}
    now = today()
    start_raw, end_raw = (args.get("start") or "").strip(), (args.get("end") or "").strip()
    if start_raw or end_raw:
        parsed = {}
        for name, raw in (("start", start_raw), ("end", end_raw)):
            try:
                parsed[name] = date.fromisoformat(raw) if raw else now
            except ValueError:
                errors[name] = "Use a date like 2026-01-31."
            else:
                if not EARLIEST_DAY <= parsed[name] <= LATEST_DAY:
                    errors[name] = f"Use a date from {EARLIEST_DAY:%Y-%m-%d} to {LATEST_DAY:%Y-%m-%d}."
        if not errors:
            if parsed["end"] < parsed["start"]:
                errors["end"] = "The end must not be before the start."
            elif (parsed["end"] - parsed["start"]).days >= MAX_PERIOD_DAYS:
                errors["end"] = f"Pick at most {MAX_PERIOD_DAYS} days."
            else:
                return Period(parsed["start"], parsed["end"]), errors
    days = args.get("days", "30")
    days = int(days) if days.isdigit() and int(days) in PERIOD_CHOICES else 30
    return Period.last_days(days, now), errors


# --- opened and closed per day ------------------------------------------------------------------


@dataclass(frozen=True)
class DayCounts:
    day: date
    opened: int = 0
    closed: int = 0


def daily_counts(period: Period, *, assignee_id: int | None = None, topic_id: int | None = None) -> list[DayCounts]:
    """Tickets opened and closed on each local day of the period (zero days included)."""
    c = TicketDailyCount
    conditions = [c.day >= period.first, c.day <= period.last]
    if assignee_id is not None:
        conditions.append(c.assignee_id == assignee_id)
    if topic_id is not None:
        conditions.append(c.topic_id == topic_id)
    rows = db.session.execute(
        select(c.day, func.sum(c.opened), func.sum(c.closed)).where(*conditions).group_by(c.day)
    ).all()
    found = {day: (int(opened or 0), int(closed or 0)) for day, opened, closed in rows}
    return [DayCounts(day, *found.get(day, (0, 0))) for day in period.days]


def _offset_segments(start: datetime, end: datetime, tz) -> list[tuple[datetime, int]]:
    """[(until, UTC offset in seconds)] covering [start, end): one segment, or one more per DST change."""
    segments: list[tuple[datetime, int]] = []
    offset = int(start.astimezone(tz).utcoffset().total_seconds())
    moment = start
    while moment < end:
        following = min(moment + timedelta(days=1), end)
        next_offset = int(following.astimezone(tz).utcoffset().total_seconds())
        if next_offset != offset and following < end:
            # The change is in (low, high]: find its exact second.
            low, high = int(moment.timestamp()), int(following.timestamp())
            while high - low > 1:
                middle = (low + high) // 2
                if int(datetime.fromtimestamp(middle, UTC).astimezone(tz).utcoffset().total_seconds()) == offset:
                    low = middle
                else:
                    high = middle
            segments.append((datetime.fromtimestamp(high, UTC), offset))
            offset = next_offset
        moment = following
    segments.append((end, offset))
    return segments


def _local_day_sql(moment, period: Period):
    """SQL for a UTC timestamp column's local day ('YYYY-MM-DD') within `period`: the UTC offset is
    constant between DST changes, so this is a shift by a few known offsets, not a per-day CASE."""
    start, end = period.utc_bounds()
    sqlite = db.session.get_bind().dialect.name == "sqlite"

    def shifted(offset: int):
        if sqlite:
            return func.date(moment, f"{offset:+d} seconds")
        return func.to_char(moment + literal_column(f"interval '{offset:d} seconds'"), "YYYY-MM-DD")

    segments = _offset_segments(start, end, workspace_timezone())
    if len(segments) == 1:
        return shifted(segments[0][1])
    return case(*[(moment < until, shifted(offset)) for until, offset in segments[:-1]], else_=shifted(segments[-1][1]))


@dataclass(frozen=True)
class BreachCounts:
    day: date
    first_reply: int = 0
    resolution: int = 0


def sla_breaches_per_day(period: Period) -> list[BreachCounts]:
    """SLA breaches (missed first-reply and resolution deadlines) per local day of the period.

    A breach counts on the day its deadline passed (`due_on`), not when the job noticed it.
    """
    start, end = period.utc_bounds()
    day = _local_day_sql(SLABreach.due_on, period).label("day")
    rows = db.session.execute(
        select(day, SLABreach.kind, func.count())
        .where(SLABreach.due_on >= start, SLABreach.due_on < end)
        .group_by(day, SLABreach.kind)
    ).all()
    found: dict[tuple[date, str], int] = {(date.fromisoformat(d), kind): int(n) for d, kind, n in rows if d}
    first, resolution = SLABreach.Kind.FIRST_REPLY.value, SLABreach.Kind.RESOLUTION.value
    return [BreachCounts(d, found.get((d, first), 0), found.get((d, resolution), 0)) for d in period.days]


# --- open load ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    key: int | None
    label: str
    value: float


def open_by_topic() -> list[Bar]:
    """Open tickets per topic, most first (one grouped read of the open-tickets index)."""
    counts = (
        select(Ticket.topic_id, func.count().label("n"))
        .where(Ticket.status == OPEN)
        .group_by(Ticket.topic_id)
        .subquery()
    )
    rows = db.session.execute(
        select(Topic.id, Topic.name, counts.c.n)
        .join(counts, counts.c.topic_id == Topic.id)
        .order_by(counts.c.n.desc(), Topic.name)
    ).all()
    return [Bar(topic_id, name, int(n)) for topic_id, name, n in rows]


def open_by_assignee() -> list[Bar]:
    """Open tickets per assignee (None: unassigned), most first."""
    counts = (
        select(Ticket.assignee_id, func.count().label("n"))
        .where(Ticket.status == OPEN)
        .group_by(Ticket.assignee_id)
        .subquery()
    )
    rows = db.session.execute(
        select(counts.c.assignee_id, User.name, User.email, counts.c.n)
        .outerjoin(User, User.id == counts.c.assignee_id)
        .order_by(counts.c.n.desc(), User.name)
    ).all()
    return [Bar(user_id, (name or email) if user_id else "Unassigned", int(n)) for user_id, name, email, n in rows]


# --- medians --------------------------------------------------------------------------------------


def seconds_between(start, end):
    """SQL for `end - start` in seconds, on SQLite and PostgreSQL."""
    if db.session.get_bind().dialect.name == "sqlite":
        return func.round((func.julianday(end) - func.julianday(start)) * 86400.0)
    return func.extract("epoch", end - start)


@dataclass
class Medians:
    """Median seconds to first reply and to resolution, and how many tickets each is over."""

    first_reply: float | None = None
    replied: int = 0
    resolution: float | None = None
    resolved: int = 0


@dataclass
class MedianTable:
    overall: Medians = field(default_factory=Medians)
    by_agent: dict[int | None, Medians] = field(default_factory=dict)
    by_topic: dict[int, Medians] = field(default_factory=dict)


def _medians(moment, period: Period, assignee_id: int | None) -> list[tuple[str, int | None, float, int]]:
    """(dimension, key, median seconds, n) for tickets whose `moment` falls in the period.

    Dimensions: 'all', 'agent' (the ticket's assignee, None: unassigned) and 'topic'. The rows
    come from the covering index of `moment` over the date range. PostgreSQL computes the medians
    itself (percentile_cont over grouping sets, one pass); SQLite has no median aggregate and its
    window functions are slow, so there the range's (agent, topic, seconds) rows are read once and
    the medians taken in Python: bounded by the period (at most 366 days) and exact either way.
    """
    start, end = period.utc_bounds()
    conditions = [moment >= start, moment < end]
    if assignee_id is not None:
        conditions.append(Ticket.assignee_id == assignee_id)
    secs = seconds_between(Ticket.opened_on, moment)
    if db.session.get_bind().dialect.name == "postgresql":
        agent = func.coalesce(Ticket.assignee_id, literal_column("0"))  # inline: GROUP BY must match it
        rows = db.session.execute(
            select(
                func.grouping(agent),
                func.grouping(Ticket.topic_id),
                agent,
                Ticket.topic_id,
                func.percentile_cont(0.5).within_group(secs),
                func.count(),
            )
            .where(*conditions)
            .group_by(func.grouping_sets(agent, Ticket.topic_id, tuple_()))
        ).all()
        found = []
        for no_agent, no_topic, agent_id, topic_id, middle, n in rows:
            if not no_agent:
                found.append(("agent", agent_id or None, float(middle), int(n)))
            elif not no_topic:
                found.append(("topic", topic_id, float(middle), int(n)))
            elif n:
                found.append(("all", 0, float(middle), int(n)))
        return found
    by_agent: dict[int | None, list[float]] = defaultdict(list)
    by_topic: dict[int, list[float]] = defaultdict(list)
    every: list[float] = []
    # ~100,000 rows a month at 1M tickets a year: plain tuples through the session, no ORM objects.
    rows = db.session.execute(select(Ticket.assignee_id, Ticket.topic_id, secs).where(*conditions)).tuples()
    for agent_id, topic_id, seconds in rows:
        by_agent[agent_id].append(seconds)
        by_topic[topic_id].append(seconds)
        every.append(seconds)
    found = [("agent", k, float(median(v)), len(v)) for k, v in by_agent.items()]
    found += [("topic", k, float(median(v)), len(v)) for k, v in by_topic.items()]
    if every:
        found.append(("all", 0, float(median(every)), len(every)))
    return found


def median_times(period: Period, *, assignee_id: int | None = None) -> MedianTable:
    """Median first-reply time (of tickets first replied in the period) and resolution time (of
    tickets closed in the period), overall, per agent and per topic. Two queries."""
    table = MedianTable()
    for metric, moment in (("first_reply", Ticket.first_reply_on), ("resolution", Ticket.closed_on)):
        count_name = "replied" if metric == "first_reply" else "resolved"
        for dim, key, middle, n in _medians(moment, period, assignee_id):
            if dim == "all":
                target = table.overall
            else:
                group = table.by_agent if dim == "agent" else table.by_topic
                target = group.setdefault(key, Medians())
            setattr(target, metric, middle)
            setattr(target, count_name, n)
    return table


# --- people and topics, for labels ------------------------------------------------------------


def agents() -> list[User]:
    """People who can take tickets (active or not, since past figures still name them), by name."""
    return list(
        db.session.execute(
            select(User)
            .where(User.role.in_([r.value for r in ASSIGNABLE_ROLES]))
            .order_by(func.lower(User.name), User.email)
        ).scalars()
    )


def topics() -> list[Topic]:
    return list(db.session.execute(select(Topic).order_by(func.lower(Topic.name))).scalars())


# --- one agent --------------------------------------------------------------------------------


@dataclass
class AgentSummary:
    open_load: int
    open_by_topic: list[Bar]
    closed_today: int
    closed_this_week: int
    week_start: date
    medians: Medians
    days: list[DayCounts]


def agent_summary(user_id: int, period: Period) -> AgentSummary:
    """An agent's open load (by topic), closed today and this week (weeks start on Monday, local
    time), medians and daily figures over the period."""
    now = today()
    week_start = now - timedelta(days=now.weekday())
    rows = db.session.execute(
        select(Topic.id, Topic.name, func.count())
        .join(Ticket, Ticket.topic_id == Topic.id)
        .where(Ticket.status == OPEN, Ticket.assignee_id == user_id)
        .group_by(Topic.id, Topic.name)
        .order_by(func.count().desc(), Topic.name)
    ).all()
    by_topic = [Bar(topic_id, name, int(n)) for topic_id, name, n in rows]
    c = TicketDailyCount
    closed_today, closed_week = db.session.execute(
        select(
            func.sum(case((c.day == now, c.closed), else_=0)),
            func.sum(c.closed),
        ).where(c.assignee_id == user_id, c.day >= week_start, c.day <= now)
    ).one()
    medians = median_times(period, assignee_id=user_id).by_agent.get(user_id, Medians())
    return AgentSummary(
        open_load=sum(int(b.value) for b in by_topic),
        open_by_topic=by_topic,
        closed_today=int(closed_today or 0),
        closed_this_week=int(closed_week or 0),
        week_start=week_start,
        medians=medians,
        days=daily_counts(period, assignee_id=user_id),
    )


# --- CSV export ---------------------------------------------------------------------------------

CSV_COLUMNS = (
    "ticket_uuid",
    "contact_name",
    "urn",
    "topic",
    "assignee",
    "status",
    "opened_on",
    "closed_on",
    "first_reply_seconds",
    "resolution_seconds",
)
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
EXPORT_BATCH = 1_000


def csv_cell(value: object) -> object:
    """A value made safe for spreadsheets: text that would start a formula gets a leading quote."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _seconds(start: datetime | None, end: datetime | None) -> int | str:
    return round((end - start).total_seconds()) if start and end else ""


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment else ""


def export_rows(ticket_filter: TicketFilter, user: User, *, batch: int | None = None) -> Iterator[tuple]:
    """The tickets of a folder + filters, oldest first, as CSV rows; streamed in batches through a
    server-side cursor, so memory stays flat whatever the number of tickets."""
    assignee = aliased(User)
    first_urn = (
        select(ContactURN.identity)
        .where(ContactURN.contact_id == Ticket.contact_id)
        .order_by(ContactURN.id)
        .limit(1)
        .scalar_subquery()
    )
    stmt = (
        select(
            Ticket.uuid,
            Contact.name,
            first_urn,
            Topic.name,
            assignee.name,
            assignee.email,
            Ticket.status,
            Ticket.opened_on,
            Ticket.closed_on,
            Ticket.first_reply_on,
        )
        .join(Contact, Contact.id == Ticket.contact_id)
        .join(Topic, Topic.id == Ticket.topic_id)
        .outerjoin(assignee, assignee.id == Ticket.assignee_id)
        .where(*filter_conditions(ticket_filter, user))
        .order_by(Ticket.id)
        .execution_options(yield_per=batch or EXPORT_BATCH)
    )
    for row in db.session.execute(stmt):
        uuid, contact_name, urn, topic, a_name, a_email, status, opened_on, closed_on, first_reply_on = row
        yield (
            uuid,
            csv_cell(contact_name or ""),
            csv_cell(urn or ""),
            csv_cell(topic),
            csv_cell(a_name or a_email or ""),
            status,
            _iso(opened_on),
            _iso(closed_on),
            _seconds(opened_on, first_reply_on),
            _seconds(opened_on, closed_on),
        )


def export_csv(ticket_filter: TicketFilter, user: User, *, batch: int | None = None) -> Iterator[str]:
    """CSV text in chunks of `batch` rows (default EXPORT_BATCH), header first."""
    batch = batch or EXPORT_BATCH
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    pending = 0
    for row in export_rows(ticket_filter, user, batch=batch):
        writer.writerow(row)
        pending += 1
        if pending >= batch:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    yield buffer.getvalue()
