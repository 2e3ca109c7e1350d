"""Follow-up flows: create and edit flows and triggers, record flow starts when tickets close,
cancel them when tickets reopen, and retry failed deliveries.

The two ticket effects here (record_flow_starts, cancel_flow_starts) run from the table in
ticketer/services/effects.py.
"""

import uuid as uuid_lib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from urllib.parse import urlparse

from flask import current_app
from sqlalchemy import Integer, String, and_, case, exists, insert, literal, literal_column, or_, select, update
from sqlalchemy.orm import aliased

from ticketer.clock import utcnow
from ticketer.engines import outbound
from ticketer.errors import NotFound, ValidationError
from ticketer.extensions import db
from ticketer.models import Message, Ticket, Topic, User, UTCDateTime
from ticketer.models.flows import DeliveryStatus, Flow, FlowEngine, FlowStart, Trigger
from ticketer.roles import Capability, require
from ticketer.services.ticket_changes import Change, chunks
from ticketer.services.validation import MESSAGE_MAX_LENGTH, clean_text

NAME_MAX_LENGTH = 128
URL_MAX_LENGTH = 500
SECRET_MAX_LENGTH = 255
MAX_TEMPLATES = 10
MAX_DELAY_MINUTES = 60 * 24 * 30  # 30 days


# --- flows ----------------------------------------------------------------------------------


def get_flow(flow_id: int) -> Flow:
    flow = db.session.get(Flow, flow_id)
    if flow is None:
        raise NotFound("That flow doesn't exist.")
    return flow


def _clean_url(value: str | None, field: str) -> str:
    url = clean_text(value, field=field, max_length=URL_MAX_LENGTH, required=True)
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValidationError("Enter a URL starting with http:// or https://.", field=field)
    try:  # checked again on every connection the dispatcher makes (ticketer/engines/outbound.py)
        outbound.check_url(url, outbound.AllowedHosts.parse(current_app.config.get("ENGINE_ALLOWED_HOSTS", "")))
    except outbound.Refused as refused:
        raise ValidationError(f"Ticketer doesn't send to this address: {refused.message}.", field=field) from None
    return url


def _clean_uuid(value: str | None) -> str | None:
    text = (value or "").strip()
    if not text:
        return None
    try:
        return str(uuid_lib.UUID(text))
    except ValueError:
        raise ValidationError(
            "Enter the flow's UUID, e.g. 9b5f1c1e-7d0a-4c55-8f5e-2f7f2a3f6b10.", field="uuid"
        ) from None


def _clean_templates(templates: Sequence[str] | str | None) -> list[str]:
    if isinstance(templates, str):
        templates = templates.split("\n")
    cleaned = [clean_text(t, field="templates", max_length=MESSAGE_MAX_LENGTH) for t in (templates or [])]
    cleaned = [t for t in cleaned if t]
    if not cleaned:
        raise ValidationError("Write at least one message (one per line).", field="templates")
    if len(cleaned) > MAX_TEMPLATES:
        raise ValidationError(f"At most {MAX_TEMPLATES} messages.", field="templates")
    return cleaned


@dataclass(frozen=True)
class FlowSettings:
    """What an admin sets on a flow. Which fields count depends on the engine: rapidpro needs uuid,
    base_url and api_token; webhook needs webhook_url (webhook_secret is generated when empty);
    builtin needs templates (a list, or one message per line)."""

    name: str
    engine: str
    uuid: str | None = None
    base_url: str | None = None
    api_token: str | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = None
    templates: Sequence[str] | str | None = None
    sends_replies: bool = False


def _apply_flow_settings(flow: Flow, settings: FlowSettings) -> None:
    flow.name = clean_text(settings.name, field="name", max_length=NAME_MAX_LENGTH, required=True)
    try:
        kind = FlowEngine(settings.engine)
    except ValueError:
        raise ValidationError("Pick an engine.", field="engine") from None
    flow_uuid = _clean_uuid(settings.uuid)
    flow.engine = kind.value
    flow.base_url = flow.api_token = flow.webhook_url = flow.webhook_secret = None
    flow.templates = []
    if kind is FlowEngine.RAPIDPRO:
        if flow_uuid is None:
            raise ValidationError("Enter the UUID of the flow on the RapidPro server.", field="uuid")
        flow.base_url = _clean_url(settings.base_url, "base_url").rstrip("/")
        flow.api_token = clean_text(settings.api_token, field="api_token", max_length=SECRET_MAX_LENGTH, required=True)
    elif kind is FlowEngine.WEBHOOK:
        flow.webhook_url = _clean_url(settings.webhook_url, "webhook_url")
        secret = clean_text(settings.webhook_secret, field="webhook_secret", max_length=SECRET_MAX_LENGTH)
        if secret and len(secret) < 16:
            raise ValidationError("Use a secret of at least 16 characters (or leave it empty).", field="webhook_secret")
        flow.webhook_secret = secret or uuid_lib.uuid4().hex + uuid_lib.uuid4().hex
    else:
        flow.templates = _clean_templates(settings.templates)
        if settings.sends_replies:
            raise ValidationError(
                "The built-in engine keeps replies in Ticketer; pick a RapidPro or webhook flow to send them.",
                field="sends_replies",
            )
    if flow_uuid is not None:
        taken = db.session.execute(
            select(Flow.id).where(Flow.uuid == flow_uuid, Flow.id != (flow.id or 0))
        ).scalar_one_or_none()
        if taken is not None:
            raise ValidationError("Another flow already has this UUID.", field="uuid")
        flow.uuid = flow_uuid
    elif flow.uuid is None:
        flow.uuid = str(uuid_lib.uuid4())
    flow.sends_replies = bool(settings.sends_replies)


