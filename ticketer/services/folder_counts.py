"""Keeping the folder counts: the ticket effect (ticketer/services/effects.py), and a rebuild from the tickets.

A ticket counts in (its assignee or nobody, its status). Opening adds it; assigning moves it from
the previous assignee (read from the timeline: the event before this one that set an assignee) to
the new one; closing and reopening move it between statuses. Each change is one INSERT ... SELECT ... ON
CONFLICT statement, whatever the number of tickets; the counts stay equal to COUNT(*).
"""

from sqlalchemy import bindparam, delete, func, insert, literal_column, select, text

from ticketer.extensions import db
from ticketer.models import Ticket, TicketEvent
from ticketer.models.folder_counts import NOBODY, TicketFolderCount
from ticketer.services.ticket_changes import Change, chunks

Kind = TicketEvent.Kind


# Per kind, the (assignee_key, count) groups the changed tickets leave (away_*) and enter (into_*).
# Plain SQL, the same on SQLite and PostgreSQL: compiled once, cheap for the one-ticket changes
# a flow makes hundreds of times a second.
_GROUPS = {
    # The assignee a ticket was opened with is on its (latest) opened event.
    Kind.OPENED: """
        SELECT CAST(NULL AS INTEGER) AS away_key, coalesce(e.assignee_id, 0) AS into_key,
               'open' AS away_status, 'open' AS into_status, count(*) AS n
        FROM tickets t JOIN ticket_events e ON e.ticket_id = t.id AND e.id = (
            SELECT max(p.id) FROM ticket_events p WHERE p.ticket_id = t.id AND p.kind = 'opened')
        WHERE t.id IN :ids GROUP BY coalesce(e.assignee_id, 0)""",
    # From the assignee set by the event before this assigned event (the latest one: it was just
    # written), to this event's assignee; one pass over the tickets' opened/assigned events.
    Kind.ASSIGNED: """
        SELECT coalesce(previous_assignee, 0) AS away_key, coalesce(assignee_id, 0) AS into_key,
               'open' AS away_status, 'open' AS into_status, count(*) AS n
        FROM (
            SELECT assignee_id,
                   lag(assignee_id) OVER (PARTITION BY ticket_id ORDER BY id) AS previous_assignee,
                   row_number() OVER (PARTITION BY ticket_id ORDER BY id DESC) AS newest_first
            FROM ticket_events WHERE ticket_id IN :ids AND kind IN ('opened', 'assigned')
        ) history
        WHERE newest_first = 1
        GROUP BY coalesce(previous_assignee, 0), coalesce(assignee_id, 0)""",
    Kind.CLOSED: """
        SELECT coalesce(assignee_id, 0) AS away_key, coalesce(assignee_id, 0) AS into_key,
               'open' AS away_status, 'closed' AS into_status, count(*) AS n
        FROM tickets WHERE id IN :ids GROUP BY coalesce(assignee_id, 0)""",
    Kind.REOPENED: """
        SELECT coalesce(assignee_id, 0) AS away_key, coalesce(assignee_id, 0) AS into_key,
               'closed' AS away_status, 'open' AS into_status, count(*) AS n
        FROM tickets WHERE id IN :ids GROUP BY coalesce(assignee_id, 0)""",
}
# One statement: the moves summed by count, upserted (the same SQL on SQLite and PostgreSQL; the
# WHERE lets SQLite parse ON CONFLICT after a SELECT).
_UPSERT = """
    WITH g AS ({groups})
    INSERT INTO ticket_folder_counts (assignee_key, status, tickets)
    SELECT assignee_key, status, sum(delta) FROM (
        SELECT into_key AS assignee_key, into_status AS status, n AS delta FROM g
        UNION ALL
        SELECT away_key, away_status, -n FROM g WHERE away_key IS NOT NULL
    ) moves
    WHERE 1 = 1
    GROUP BY assignee_key, status
    HAVING sum(delta) <> 0
    ON CONFLICT (assignee_key, status) DO UPDATE SET tickets = ticket_folder_counts.tickets + excluded.tickets"""
_STATEMENTS = {
    kind: text(_UPSERT.format(groups=groups)).bindparams(bindparam("ids", expanding=True))
    for kind, groups in _GROUPS.items()
}


def count_folder_change(change: Change) -> None:
    """Effect of an open, assignment, close or reopen: move the tickets between the (assignee, status) counts.

    One INSERT ... SELECT ... ON CONFLICT DO UPDATE per chunk of ids, whatever their number. It reads
    the assignee a ticket had from its events and the tickets as they are, so it runs before
    auto-assignment changes them (effects.py).
    """
    statement = _STATEMENTS[change.kind]
    for chunk in chunks(change.ticket_ids):
        db.session.execute(statement, {"ids": chunk})


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
