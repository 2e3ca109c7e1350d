"""Tickets: open, assign, note, change topic, close, reopen, reply, receive, and their bulk forms.

Single-ticket operations and bulk operations share one set-based implementation
(ticket_changes.py: an UPDATE ... RETURNING of the tickets that qualify, then one INSERT ... SELECT
of their events); then each runs what its change sets off, the row of its event kind in the table
of ticketer/services/effects.py, in the same transaction.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from ticketer import database, expressions
from ticketer.clock import utcnow
from ticketer.errors import Conflict, NotFound, ValidationError
from ticketer.extensions import db
from ticketer.models import Contact, Message, Ticket, TicketEvent, TicketStatus, Topic, User, new_uuid
from ticketer.roles import Capability, require
from ticketer.services import contacts as contact_service
from ticketer.services import effects, media, ticket_changes
from ticketer.services import topics as topic_service
from ticketer.services.contacts import ContactRow
from ticketer.services.ticket_changes import Change, expire_tickets
from ticketer.services.validation import (
    BODY_MAX_LENGTH,
    MESSAGE_MAX_LENGTH,
    NOTE_MAX_LENGTH,
    clean_text,
)

Kind = TicketEvent.Kind


@dataclass(frozen=True)
class BulkResult:
    """What a bulk action did: tickets changed, and tickets selected that didn't qualify."""

    changed: int
    skipped: int

    @property
    def message(self) -> str:
        text = f"{self.changed:,} ticket{'s' if self.changed != 1 else ''} updated"
        if self.skipped:
            text += f"; {self.skipped:,} skipped (already in that state)"
        return text + "."


def _user_id(user: User | None) -> int | None:
    return user.id if user is not None else None


def get_ticket(ticket_id: int) -> Ticket:
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound("That ticket doesn't exist.")
    return ticket


def get_ticket_by_uuid(ticket_uuid: str) -> Ticket:
    ticket = db.session.execute(db.select(Ticket).where(Ticket.uuid == ticket_uuid)).scalar_one_or_none()
    if ticket is None:
        raise NotFound("That ticket doesn't exist.")
    return ticket


def check_assignee(assignee_id: int | None) -> User | None:
    """The user tickets may be assigned to, or ValidationError: active, and a role that takes tickets."""
    if assignee_id is None:
        return None
    user = db.session.get(User, assignee_id)
    if user is None or not user.can_take_tickets:
        raise ValidationError("Tickets can only be assigned to active agents, supervisors or admins.", field="assignee")
    return user


def _open_ticket_of(contact_id: int) -> Ticket | None:
    return db.session.execute(
        db.select(Ticket).where(Ticket.contact_id == contact_id, Ticket.status == TicketStatus.OPEN)
    ).scalar_one_or_none()


def _event(ticket: Ticket, kind: str, by_id: int | None, now: datetime, **values: Any) -> TicketEvent:
    event = TicketEvent(ticket_id=ticket.id, kind=kind, created_by_id=by_id, created_on=now, **values)
    db.session.add(event)
    return event


def body_context(contact: Any, topic_name: str, results: Mapping | None) -> dict[str, Any]:
    """What the expressions in a ticket body can refer to (`contact`: a Contact or a ContactRow)."""
    return {
        "results": expressions.normalise_results(results),
        "contact": {
            "name": contact.name,
            "urn": contact.primary_urn or "",
            "uuid": contact.uuid,
            "language": contact.language or "",
        },
        "fields": dict(contact.fields or {}),
        "ticket": {"topic": topic_name},
    }


_TICKETS = Ticket.__table__
_EVENTS = TicketEvent.__table__
# Opening a ticket runs for every ticket a flow opens: its statements are built once.
_OPEN_TICKET_ID_OF = select(_TICKETS.c.id).where(
    _TICKETS.c.contact_id == bindparam("contact_id"), _TICKETS.c.status == TicketStatus.OPEN.value
)
# ON CONFLICT DO NOTHING: when a concurrent request opened the contact's ticket first, the partial
# unique index (one open ticket per contact) skips this row instead of failing the transaction.
_INSERT_TICKET = database.insert_skipping_conflicts(
    _TICKETS,
    [
        "uuid",
        "contact_id",
        "topic_id",
        "assignee_id",
        "status",
        "body",
        "results",
        "opened_on",
        "opened_by_id",
        "opened_in_flow_uuid",
        "opened_in_flow_name",
        "last_activity_on",
    ],
    returning="id",
)
_INSERT_EVENT = insert(_EVENTS).values(
    **database.bound(_EVENTS, "ticket_id", "kind", "created_by_id", "created_on", "note", "assignee_id", "topic_id")
)
_TOUCH_TICKET = (
    update(_TICKETS)
    .where(_TICKETS.c.id == bindparam("ticket_id"))
    .values(**database.bound(_TICKETS, "last_activity_on"))
)


