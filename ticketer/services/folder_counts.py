"""Keeping the folder counts: the after-change hook, and a rebuild from the tickets.

A ticket counts in (its assignee or nobody, its status). Opening adds it; assigning moves it from
the previous assignee (read from the timeline: the event before this one that set an assignee) to
the new one; closing and reopening move it between statuses. Each change is one grouped SELECT and
one upsert of a few rows, whatever the number of tickets; the counts stay equal to COUNT(*).
"""

from datetime import datetime

from sqlalchemy import delete, func, insert, literal, literal_column, select, union_all
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import aliased

from ticketer.extensions import db
from ticketer.models import Ticket, TicketEvent, TicketStatus
from ticketer.models.folder_counts import NOBODY, TicketFolderCount
from ticketer.services import tickets as ticket_service

Kind = TicketEvent.Kind
OPEN = TicketStatus.OPEN.value
CLOSED = TicketStatus.CLOSED.value
# Events that set a ticket's assignee (an opened event records the assignee it was opened with).
_SETS_ASSIGNEE = (Kind.OPENED.value, Kind.ASSIGNED.value)


def _latest_event_id(kind_in, ticket_id, below=None):
    e = aliased(TicketEvent)
    query = select(func.max(e.id)).where(e.ticket_id == ticket_id, e.kind.in_(kind_in))
    if below is not None:
        query = query.where(e.id < below)
    return query.scalar_subquery()


def _moves(kind: str, chunk: list[int]):
    """(assignee_key, status, +1 / -1) for each count each ticket of `chunk` enters or leaves."""
    if kind == Kind.OPENED:
        this = aliased(TicketEvent)
        return select(func.coalesce(this.assignee_id, NOBODY), literal(OPEN), literal(1)).where(
            Ticket.id.in_(chunk),
            this.ticket_id == Ticket.id,
            this.id == _latest_event_id([Kind.OPENED.value], Ticket.id),
        )
    if kind == Kind.ASSIGNED:
        this, before = aliased(TicketEvent), aliased(TicketEvent)
        joined = [
            Ticket.id.in_(chunk),
            this.ticket_id == Ticket.id,
            before.ticket_id == Ticket.id,
            this.id == _latest_event_id([Kind.ASSIGNED.value], Ticket.id),
            before.id == _latest_event_id(_SETS_ASSIGNEE, Ticket.id, below=this.id),
        ]
        return union_all(
            select(func.coalesce(before.assignee_id, NOBODY), literal(OPEN), literal(-1)).where(*joined),
            select(func.coalesce(this.assignee_id, NOBODY), literal(OPEN), literal(1)).where(*joined),
        )
    to, away = (CLOSED, OPEN) if kind == Kind.CLOSED else (OPEN, CLOSED)
    key = func.coalesce(Ticket.assignee_id, NOBODY)
    return union_all(
        select(key, literal(to), literal(1)).where(Ticket.id.in_(chunk)),
        select(key, literal(away), literal(-1)).where(Ticket.id.in_(chunk)),
    )


def count_folder_changes(kind: str, ticket_ids: list[int], acting_user_id: int | None, now: datetime) -> None:
    """after_change hook: move the changed tickets between the (assignee, status) counts.

    One INSERT ... SELECT ... ON CONFLICT DO UPDATE per chunk of ids: the moves, summed by count.
    """
    if kind not in (Kind.OPENED, Kind.ASSIGNED, Kind.CLOSED, Kind.REOPENED):
        return
    insert_into = pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    for chunk in ticket_service._chunks(ticket_ids):
        moves = _moves(kind, chunk).subquery()
        key, status, delta = moves.c
        summed = (
            select(key, status, func.sum(delta))
            .where(literal_column("1") == 1)  # SQLite: an upsert's SELECT needs a WHERE to parse
            .group_by(key, status)
            .having(func.sum(delta) != 0)
        )
        stmt = insert_into(TicketFolderCount).from_select(["assignee_key", "status", "tickets"], summed)
        db.session.execute(
            stmt.on_conflict_do_update(
                index_elements=["assignee_key", "status"],
                set_={"tickets": TicketFolderCount.tickets + stmt.excluded.tickets},
            )
        )


if count_folder_changes not in ticket_service.after_change_hooks:
    ticket_service.after_change_hooks.append(count_folder_changes)


def stored_counts() -> dict[tuple[int, str], int]:
    """{(assignee_key, status): tickets} as kept (one query over a table of a few rows)."""
    rows = db.session.execute(
        select(TicketFolderCount.assignee_key, TicketFolderCount.status, TicketFolderCount.tickets)
    )
    return {(key, status): n for key, status, n in rows if n}


def counted_from_tickets() -> dict[tuple[int, str], int]:
    """The same figures by COUNT(*) over the tickets (for checks and the rebuild; a full scan)."""
    key = func.coalesce(Ticket.assignee_id, NOBODY)
    rows = db.session.execute(select(key, Ticket.status, func.count()).group_by(key, Ticket.status))
    return {(k, status): n for k, status, n in rows if n}


def rebuild_folder_counts() -> None:
    """Recompute every folder count from the tickets (after a bulk import, or to repair)."""
    key = func.coalesce(Ticket.assignee_id, NOBODY)
    db.session.execute(delete(TicketFolderCount))
    db.session.execute(
        insert(TicketFolderCount).from_select(
            ["assignee_key", "status", "tickets"],
            select(key, Ticket.status, func.count()).where(literal_column("1") == 1).group_by(key, Ticket.status),
        )
    )
