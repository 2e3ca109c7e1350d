"""Workspace connections: the chatbot workspaces Ticketer talks to, and where each pull of their
messages has got to."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ticketer.clock import utcnow
from ticketer.extensions import db
from ticketer.models import Message, UTCDateTime, new_uuid


class ConnectionKind(StrEnum):
    RAPIDPRO = "rapidpro"  # RapidPro, TextIt or any server with RapidPro's API v2


class Connection(db.Model):
    """A workspace: its server, its API token (kept to call it, never shown again) and settings."""

    __tablename__ = "connections"
    __table_args__ = (Index("uq_connections_name_lower", func.lower(text("name")), unique=True),)

    Kind = ConnectionKind

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16), default=ConnectionKind.RAPIDPRO.value)
    base_url: Mapped[str] = mapped_column(String(500))
    api_token: Mapped[str] = mapped_column(String(255))
    # While an agent talks: interrupt the contact's flow runs and keep them in the handoff group.
    silence_bot: Mapped[bool] = mapped_column(default=True)
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    sync: Mapped["ConnectionSync"] = relationship(
        back_populates="connection", cascade="all, delete-orphan", passive_deletes=True, uselist=False
    )

    def __str__(self) -> str:
        return self.name


class ConnectionSync(db.Model):
    """Where the pull of a workspace's messages is, advanced only in the transaction that stored them.

    RapidPro lists messages newest first. A pass reads the window `created_on >= after`; each page
    is stored with `resume_before` (the oldest created_on stored so far) and `window_newest`, so a
    pass cut short resumes with `before=resume_before` and skips nothing; when a pass reaches its
    last page, `after` moves to `window_newest`. Boundaries are inclusive on RapidPro's side: the
    few messages read twice are dropped by the unique index on messages.external_uuid.
    """

    __tablename__ = "connection_syncs"

    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"), primary_key=True)
    after: Mapped[datetime] = mapped_column(UTCDateTime)
    window_newest: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resume_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Throttled (429 + Retry-After) or failing: no request before this moment.
    retry_on: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failures: Mapped[int] = mapped_column(default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    last_run_on: Mapped[datetime | None] = mapped_column(UTCDateTime)

    connection: Mapped[Connection] = relationship(back_populates="sync")


# A workspace message is stored once, however often a pull reads it (an index, not a constraint:
# SQLite adds it without rebuilding the messages table).
Index("uq_messages_external_uuid", Message.__table__.c.external_uuid, unique=True)