def open_ticket_for(
    contact: ContactRow,
    *,
    topic_name: str | None = None,
    body: str | None = "",
    results: Mapping | None = None,
    assignee_id: int | None = None,
    opened_by: User | None = None,
    flow_uuid: str | None = None,
    flow_name: str | None = None,
) -> tuple[int, bool]:
    """open_ticket() for a contact in hand (contacts.upsert_contact_row()): returns (ticket id, created).

    A handful of prebuilt statements: what lets a flow open hundreds of tickets a second.
    """
    require(opened_by, Capability.WORK_TICKETS)
    template = clean_text(body, field="body", max_length=BODY_MAX_LENGTH)
    topic_id, topic_name = topic_service.topic_id_and_name(topic_name)
    results = expressions.normalise_results(results)
    rendered = expressions.render(template, body_context(contact, topic_name, results))[:BODY_MAX_LENGTH]
    check_assignee(assignee_id)
    now = utcnow()
    by_id = _user_id(opened_by)

    # A contact made by this request has no tickets yet: no need to look for an open one.
    existing_id = None
    if not contact.created:
        existing_id = db.session.execute(_OPEN_TICKET_ID_OF, {"contact_id": contact.id}).scalar()
    if existing_id is None:
        ticket_id = db.session.execute(
            _INSERT_TICKET,
            {
                "uuid": new_uuid(),
                "status": TicketStatus.OPEN.value,
                "contact_id": contact.id,
                "topic_id": topic_id,
                "assignee_id": assignee_id,
                "body": rendered,
                "results": results,
                "opened_on": now,
                "opened_by_id": by_id,
                "opened_in_flow_uuid": flow_uuid,
                "opened_in_flow_name": flow_name,
                "last_activity_on": now,
            },
        ).scalar()
        if ticket_id is not None:
            _add_event(ticket_id, Kind.OPENED, by_id, now, assignee_id=assignee_id, topic_id=topic_id)
            effects.run(effects.ON_OPENED, Change(Kind.OPENED, [ticket_id], by_id, now))
            return ticket_id, True
        # A concurrent request opened the contact's ticket first: the body goes to that one.
        existing_id = db.session.execute(_OPEN_TICKET_ID_OF, {"contact_id": contact.id}).scalar()
        if existing_id is None:
            raise Conflict("The contact's tickets changed meanwhile; try again.")
    if rendered:
        _add_event(existing_id, Kind.NOTE_ADDED, by_id, now, note=rendered)
        effects.run(effects.ON_NOTE_ADDED, Change(Kind.NOTE_ADDED, [existing_id], by_id, now))
    db.session.execute(_TOUCH_TICKET, {"ticket_id": existing_id, "last_activity_on": now})
    expire_tickets([existing_id])
    return existing_id, False


def _add_event(ticket_id: int, kind: str, by_id: int | None, now: datetime, **values: Any) -> None:
    db.session.execute(
        _INSERT_EVENT,
        {
            "ticket_id": ticket_id,
            "kind": str(kind),
            "created_by_id": by_id,
            "created_on": now,
            "note": values.get("note"),
            "assignee_id": values.get("assignee_id"),
            "topic_id": values.get("topic_id"),
        },
    )


def open_ticket(
    *,
    contact_id: int,
    topic_name: str | None = None,
    body: str | None = "",
    results: Mapping | None = None,
    assignee_id: int | None = None,
    opened_by: User | None = None,
    flow_uuid: str | None = None,
    flow_name: str | None = None,
) -> tuple[Ticket, bool]:
    """Open a ticket for a contact, or return their open one with the body added as a note.

    Returns (ticket, created). The body may hold expressions (@results.x, @contact.name, ...),
    evaluated here against the results and the contact. One open ticket per contact holds even
    under concurrent calls: the database's partial unique index decides, and the loser's body is
    added to the winner's ticket.
    """
    ticket_id, created = open_ticket_for(
        contact_service.contact_row(contact_id),
        topic_name=topic_name,
        body=body,
        results=results,
        assignee_id=assignee_id,
        opened_by=opened_by,
        flow_uuid=flow_uuid,
        flow_name=flow_name,
    )
    return get_ticket(ticket_id), created


