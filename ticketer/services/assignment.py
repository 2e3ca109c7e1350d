"""Auto-assignment: a topic's pool of agents takes its new tickets, round robin or fewest open first.

Here: the settings, the pool, availability, and the backlog (`hand_out_backlog`, a scheduler job,
hands out waiting tickets oldest first as agents free up or come online). Which member takes which
ticket, the locking that keeps an agent under capacity, and the effect that assigns a new ticket at
once are in ticketer/services/auto_assignment.py.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select

from ticketer.clock import utcnow
from ticketer.errors import NotFound, PermissionDenied, ValidationError
from ticketer.extensions import db
from ticketer.models import Ticket, TicketStatus, Topic, User
from ticketer.models.supervision import AgentStatus, AssignmentStrategy, AutoAssignment, PoolMember
from ticketer.roles import ASSIGNABLE_ROLES, Capability, require
from ticketer.services import auto_assignment
from ticketer.services import tickets as ticket_service

CAPACITY_MAX = 1_000


# --- settings -------------------------------------------------------------------------------


def get_settings(topic_id: int) -> AutoAssignment | None:
    return db.session.get(AutoAssignment, topic_id)


def pool_user_ids(topic_id: int) -> list[int]:
    return list(
        db.session.execute(
            select(PoolMember.user_id).where(PoolMember.topic_id == topic_id).order_by(PoolMember.user_id)
        ).scalars()
    )


def _ensure_statuses(user_ids: Iterable[int]) -> None:
    """Every pool member gets an AgentStatus row: it is what assignment locks."""
    wanted = set(user_ids)
    if not wanted:
        return
    have = set(db.session.execute(select(AgentStatus.user_id).where(AgentStatus.user_id.in_(wanted))).scalars())
    for user_id in sorted(wanted - have):
        db.session.add(AgentStatus(user_id=user_id, available=True, modified_on=utcnow()))
    db.session.flush()


def configure(
    topic_id: int,
    *,
    enabled: bool,
    strategy: str,
    capacity: int,
    pool: Sequence[int],
    by: User | None,
) -> AutoAssignment:
    """Set a topic's auto-assignment (supervisors and admins). Turning it on hands out its backlog."""
    require(by, Capability.MANAGE_TOPICS)
    if db.session.get(Topic, topic_id) is None:
        raise NotFound("That topic doesn't exist.")
    try:
        strategy = AssignmentStrategy(strategy).value
    except ValueError:
        raise ValidationError("Pick round robin or fewest open tickets.", field="strategy") from None
    if not isinstance(capacity, int) or not 1 <= capacity <= CAPACITY_MAX:
        raise ValidationError(f"Capacity must be between 1 and {CAPACITY_MAX:,}.", field="capacity")
    pool_ids = sorted({int(i) for i in pool})
    if pool_ids:
        takers = set(
            db.session.execute(
                select(User.id).where(
                    User.id.in_(pool_ids),
                    User.active.is_(True),
                    User.role.in_([r.value for r in ASSIGNABLE_ROLES]),
                )
            ).scalars()
        )
        if takers != set(pool_ids):
            raise ValidationError("The pool can only hold active agents, supervisors or admins.", field="pool")
    if enabled and not pool_ids:
        raise ValidationError("Add at least one agent to the pool to turn auto-assignment on.", field="pool")

    settings = get_settings(topic_id)
    if settings is None:
        settings = AutoAssignment(topic_id=topic_id)
        db.session.add(settings)
    settings.enabled = bool(enabled)
    settings.strategy = strategy
    settings.capacity = capacity
    settings.modified_on = utcnow()
    db.session.execute(
        delete(PoolMember).where(PoolMember.topic_id == topic_id, PoolMember.user_id.not_in(pool_ids or [0]))
    )
    current = set(pool_user_ids(topic_id))
    for user_id in pool_ids:
        if user_id not in current:
            db.session.add(PoolMember(topic_id=topic_id, user_id=user_id))
    db.session.flush()
    _ensure_statuses(pool_ids)
    if settings.enabled:
        assign_backlog(topic_id)
    return settings


