"""People: invitations by email, password reset links, and failed sign-in attempts (for rate limiting)."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ticketer.clock import utcnow
from ticketer.extensions import db
from ticketer.models import User, UTCDateTime

# An invitation or reset link is pending until used or cancelled (it may still have expired).
_PENDING = "accepted_on IS NULL AND cancelled_on IS NULL"


class LinkStatus(StrEnum):
    PENDING = "pending"
    EXPIRED = "expired"
    USED = "used"
    CANCELLED = "cancelled"


class Invitation(db.Model):
    """An email invited to join with a role. Only a hash of the emailed token is kept."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_on: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_on: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    cancelled_on: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Delivery: the last successful send, and the error of the last attempt (None when it went out).
    last_sent_on: Mapped[datetime | None] = mapped_column(UTCDateTime)
    send_error: Mapped[str | None] = mapped_column(Text)

    invited_by: Mapped[User | None] = relationship(foreign_keys=[invited_by_id])

    __table_args__ = (
        # One pending invitation per email, even when two admins invite at once.
        Index(
            "uq_invitations_pending_email",
            "email",
            unique=True,
            sqlite_where=text(_PENDING),
            postgresql_where=text(_PENDING),
        ),
    )

    @property
    def status(self) -> LinkStatus:
        if self.cancelled_on is not None:
            return LinkStatus.CANCELLED
        if self.accepted_on is not None:
            return LinkStatus.USED
        if self.expires_on <= utcnow():
            return LinkStatus.EXPIRED
        return LinkStatus.PENDING


class PasswordReset(db.Model):
    """A single-use link, sent by an admin, to set a new password. Only a hash of the token is kept."""

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_on: Mapped[datetime] = mapped_column(UTCDateTime)
    used_on: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_on: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_sent_on: Mapped[datetime | None] = mapped_column(UTCDateTime)
    send_error: Mapped[str | None] = mapped_column(Text)

    user: Mapped[User] = relationship(foreign_keys=[user_id])

    @property
    def status(self) -> LinkStatus:
        if self.cancelled_on is not None:
            return LinkStatus.CANCELLED
        if self.used_on is not None:
            return LinkStatus.USED
        if self.expires_on <= utcnow():
            return LinkStatus.EXPIRED
        return LinkStatus.PENDING


class SignInFailure(db.Model):
    """One failed sign-in, counted per email and per address; shared by every web worker."""

    __tablename__ = "sign_in_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    address: Mapped[str] = mapped_column(String(64))
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_sign_in_failures_email_created", "email", "created_on"),
        Index("ix_sign_in_failures_address_created", "address", "created_on"),
        Index("ix_sign_in_failures_created", "created_on"),
    )


class SignIn(db.Model):
    """One sign-in (one browser): its cookies are good while this row lives. Signing out deletes it.

    Only a hash of the cookie's sign-in token is kept.
    """

    __tablename__ = "sign_ins"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # As long as the cookie it belongs to: the remember cookie's life, or the session cookie's.
    expires_on: Mapped[datetime] = mapped_column(UTCDateTime)
