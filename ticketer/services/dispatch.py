"""The dispatcher: claim due flow starts and queued outgoing messages, send them, record the answer.

One send loop serves both outboxes (flow_starts, messages). Each row goes pending (queued) ->
sending -> sent, or back to pending with exponential backoff, or failed after the last attempt:

1. **Claim** just before sending: only as many due rows as there are free workers in the pool
   (DISPATCH_CONCURRENCY, at most DISPATCH_CONCURRENCY_PER_ENGINE in flight to one flow's engine),
   marked `sending` with this pass's holder id (`claimed_by`) and `claimed_on`, attempts + 1, and
   committed. Claims use FOR UPDATE SKIP LOCKED on PostgreSQL; on SQLite the claim's BEGIN
   IMMEDIATE serialises dispatchers.
2. **Send** in the pool's threads: HTTP only (ticketer/engines/outbound.py), each exchange under a
   deadline for the whole of it, so one slow or trickling engine holds only its own workers.
3. **Record** each outcome in the dispatcher's thread (the only one that touches the database),
   if the row is still this holder's.
4. **Renew**: a claim is a lease. While its sends are in flight, the holder stamps `claimed_on`
   of its rows again every third of DISPATCH_RECLAIM_AFTER_SECONDS. A row is claimed again only
   when its lease has not been renewed for that long: its holder is gone (killed, or stalled that
   long). That is the at-least-once window, with the timeouts and lost answers of step 2: every
   try of one delivery carries the same delivery id.

Unlike the other services, this module commits: it is the caller (the scheduler's job) of itself,
and a send must never happen inside an open transaction.
"""

import json
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, or_, select, union_all, update
from sqlalchemy.orm import selectinload

from ticketer import expressions, ticket_json
from ticketer.clock import utcnow
from ticketer.engines import DeliveryError, outbound, rapidpro, webhook
from ticketer.extensions import db
from ticketer.models import Contact, Message, Ticket, new_uuid
from ticketer.models.flows import DeliveryStatus, Flow, FlowEngine, FlowStart
from ticketer.services.tickets import body_context
from ticketer.services.validation import MESSAGE_MAX_LENGTH

BACKOFF_BASE_SECONDS = 30
BACKOFF_CAP_SECONDS = 24 * 60 * 60
RESPONSE_MAX_LENGTH = 2000
# A worker that is still busy this long after its deadline (a DNS lookup that hangs: no socket to
# shut) is given up on: its try is recorded as failed and retried later.
GIVE_UP_AFTER_DEADLINE_SECONDS = 5.0


