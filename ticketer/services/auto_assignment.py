"""Auto-assignment's choice: which pool member takes which ticket, and the effect that assigns new
tickets at once.

A ticket that opens (or is reopened or moved) unassigned in an auto-assigned topic goes at once to
a pool member with room: active, available, a role that takes tickets, and fewer open tickets than
the topic's capacity. When nobody has room it waits in Unassigned, and the backlog job
(ticketer/services/assignment.py `hand_out_backlog`) hands it out later, oldest first.

Concurrent assignments can't over-fill an agent: the pool members' AgentStatus rows are locked
(SELECT ... FOR UPDATE on PostgreSQL, in user-id order; SQLite serialises writers) before their
open tickets are counted.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, func, select

from ticketer.extensions import db
from ticketer.models import Ticket, TicketStatus, User
from ticketer.models.supervision import AgentStatus, AssignmentStrategy, AutoAssignment, PoolMember
from ticketer.roles import ASSIGNABLE_ROLES
from ticketer.services import ticket_changes
from ticketer.services.ticket_changes import Change, chunks


def automatic_note(strategy: str) -> str:
    """The note on an automatic assignment event, e.g. "Assigned automatically (round robin)"."""
    return f"Assigned automatically ({AssignmentStrategy(strategy).label})"


@dataclass
class Candidate:
    user_id: int
    load: int  # open tickets held now


def lock_agents(topic_ids: Sequence[int]) -> None:
    """Lock the pool members' status rows in user-id order (a no-op clause on SQLite)."""
    db.session.execute(
        select(AgentStatus.user_id)
        .where(AgentStatus.user_id.in_(select(PoolMember.user_id).where(PoolMember.topic_id.in_(topic_ids))))
        .order_by(AgentStatus.user_id)
        .with_for_update()
    ).all()


def candidates(topic_id: int) -> list[Candidate]:
    """The pool members who may take tickets now, with their open-ticket counts (after the lock)."""
    load = (
        select(func.count())
        .select_from(Ticket)
        .where(Ticket.assignee_id == PoolMember.user_id, Ticket.status == TicketStatus.OPEN)
        .scalar_subquery()
    )
    rows = db.session.execute(
        select(PoolMember.user_id, load)
        .join(User, User.id == PoolMember.user_id)
        .outerjoin(AgentStatus, AgentStatus.user_id == PoolMember.user_id)
        .where(
            PoolMember.topic_id == topic_id,
            User.active.is_(True),
            User.role.in_([r.value for r in ASSIGNABLE_ROLES]),
            func.coalesce(AgentStatus.available, True).is_(True),
        )
        .order_by(PoolMember.user_id)
    ).all()
    return [Candidate(user_id, int(n or 0)) for user_id, n in rows]


def _plan(settings: AutoAssignment, pool: list[Candidate], n_tickets: int) -> list[int]:
    """The agent for each of the next `n_tickets` tickets, in order (shorter when room runs out).

    Round robin takes the next member after the last one assigned; fewest-open takes the member
    with the fewest open tickets, ties going to whoever comes next in the rotation.
    """
    loads = {c.user_id: c.load for c in pool}
    order = sorted(loads)
    pointer = settings.last_assigned_user_id
    plan: list[int] = []
    for _ in range(n_tickets):
        after = [u for u in order if pointer is not None and u > pointer]
        rotation = after + [u for u in order if u not in after]
        with_room = [u for u in rotation if loads[u] < settings.capacity]
        if not with_room:
            break
        if settings.strategy == AssignmentStrategy.FEWEST_OPEN:
            pick = min(with_room, key=lambda u: loads[u])
        else:
            pick = with_room[0]
        loads[pick] += 1
        pointer = pick
        plan.append(pick)
    if plan:
        settings.last_assigned_user_id = pointer
    return plan


def fresh_settings(topic_id: int) -> AutoAssignment | None:
    """The topic's auto-assignment if enabled, read again from the database (after the lock)."""
    return db.session.execute(
        select(AutoAssignment)
        .where(AutoAssignment.topic_id == topic_id, AutoAssignment.enabled.is_(True))
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def plan_assignments(settings: AutoAssignment, ticket_ids: Sequence[int]) -> dict[int, list[int]]:
    """{agent id: ticket ids} for `ticket_ids` (oldest first); the caller holds the agents' locks.

    Moves the topic's round-robin pointer (flushed). Tickets with no room left are not in it.
    """
    plan = _plan(settings, candidates(settings.topic_id), len(ticket_ids))
    by_agent: dict[int, list[int]] = {}
    for ticket_id, user_id in zip(ticket_ids, plan, strict=False):
        by_agent.setdefault(user_id, []).append(ticket_id)
    if by_agent:
        db.session.flush()
    return by_agent


# --- the effect: new tickets are assigned at once -------------------------------------------


_TICKETS = Ticket.__table__
_AUTO = AutoAssignment.__table__
# Built once: the effect runs for every ticket opened.
_WAITING = (
    select(_TICKETS.c.topic_id, _TICKETS.c.id)
    .join(_AUTO, _AUTO.c.topic_id == _TICKETS.c.topic_id)
    .where(
        _TICKETS.c.id.in_(bindparam("ids", expanding=True)),
        _TICKETS.c.status == TicketStatus.OPEN.value,
        _TICKETS.c.assignee_id.is_(None),
        _AUTO.c.enabled.is_(True),
    )
    .order_by(_TICKETS.c.opened_on, _TICKETS.c.id)
)


def assign_waiting(change: Change) -> list[Change]:
    """Give the changed tickets that wait unassigned in an auto-assigned topic to its pool.

    Writes the assignments (ticketer/services/ticket_changes.py) and returns them; it runs no
    effects: effects.py runs the ASSIGNED row for what it returns.
    """
    waiting: dict[int, list[int]] = {}
    for chunk in chunks(change.ticket_ids):
        for topic_id, ticket_id in db.session.execute(_WAITING, {"ids": chunk}):
            waiting.setdefault(topic_id, []).append(ticket_id)
    if not waiting:
        return []
    topic_ids = sorted(waiting)
    lock_agents(topic_ids)  # all of them at once, in one order: no deadlock between topics
    assigned = []
    for topic_id in topic_ids:
        settings = fresh_settings(topic_id)
        if settings is None:
            continue
        note = automatic_note(settings.strategy)
        for user_id, ids in plan_assignments(settings, waiting[topic_id]).items():
            assigned.append(ticket_changes.assign(ids, user_id, by_id=None, now=change.now, note=note))
    return assigned