def _only_reply_flow(flow: Flow) -> None:
    if flow.sends_replies:
        db.session.execute(
            update(Flow).where(Flow.id != flow.id, Flow.sends_replies.is_(True)).values(sends_replies=False)
        )


def create_flow(settings: FlowSettings, *, by: User | None) -> Flow:
    """Add a flow on an engine (see FlowSettings). A webhook secret left empty is generated.

    `sends_replies` makes agent replies go out through this flow's engine (and through no other flow's).
    """
    require(by, Capability.INTEGRATIONS)
    flow = Flow(uuid=None)
    _apply_flow_settings(flow, settings)
    db.session.add(flow)
    db.session.flush()
    _only_reply_flow(flow)
    return flow


def update_flow(flow_id: int, settings: FlowSettings, *, by: User | None) -> Flow:
    """Change a flow's name, engine and settings. An empty token or secret keeps the current one, and
    so does an empty uuid unless the engine is RapidPro (where the uuid names the flow on the server)."""
    require(by, Capability.INTEGRATIONS)
    flow = get_flow(flow_id)
    kept = {}
    if settings.engine == flow.engine == FlowEngine.RAPIDPRO and not (settings.api_token or "").strip():
        kept["api_token"] = flow.api_token
    if settings.engine == flow.engine == FlowEngine.WEBHOOK and not (settings.webhook_secret or "").strip():
        kept["webhook_secret"] = flow.webhook_secret
    if not (settings.uuid or "").strip():
        kept["uuid"] = flow.uuid if settings.engine != FlowEngine.RAPIDPRO else None
    _apply_flow_settings(flow, replace(settings, **kept))
    db.session.flush()
    _only_reply_flow(flow)
    return flow


def reply_flow() -> Flow | None:
    """The flow whose engine sends agent replies; None means the built-in engine (kept in Ticketer)."""
    return db.session.execute(select(Flow).where(Flow.sends_replies.is_(True)).limit(1)).scalar_one_or_none()


# --- triggers -------------------------------------------------------------------------------


def get_trigger(trigger_id: int) -> Trigger:
    trigger = db.session.get(Trigger, trigger_id)
    if trigger is None:
        raise NotFound("That trigger doesn't exist.")
    return trigger


def _apply_trigger_settings(
    trigger: Trigger, *, flow_id: int | None, topic_id: int | None, delay_minutes: int | None, active: bool
) -> None:
    if flow_id is None or db.session.get(Flow, flow_id) is None:
        raise ValidationError("Pick a flow.", field="flow_id")
    if topic_id is not None and db.session.get(Topic, topic_id) is None:
        raise ValidationError("That topic doesn't exist.", field="topic_id")
    delay = int(delay_minutes or 0)
    if not 0 <= delay <= MAX_DELAY_MINUTES:
        raise ValidationError(f"The delay is between 0 and {MAX_DELAY_MINUTES:,} minutes.", field="delay_minutes")
    if active:
        clash = db.session.execute(
            select(Trigger.id).where(
                Trigger.active.is_(True),
                Trigger.topic_id.is_(None) if topic_id is None else Trigger.topic_id == topic_id,
                Trigger.id != (trigger.id or 0),
            )
        ).first()
        if clash is not None:
            where = "all topics" if topic_id is None else "this topic"
            raise ValidationError(f"There is already an active trigger for {where}.", field="topic_id")
    trigger.flow_id = flow_id
    trigger.topic_id = topic_id
    trigger.delay_minutes = delay
    trigger.active = bool(active)


def create_trigger(
    *, flow_id: int | None, topic_id: int | None = None, delay_minutes: int | None = 0, active: bool = True, by
) -> Trigger:
    """ "Start a flow after a ticket is closed": for one topic (it wins over the all-topics trigger) or all."""
    require(by, Capability.INTEGRATIONS)
    trigger = Trigger()
    _apply_trigger_settings(trigger, flow_id=flow_id, topic_id=topic_id, delay_minutes=delay_minutes, active=active)
    db.session.add(trigger)
    db.session.flush()
    return trigger


