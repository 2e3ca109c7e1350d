"""Keeping the daily ticket counts: the ticket effect (ticketer/services/effects.py), squashing, and a
rebuild from the tickets.

Every statement here is set-based: closing 10,000 tickets adds a handful of grouped rows (one per
topic and assignee among them), not 10,000.
"""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app
from sqlalchemy import Column, Date, MetaData, Table, bindparam, delete, exists, func, insert, literal, select

from ticketer.extensions import db
from ticketer.models import Ticket, TicketEvent, UTCDateTime
from ticketer.models.reports import TicketDailyCount
from ticketer.services.ticket_changes import Change, chunks

Kind = TicketEvent.Kind
# Which count column each event kind adds to; other kinds (assigned, note_added, topic_changed)
# leave the daily counts alone.
COUNTED_KINDS = {Kind.OPENED: "opened", Kind.CLOSED: "closed", Kind.REOPENED: "reopened"}


def workspace_timezone() -> ZoneInfo:
    """The workspace's time zone (WORKSPACE_TIMEZONE, default UTC): it decides a ticket's local day."""
    name = current_app.config.get("WORKSPACE_TIMEZONE") or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise RuntimeError(
            f"WORKSPACE_TIMEZONE={name!r} is not an IANA time zone name (e.g. UTC, America/Guayaquil)."
        ) from None


def local_day(moment: datetime, tz: ZoneInfo | None = None) -> date:
    """The workspace-local calendar day of an aware UTC instant."""
    return moment.astimezone(tz or workspace_timezone()).date()


def day_start_utc(day: date, tz: ZoneInfo | None = None) -> datetime:
    """The instant a local day begins (DST-aware), as aware UTC."""
    return datetime.combine(day, time(0), tzinfo=tz or workspace_timezone()).astimezone(UTC)


def _count_statement(column: str):
    counts = {name: literal(0) for name in COUNTED_KINDS.values()}
    counts[column] = func.count()
    tickets = Ticket.__table__
    return insert(TicketDailyCount.__table__).from_select(
        ["day", "topic_id", "assignee_id", *counts],
        select(bindparam("day", type_=Date), tickets.c.topic_id, tickets.c.assignee_id, *counts.values())
        .where(tickets.c.id.in_(bindparam("ids", expanding=True)))
        .group_by(tickets.c.topic_id, tickets.c.assignee_id),
    )


# Built once: the effect runs for every ticket opened, closed or reopened.
_COUNT_STATEMENTS = {kind: _count_statement(column) for kind, column in COUNTED_KINDS.items()}


def count_daily_change(change: Change) -> None:
    """Effect of an open, close or reopen: add the tickets to today's counts, by topic and assignee.

    It reads the tickets as they are after the change, auto-assignment included: an auto-assigned
    ticket counts as opened under the agent it went to (effects.py says why).
    """
    statement = _COUNT_STATEMENTS[change.kind]
    day = local_day(change.now)
    for chunk in chunks(change.ticket_ids):
        db.session.execute(statement, {"day": day, "ids": chunk})


def _same_group(a, b) -> list:
    return [a.day == b.day, a.topic_id == b.topic_id, a.assignee_id.is_not_distinct_from(b.assignee_id)]