@dataclass(frozen=True)
class Settings:
    batch_size: int = 50
    max_attempts: int = 12
    reclaim_after_seconds: float = 300
    http_timeout_seconds: float = 20.0
    concurrency: int = 8
    concurrency_per_engine: int = 4
    allowed_hosts: str = ""  # ENGINE_ALLOWED_HOSTS

    @classmethod
    def from_config(cls, config) -> "Settings":
        return cls(
            batch_size=int(config.get("DISPATCH_BATCH_SIZE", cls.batch_size)),
            max_attempts=int(config.get("DISPATCH_MAX_ATTEMPTS", cls.max_attempts)),
            reclaim_after_seconds=float(config.get("DISPATCH_RECLAIM_AFTER_SECONDS", cls.reclaim_after_seconds)),
            http_timeout_seconds=float(config.get("DISPATCH_HTTP_TIMEOUT_SECONDS", cls.http_timeout_seconds)),
            concurrency=int(config.get("DISPATCH_CONCURRENCY", cls.concurrency)),
            concurrency_per_engine=int(config.get("DISPATCH_CONCURRENCY_PER_ENGINE", cls.concurrency_per_engine)),
            allowed_hosts=str(config.get("ENGINE_ALLOWED_HOSTS", cls.allowed_hosts) or ""),
        )

    @property
    def policy(self) -> outbound.Policy:
        return outbound.Policy(
            allowed_hosts=outbound.AllowedHosts.parse(self.allowed_hosts), deadline_seconds=self.http_timeout_seconds
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


def _claim(model, conditions: list, limit: int, now: datetime, holder: str, skip_flows=()) -> list[int]:
    """Mark up to `limit` due rows `sending` for `holder` (attempts + 1); returns their ids. Caller commits.

    The UPDATE checks the conditions again on each row: on PostgreSQL a row that another dispatcher
    claimed (and committed) while this SELECT waited for its lock still passes the `id IN (...)` of
    the SELECT's own snapshot; the UPDATE, a statement of its own, sees the claim and leaves it.
    """
    due = or_(*conditions)
    query = select(model.id).where(model.id.in_(_ready(model, conditions)), due).order_by(model.id).limit(limit)
    if skip_flows:
        query = query.where(model.flow_id.not_in(sorted(skip_flows)))
    if _on_postgres():
        query = query.with_for_update(skip_locked=True)
    ids = list(db.session.execute(query).scalars())
    if not ids:
        return []
    claimed = db.session.execute(
        update(model)
        .where(model.id.in_(ids), due)
        .values(status=DeliveryStatus.SENDING.value, claimed_on=now, claimed_by=holder, attempts=model.attempts + 1)
        .returning(model.id)
        .execution_options(synchronize_session=False)
    ).scalars()
    return sorted(claimed)


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
    """A claimed row and what sending it needs, read in the dispatcher's thread: the pool's
    threads get plain values and never touch the database."""

    model: type
    id: int
    attempts: int
    flow_id: int  # the engine it goes to: at most concurrency_per_engine in flight to one flow
    engine: str
    delivery_id: str
    target: dict
    payload: dict


def _target(flow: Flow) -> dict:
    return {
        "flow_uuid": flow.uuid,
        "base_url": flow.base_url,
        "api_token": flow.api_token,
        "webhook_url": flow.webhook_url,
        "webhook_secret": flow.webhook_secret,
    }


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
    return [
        _Work(
            model=FlowStart,
            id=start.id,
            attempts=start.attempts,
            flow_id=start.flow_id,
            engine=start.flow.engine,
            delivery_id=start.delivery_id,
            target=_target(start.flow),
            payload={
                "event": "flow_start",
                "delivery_id": start.delivery_id,
                "flow": {"uuid": start.flow.uuid, "name": start.flow.name},
                "contact": _contact_json(start.contact),
                "ticket": _ticket_json(start.ticket),
            },
        )
        for start in starts
    ]


def _load_messages(ids: list[int], flow: Flow) -> list[_Work]:
    messages = list(
        db.session.execute(
            select(Message)
            .where(Message.id.in_(ids))
            .options(selectinload(Message.contact).selectinload(Contact.urns))
            .order_by(Message.id)
            .execution_options(populate_existing=True)
        ).scalars()
    )
    ticket_ids = {m.ticket_id for m in messages if m.ticket_id}
    tickets = {
        t.id: t
        for t in db.session.execute(
            select(Ticket).where(Ticket.id.in_(ticket_ids)).options(*_TICKET_JSON_LOADS)
        ).scalars()
    }
    target = _target(flow)
    return [
        _Work(
            model=Message,
            id=message.id,
            attempts=message.attempts,
            flow_id=flow.id,
            engine=flow.engine,
            delivery_id=message.uuid,
            target=target,
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


def _send(work: _Work, policy: outbound.Policy) -> str:
    """Send one delivery (in a pool thread: no database here); returns the engine's answer."""
    event = work.payload["event"]
    if work.engine == FlowEngine.WEBHOOK:
        return webhook.post(
            url=work.target["webhook_url"],
            secret=work.target["webhook_secret"],
            event=event,
            delivery_id=work.delivery_id,
            payload=work.payload,
            policy=policy,
        )
    if work.engine == FlowEngine.RAPIDPRO and event == "flow_start":
        ticket = work.payload["ticket"] or {}
        return rapidpro.start_flow(
            base_url=work.target["base_url"],
            api_token=work.target["api_token"],
            flow_uuid=work.target["flow_uuid"],
            contact_uuid=work.payload["contact"]["uuid"],
            params={
                "ticket": {
                    "uuid": ticket.get("uuid"),
                    "topic": (ticket.get("topic") or {}).get("name"),  # flows read @trigger.params.ticket.topic
                    "closed_on": ticket.get("closed_on"),
                },
                "delivery_id": work.delivery_id,
            },
            policy=policy,
        )
    if work.engine == FlowEngine.RAPIDPRO:
        return rapidpro.send_message(
            base_url=work.target["base_url"],
            api_token=work.target["api_token"],
            contact_uuid=work.payload["contact"]["uuid"],
            text=work.payload["message"]["text"],
            policy=policy,
        )
    raise DeliveryError(f"Engine {work.engine!r} can't send this.", permanent=True)


def _send_safely(work: _Work, policy: outbound.Policy) -> tuple[str | None, DeliveryError | None]:
    try:
        return _send(work, policy), None
    except DeliveryError as error:
        return None, error
    except Exception as error:  # a bug must not lose the outcome: retry later, with a short reason
        return None, DeliveryError(f"Send error: {outbound.reason(error)}")


def _record(work: _Work, holder: str, settings: Settings, *, answer: str | None, error: DeliveryError | None) -> str:
    """Record one send's outcome if the row is still this holder's; the caller commits. Returns the new status."""
    model = work.model
    now = utcnow()
    is_message = model is Message
    values: dict = {"claimed_on": None, "claimed_by": None}
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
        .where(
            model.id == work.id,
            model.status == DeliveryStatus.SENDING,
            model.claimed_by == holder,
            model.attempts == work.attempts,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
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


def _run_builtin_start(work_id: int, attempts: int, holder: str, report: Report) -> None:
    """The built-in flow: add its rendered messages to the conversation and mark the start sent, in
    one transaction (exactly once). The messages are queued: agent replies' engine delivers them."""
    now = utcnow()
    claimed = db.session.execute(
        update(FlowStart)
        .where(
            FlowStart.id == work_id,
            FlowStart.status == DeliveryStatus.SENDING,
            FlowStart.claimed_by == holder,
            FlowStart.attempts == attempts,
        )
        .values(status=DeliveryStatus.SENT.value, sent_on=now, claimed_on=None, claimed_by=None, last_error=None)
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


@dataclass
class _InFlight:
    work: _Work
    give_up_at: float  # time.monotonic()


class _SendLoop:
    """One dispatch pass: claim what fits in the pool, send, record, renew, until nothing is due."""

    def __init__(self, settings: Settings, report: Report):
        self.settings = settings
        self.report = report
        self.policy = settings.policy
        self.holder = new_uuid()  # this pass's claims
        self.concurrency = max(1, settings.concurrency)
        self.per_engine = max(1, min(settings.concurrency_per_engine, self.concurrency))
        self.renew_every = max(settings.reclaim_after_seconds / 3, 0.05)
        self.renewed_at = time.monotonic()
        self.in_flight: dict[Future, _InFlight] = {}
        self.pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="dispatch")
        reply_flow = db.session.execute(select(Flow).where(Flow.sends_replies.is_(True)).limit(1)).scalar_one_or_none()
        # With no reply flow (or a built-in one), replies stay in Ticketer and are marked sent at once.
        self.reply_flow_id = (
            reply_flow.id if reply_flow is not None and reply_flow.engine != FlowEngine.BUILTIN else None
        )
        db.session.commit()
        self.replies_may_wait = True  # in Ticketer: run the bulk "sent" for the first round, and after built-in starts

    def run(self, should_stop: Callable[[], bool]) -> None:
        try:
            while True:
                claimed = 0 if should_stop() else self._fill()
                if not self.in_flight:
                    if claimed == 0:
                        return
                    continue
                self._wait()
                self._record_finished()
                self._renew_if_due()
        finally:
            self.pool.shutdown(wait=False, cancel_futures=True)

    # --- claiming ---

    def _room(self) -> tuple[int, set[int], int]:
        """(free workers, flows at their limit, most rows one claim may take without passing a limit)."""
        per_flow = Counter(item.work.flow_id for item in self.in_flight.values())
        full = {flow_id for flow_id, n in per_flow.items() if n >= self.per_engine}
        partly = [self.per_engine - n for flow_id, n in per_flow.items() if flow_id not in full]
        free = self.concurrency - len(self.in_flight)
        return free, full, min([free, self.settings.batch_size, self.per_engine, *partly])

    def _fill(self) -> int:
        """Claim due starts, then due messages, while workers are free; returns the rows claimed."""
        claimed = 0
        while True:
            free, full, limit = self._room()
            if free <= 0:
                break
            n = self._claim_starts(limit, full)
            if n == 0:
                break
            claimed += n
        if self.reply_flow_id is None:
            if self.replies_may_wait:
                claimed += self._keep_replies_in_ticketer()
            return claimed
        while True:
            free, full, limit = self._room()
            if free <= 0 or self.reply_flow_id in full:
                break
            n = self._claim_messages(limit)
            if n == 0:
                break
            claimed += n
        return claimed

    def _claim_starts(self, limit: int, full: set[int]) -> int:
        now = utcnow()
        stale_before = now - timedelta(seconds=self.settings.reclaim_after_seconds)
        ids = _claim(
            FlowStart,
            [
                and_(FlowStart.status == DeliveryStatus.PENDING, FlowStart.next_attempt_on <= now),
                and_(FlowStart.status == DeliveryStatus.SENDING, FlowStart.claimed_on < stale_before),
            ],
            limit,
            now,
            self.holder,
            skip_flows=full,
        )
        work = _load_starts(ids) if ids else []
        db.session.commit()
        for item in work:
            if item.engine == FlowEngine.BUILTIN:
                # Database only: done here, in one transaction, exactly once.
                _run_builtin_start(item.id, item.attempts, self.holder, self.report)
                self.replies_may_wait = True
            else:
                self._submit(item)
        return len(ids)

    def _ready_messages(self, now: datetime) -> list:
        outgoing = Message.direction == Message.Direction.OUT
        return [
            # queued, and due now (no next attempt set means at once) ...
            and_(Message.status == Message.Status.QUEUED, Message.next_attempt_on.is_(None), outgoing),
            and_(Message.status == Message.Status.QUEUED, Message.next_attempt_on <= now, outgoing),
            # ... or claimed by a dispatcher that is gone: its lease was not renewed
            and_(
                Message.status == Message.Status.SENDING,
                Message.claimed_on < now - timedelta(seconds=self.settings.reclaim_after_seconds),
                outgoing,
            ),
        ]

    def _claim_messages(self, limit: int) -> int:
        now = utcnow()
        ids = _claim(Message, self._ready_messages(now), limit, now, self.holder)
        flow = db.session.get(Flow, self.reply_flow_id) if ids else None
        work = _load_messages(ids, flow) if ids else []
        db.session.commit()
        for item in work:
            self._submit(item)
        return len(ids)

    def _keep_replies_in_ticketer(self) -> int:
        """The built-in engine for replies: due messages are marked sent at once (no claim needed)."""
        result = db.session.execute(
            update(Message)
            .where(Message.id.in_(_ready(Message, self._ready_messages(utcnow()))))
            .values(status=Message.Status.SENT.value, claimed_on=None, claimed_by=None, last_error=None)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        self.report.sent += max(result.rowcount or 0, 0)
        self.replies_may_wait = False
        return 0

    # --- sending, recording, renewing ---

    def _submit(self, work: _Work) -> None:
        give_up_at = time.monotonic() + self.settings.http_timeout_seconds + GIVE_UP_AFTER_DEADLINE_SECONDS
        self.in_flight[self.pool.submit(_send_safely, work, self.policy)] = _InFlight(work, give_up_at)

    def _wait(self) -> None:
        now = time.monotonic()
        wake = min([self.renewed_at + self.renew_every, *(item.give_up_at for item in self.in_flight.values())])
        wait(list(self.in_flight), timeout=max(wake - now, 0.01), return_when=FIRST_COMPLETED)

    def _record_finished(self) -> None:
        now = time.monotonic()
        outcomes = []
        for future, item in list(self.in_flight.items()):
            if future.done():
                answer, error = future.result()
            elif now >= item.give_up_at:
                answer, error = (
                    None,
                    DeliveryError(f"No answer within the {self.settings.http_timeout_seconds:g} s deadline."),
                )
            else:
                continue
            del self.in_flight[future]
            outcomes.append((item.work, answer, error))
        if not outcomes:
            return
        statuses = [
            _record(work, self.holder, self.settings, answer=answer, error=error) for work, answer, error in outcomes
        ]
        db.session.commit()
        for (work, _, error), status in zip(outcomes, statuses, strict=True):
            _tally(self.report, status, work, error)

    def _renew_if_due(self) -> None:
        """Renew the lease on every row this holder has in flight (it is alive: it got here)."""
        if not self.in_flight or time.monotonic() < self.renewed_at + self.renew_every:
            return
        now = utcnow()
        for model in (FlowStart, Message):
            ids = [item.work.id for item in self.in_flight.values() if item.work.model is model]
            if ids:
                db.session.execute(
                    update(model)
                    .where(model.id.in_(ids), model.claimed_by == self.holder, model.status == DeliveryStatus.SENDING)
                    .values(claimed_on=now)
                    .execution_options(synchronize_session=False)
                )
        db.session.commit()
        self.renewed_at = time.monotonic()


def dispatch_due(settings: Settings | None = None, should_stop: Callable[[], bool] = lambda: False) -> Report:
    """Send everything due now, until nothing is due or `should_stop()` (then the sends in flight
    finish, each within its deadline, and are recorded)."""
    settings = settings or Settings.from_config(current_app.config)
    report = Report()
    try:
        _SendLoop(settings, report).run(should_stop)
    finally:
        db.session.rollback()
    return report
