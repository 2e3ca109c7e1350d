"""Roles and what each may do: the single table behind every permission check (PRODUCT.md "Roles")."""

from enum import StrEnum
from typing import Protocol

from ticketer.errors import PermissionDenied


class Role(StrEnum):
    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    AGENT = "agent"
    VIEWER = "viewer"


class Capability(StrEnum):
    VIEW_TICKETS = "view_tickets"
    WORK_TICKETS = "work_tickets"  # reply, note, assign one, change topic, close, reopen
    BULK_ACTIONS = "bulk_actions"
    MANAGE_TOPICS = "manage_topics"
    DASHBOARD = "dashboard"  # dashboard and CSV export
    MANAGE_PEOPLE = "manage_people"
    INTEGRATIONS = "integrations"  # flows, triggers, API tokens


_ALL = frozenset(Capability)

ROLE_CAPABILITIES: dict[Role, frozenset[Capability]] = {
    Role.ADMIN: _ALL,
    Role.SUPERVISOR: _ALL - {Capability.MANAGE_PEOPLE, Capability.INTEGRATIONS},
    Role.AGENT: frozenset({Capability.VIEW_TICKETS, Capability.WORK_TICKETS}),
    Role.VIEWER: frozenset({Capability.VIEW_TICKETS, Capability.DASHBOARD}),
}

# Roles that can be assigned tickets.
ASSIGNABLE_ROLES = frozenset({Role.ADMIN, Role.SUPERVISOR, Role.AGENT})


# What each capability lets someone do, for the message of a refusal ("Only ... can <this>.").
CAPABILITY_LABELS: dict[Capability, str] = {
    Capability.VIEW_TICKETS: "see tickets",
    Capability.WORK_TICKETS: "reply to, note, assign, move, close or reopen tickets",
    Capability.BULK_ACTIONS: "act on many tickets at once",
    Capability.MANAGE_TOPICS: "manage topics, their SLA targets and auto-assignment",
    Capability.DASHBOARD: "see the dashboard and export tickets",
    Capability.MANAGE_PEOPLE: "manage people",
    Capability.INTEGRATIONS: "manage flows, triggers, API tokens and connections",
}

# The folder each role lands on: agents work their own tickets, the others look at the whole desk.
HOME_FOLDERS: dict[Role, str] = {Role.ADMIN: "all", Role.SUPERVISOR: "all", Role.AGENT: "mine", Role.VIEWER: "all"}


def role_can(role: str | Role, capability: Capability) -> bool:
    try:
        return capability in ROLE_CAPABILITIES[Role(role)]
    except ValueError:
        return False


def home_folder(role: str | Role) -> str:
    """The ticket folder a person of this role sees first ("mine" or "all")."""
    try:
        return HOME_FOLDERS[Role(role)]
    except ValueError:
        return "all"


def refusal(capability: Capability) -> str:
    """Why someone without the capability is refused, e.g. "Only admins can manage people."."""
    roles = [f"{role.value}s" for role in Role if capability in ROLE_CAPABILITIES[role]]
    who = roles[0] if len(roles) == 1 else ", ".join(roles[:-1]) + " and " + roles[-1]
    return f"Only {who} can {CAPABILITY_LABELS[capability]}."


class _Person(Protocol):
    def can(self, capability: Capability) -> bool: ...


def require(user: _Person | None, capability: Capability, *, system: bool = True) -> None:
    """Raise PermissionDenied unless `user` has the capability (an inactive user has none).

    `None` is the system (a flow, the scheduler, the CLI) and may do anything, unless `system` is
    False: the action records who did it, so it needs a person.
    """
    if user is None:
        if system:
            return
    elif user.can(capability):
        return
    raise PermissionDenied(refusal(capability))
