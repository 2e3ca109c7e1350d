"""Typed SQLAlchemy 2 models of the desk: users, topics, contacts, tickets, their events and messages."""

import secrets
import uuid as uuid_lib
from datetime import UTC, datetime
from enum import StrEnum

from flask_login import UserMixin
from sqlalchemy import JSON, ForeignKey, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import DateTime, TypeDecorator
from werkzeug.security import check_password_hash, generate_password_hash

from ticketer.clock import utcnow
from ticketer.extensions import db
from ticketer.roles import ASSIGNABLE_ROLES, Capability, Role, role_can

# The largest id any table can hold (a signed 64-bit integer): a larger number names no row, and
# the drivers refuse to send it (OverflowError on SQLite, out of range on PostgreSQL).
MAX_ID = 2**63 - 1


class UTCDateTime(TypeDecorator):
    """Stores naive UTC, returns aware UTC: the same on SQLite and PostgreSQL."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        return value.replace(tzinfo=UTC) if value is not None else None


# JSON everywhere; JSONB on PostgreSQL (comparable, indexable).
JSONType = JSON().with_variant(JSONB(), "postgresql")


def new_uuid() -> str:
    return str(uuid_lib.uuid4())


def new_session_token() -> str:
    return secrets.token_urlsafe(16)


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    role: Mapped[str] = mapped_column(String(16), default=Role.AGENT.value)
    password_hash: Mapped[str | None] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(default=True)
    # Part of the login cookie; rotating it ends every session of this user.
    session_token: Mapped[str] = mapped_column(String(32), default=new_session_token)
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_on: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # Not a column: the token of the sign-in (models.people.SignIn) this object was loaded through.
    sign_in_token = ""

    def get_id(self) -> str:
        """What the login cookies hold: "<id>:<session token>:<sign-in token>"."""
        return f"{self.id}:{self.session_token}:{self.sign_in_token}"

    @property
    def is_active(self) -> bool:
        return self.active

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return bool(self.password_hash) and check_password_hash(self.password_hash, password)

    def can(self, capability: Capability) -> bool:
        return self.active and role_can(self.role, capability)

    @property
    def can_take_tickets(self) -> bool:
        return self.active and self.role in ASSIGNABLE_ROLES

    @property
    def display_name(self) -> str:
        return self.name or self.email

    def __repr__(self) -> str:
        return f"<User {self.email} {self.role}>"


class Topic(db.Model):
    __tablename__ = "topics"
    __table_args__ = (Index("uq_topics_name_lower", func.lower(text("name")), unique=True),)

    DEFAULT_NAME = "General"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(64))
    is_default: Mapped[bool] = mapped_column(default=False)
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __str__(self) -> str:
        return self.name


class Contact(db.Model):
    __tablename__ = "contacts"
    # Search by name prefix: lower(name) LIKE 'q%' on PostgreSQL whatever the collation (SQLite seeks
    # ix_contacts_name_lower by range instead).
    __table_args__ = (
        Index("ix_contacts_name_lower_pattern", text("lower(name) text_pattern_ops")).ddl_if(dialect="postgresql"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(128), default="")
    language: Mapped[str | None] = mapped_column(String(3))
    fields: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    modified_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The workspace the contact came from (ticketer/models/connections.py); None: the only one, if any.
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("connections.id"))

    urns: Mapped[list["ContactURN"]] = relationship(
        back_populates="contact", order_by="ContactURN.id", cascade="all, delete-orphan"
    )

    @property
    def primary_urn(self) -> str | None:
        return self.urns[0].identity if self.urns else None

    def __str__(self) -> str:
        return self.name or (self.primary_urn or self.uuid)


Index("ix_contacts_name_lower", func.lower(Contact.name))


class ContactURN(db.Model):
    """A contact's address on a channel, e.g. tel:+593987654321 or whatsapp:593987654321."""

    __tablename__ = "contact_urns"
    # Search by URN prefix with LIKE 'tel:+5939%' on PostgreSQL whatever the collation.
    __table_args__ = (
        Index("ix_contact_urns_identity_pattern", text("identity varchar_pattern_ops")).ddl_if(dialect="postgresql"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    identity: Mapped[str] = mapped_column(String(255), unique=True)
    scheme: Mapped[str] = mapped_column(String(32))
    path: Mapped[str] = mapped_column(String(255))

    contact: Mapped[Contact] = relationship(back_populates="urns")


class TicketStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Ticket(db.Model):
    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    topic_id: Mapped[int] = mapped_column(ForeignKey("topics.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(8), default=TicketStatus.OPEN.value)
    body: Mapped[str] = mapped_column(Text, default="")
    results: Mapped[dict] = mapped_column(JSONType, default=dict)
    opened_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    opened_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    opened_in_flow_uuid: Mapped[str | None] = mapped_column(String(36))
    opened_in_flow_name: Mapped[str | None] = mapped_column(String(128))
    closed_on: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_activity_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    first_reply_on: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Waiting for a reply: the contact wrote last (set by incoming messages, cleared by a reply).
    waiting_since: Mapped[datetime | None] = mapped_column(UTCDateTime)

    contact: Mapped[Contact] = relationship()
    topic: Mapped[Topic] = relationship()
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id])
    opened_by: Mapped[User | None] = relationship(foreign_keys=[opened_by_id])

    __table_args__ = (
        # A contact has at most one open ticket, enforced by the database even under concurrent opens.
        Index(
            "uq_tickets_open_contact",
            "contact_id",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
        # Folder lists: newest activity first within (status), (assignee, status) and (topic, status).
        Index("ix_tickets_status_activity", "status", "last_activity_on", "id"),
        Index("ix_tickets_assignee_status_activity", "assignee_id", "status", "last_activity_on", "id"),
        Index("ix_tickets_topic_status_activity", "topic_id", "status", "last_activity_on", "id"),
        Index("ix_tickets_contact", "contact_id"),
    )

    @property
    def is_open(self) -> bool:
        return self.status == TicketStatus.OPEN


class TicketEvent(db.Model):
    __tablename__ = "ticket_events"

    class Kind(StrEnum):
        OPENED = "opened"
        ASSIGNED = "assigned"
        NOTE_ADDED = "note_added"
        TOPIC_CHANGED = "topic_changed"
        CLOSED = "closed"
        REOPENED = "reopened"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str | None] = mapped_column(Text)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    topic_id: Mapped[int | None] = mapped_column(ForeignKey("topics.id"))

    ticket: Mapped[Ticket] = relationship()
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id])
    topic: Mapped[Topic | None] = relationship()

    __table_args__ = (Index("ix_ticket_events_ticket", "ticket_id", "id"),)