def update_trigger(
    trigger_id: int, *, flow_id: int | None, topic_id: int | None, delay_minutes: int | None, active: bool, by
) -> Trigger:
    """Change a trigger; starts already recorded keep their flow and time."""
    require(by, Capability.INTEGRATIONS)
    trigger = get_trigger(trigger_id)
    _apply_trigger_settings(trigger, flow_id=flow_id, topic_id=topic_id, delay_minutes=delay_minutes, active=active)
    db.session.flush()
    return trigger


# --- flow starts: recorded with the close, cancelled by a reopen ----------------------------


def _random_uuid_sql():
    """A random UUID made by the database, one per inserted row."""
    if db.session.get_bind().dialect.name == "postgresql":
        return literal_column("gen_random_uuid()::text", String)
    # SQLite: a version-4 UUID from random bytes.
    return literal_column(
        "lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2)"
        " || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(hex(randomblob(2)), 2)"
        " || '-' || hex(randomblob(6)))",
        String,
    )


def record_starts(ticket_ids: Sequence[int], now: datetime) -> int:
    """Record a flow start for each of these (just closed) tickets that an active trigger matches.

    A topic's own active trigger wins over the all-topics one. Set-based: one INSERT ... SELECT per
    chunk of tickets. Returns the number of starts recorded.
    """
    triggers = db.session.execute(select(Trigger.id, Trigger.delay_minutes).where(Trigger.active.is_(True))).all()
    if not triggers or not ticket_ids:
        return 0
    due_on = case(
        {trigger_id: literal(now + timedelta(minutes=delay), UTCDateTime) for trigger_id, delay in triggers},
        value=Trigger.id,
    )
    own = aliased(Trigger)
    matches = or_(
        Trigger.topic_id == Ticket.topic_id,
        and_(
            Trigger.topic_id.is_(None),
            ~exists().where(own.active.is_(True), own.topic_id == Ticket.topic_id),
        ),
    )
    recorded = 0
    for chunk in chunks(ticket_ids):
        result = db.session.execute(
            insert(FlowStart).from_select(
                [
                    "delivery_id",
                    "ticket_id",
                    "flow_id",
                    "contact_id",
                    "trigger_id",
                    "status",
                    "due_on",
                    "next_attempt_on",
                    "attempts",
                    "created_on",
                ],
                select(
                    _random_uuid_sql(),
                    Ticket.id,
                    Trigger.flow_id,
                    Ticket.contact_id,
                    Trigger.id,
                    literal(DeliveryStatus.PENDING.value),
                    due_on,
                    due_on,
                    literal(0, Integer),
                    literal(now, UTCDateTime),
                )
                .select_from(Ticket)
                .join(Trigger, and_(Trigger.active.is_(True), matches))
                .where(Ticket.id.in_(chunk)),
            )
        )
        recorded += max(result.rowcount or 0, 0)
    return recorded


def cancel_pending_starts(ticket_ids: Sequence[int], now: datetime) -> int:
    """Cancel the starts of these tickets that haven't been sent yet (the ticket was reopened)."""
    cancelled = 0
    for chunk in chunks(ticket_ids):
        result = db.session.execute(
            update(FlowStart)
            .where(FlowStart.ticket_id.in_(chunk), FlowStart.status == DeliveryStatus.PENDING)
            .values(status=DeliveryStatus.CANCELLED.value, last_error="Cancelled: the ticket was reopened.")
            .execution_options(synchronize_session=False)
        )
        cancelled += max(result.rowcount or 0, 0)
    return cancelled


def record_flow_starts(change: Change) -> None:
    """Effect of a close: the follow-up flow starts of the closed tickets (the scheduler sends them)."""
    record_starts(change.ticket_ids, change.now)


def cancel_flow_starts(change: Change) -> None:
    """Effect of a reopen: the reopened tickets' starts not sent yet are cancelled."""
    cancel_pending_starts(change.ticket_ids, change.now)


# --- the panel's actions --------------------------------------------------------------------


def retry_start(start_id: int, *, by: User | None) -> FlowStart:
    """Send a failed start again now, with a fresh count of attempts and the same delivery id."""
    require(by, Capability.INTEGRATIONS)
    start = db.session.get(FlowStart, start_id)
    if start is None:
        raise NotFound("That flow start doesn't exist.")
    if start.status != DeliveryStatus.FAILED:
        raise ValidationError("Only failed starts can be retried.", field="status")
    start.status = DeliveryStatus.PENDING.value
    start.attempts = 0
    start.next_attempt_on = utcnow()
    start.claimed_on = None
    db.session.flush()
    return start


def retry_message(message_id: int, *, by: User | None) -> Message:
    """Send a failed outgoing message again now."""
    require(by, Capability.INTEGRATIONS)
    message = db.session.get(Message, message_id)
    if message is None or message.direction != Message.Direction.OUT:
        raise NotFound("That message doesn't exist.")
    if message.status != Message.Status.FAILED:
        raise ValidationError("Only failed messages can be retried.", field="status")
    message.status = Message.Status.QUEUED.value
    message.attempts = 0
    message.next_attempt_on = utcnow()
    message.claimed_on = None
    db.session.flush()
    return message