# --- each change, then what it sets off (ticketer/services/effects.py) ----------------------


def _result(ticket_ids: Sequence[int], changed: list[int]) -> BulkResult:
    selected = len(set(ticket_ids))
    return BulkResult(changed=len(changed), skipped=selected - len(changed))


def _assign(ticket_ids: Sequence[int], assignee_id: int | None, by: User | None, note: str) -> list[int]:
    assigned = ticket_changes.assign(ticket_ids, assignee_id, by_id=_user_id(by), now=utcnow(), note=note)
    effects.run(effects.ON_ASSIGNED, assigned)
    return assigned.ticket_ids


def _close(ticket_ids: Sequence[int], by: User | None) -> list[int]:
    """Close the open ones among `ticket_ids`, then run what a close sets off (effects.ON_CLOSED):
    their SLA deadlines go, follow-up flow starts are recorded, the folder counts and today's
    closed count follow. All in the caller's transaction; the scheduler sends the starts later."""
    now = utcnow()
    closed = ticket_changes.apply_change(
        ticket_ids,
        conditions=lambda chunk: [Ticket.status == TicketStatus.OPEN],
        values={"status": TicketStatus.CLOSED.value, "closed_on": now},
        kind=Kind.CLOSED,
        by_id=_user_id(by),
        now=now,
    )
    effects.run(effects.ON_CLOSED, closed)
    return closed.ticket_ids


def _reopen(ticket_ids: Sequence[int], by: User | None) -> list[int]:
    other = aliased(Ticket)
    newest = aliased(Ticket)

    def conditions(chunk: list[int]) -> list:
        return [
            Ticket.status == TicketStatus.CLOSED,
            # one open ticket per contact: not when the contact has an open one ...
            ~exists().where(other.contact_id == Ticket.contact_id, other.status == TicketStatus.OPEN),
            # ... and of several selected closed tickets of one contact, only the newest.
            Ticket.id
            == select(func.max(newest.id))
            .where(
                newest.contact_id == Ticket.contact_id,
                newest.status == TicketStatus.CLOSED,
                newest.id.in_(chunk),
            )
            .scalar_subquery(),
        ]

    try:
        with db.session.begin_nested():
            reopened = ticket_changes.apply_change(
                ticket_ids,
                conditions=conditions,
                values={"status": TicketStatus.OPEN.value, "closed_on": None},
                kind=Kind.REOPENED,
                by_id=_user_id(by),
                now=utcnow(),
            )
            effects.run(effects.ON_REOPENED, reopened)
            return reopened.ticket_ids
    except IntegrityError:
        raise Conflict("A contact of these tickets got a new open ticket meanwhile; try again.") from None


def _change_topic(ticket_ids: Sequence[int], topic_id: int, by: User | None) -> list[int]:
    if db.session.get(Topic, topic_id) is None:
        raise ValidationError("That topic doesn't exist.", field="topic")
    moved = ticket_changes.apply_change(
        ticket_ids,
        conditions=lambda chunk: [Ticket.topic_id != topic_id],
        values={"topic_id": topic_id},
        kind=Kind.TOPIC_CHANGED,
        by_id=_user_id(by),
        now=utcnow(),
        topic_id=topic_id,
    )
    effects.run(effects.ON_TOPIC_CHANGED, moved)
    return moved.ticket_ids


def _clean_note(note: str | None, *, required: bool = False) -> str:
    return clean_text(note, field="note", max_length=NOTE_MAX_LENGTH, required=required)


# --- one ticket -----------------------------------------------------------------------------


def assign(ticket_id: int, assignee_id: int | None, *, by: User | None, note: str | None = None) -> bool:
    """Assign a ticket (None unassigns), with an optional note. Returns whether anything changed.

    Assigning to the current assignee with a note adds the note; without one it changes nothing.
    """
    require(by, Capability.WORK_TICKETS)
    ticket = get_ticket(ticket_id)
    note = _clean_note(note)
    check_assignee(assignee_id)
    if not ticket.is_open:
        raise ValidationError("Reopen the ticket before assigning it.", field="assignee")
    if ticket.assignee_id == assignee_id:
        if note:
            add_note(ticket_id, note, by=by)
            return True
        return False
    return bool(_assign([ticket_id], assignee_id, by, note))


