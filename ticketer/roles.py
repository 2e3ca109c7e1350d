"""Roles and what each may do: the single table behind every permission check (PRODUCT.md "Roles")."""

from enum import StrEnum


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


def role_can(role: str | Role, capability: Capability) -> bool:
    try:
        return capability in ROLE_CAPABILITIES[Role(role)]
    except ValueError:
        return False
