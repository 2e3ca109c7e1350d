"""Supervisor settings: auto-assignment per topic, agent availability, SLA targets, business hours,
each ticket's SLA deadlines and the breaches marked against them."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ticketer.clock import utcnow
from ticketer.extensions import db
from ticketer.models import Ticket, Topic, User, UTCDateTime


class AssignmentStrategy(StrEnum):
    ROUND_ROBIN = "round_robin"
    FEWEST_OPEN = "fewest_open"

    @property
    def label(self) -> str:
        return {"round_robin": "round robin", "fewest_open": "fewest open tickets"}[self.value]


class AutoAssignment(db.Model):
    """A topic's auto-assignment: on or off, its strategy, and how many open tickets an agent may hold.

    The row is also the lock that serialises assignment in its topic (SELECT ... FOR UPDATE).
    """

    __tablename__ = "auto_assignments"

    topic_id: Mapped[int] = mapped_column(ForeignKey("topics.id", ondelete="CASCADE"), primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=False)
    strategy: Mapped[str] = mapped_column(String(16), default=AssignmentStrategy.ROUND_ROBIN.value)
    # Most open tickets (in any topic) an agent may hold before auto-assignment passes them by.
    capacity: Mapped[int] = mapped_column(default=10)
    # Round robin resumes after this agent (by user id).
    last_assigned_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    modified_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    topic: Mapped[Topic] = relationship()

    __table_args__ = (CheckConstraint("capacity >= 1", name="capacity_positive"),)


class PoolMember(db.Model):
    """An agent in a topic's auto-assignment pool."""

    __tablename__ = "auto_assignment_pool"

    id: Mapped[int] = mapped_column(primary_key=True)
    topic_id: Mapped[int] = mapped_column(ForeignKey("topics.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))

    user: Mapped[User] = relationship()

    __table_args__ = (
        UniqueConstraint("topic_id", "user_id", name="uq_auto_assignment_pool_topic_user"),
        Index("ix_auto_assignment_pool_user", "user_id"),
    )


class AgentStatus(db.Model):
    """An agent's "available" toggle (no row: available). Locked while assigning, so concurrent
    assignments can't push an agent past capacity."""

    __tablename__ = "agent_statuses"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    available: Mapped[bool] = mapped_column(default=True)
    modified_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SLATarget(db.Model):
    """A topic's service level: first reply within N minutes, resolution within M minutes."""

    __tablename__ = "sla_targets"

    topic_id: Mapped[int] = mapped_column(ForeignKey("topics.id", ondelete="CASCADE"), primary_key=True)
    first_reply_minutes: Mapped[int | None] = mapped_column()
    resolution_minutes: Mapped[int | None] = mapped_column()
    # Count only the workspace's business hours (see BusinessHours).
    business_hours_only: Mapped[bool] = mapped_column(default=False)
    modified_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    topic: Mapped[Topic] = relationship()


class BusinessHours(db.Model):
    """The workspace's business hours: one row (id 1). Days are ISO weekdays, "1,2,3,4,5" = Mon-Fri."""

    __tablename__ = "business_hours"

    id: Mapped[int] = mapped_column(primary_key=True)
    days: Mapped[str] = mapped_column(String(16), default="1,2,3,4,5")
    start_minute: Mapped[int] = mapped_column(default=9 * 60)  # minutes after local midnight
    end_minute: Mapped[int] = mapped_column(default=17 * 60)
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    modified_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def weekdays(self) -> list[int]:
        return sorted({int(d) for d in self.days.split(",") if d.strip().isdigit()})


class TicketDeadline(db.Model):
    """When an open ticket's first reply and resolution are due, from its topic's SLA target."""

    __tablename__ = "ticket_deadlines"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    first_reply_due_on: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution_due_on: Mapped[datetime | None] = mapped_column(UTCDateTime)

    ticket: Mapped[Ticket] = relationship()

    __table_args__ = (
        Index("ix_ticket_deadlines_first_reply", "first_reply_due_on"),
        Index("ix_ticket_deadlines_resolution", "resolution_due_on"),
    )


class SLABreach(db.Model):
    """A missed deadline, marked once per (ticket, kind); notified_on says the mail went out."""

    __tablename__ = "sla_breaches"

    class Kind(StrEnum):
        FIRST_REPLY = "first_reply"
        RESOLUTION = "resolution"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    due_on: Mapped[datetime] = mapped_column(UTCDateTime)
    breached_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    notified_on: Mapped[datetime | None] = mapped_column(UTCDateTime)
    notified_to: Mapped[str | None] = mapped_column(String(1000))
    attempts: Mapped[int] = mapped_column(default=0)

    ticket: Mapped[Ticket] = relationship()

    __table_args__ = (
        UniqueConstraint("ticket_id", "kind", name="uq_sla_breaches_ticket_kind"),
        Index("ix_sla_breaches_notified", "notified_on"),
    )