def add_note(ticket_id: int, note: str, *, by: User | None) -> TicketEvent:
    """Add an internal note (at most 10,000 characters) to a ticket's timeline."""
    require(by, Capability.WORK_TICKETS)
    ticket = get_ticket(ticket_id)
    text = _clean_note(note, required=True)
    now = utcnow()
    ticket.last_activity_on = now
    event = _event(ticket, Kind.NOTE_ADDED, _user_id(by), now, note=text)
    db.session.flush()
    effects.run(effects.ON_NOTE_ADDED, Change(Kind.NOTE_ADDED, [ticket.id], _user_id(by), now))
    return event


def change_topic(ticket_id: int, topic_id: int, *, by: User | None) -> bool:
    """Move a ticket to another topic. Returns whether it changed."""
    require(by, Capability.WORK_TICKETS)
    get_ticket(ticket_id)
    return bool(_change_topic([ticket_id], topic_id, by))


def close(ticket_id: int, *, by: User | None) -> bool:
    """Close a ticket. Closing a closed ticket changes nothing and adds no event.

    What a close sets off (effects.ON_CLOSED): see `_close` above; step by step in docs/architecture.md.
    """
    require(by, Capability.WORK_TICKETS)
    get_ticket(ticket_id)
    return bool(_close([ticket_id], by))


def reopen(ticket_id: int, *, by: User | None) -> bool:
    """Reopen a closed ticket. Reopening an open one changes nothing and adds no event.

    Refused (Conflict) when the contact has another open ticket.
    """
    require(by, Capability.WORK_TICKETS)
    ticket = get_ticket(ticket_id)
    if ticket.is_open:
        return False
    if _open_ticket_of(ticket.contact_id) is not None:
        raise Conflict("This contact already has an open ticket; work that one instead.")
    return bool(_reopen([ticket_id], by))


def reply(ticket_id: int, text: str, *, by: User | None) -> Message:
    """Queue a reply to the contact on an open ticket; the dispatcher sends it."""
    require(by, Capability.WORK_TICKETS)
    ticket = get_ticket(ticket_id)
    body = clean_text(text, field="text", max_length=MESSAGE_MAX_LENGTH, required=True)
    if not ticket.is_open:
        raise ValidationError("Reopen the ticket to reply.", field="text")
    now = utcnow()
    message = Message(
        contact_id=ticket.contact_id,
        ticket_id=ticket.id,
        direction=Message.Direction.OUT,
        text=body,
        status=Message.Status.QUEUED,
        created_by_id=_user_id(by),
        created_on=now,
    )
    db.session.add(message)
    ticket.last_activity_on = now
    ticket.waiting_since = None  # answered
    if ticket.first_reply_on is None:
        ticket.first_reply_on = now
    db.session.flush()
    return message


def receive_message(contact_id: int, text: str | None, *, attachments: list[dict] | None = None) -> Message:
    """Record a message from the contact; it joins their open ticket, if any, and bumps its activity.

    Its attachments ([{content_type, url}], text optional with one) are recorded as pending
    downloads in the same transaction (ticketer/services/media.py): the text never waits for them."""
    if db.session.get(Contact, contact_id) is None:
        raise NotFound("That contact doesn't exist.")
    body = clean_text(text or "", field="text", max_length=MESSAGE_MAX_LENGTH, required=not attachments)
    now = utcnow()
    ticket = _open_ticket_of(contact_id)
    message = Message(
        contact_id=contact_id,
        ticket_id=ticket.id if ticket else None,
        direction=Message.Direction.IN,
        text=body,
        status=Message.Status.RECEIVED,
        created_on=now,
        attachments=attachments or None,
    )
    db.session.add(message)
    if ticket is not None:
        ticket.last_activity_on = now
        ticket.waiting_since = ticket.waiting_since or now  # waiting for a reply
    db.session.flush()
    if attachments:
        media.record_pending([(message.id, attachments)])
    return message


# --- many tickets (supervisors and admins) --------------------------------------------------


def assign_tickets(
    ticket_ids: Sequence[int], assignee_id: int | None, *, by: User | None, note: str | None = None
) -> BulkResult:
    """Assign many open tickets (None unassigns) with one note, set-based."""
    require(by, Capability.BULK_ACTIONS)
    check_assignee(assignee_id)
    return _result(ticket_ids, _assign(ticket_ids, assignee_id, by, _clean_note(note)))


