"""SLA targets: first reply within N minutes, resolution within M minutes, per topic.

Each open ticket in a topic with a target gets a TicketDeadline row (computed when it opens, is
reopened or changes topic, and when the target changes), optionally counting only the
workspace's business hours. The ticket lists read them through ticketer/ticket_deadlines.py;
`mark_breaches` records each missed deadline once (unique per ticket and kind), and
the notification of a breach is claimed before it is sent, so it is never sent twice.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from flask import current_app, has_app_context
from sqlalchemy import bindparam, delete, exists, insert, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ticketer import mail
from ticketer.clock import utcnow
from ticketer.errors import NotFound, ValidationError
from ticketer.extensions import db
from ticketer.models import Ticket, TicketStatus, Topic, User, UTCDateTime
from ticketer.models.supervision import BusinessHours, SLABreach, SLATarget, TicketDeadline
from ticketer.roles import Capability, Role, require
from ticketer.services.ticket_changes import Change, chunks

MINUTES_MAX = 60 * 24 * 365
Kind = SLABreach.Kind


# --- business hours -------------------------------------------------------------------------


def business_hours() -> BusinessHours:
    """The workspace's business hours (Mon-Fri 09:00-17:00 in WORKSPACE_TIMEZONE until someone sets them)."""
    hours = db.session.get(BusinessHours, 1)
    if hours is not None:
        return hours
    zone = (current_app.config.get("WORKSPACE_TIMEZONE") if has_app_context() else None) or "UTC"
    return BusinessHours(id=1, days="1,2,3,4,5", start_minute=9 * 60, end_minute=17 * 60, time_zone=zone)


def set_business_hours(
    *, days: Sequence[int], start_minute: int, end_minute: int, time_zone: str, by: User | None
) -> BusinessHours:
    """Set the workspace's business days (ISO weekdays 1-7), daily hours and time zone."""
    require(by, Capability.MANAGE_TOPICS)
    day_set = sorted({int(d) for d in days})
    if not day_set or any(d < 1 or d > 7 for d in day_set):
        raise ValidationError("Pick at least one business day.", field="days")
    if not (0 <= start_minute < end_minute <= 24 * 60):
        raise ValidationError("Business hours must end after they start.", field="end")
    if time_zone not in available_timezones():
        raise ValidationError("Unknown time zone (use a name like America/Guayaquil).", field="time_zone")
    hours = db.session.get(BusinessHours, 1)
    if hours is None:
        hours = BusinessHours(id=1)
        db.session.add(hours)
    hours.days = ",".join(str(d) for d in day_set)
    hours.start_minute = start_minute
    hours.end_minute = end_minute
    hours.time_zone = time_zone
    hours.modified_on = utcnow()
    db.session.flush()
    refresh_deadlines(_open_ids(business_hours_only=True))
    return hours


