"""The set-based core of every ticket change, and the one place id lists are cut into chunks.

A change is one UPDATE ... RETURNING of the tickets that qualify, then one INSERT ... SELECT of
their events, per chunk of ids, whatever the number of tickets. This module writes the change and
nothing else: what a change sets off is the table in ticketer/services/effects.py, which the
service that made the change runs next (ticketer/services/tickets.py).
"""

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Text, insert, literal, select, update

from ticketer.extensions import db
from ticketer.models import Ticket, TicketEvent, TicketStatus, UTCDateTime

Kind = TicketEvent.Kind
# Ids per statement: keeps every statement under SQLite's bound-parameter limit.
CHUNK_SIZE = 5_000


def chunks(ids: Iterable[int]) -> Iterator[list[int]]:
    """The ids, without duplicates and in their first order, in lists of at most CHUNK_SIZE."""
    unique = list(dict.fromkeys(int(i) for i in ids))
    for start in range(0, len(unique), CHUNK_SIZE):
        yield unique[start : start + CHUNK_SIZE]


@dataclass(frozen=True)
class Change:
    """What changed: the event kind, the tickets that got that event, who did it (None: the
    system) and when. The effects in ticketer/services/effects.py each take one."""

    kind: str
    ticket_ids: list[int]
    by_id: int | None
    now: datetime


def expire_tickets(ticket_ids: Iterable[int]) -> None:
    """Tickets loaded in this session no longer match the database: reload them on next access."""
    changed = set(ticket_ids)
    for key, obj in list(db.session.identity_map.items()):
        if key[0] is Ticket and key[1][0] in changed:
            db.session.expire(obj)


def apply_change(
    ticket_ids: Sequence[int],
    *,
    conditions: Callable[[list[int]], list],
    values: dict[str, Any],
    kind: str,
    by_id: int | None,
    now: datetime,
    note: str | None = None,
    assignee_id: int | None = None,
    topic_id: int | None = None,
) -> Change:
    """UPDATE the tickets among `ticket_ids` that meet `conditions`, and INSERT one event for each.

    Returns the Change (the ids changed). Two statements per chunk of ids. Runs no effects.
    """
    changed: list[int] = []
    for chunk in chunks(ticket_ids):
        rows = db.session.execute(
            update(Ticket)
            .where(Ticket.id.in_(chunk), *conditions(chunk))
            .values(**values, last_activity_on=now)
            .returning(Ticket.id)
            .execution_options(synchronize_session=False)
        ).scalars()
        ids = list(rows)
        if not ids:
            continue
        db.session.execute(
            insert(TicketEvent).from_select(
                ["ticket_id", "kind", "created_by_id", "created_on", "note", "assignee_id", "topic_id"],
                select(
                    Ticket.id,
                    literal(str(kind)),
                    literal(by_id, Integer),
                    literal(now, UTCDateTime),
                    literal(note, Text),
                    literal(assignee_id, Integer),
                    literal(topic_id, Integer),
                ).where(Ticket.id.in_(ids)),
            )
        )
        changed.extend(ids)
    expire_tickets(changed)
    return Change(str(kind), changed, by_id, now)


def assign(
    ticket_ids: Sequence[int], assignee_id: int | None, *, by_id: int | None, now: datetime, note: str | None
) -> Change:
    """Assign the open tickets among `ticket_ids` that aren't `assignee_id`'s (None: nobody's)."""
    return apply_change(
        ticket_ids,
        conditions=lambda chunk: [
            Ticket.status == TicketStatus.OPEN,
            Ticket.assignee_id.is_distinct_from(assignee_id),
        ],
        values={"assignee_id": assignee_id},
        kind=Kind.ASSIGNED,
        by_id=by_id,
        now=now,
        note=note or None,
        assignee_id=assignee_id,
    )
