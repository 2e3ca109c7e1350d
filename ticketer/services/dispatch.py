"""The dispatcher: claim due flow starts and queued outgoing messages, send them, record the answer.

Each row goes pending -> sending (claimed, committed) -> sent, or back to pending with exponential
backoff, or failed after the last attempt. Claims use FOR UPDATE SKIP LOCKED on PostgreSQL, so
several dispatchers never claim one row; on SQLite the claim's BEGIN IMMEDIATE serialises them.
A row left in `sending` by a dispatcher that died is claimed again after `reclaim_after`: delivery
is at-least-once, and every try of one delivery carries the same delivery id.

Unlike the other services, this module commits: it is the caller (the scheduler's job) of itself,
and a send must never happen inside an open transaction.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, select, union_all, update
from sqlalchemy.orm import selectinload

from ticketer import expressions, ticket_json
from ticketer.clock import utcnow
from ticketer.engines import DeliveryError, rapidpro, webhook
from ticketer.extensions import db
from ticketer.models import Contact, Message, Ticket
from ticketer.models.flows import DeliveryStatus, Flow, FlowEngine, FlowStart
from ticketer.services.tickets import body_context
from ticketer.services.validation import MESSAGE_MAX_LENGTH

BACKOFF_BASE_SECONDS = 30
BACKOFF_CAP_SECONDS = 24 * 60 * 60
RESPONSE_MAX_LENGTH = 2000


@dataclass(frozen=True)
class Settings:
    batch_size: int = 50
    max_attempts: int = 12
    reclaim_after_seconds: int = 300
    http_timeout_seconds: float = 20.0

    @classmethod
    def from_config(cls, config) -> "Settings":
        return cls(
            batch_size=int(config.get("DISPATCH_BATCH_SIZE", cls.batch_size)),
            max_attempts=int(config.get("DISPATCH_MAX_ATTEMPTS", cls.max_attempts)),
            reclaim_after_seconds=int(config.get("DISPATCH_RECLAIM_AFTER_SECONDS", cls.reclaim_after_seconds)),
            http_timeout_seconds=float(config.get("DISPATCH_HTTP_TIMEOUT_SECONDS", cls.http_timeout_seconds)),
        )


@dataclass
class Report:
    """What one dispatch pass did."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0
    lost_claims: int = 0
    errors: list[str] = field(default_factory=list)


def backoff(attempts: int) -> timedelta:
    """Wait before the next try after `attempts` tries: 30 s, 1 min, 2 min, ... capped at 24 h."""
    exponent = max(attempts - 1, 0)
    seconds = BACKOFF_CAP_SECONDS if exponent >= 32 else min(BACKOFF_BASE_SECONDS * 2**exponent, BACKOFF_CAP_SECONDS)
    return timedelta(seconds=seconds)


def _on_postgres() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _ready(model, conditions: list):
    """Ids of the rows meeting any of `conditions`, each a plain AND that an index answers.

    One SELECT per condition, not an OR: SQLite reads the whole table for an OR whose parts it
    can't each answer from an index (the message claim scanned 6M messages, ~1-3 s, every run).
    """
    return union_all(*(select(model.id).where(condition) for condition in conditions))


def _claim(model, conditions: list, limit: int, now: datetime) -> list[int]:
    """Mark up to `limit` due rows `sending` (attempts + 1) and return their ids; caller commits."""
    query = select(model.id).where(model.id.in_(_ready(model, conditions))).order_by(model.id).limit(limit)
    if _on_postgres():
        query = query.with_for_update(skip_locked=True)
    ids = list(db.session.execute(query).scalars())
    if ids:
        db.session.execute(
            update(model)
            .where(model.id.in_(ids))
            .values(status=DeliveryStatus.SENDING.value, claimed_on=now, attempts=model.attempts + 1)
            .execution_options(synchronize_session=False)
        )
    return ids


