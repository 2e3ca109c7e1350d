"""The conversation with the contact through their workspace: pulling their messages in.

RapidPro (since 8) pushes nothing to an outside desk, so the scheduler pulls: `pull(connection_id,
commit=...)` reads the workspace's messages created since the last pass (temba_client
`get_messages(after=...)`, newest first, following `next`), keeps the incoming ones of contacts
Ticketer knows, and stores each page in one transaction together with the cursor
(ConnectionSync, see its docstring), so a crash or restart never skips or doubles a message: the
cursor only moves with what was committed, and `messages.external_uuid` is unique (a page read
twice inserts nothing twice).

A stored message joins the contact's open ticket, bumps its activity and marks it waiting for a
reply (tickets.waiting_since); a contact with no open ticket keeps it on their contact
(ticket_id NULL), shown in their history. Throttling: a 429 stores Retry-After in
ConnectionSync.retry_on and nothing calls that workspace before then; other failures back off
exponentially. Per page of messages the work is a fixed number of statements, whatever its size.

Concurrency: one scheduler runs the pull (max_instances=1). Two pulls of one connection at once
would each insert only what the other had not (the unique index decides) and move the cursor to
the same places; nothing is lost or doubled.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import case, func, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ticketer.clock import utcnow
from ticketer.errors import NotFound
from ticketer.extensions import db
from ticketer.integrations import rapidpro
from ticketer.models import Contact, Message, Ticket, TicketStatus, UTCDateTime, new_uuid
from ticketer.models.connections import Connection, ConnectionSync
from ticketer.models.flows import Flow, FlowEngine
from ticketer.services import connections as connection_service
from ticketer.services.ticket_changes import expire_tickets

# Messages created up to this long before the last pass's newest are read again: one that became
# visible late (RapidPro lists an incoming message once it is handled) is not skipped.
OVERLAP = timedelta(seconds=30)
# One pass reads at most this many pages (250 messages each); the next run goes on from there.
MAX_PAGES_PER_PASS = 40
# Backing off after failures: 5 s, 10 s, 20 s ... up to 5 minutes. Never less than 1 s after a 429.
BACKOFF_FIRST = timedelta(seconds=5)
BACKOFF_MAX = timedelta(minutes=5)
TEXT_MAX_LENGTH = 10_000

_MESSAGES = Message.__table__
_TICKETS = Ticket.__table__
_CONTACTS = Contact.__table__


@dataclass
class PullReport:
    """What one pass did: pages read, messages stored, messages kept on contacts without a ticket."""

    connection_id: int
    pages: int = 0
    stored: int = 0
    without_ticket: int = 0
    finished: bool = False  # reached the last page (the cursor moved on)
    skipped: bool = False  # throttled or backing off: no request made
    error: str | None = None
    retry_after: int | None = None
    errors: list[str] = field(default_factory=list)


def connections_due(now: datetime | None = None) -> list[int]:
    """The connections whose pull may run now (not throttled, not backing off), by id."""
    now = now or utcnow()
    return list(
        db.session.execute(
            select(Connection.id)
            .outerjoin(ConnectionSync, ConnectionSync.connection_id == Connection.id)
            .where(or_(ConnectionSync.retry_on.is_(None), ConnectionSync.retry_on <= now))
            .order_by(Connection.id)
        ).scalars()
    )


def _sync_state(connection: Connection) -> ConnectionSync:
    state = db.session.get(ConnectionSync, connection.id)
    if state is None:  # a connection made before its cursor existed: start from its creation
        state = ConnectionSync(connection_id=connection.id, after=connection.created_on)
        db.session.add(state)
        db.session.flush()
    return state


def pull(
    connection_id: int,
    *,
    commit: Callable[[], None],
    max_pages: int = MAX_PAGES_PER_PASS,
    should_stop: Callable[[], bool] = lambda: False,
) -> PullReport:
    """One pass of the pull for one connection. `commit` ends each page's transaction (the caller's).

    No transaction is open while the workspace is being asked for a page.
    """
    report = PullReport(connection_id)
    connection = db.session.get(Connection, connection_id)
    if connection is None:
        raise NotFound("That connection doesn't exist.")
    state = _sync_state(connection)
    now = utcnow()
    if state.retry_on is not None and state.retry_on > now:
        report.skipped = True
        return report
    base_url, api_token = connection.base_url, connection.api_token
    after, resume_before = state.after - OVERLAP, state.resume_before
    commit()  # nothing is held while the workspace answers

    try:
        pages = rapidpro.message_pages(
            base_url, api_token, after=after, before=resume_before, policy=connection_service.policy()
        )
        for page in pages:
            report.pages += 1
            stored, without_ticket = store_page(connection_id, page)
            report.stored += stored
            report.without_ticket += without_ticket
            commit()
            if report.pages >= max_pages or should_stop():
                return report
    except rapidpro.WorkspaceError as error:
        db.session.rollback()
        _record_failure(connection_id, error)
        commit()
        report.error, report.retry_after = error.message, error.retry_after
        return report

    _finish_pass(connection_id)
    commit()
    report.finished = True
    return report


def store_page(connection_id: int, page: list[rapidpro.WorkspaceMessage]) -> tuple[int, int]:
    """Store one page of workspace messages with the cursor that follows it; returns (stored,
    stored without a ticket). Doesn't commit. A fixed number of statements per page."""
    values = {"last_run_on": utcnow()}
    if page:
        oldest = literal(min(m.created_on for m in page), UTCDateTime())
        newest = literal(max(m.created_on for m in page), UTCDateTime())
        sync = ConnectionSync
        values["resume_before"] = case(
            (or_(sync.resume_before.is_(None), sync.resume_before > oldest), oldest), else_=sync.resume_before
        )
        values["window_newest"] = case(
            (or_(sync.window_newest.is_(None), sync.window_newest < newest), newest), else_=sync.window_newest
        )
    # The cursor moves in this page's transaction: one UPDATE, without loading the row.
    db.session.execute(
        update(ConnectionSync)
        .where(ConnectionSync.connection_id == connection_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    incoming = [m for m in page if m.direction == "in"]
    stored = without_ticket = 0
    if incoming:
        stored, without_ticket = _store_incoming(connection_id, incoming)
    return stored, without_ticket


def _store_incoming(connection_id: int, incoming: list[rapidpro.WorkspaceMessage]) -> tuple[int, int]:
    contact_rows = db.session.execute(
        select(_CONTACTS.c.id, _CONTACTS.c.uuid, _CONTACTS.c.connection_id).where(
            _CONTACTS.c.uuid.in_({m.contact_uuid for m in incoming}),
            or_(_CONTACTS.c.connection_id == connection_id, _CONTACTS.c.connection_id.is_(None)),
        )
    ).all()
    if not contact_rows:
        return 0, 0
    contact_ids = {row.uuid: row.id for row in contact_rows}
    unattached = [row.id for row in contact_rows if row.connection_id is None]
    open_tickets = dict(
        db.session.execute(
            select(_TICKETS.c.contact_id, _TICKETS.c.id).where(
                _TICKETS.c.contact_id.in_(contact_ids.values()), _TICKETS.c.status == TicketStatus.OPEN.value
            )
        ).all()
    )
    rows = []
    for message in incoming:
        contact_id = contact_ids.get(message.contact_uuid)
        if contact_id is None:
            continue
        rows.append(
            {
                "uuid": new_uuid(),
                "contact_id": contact_id,
                "ticket_id": open_tickets.get(contact_id),
                "direction": Message.Direction.IN.value,
                "text": message.text.replace("\x00", "")[:TEXT_MAX_LENGTH],
                "status": Message.Status.RECEIVED.value,
                "created_on": message.created_on,
                "attempts": 0,
                "connection_id": connection_id,
                "external_uuid": message.uuid,
                "external_status": (message.status or "")[:16] or None,
                "attachments": message.attachments or None,
            }
        )
    if not rows:
        return 0, 0
    inserted = db.session.execute(
        _insert_skipping_known(rows).returning(_MESSAGES.c.ticket_id, _MESSAGES.c.created_on)
    ).all()
    first_waiting: dict[int, datetime] = {}
    for ticket_id, created_on in inserted:
        if ticket_id is not None:
            first_waiting[ticket_id] = min(created_on, first_waiting.get(ticket_id, created_on))
    if first_waiting:
        db.session.execute(
            update(Ticket)
            .where(Ticket.id.in_(first_waiting), Ticket.status == TicketStatus.OPEN.value)
            .values(
                last_activity_on=utcnow(),
                waiting_since=func.coalesce(
                    Ticket.waiting_since,
                    case(*[(Ticket.id == i, literal(at, UTCDateTime())) for i, at in first_waiting.items()]),
                ),
            )
            .execution_options(synchronize_session=False)
        )
        expire_tickets(first_waiting)
    if unattached:  # contacts matched by uuid now belong to this connection
        db.session.execute(
            update(_CONTACTS)
            .where(_CONTACTS.c.id.in_(unattached), _CONTACTS.c.connection_id.is_(None))
            .values(connection_id=connection_id)
        )
    return len(inserted), sum(1 for ticket_id, _ in inserted if ticket_id is None)


def _insert_skipping_known(rows: list[dict]):
    """INSERT ... ON CONFLICT (external_uuid) DO NOTHING: a message read twice is stored once."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(_MESSAGES).values(rows).on_conflict_do_nothing(index_elements=["external_uuid"])


def _finish_pass(connection_id: int) -> None:
    """The last page is stored: the next pass reads from the newest message seen."""
    state = db.session.get(ConnectionSync, connection_id)
    if state.window_newest is not None:
        state.after = max(state.after, state.window_newest)
    state.window_newest = state.resume_before = None
    state.failures = 0
    state.retry_on = None
    state.last_error = None
    state.last_run_on = utcnow()
    db.session.flush()


def _record_failure(connection_id: int, error: rapidpro.WorkspaceError) -> None:
    """Wait before the next call: what Retry-After asked (at least 1 s), else an exponential backoff."""
    state = db.session.get(ConnectionSync, connection_id)
    if state is None:
        return
    state.failures = (state.failures or 0) + 1
    if error.retry_after is not None:
        wait = timedelta(seconds=max(1, int(error.retry_after)))
    else:
        wait = min(BACKOFF_MAX, BACKOFF_FIRST * (2 ** min(state.failures - 1, 10)))
    now = utcnow()
    state.retry_on = now + wait
    state.last_error = error.message[:500]
    state.last_run_on = now
    db.session.flush()


def contact_history(contact_id: int, *, limit: int = 50) -> list[Message]:
    """The contact's messages that joined no ticket (written while no ticket was open), newest first."""
    return list(
        db.session.execute(
            select(Message)
            .where(Message.contact_id == contact_id, Message.ticket_id.is_(None))
            .order_by(Message.created_on.desc(), Message.id.desc())
            .limit(limit)
        ).scalars()
    )


def replies_leave(contact: Contact) -> bool:
    """Whether an agent's reply to this contact leaves Ticketer: a flow engine (not the built-in
    one) is marked to send replies. Otherwise the dispatcher keeps replies in Ticketer."""
    return (
        db.session.execute(
            select(Flow.id).where(Flow.sends_replies.is_(True), Flow.engine != FlowEngine.BUILTIN.value).limit(1)
        ).first()
        is not None
    )


# --- replies through the workspace ------------------------------------------------------------

# RapidPro's statuses of an outgoing message; after these it changes no more.
FINAL_STATUSES = ("delivered", "read", "failed")
FOLLOW_FOR = timedelta(days=2)
FOLLOW_PER_RUN = 10  # one request per message: a small share of the workspace's 3,600 an hour


@dataclass(frozen=True)
class ReplyRoute:
    """The workspace a reply to a contact goes out through."""

    connection_id: int
    base_url: str
    api_token: str


def any_connection() -> bool:
    return db.session.execute(select(Connection.id).limit(1)).first() is not None


def reply_routes(contact_ids) -> dict[int, ReplyRoute]:
    """contact id -> the connection their replies go through: the contact's own, else the only one
    there is. Contacts with neither are left out. Two queries, whatever the number of contacts."""
    contact_ids = list(dict.fromkeys(contact_ids))
    if not contact_ids:
        return {}
    connections = {
        row.id: ReplyRoute(row.id, row.base_url, row.api_token)
        for row in db.session.execute(select(Connection.id, Connection.base_url, Connection.api_token))
    }
    if not connections:
        return {}
    only = next(iter(connections.values())) if len(connections) == 1 else None
    routes = {}
    for contact_id, connection_id in db.session.execute(
        select(_CONTACTS.c.id, _CONTACTS.c.connection_id).where(_CONTACTS.c.id.in_(contact_ids))
    ):
        route = connections.get(connection_id) if connection_id is not None else only
        if route is not None:
            routes[contact_id] = route
    return routes


def record_sent(message_id: int, connection_id: int, sent: rapidpro.WorkspaceMessage) -> None:
    """A reply the workspace accepted: remember its uuid there and its first status. Doesn't commit."""
    db.session.execute(
        update(Message)
        .where(Message.id == message_id)
        .values(connection_id=connection_id, external_uuid=sent.uuid, external_status=(sent.status or "queued")[:16])
        .execution_options(synchronize_session=False)
    )


def follow_statuses(connection_id: int, *, commit: Callable[[], None], limit: int = FOLLOW_PER_RUN) -> int:
    """Ask the workspace for the status of replies it has not finished with (oldest first, recent
    ones only); store each change, and a workspace failure as the reply's failure. Returns changes."""
    connection = db.session.get(Connection, connection_id)
    if connection is None:
        raise NotFound("That connection doesn't exist.")
    state = _sync_state(connection)
    if state.retry_on is not None and state.retry_on > utcnow():
        return 0
    base_url, api_token = connection.base_url, connection.api_token
    pending = db.session.execute(
        select(Message.id, Message.external_uuid, Message.external_status)
        .where(
            Message.connection_id == connection_id,
            Message.direction == Message.Direction.OUT.value,
            Message.external_uuid.is_not(None),
            or_(Message.external_status.is_(None), Message.external_status.not_in(FINAL_STATUSES)),
            Message.created_on >= utcnow() - FOLLOW_FOR,
        )
        .order_by(Message.id)
        .limit(limit)
    ).all()
    commit()  # nothing is held while the workspace answers
    changed = 0
    policy = connection_service.policy()
    for message_id, external_uuid, known in pending:
        try:
            status = rapidpro.message_status(base_url, api_token, external_uuid, policy=policy)
        except rapidpro.WorkspaceError as error:
            if error.retry_after is not None:
                _record_failure(connection_id, error)
                commit()
            break
        if status is None or status == known:
            continue
        values = {"external_status": status[:16]}
        if status == "failed":
            values.update(status=Message.Status.FAILED.value, last_error="The workspace could not deliver it (failed).")
        db.session.execute(
            update(Message)
            .where(Message.id == message_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        commit()
        changed += 1
    return changed