def add_business_minutes(start: datetime, minutes: int, hours: BusinessHours) -> datetime:
    """`start` plus `minutes` counted only inside business hours (UTC in, UTC out)."""
    try:
        zone = ZoneInfo(hours.time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    days = set(hours.weekdays)
    if not days or hours.start_minute >= hours.end_minute:
        return start + timedelta(minutes=minutes)
    local = start.astimezone(zone)
    remaining = timedelta(minutes=minutes)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    cursor = local.replace(tzinfo=None)
    for _ in range(366 * 20):
        if day.isoweekday() in days:
            opens = day + timedelta(minutes=hours.start_minute)
            closes = day + timedelta(minutes=hours.end_minute)
            begin = max(opens, cursor)
            if begin < closes:
                if begin + remaining <= closes:
                    return (begin + remaining).replace(tzinfo=zone).astimezone(start.tzinfo)
                remaining -= closes - begin
        day += timedelta(days=1)
        cursor = day
    return start + timedelta(minutes=minutes)


# --- targets and deadlines ------------------------------------------------------------------


def get_target(topic_id: int) -> SLATarget | None:
    return db.session.get(SLATarget, topic_id)


def _check_minutes(value: int | None, field: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or not 1 <= value <= MINUTES_MAX:
        raise ValidationError(f"Enter minutes between 1 and {MINUTES_MAX:,}, or leave it empty.", field=field)
    return value


def configure_target(
    topic_id: int,
    *,
    first_reply_minutes: int | None,
    resolution_minutes: int | None,
    business_hours_only: bool = False,
    by: User | None,
) -> SLATarget:
    """Set a topic's SLA target (empty minutes: no target); open tickets' deadlines follow."""
    require(by, Capability.MANAGE_TOPICS)
    if db.session.get(Topic, topic_id) is None:
        raise NotFound("That topic doesn't exist.")
    target = get_target(topic_id)
    if target is None:
        target = SLATarget(topic_id=topic_id)
        db.session.add(target)
    target.first_reply_minutes = _check_minutes(first_reply_minutes, "first_reply_minutes")
    target.resolution_minutes = _check_minutes(resolution_minutes, "resolution_minutes")
    target.business_hours_only = bool(business_hours_only)
    target.modified_on = utcnow()
    db.session.flush()
    refresh_deadlines(
        list(
            db.session.execute(
                select(Ticket.id).where(Ticket.topic_id == topic_id, Ticket.status == TicketStatus.OPEN)
            ).scalars()
        )
    )
    return target


def _open_ids(*, business_hours_only: bool) -> list[int]:
    return list(
        db.session.execute(
            select(Ticket.id)
            .join(SLATarget, SLATarget.topic_id == Ticket.topic_id)
            .where(Ticket.status == TicketStatus.OPEN, SLATarget.business_hours_only.is_(business_hours_only))
        ).scalars()
    )


def _due(start: datetime, minutes: int | None, target: SLATarget, hours: BusinessHours | None) -> datetime | None:
    if minutes is None:
        return None
    if target.business_hours_only:
        return add_business_minutes(start, minutes, hours)
    return start + timedelta(minutes=minutes)


_TICKETS = Ticket.__table__
_TARGETS = SLATarget.__table__
# Built once: runs for every ticket opened. A row has the ticket's times and its topic's target.
_TARGETS_OF = (
    select(
        _TICKETS.c.id.label("ticket_id"),
        _TICKETS.c.opened_on,
        _TICKETS.c.first_reply_on,
        _TARGETS.c.first_reply_minutes,
        _TARGETS.c.resolution_minutes,
        _TARGETS.c.business_hours_only,
    )
    .join(_TARGETS, _TARGETS.c.topic_id == _TICKETS.c.topic_id)
    .where(_TICKETS.c.id.in_(bindparam("ids", expanding=True)), _TICKETS.c.status == TicketStatus.OPEN.value)
)


def refresh_deadlines(ticket_ids: Sequence[int], *, restarted_on: datetime | None = None, fresh: bool = False) -> None:
    """Recompute the deadlines of these tickets from their topic's target.

    First reply is due from when the ticket opened, while no reply has been sent; resolution from
    when it opened, or from `restarted_on` (a reopen). `fresh`: the tickets have no deadlines yet
    (just opened), so there is nothing to delete. A ticket whose topic has no target costs one query.
    """
    hours: BusinessHours | None = None
    for chunk in chunks(ticket_ids):
        rows = db.session.execute(_TARGETS_OF, {"ids": chunk}).all()
        new_rows = []
        for target in rows:
            ticket_id, opened_on, first_reply_on = target.ticket_id, target.opened_on, target.first_reply_on
            if target.first_reply_minutes is None and target.resolution_minutes is None:
                continue
            if target.business_hours_only and hours is None:
                hours = business_hours()
            first_due = None
            if first_reply_on is None:
                first_due = _due(opened_on, target.first_reply_minutes, target, hours)
            new_rows.append(
                {
                    "ticket_id": ticket_id,
                    "first_reply_due_on": first_due,
                    "resolution_due_on": _due(restarted_on or opened_on, target.resolution_minutes, target, hours),
                }
            )
        if not fresh:
            db.session.execute(delete(TicketDeadline).where(TicketDeadline.ticket_id.in_(chunk)))
        if new_rows:
            db.session.execute(insert(TicketDeadline), new_rows)


# --- the ticket effects (run from the table in ticketer/services/effects.py) ---------------


def start_deadlines(change: Change) -> None:
    """Effect of an open: the new tickets' deadlines, from their topic's target."""
    refresh_deadlines(change.ticket_ids, fresh=True)


def move_deadlines(change: Change) -> None:
    """Effect of a topic change: the deadlines follow the new topic's target."""
    refresh_deadlines(change.ticket_ids)


def restart_deadlines(change: Change) -> None:
    """Effect of a reopen: resolution is due again, counted from the reopen."""
    refresh_deadlines(change.ticket_ids, restarted_on=change.now)


def clear_deadlines(change: Change) -> None:
    """Effect of a close: only open tickets have deadlines, so the table stays as small as the backlog."""
    for chunk in chunks(change.ticket_ids):
        db.session.execute(delete(TicketDeadline).where(TicketDeadline.ticket_id.in_(chunk)))


# --- breaches -------------------------------------------------------------------------------


def _insert_ignoring_duplicates(table):
    if db.session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=["ticket_id", "kind"])
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=["ticket_id", "kind"])