def _contact_json(contact: Contact) -> dict:
    return {
        "uuid": contact.uuid,
        "name": contact.name,
        "urns": [urn.identity for urn in contact.urns],
        "language": contact.language,
        "fields": dict(contact.fields or {}),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


# What _ticket_json reads of a ticket, loaded with the batch (no query per delivery).
_TICKET_JSON_LOADS = (
    selectinload(Ticket.contact),
    selectinload(Ticket.topic),
    selectinload(Ticket.assignee),
    selectinload(Ticket.opened_by),
)


def _ticket_json(ticket: Ticket | None) -> dict | None:
    """The one ticket shape, as the API shows it (ticketer/ticket_json.py)."""
    return ticket_json.of(ticket) if ticket is not None else None


@dataclass(frozen=True)
class _Work:
    """A claimed row and what sending it needs, read before the claim's transaction ends."""

    id: int
    attempts: int
    engine: str
    delivery_id: str
    settings: dict
    payload: dict


def _load_starts(ids: list[int]) -> list[_Work]:
    starts = db.session.execute(
        select(FlowStart)
        .where(FlowStart.id.in_(ids))
        .options(
            selectinload(FlowStart.flow),
            selectinload(FlowStart.contact).selectinload(Contact.urns),
            selectinload(FlowStart.ticket).options(*_TICKET_JSON_LOADS),
        )
        .order_by(FlowStart.id)
        .execution_options(populate_existing=True)
    ).scalars()
    work = []
    for start in starts:
        flow = start.flow
        work.append(
            _Work(
                id=start.id,
                attempts=start.attempts,
                engine=flow.engine,
                delivery_id=start.delivery_id,
                settings={
                    "flow_uuid": flow.uuid,
                    "base_url": flow.base_url,
                    "api_token": flow.api_token,
                    "webhook_url": flow.webhook_url,
                    "webhook_secret": flow.webhook_secret,
                },
                payload={
                    "event": "flow_start",
                    "delivery_id": start.delivery_id,
                    "flow": {"uuid": flow.uuid, "name": flow.name},
                    "contact": _contact_json(start.contact),
                    "ticket": _ticket_json(start.ticket),
                },
            )
        )
    return work


def _load_messages(ids: list[int], flow: Flow) -> list[_Work]:
    messages = db.session.execute(
        select(Message)
        .where(Message.id.in_(ids))
        .options(
            selectinload(Message.contact).selectinload(Contact.urns),
        )
        .order_by(Message.id)
        .execution_options(populate_existing=True)
    ).scalars()
    messages = list(messages)
    ticket_ids = {m.ticket_id for m in messages if m.ticket_id}
    tickets = {
        t.id: t
        for t in db.session.execute(
            select(Ticket).where(Ticket.id.in_(ticket_ids)).options(*_TICKET_JSON_LOADS)
        ).scalars()
    }
    settings = {
        "flow_uuid": flow.uuid,
        "base_url": flow.base_url,
        "api_token": flow.api_token,
        "webhook_url": flow.webhook_url,
        "webhook_secret": flow.webhook_secret,
    }
    return [
        _Work(
            id=message.id,
            attempts=message.attempts,
            engine=flow.engine,
            delivery_id=message.uuid,
            settings=settings,
            payload={
                "event": "message",
                "delivery_id": message.uuid,
                "message": {"uuid": message.uuid, "text": message.text, "created_on": _iso(message.created_on)},
                "contact": _contact_json(message.contact),
                "ticket": _ticket_json(tickets.get(message.ticket_id)),
            },
        )
        for message in messages
    ]


def _send_start(work: _Work, settings: Settings) -> str:
    if work.engine == FlowEngine.RAPIDPRO:
        rapidpro.set_timeout(settings.http_timeout_seconds)
        ticket = work.payload["ticket"] or {}
        return rapidpro.start_flow(
            base_url=work.settings["base_url"],
            api_token=work.settings["api_token"],
            flow_uuid=work.settings["flow_uuid"],
            contact_uuid=work.payload["contact"]["uuid"],
            params={
                "ticket": {
                    "uuid": ticket.get("uuid"),
                    "topic": (ticket.get("topic") or {}).get("name"),  # flows read @trigger.params.ticket.topic
                    "closed_on": ticket.get("closed_on"),
                },
                "delivery_id": work.delivery_id,
            },
        )
    if work.engine == FlowEngine.WEBHOOK:
        return _post_webhook(work, settings, "flow_start")
    raise DeliveryError(f"Unknown engine {work.engine!r}.", permanent=True)


def _post_webhook(work: _Work, settings: Settings, event: str) -> str:
    return webhook.post(
        url=work.settings["webhook_url"],
        secret=work.settings["webhook_secret"],
        event=event,
        delivery_id=work.delivery_id,
        payload=work.payload,
        timeout=settings.http_timeout_seconds,
    )


def _send_message(work: _Work, settings: Settings) -> str:
    if work.engine == FlowEngine.RAPIDPRO:
        rapidpro.set_timeout(settings.http_timeout_seconds)
        return rapidpro.send_message(
            base_url=work.settings["base_url"],
            api_token=work.settings["api_token"],
            contact_uuid=work.payload["contact"]["uuid"],
            text=work.payload["message"]["text"],
        )
    if work.engine == FlowEngine.WEBHOOK:
        return _post_webhook(work, settings, "message")
    raise DeliveryError(f"Engine {work.engine!r} can't send replies.", permanent=True)


def _record(model, work: _Work, settings: Settings, *, answer: str | None, error: DeliveryError | None) -> str:
    """Record one send's outcome, if the row is still ours (same attempt); commits. Returns the new status."""
    now = utcnow()
    is_message = model is Message
    values: dict = {"claimed_on": None}
    if error is None:
        values.update(status=DeliveryStatus.SENT.value, last_error=None)
        if not is_message:
            values.update(sent_on=now, response=(answer or "")[:RESPONSE_MAX_LENGTH])
    elif error.permanent or work.attempts >= settings.max_attempts:
        values.update(status=DeliveryStatus.FAILED.value, last_error=error.message[:RESPONSE_MAX_LENGTH])
    else:
        values.update(
            status=(Message.Status.QUEUED if is_message else DeliveryStatus.PENDING).value,
            next_attempt_on=now + backoff(work.attempts),
            last_error=error.message[:RESPONSE_MAX_LENGTH],
        )
    result = db.session.execute(
        update(model)
        .where(model.id == work.id, model.status == DeliveryStatus.SENDING, model.attempts == work.attempts)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return values["status"] if result.rowcount else "lost"


def _tally(report: Report, status: str, work: _Work, error: DeliveryError | None) -> None:
    if status == DeliveryStatus.SENT:
        report.sent += 1
    elif status == DeliveryStatus.FAILED:
        report.failed += 1
    elif status == "lost":
        report.lost_claims += 1
    else:
        report.retrying += 1
    if error is not None:
        report.errors.append(f"{work.delivery_id}: {error.message}")


def _run_builtin_start(work_id: int, attempts: int, report: Report) -> None:
    """The built-in flow: add its rendered messages to the conversation and mark the start sent, in
    one transaction (exactly once). The messages are queued: agent replies' engine delivers them."""
    now = utcnow()
    claimed = db.session.execute(
        update(FlowStart)
        .where(FlowStart.id == work_id, FlowStart.status == DeliveryStatus.SENDING, FlowStart.attempts == attempts)
        .values(status=DeliveryStatus.SENT.value, sent_on=now, claimed_on=None, last_error=None)
        .execution_options(synchronize_session=False)
    )
    if not claimed.rowcount:
        db.session.rollback()
        report.lost_claims += 1
        return
    start = db.session.execute(
        select(FlowStart)
        .where(FlowStart.id == work_id)
        .options(
            selectinload(FlowStart.flow),
            selectinload(FlowStart.contact).selectinload(Contact.urns),
            selectinload(FlowStart.ticket).selectinload(Ticket.topic),
        )
        .execution_options(populate_existing=True)
    ).scalar_one()
    ticket = start.ticket
    context = body_context(start.contact, ticket.topic.name, ticket.results)
    context["ticket"] = {
        "topic": ticket.topic.name,
        "uuid": ticket.uuid,
        "status": ticket.status,
        "body": ticket.body,
        "opened_on": _iso(ticket.opened_on),
        "closed_on": _iso(ticket.closed_on),
    }
    texts = [expressions.render(t, context)[:MESSAGE_MAX_LENGTH].strip() for t in start.flow.templates or []]
    for text in texts:
        if text:
            db.session.add(
                Message(
                    contact_id=start.contact_id,
                    ticket_id=start.ticket_id,
                    direction=Message.Direction.OUT,
                    text=text,
                    status=Message.Status.QUEUED,
                    created_on=now,
                )
            )
    start.response = json.dumps({"messages": len([t for t in texts if t])})
    db.session.commit()
    report.sent += 1


def dispatch_starts(settings: Settings, report: Report, should_stop: Callable[[], bool]) -> int:
    """Claim one batch of due flow starts and send them. Returns how many were claimed."""
    now = utcnow()
    stale_before = now - timedelta(seconds=settings.reclaim_after_seconds)
    ids = _claim(
        FlowStart,
        [
            and_(FlowStart.status == DeliveryStatus.PENDING, FlowStart.next_attempt_on <= now),
            and_(FlowStart.status == DeliveryStatus.SENDING, FlowStart.claimed_on < stale_before),
        ],
        settings.batch_size,
        now,
    )
    work = _load_starts(ids) if ids else []
    db.session.commit()
    for item in work:
        if should_stop():
            break  # the rest stay `sending` and are reclaimed after the timeout
        if item.engine == FlowEngine.BUILTIN:
            _run_builtin_start(item.id, item.attempts, report)
            continue
        try:
            answer, error = _send_start(item, settings), None
        except DeliveryError as failure:
            answer, error = None, failure
        _tally(report, _record(FlowStart, item, settings, answer=answer, error=error), item, error)
    return len(ids)


def dispatch_messages(settings: Settings, report: Report, should_stop: Callable[[], bool]) -> int:
    """Claim one batch of queued outgoing messages and send them through the reply engine.

    With no flow marked "sends replies", the built-in engine keeps them in Ticketer: they are
    marked sent at once. Returns how many were claimed.
    """
    now = utcnow()
    outgoing = Message.direction == Message.Direction.OUT
    ready = [
        # queued, and due now (no next attempt set means at once) ...
        and_(Message.status == Message.Status.QUEUED, Message.next_attempt_on.is_(None), outgoing),
        and_(Message.status == Message.Status.QUEUED, Message.next_attempt_on <= now, outgoing),
        # ... or claimed by a dispatcher that died before recording the outcome
        and_(
            Message.status == Message.Status.SENDING,
            Message.claimed_on < now - timedelta(seconds=settings.reclaim_after_seconds),
            outgoing,
        ),
    ]
    flow = db.session.execute(select(Flow).where(Flow.sends_replies.is_(True)).limit(1)).scalar_one_or_none()
    if flow is None or flow.engine == FlowEngine.BUILTIN:
        result = db.session.execute(
            update(Message)
            .where(Message.id.in_(_ready(Message, ready)))
            .values(status=Message.Status.SENT.value, claimed_on=None, last_error=None)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        report.sent += max(result.rowcount or 0, 0)
        return 0
    ids = _claim(Message, ready, settings.batch_size, now)
    work = _load_messages(ids, flow) if ids else []
    db.session.commit()
    for item in work:
        if should_stop():
            break
        try:
            answer, error = _send_message(item, settings), None
        except DeliveryError as failure:
            answer, error = None, failure
        _tally(report, _record(Message, item, settings, answer=answer, error=error), item, error)
    return len(ids)


def dispatch_due(settings: Settings | None = None, should_stop: Callable[[], bool] = lambda: False) -> Report:
    """Send everything due now, batch after batch, until nothing is due or `should_stop()`."""
    settings = settings or Settings.from_config(current_app.config)
    report = Report()
    try:
        while not should_stop():
            claimed = dispatch_starts(settings, report, should_stop)
            # Messages after starts: a built-in flow's messages go out in the same pass.
            claimed += dispatch_messages(settings, report, should_stop)
            if claimed == 0:
                break
    finally:
        db.session.rollback()
    return report
