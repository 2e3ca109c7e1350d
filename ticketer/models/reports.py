"""Reporting tables: daily ticket counts kept as tickets change, and indexes the dashboard reads by.

`ticket_daily_counts` works like RapidPro's squashed counts: every change INSERTs small delta rows
(never an UPDATE of a hot row, so concurrent closes never wait on each other), readers SUM them,
and `squash_daily_counts()` now and then folds the rows of one (day, topic, assignee) into one.
"""

from datetime import date

from sqlalchemy import Date, ForeignKey, Index, text
from sqlalchemy.orm import Mapped, mapped_column

from ticketer.extensions import db
from ticketer.models import Ticket
from ticketer.models.supervision import SLABreach


class TicketDailyCount(db.Model):
    """How many tickets were opened / closed / reopened on a workspace-local day, by topic and assignee.

    Each count is attributed to the ticket's topic and assignee at the moment of that event: a
    ticket opened in "Billing" and closed after moving to "Delivery" counts as opened in Billing and
    closed in Delivery; moving it later changes neither count. A ticket closed, reopened and closed
    again counts as closed twice (once on each day it was closed) and reopened once.
    """

    __tablename__ = "ticket_daily_counts"

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    topic_id: Mapped[int] = mapped_column(ForeignKey("topics.id", ondelete="CASCADE"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    opened: Mapped[int] = mapped_column(default=0)
    closed: Mapped[int] = mapped_column(default=0)
    reopened: Mapped[int] = mapped_column(default=0)

    __table_args__ = (
        # Covering: the daily chart and the per-agent page read these indexes alone; squashing
        # finds a row's group mates through the first.
        Index("ix_ticket_daily_counts_day", "day", "topic_id", "assignee_id", "opened", "closed"),
        Index("ix_ticket_daily_counts_assignee_day", "assignee_id", "day", "opened", "closed"),
    )


# Open load by topic and by assignee: partial indexes hold only open tickets, so the grouped
# counts read a small index whatever the number of closed tickets.
_OPEN = text("status = 'open'")
Index("ix_tickets_open_topic", Ticket.topic_id, sqlite_where=_OPEN, postgresql_where=_OPEN)
Index("ix_tickets_open_assignee", Ticket.assignee_id, sqlite_where=_OPEN, postgresql_where=_OPEN)
# Medians over a date range: covering indexes, so the range is read from the index alone.
Index("ix_tickets_closed_on", Ticket.closed_on, Ticket.opened_on, Ticket.assignee_id, Ticket.topic_id)
Index("ix_tickets_first_reply_on", Ticket.first_reply_on, Ticket.opened_on, Ticket.assignee_id, Ticket.topic_id)
# SLA breaches per day are read by the day each deadline passed.
Index("ix_sla_breaches_due_on", SLABreach.due_on, SLABreach.kind)
