"""Attachments of messages kept in Ticketer's media store (ticketer/services/media.py).

One row per attachment of a message: where it came from (`source_url`, the workspace's or the
API caller's link), what it is (the content type sniffed from its bytes once downloaded, else the
declared one), and where its bytes live (`storage_key` in the media store). Status:

    pending  waiting for the scheduler to download it (next_attempt_on, attempts)
    stored   its bytes are in the media store, served by the app (admin_views/media.py)
    link     not downloaded on purpose (a type Ticketer doesn't keep, or too large): shown as a
             link that says what it is
    failed   the download kept failing (or the target was refused): shown as a link with the error
"""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ticketer.clock import utcnow
from ticketer.extensions import db
from ticketer.models import UTCDateTime, new_uuid


class AttachmentStatus(StrEnum):
    PENDING = "pending"
    STORED = "stored"
    LINK = "link"
    FAILED = "failed"


class MessageAttachment(db.Model):
    __tablename__ = "message_attachments"

    Status = AttachmentStatus

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(default=0)
    source_url: Mapped[str | None] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(String(128), default="application/octet-stream")
    filename: Mapped[str] = mapped_column(String(255), default="")
    size: Mapped[int | None] = mapped_column()
    storage_key: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(8), default=AttachmentStatus.PENDING.value)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    next_attempt_on: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("message_id", "position", name="uq_message_attachments_position"),
        Index("ix_message_attachments_due", "status", "next_attempt_on"),
    )

    @property
    def is_stored(self) -> bool:
        return self.status == AttachmentStatus.STORED.value
