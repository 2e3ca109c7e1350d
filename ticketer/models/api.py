"""API tokens (stored hashed) and the answers remembered for Idempotency-Key retries."""

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ticketer.clock import utcnow
from ticketer.extensions import db
from ticketer.models import User, UTCDateTime


class ApiToken(db.Model):
    """A key for `Authorization: Token <key>`. Only its SHA-256 is kept; the key is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    # The first characters of the key, so people can tell their tokens apart in the panel.
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_on: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_on: Mapped[datetime | None] = mapped_column(UTCDateTime)

    created_by: Mapped[User] = relationship()

    @property
    def is_active(self) -> bool:
        return self.revoked_on is None


class IdempotencyKey(db.Model):
    """The first answer to a request sent with an Idempotency-Key, replayed to its retries.

    Unique per (scope, key): of two concurrent retries only one can insert the row, so only one
    does the work; the other waits for it and replays its answer.
    """

    __tablename__ = "api_idempotency_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    # "token:<id>" or "user:<id>": keys of different clients never collide.
    scope: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(255))
    token_id: Mapped[int | None] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"))
    # SHA-256 of method, path and body: the same key with another request is refused.
    fingerprint: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int] = mapped_column(Integer, default=0)
    response_body: Mapped[str] = mapped_column(Text, default="")
    created_on: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("scope", "key", name="uq_api_idempotency_keys_scope_key"),
        Index("ix_api_idempotency_keys_created_on", "created_on"),
    )