@dataclass
class MemberStatus:
    user: User
    available: bool
    open_tickets: int


def pool_status(topic_id: int) -> list[MemberStatus]:
    """The topic's pool members with their availability and open tickets (one query), for supervisors."""
    load = (
        select(func.count())
        .select_from(Ticket)
        .where(Ticket.assignee_id == User.id, Ticket.status == TicketStatus.OPEN)
        .scalar_subquery()
    )
    rows = db.session.execute(
        select(User, func.coalesce(AgentStatus.available, True), load)
        .join(PoolMember, PoolMember.user_id == User.id)
        .outerjoin(AgentStatus, AgentStatus.user_id == User.id)
        .where(PoolMember.topic_id == topic_id)
        .order_by(func.lower(User.name), User.email)
    ).all()
    return [MemberStatus(user, bool(available), int(n or 0)) for user, available, n in rows]


def is_available(user_id: int) -> bool:
    status = db.session.get(AgentStatus, user_id)
    return status.available if status is not None else True


def set_available(user_id: int, available: bool, *, by: User) -> bool:
    """Switch someone's "available" toggle (themselves, or anyone for supervisors and admins).

    Coming online hands out the backlog of their pools. Returns whether it changed.
    """
    if by.id != user_id and not by.can(Capability.MANAGE_TOPICS):
        raise PermissionDenied("You can only change your own availability.")
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("That person doesn't exist.")
    if not user.can_take_tickets:
        raise ValidationError("Only people who take tickets have an availability.", field="available")
    status = db.session.get(AgentStatus, user_id)
    if status is None:
        status = AgentStatus(user_id=user_id, available=True)
        db.session.add(status)
    if status.available == bool(available):
        return False
    status.available = bool(available)
    status.modified_on = utcnow()
    db.session.flush()
    if status.available:
        for topic_id in _enabled_topics_of(user_id):
            assign_backlog(topic_id)
    return True


def _enabled_topics_of(user_id: int) -> list[int]:
    return list(
        db.session.execute(
            select(PoolMember.topic_id)
            .join(AutoAssignment, AutoAssignment.topic_id == PoolMember.topic_id)
            .where(PoolMember.user_id == user_id, AutoAssignment.enabled.is_(True))
            .order_by(PoolMember.topic_id)
        ).scalars()
    )


def enabled_topic_ids() -> list[int]:
    return list(
        db.session.execute(
            select(AutoAssignment.topic_id).where(AutoAssignment.enabled.is_(True)).order_by(AutoAssignment.topic_id)
        ).scalars()
    )


# --- the backlog ---------------------------------------------------------------------------


def assign_backlog(topic_id: int, *, limit: int | None = None) -> int:
    """Hand out a topic's unassigned open tickets, oldest first, while pool members have room.

    Returns the number assigned. Tickets another transaction is working on are skipped
    (SKIP LOCKED on PostgreSQL) and left for the next run.
    """
    auto_assignment.lock_agents([topic_id])
    settings = auto_assignment.fresh_settings(topic_id)
    if settings is None:
        return 0
    room = sum(max(0, settings.capacity - c.load) for c in auto_assignment.candidates(topic_id))
    if limit is not None:
        room = min(room, limit)
    if room <= 0:
        return 0
    ids = list(
        db.session.execute(
            select(Ticket.id)
            .where(Ticket.topic_id == topic_id, Ticket.status == TicketStatus.OPEN, Ticket.assignee_id.is_(None))
            .order_by(Ticket.opened_on, Ticket.id)
            .limit(room)
            .with_for_update(skip_locked=True)
        ).scalars()
    )
    if not ids:
        return 0
    note = auto_assignment.automatic_note(settings.strategy)
    assigned = 0
    for user_id, ticket_ids in auto_assignment.plan_assignments(settings, ids).items():
        assigned += ticket_service.assign_tickets(ticket_ids, user_id, by=None, note=note).changed
    return assigned


def hand_out_backlog() -> int:
    """Hand out the backlog of every auto-assigned topic (the scheduler job's work, without commits)."""
    return sum(assign_backlog(topic_id) for topic_id in enabled_topic_ids())