def close_tickets(ticket_ids: Sequence[int], *, by: User | None) -> BulkResult:
    """Close many tickets, set-based; closed ones are skipped."""
    require(by, Capability.BULK_ACTIONS)
    return _result(ticket_ids, _close(ticket_ids, by))


def reopen_tickets(ticket_ids: Sequence[int], *, by: User | None) -> BulkResult:
    """Reopen many tickets, set-based; open ones, and those whose contact has an open ticket, are skipped."""
    require(by, Capability.BULK_ACTIONS)
    return _result(ticket_ids, _reopen(ticket_ids, by))


def change_topic_tickets(ticket_ids: Sequence[int], topic_id: int, *, by: User | None) -> BulkResult:
    """Move many tickets to a topic, set-based."""
    require(by, Capability.BULK_ACTIONS)
    return _result(ticket_ids, _change_topic(ticket_ids, topic_id, by))


def unassign_tickets_of(user_id: int, *, by: User | None, note: str | None = None) -> list[int]:
    """Unassign every open ticket of a user (e.g. when deactivated), one event each; returns their ids."""
    ids = list(
        db.session.execute(
            select(Ticket.id).where(Ticket.assignee_id == user_id, Ticket.status == TicketStatus.OPEN)
        ).scalars()
    )
    return _assign(ids, None, by, _clean_note(note))


# --- one action on one or many tickets (the API's ticket_actions, the panel's bulk bar) -----

ACTIONS = ("assign", "add_note", "change_topic", "close", "reopen")


def add_notes(ticket_ids: Sequence[int], note: str, *, by: User | None) -> BulkResult:
    """Add one note to many tickets, set-based (one UPDATE and one INSERT of events per chunk)."""
    require(by, Capability.BULK_ACTIONS)
    text = _clean_note(note, required=True)
    noted = ticket_changes.apply_change(
        ticket_ids,
        conditions=lambda chunk: [],
        values={},
        kind=Kind.NOTE_ADDED,
        by_id=_user_id(by),
        now=utcnow(),
        note=text,
    )
    effects.run(effects.ON_NOTE_ADDED, noted)
    return _result(ticket_ids, noted.ticket_ids)


def apply_action(
    action: str,
    ticket_ids: Sequence[int],
    *,
    by: User | None,
    assignee_id: int | None = None,
    topic_id: int | None = None,
    note: str | None = None,
) -> BulkResult:
    """Do one of ACTIONS to the tickets: the one place that decides single versus bulk.

    One ticket goes through the single-ticket service (the "work tickets" right, and its rules:
    assigning to the current assignee with a note adds the note; reopening while the contact has
    another open ticket is a Conflict); several need the "bulk actions" right and go set-based,
    skipping tickets already in the wanted state. `assignee_id` None unassigns.
    """
    ids = list(dict.fromkeys(int(i) for i in ticket_ids))
    if action not in ACTIONS:
        raise ValidationError(f"Pick one of: {', '.join(ACTIONS)}.", field="action")
    if not ids:
        raise ValidationError("Select some tickets first.", field="tickets")
    if len(ids) > 1:
        require(by, Capability.BULK_ACTIONS)
    if action == "add_note" and not (note or "").strip():
        raise ValidationError("Write the note.", field="note")
    if action == "change_topic" and topic_id is None:
        raise ValidationError("Pick the new topic.", field="topic")
    if len(ids) == 1:
        changed = {
            "assign": lambda i: assign(i, assignee_id, by=by, note=note),
            "add_note": lambda i: bool(add_note(i, note or "", by=by)),
            "change_topic": lambda i: change_topic(i, topic_id, by=by),
            "close": lambda i: close(i, by=by),
            "reopen": lambda i: reopen(i, by=by),
        }[action](ids[0])
        return BulkResult(changed=int(changed), skipped=int(not changed))
    if action == "assign":
        return assign_tickets(ids, assignee_id, by=by, note=note)
    if action == "add_note":
        return add_notes(ids, note or "", by=by)
    if action == "change_topic":
        return change_topic_tickets(ids, topic_id, by=by)
    if action == "close":
        return close_tickets(ids, by=by)
    return reopen_tickets(ids, by=by)