def squash_daily_counts(since: date | None = None) -> int:
    """Fold the rows of each (day, topic, assignee) into one row, for days from `since` (None: all
    days). Returns the rows removed. The effect only adds rows for today's local day, so a nightly
    run with `since` a few days back keeps the table at one row per group.

    Sums never change. Safe while tickets change: only rows that existed when it began are folded
    (on PostgreSQL in one statement, so its snapshot sees exactly the rows it deletes; SQLite
    serialises writers, so its two statements see the same rows).
    """
    counts = TicketDailyCount.__table__
    other = counts.alias("other")
    sums = [func.sum(counts.c.opened), func.sum(counts.c.closed), func.sum(counts.c.reopened)]
    key = [counts.c.day, counts.c.topic_id, counts.c.assignee_id]
    names = ["day", "topic_id", "assignee_id", "opened", "closed", "reopened"]
    recent = [counts.c.day >= since] if since is not None else []
    total = select(func.count()).select_from(counts).where(*recent)
    before = db.session.scalar(total)
    if db.session.get_bind().dialect.name == "postgresql":
        doomed = (
            delete(counts)
            .where(*recent, exists().where(other.c.id != counts.c.id, *_same_group(other.c, counts.c)))
            .returning(*counts.c)
            .cte("doomed")
        )
        db.session.execute(
            insert(counts).from_select(
                names,
                select(
                    doomed.c.day,
                    doomed.c.topic_id,
                    doomed.c.assignee_id,
                    func.sum(doomed.c.opened),
                    func.sum(doomed.c.closed),
                    func.sum(doomed.c.reopened),
                ).group_by(doomed.c.day, doomed.c.topic_id, doomed.c.assignee_id),
            )
        )
    else:
        last_id = db.session.scalar(select(func.max(counts.c.id)))
        if last_id is None:
            return 0
        duplicated = exists().where(other.c.id != counts.c.id, other.c.id <= last_id, *_same_group(other.c, counts.c))
        old = [*recent, counts.c.id <= last_id, duplicated]
        db.session.execute(insert(counts).from_select(names, select(*key, *sums).where(*old).group_by(*key)))
        db.session.execute(delete(counts).where(*old))
    return before - db.session.scalar(total)


def _calendar(first: date, last: date, tz: ZoneInfo) -> Table:
    """A temporary table of the local days first..last and the UTC instant each begins."""
    table = Table(
        "report_calendar",
        MetaData(),
        Column("starts_on", UTCDateTime, primary_key=True),
        Column("day", Date),
        prefixes=["TEMPORARY"],
    )
    connection = db.session.connection()
    table.drop(connection, checkfirst=True)
    table.create(connection)
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    for start in range(0, len(days), 2_000):
        connection.execute(
            insert(table), [{"starts_on": day_start_utc(d, tz), "day": d} for d in days[start : start + 2_000]]
        )
    return table


def rebuild_daily_counts() -> int:
    """Replace the daily counts by ones computed from the tickets as they are now. Returns rows written.

    For a database that had tickets before the counts existed (or a benchmark). Tickets carry only
    their current topic, assignee and last close, so this attributes every count to those, and
    counts each ticket at most once as closed; the effect's counts are finer from then on.
    """
    tz = workspace_timezone()
    bounds = db.session.execute(
        select(func.min(Ticket.opened_on), func.max(Ticket.closed_on), func.max(Ticket.opened_on))
    ).one()
    db.session.execute(delete(TicketDailyCount))
    if bounds[0] is None:
        return 0
    newest = max(b for b in bounds[1:] if b is not None)
    calendar = _calendar(local_day(bounds[0], tz), local_day(newest, tz), tz)

    def day_of(moment):
        return (
            select(calendar.c.day)
            .where(calendar.c.starts_on <= moment)
            .order_by(calendar.c.starts_on.desc())
            .limit(1)
            .scalar_subquery()
        )

    for column, moment in (("opened", Ticket.opened_on), ("closed", Ticket.closed_on)):
        per_ticket = (
            select(day_of(moment).label("day"), Ticket.topic_id, Ticket.assignee_id)
            .where(moment.is_not(None))
            .subquery()
        )
        db.session.execute(
            insert(TicketDailyCount).from_select(
                ["day", "topic_id", "assignee_id", column],
                select(per_ticket.c.day, per_ticket.c.topic_id, per_ticket.c.assignee_id, func.count()).group_by(
                    per_ticket.c.day, per_ticket.c.topic_id, per_ticket.c.assignee_id
                ),
            )
        )
    calendar.drop(db.session.connection())
    return db.session.scalar(select(func.count()).select_from(TicketDailyCount))
