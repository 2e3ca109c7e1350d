"""Follow-up flows: the flows Ticketer can start, the triggers that start them, and the outbox of starts."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ticketer.clock import utcnow
from ticketer.extensions import db
from ticketer.models import Contact, JSONType, Ticket, Topic, UTCDateTime, new_uuid


class FlowEngine(StrEnum):
    RAPIDPRO = "rapidpro"  # a RapidPro-compatible server, through its API v2
    WEBHOOK = "webhook"  # a signed JSON POST to a URL
    BUILTIN = "builtin"  # message templates added to the contact's conversation


class Flow(db.Model):
    __tablename__ = "flows"

    id: Mapped[int] = mapped_column(primary_key=True)
    # For a RapidPro flow, the flow's uuid on that server; otherwise Ticketer's own.
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(128))
    engine: Mapped[str] = mapped_column(String(16))
    base_url: Mapped[str | None] = mapped_column(String(500))  # rapidpro
    api_token: Mapped[str | None] = mapped_column(String(255))  # rapidpro
    webhook_url: Mapped[str | None] = mapped_column(String(500))  # webhook
    webhook_secret: Mapped[str | None] = mapped_column(String(255))  # webhook
    templates: Mapped[list] = mapped_column(JSONType, default=list)  # builtin: message templates
    # Agent replies go out through this flow's engine (at most one flow has it; none = built-in).
    sends_replies: Mapped[bool] = mapped_column(default=False)
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __str__(self) -> str:
        return self.name


class Trigger(db.Model):
    """Start `flow` after a ticket is closed: for one topic, or for all topics (topic_id NULL)."""

    __tablename__ = "flow_triggers"

    id: Mapped[int] = mapped_column(primary_key=True)
    flow_id: Mapped[int] = mapped_column(ForeignKey("flows.id"))
    topic_id: Mapped[int | None] = mapped_column(ForeignKey("topics.id"))
    delay_minutes: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    flow: Mapped[Flow] = relationship()
    topic: Mapped[Topic | None] = relationship()

    __table_args__ = (
        # One active trigger per topic, and one active all-topics trigger (topic 0 stands for "all").
        Index(
            "uq_flow_triggers_active_topic",
            func.coalesce(text("topic_id"), 0),
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
    )


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


class FlowStart(db.Model):
    """The outbox: one row per flow start, recorded in the transaction that closed the ticket."""

    __tablename__ = "flow_starts"

    Status = DeliveryStatus

    id: Mapped[int] = mapped_column(primary_key=True)
    # Sent to the engine with every try, so receivers can drop repeats (at-least-once delivery).
    delivery_id: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    flow_id: Mapped[int] = mapped_column(ForeignKey("flows.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    trigger_id: Mapped[int | None] = mapped_column(ForeignKey("flow_triggers.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(10), default=DeliveryStatus.PENDING.value)
    due_on: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_on: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0)
    # The claim is a lease: the dispatcher pass holding it (claimed_by) renews claimed_on while it sends.
    claimed_on: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(36))
    last_error: Mapped[str | None] = mapped_column(Text)
    response: Mapped[str | None] = mapped_column(Text)  # the engine's answer, truncated
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_on: Mapped[datetime | None] = mapped_column(UTCDateTime)

    ticket: Mapped[Ticket] = relationship()
    flow: Mapped[Flow] = relationship()
    contact: Mapped[Contact] = relationship()

    __table_args__ = (
        # The dispatcher's claim: due pending rows, and stale sending rows.
        Index("ix_flow_starts_status_next", "status", "next_attempt_on"),
        Index("ix_flow_starts_ticket", "ticket_id"),
    )