def mark_breaches(now: datetime | None = None) -> int:
    """Record every missed deadline of an open ticket, once per (ticket, kind); returns how many are new.

    Set-based: one INSERT ... SELECT per kind; the unique (ticket, kind) constraint makes a second,
    or a concurrent, run add nothing.
    """
    now = now or utcnow()
    added = 0
    for kind, due, pending in (
        (Kind.FIRST_REPLY, TicketDeadline.first_reply_due_on, Ticket.first_reply_on.is_(None)),
        (Kind.RESOLUTION, TicketDeadline.resolution_due_on, literal(True)),
    ):
        already = exists().where(SLABreach.ticket_id == TicketDeadline.ticket_id, SLABreach.kind == kind.value)
        source = (
            select(
                TicketDeadline.ticket_id,
                literal(kind.value),
                due,
                literal(now, UTCDateTime),
                literal(0),
            )
            .join(Ticket, Ticket.id == TicketDeadline.ticket_id)
            .where(Ticket.status == TicketStatus.OPEN, due.is_not(None), due < now, pending, ~already)
        )
        inserted = db.session.execute(
            _insert_ignoring_duplicates(SLABreach.__table__)
            .from_select(["ticket_id", "kind", "due_on", "breached_on", "attempts"], source)
            .returning(SLABreach.__table__.c.id)
        ).all()
        added += len(inserted)
    return added


@dataclass(frozen=True)
class BreachMail:
    breach_id: int
    to: list[str]
    content: mail.Mail  # templates/mail/sla_breach.txt and .html


def pending_notifications(limit: int = 500, max_attempts: int = 5) -> list[int]:
    return list(
        db.session.execute(
            select(SLABreach.id)
            .where(SLABreach.notified_on.is_(None), SLABreach.attempts < max_attempts)
            .order_by(SLABreach.id)
            .limit(limit)
        ).scalars()
    )


def _recipients(ticket: Ticket) -> list[str]:
    if ticket.assignee is not None and ticket.assignee.active:
        return [ticket.assignee.email]
    for role in (Role.SUPERVISOR, Role.ADMIN):
        emails = list(
            db.session.execute(
                select(User.email).where(User.role == role.value, User.active.is_(True)).order_by(User.email)
            ).scalars()
        )
        if emails:
            return emails
    return []


def claim_notification(breach_id: int, *, public_url: str, now: datetime | None = None) -> BreachMail | None:
    """Claim a breach's mail (so no other run sends it) and compose it; None when already claimed.

    The caller commits the claim before sending, and calls `release_notification` if sending fails.
    """
    now = now or utcnow()
    claimed = db.session.execute(
        update(SLABreach)
        .where(SLABreach.id == breach_id, SLABreach.notified_on.is_(None))
        .values(notified_on=now, attempts=SLABreach.attempts + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        return None
    breach = db.session.execute(
        select(SLABreach).where(SLABreach.id == breach_id).execution_options(populate_existing=True)
    ).scalar_one()
    ticket = breach.ticket
    to = _recipients(ticket)
    breach.notified_to = ", ".join(to)[:1000]
    db.session.flush()
    if not to:
        return None
    contact = ticket.contact.name or ticket.contact.primary_urn or "a contact"
    what = "first reply" if breach.kind == Kind.FIRST_REPLY else "resolution"
    composed = mail.render_mail(
        "sla_breach",
        subject=f"SLA missed: {what} for {contact} ({ticket.topic.name})"[:200],
        what=what,
        due_on=breach.due_on,
        contact=contact,
        topic=ticket.topic.name,
        assignee=ticket.assignee.display_name if ticket.assignee else None,
        ticket_url=f"{public_url}/admin/tickets/{ticket.uuid}",
    )
    return BreachMail(breach_id=breach.id, to=to, content=composed)


def release_notification(breach_id: int) -> None:
    """Sending failed: let a later run try again (attempts still counts this one)."""
    db.session.execute(
        update(SLABreach)
        .where(SLABreach.id == breach_id)
        .values(notified_on=None, notified_to=None)
        .execution_options(synchronize_session=False)
    )