class Message(db.Model):
    __tablename__ = "messages"

    class Direction(StrEnum):
        IN = "in"
        OUT = "out"

    class Status(StrEnum):
        RECEIVED = "received"  # incoming messages
        QUEUED = "queued"
        SENDING = "sending"  # claimed by the dispatcher
        SENT = "sent"
        FAILED = "failed"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    direction: Mapped[str] = mapped_column(String(3))
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(8))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Delivery of outgoing messages by the dispatcher (ticketer/services/dispatch.py).
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    next_attempt_on: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_on: Mapped[datetime | None] = mapped_column(UTCDateTime)  # renewed by its holder: a lease
    claimed_by: Mapped[str | None] = mapped_column(String(36))  # the dispatcher pass holding the claim
    last_error: Mapped[str | None] = mapped_column(Text)
    # The workspace side (ticketer/services/conversation.py): the connection it came through or went
    # out on, the workspace's message uuid, its status there, and its attachments ({content_type, url}).
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("connections.id"))
    external_uuid: Mapped[str | None] = mapped_column(String(36))  # unique: see models/connections.py
    external_status: Mapped[str | None] = mapped_column(String(16))
    attachments: Mapped[list | None] = mapped_column(JSONType)

    contact: Mapped[Contact] = relationship()
    created_by: Mapped[User | None] = relationship()
    ticket: Mapped["Ticket | None"] = relationship(viewonly=True)  # read by the deliveries list

    __table_args__ = (
        Index("ix_messages_ticket", "ticket_id", "id"),
        Index("ix_messages_contact", "contact_id", "id"),
        Index("ix_messages_status_next", "status", "next_attempt_on"),
    )


# Models of other areas live in their own modules; importing them here registers their tables.
# (Each module imports what it needs from this package, which is complete by this line.)
from ticketer.models import api as _api  # noqa: E402,F401
from ticketer.models import connections as _connections  # noqa: E402,F401
from ticketer.models import flows as _flows  # noqa: E402,F401
from ticketer.models import folder_counts as _folder_counts  # noqa: E402,F401
from ticketer.models import media as _media  # noqa: E402,F401
from ticketer.models import people as _people  # noqa: E402,F401
from ticketer.models import reports as _reports  # noqa: E402,F401
from ticketer.models import supervision as _supervision  # noqa: E402,F401
