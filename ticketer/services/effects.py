"""What a ticket change sets off: one table, in the order the effects run.

A ticket service (ticketer/services/tickets.py) writes its change, the tickets' columns and one
event per ticket (ticket_changes.py), then runs the row of this table for the event's kind, in the
same transaction: either all of it commits or none of it. Nothing registers itself; an effect runs
because it is named here, so importing a module never changes what a change does.

The order, and why:
1. deadlines (sla.py) and 2. flow starts (flows.py): they read only the tickets' topic and times,
   which nothing later in the row changes.
3. folder counts (folder_counts.py): they move a ticket from the folder it was in when the change
   happened, so they run before auto-assignment gives it an assignee.
4. auto-assignment (auto_assignment.py): gives tickets that wait unassigned in an auto-assigned
   topic to its pool, then runs the ASSIGNED row for those assignments (that row has no
   auto-assignment, so this never loops, and the runner is not entered again).
5. daily counts (daily_counts.py): last, so an auto-assigned ticket counts as opened (or reopened)
   under the agent it went to. The decision: the assignment is in the same transaction, so in no
   committed state was the ticket ever unassigned, and a count "under Unassigned" would describe
   a moment nobody could see. docs/architecture.md says the same.
"""

from collections.abc import Callable

from ticketer.models import TicketEvent
from ticketer.services import auto_assignment, daily_counts, flows, folder_counts, sla
from ticketer.services.ticket_changes import Change

Kind = TicketEvent.Kind
Effect = Callable[[Change], None]


def assign_automatically(change: Change) -> None:
    """Auto-assignment, then the ASSIGNED row for each assignment it made."""
    for assigned in auto_assignment.assign_waiting(change):
        for effect in ON_ASSIGNED:
            effect(assigned)


# One row per event kind; each effect takes the Change (kind, ticket ids, who, when).
ON_OPENED: tuple[Effect, ...] = (
    sla.start_deadlines,
    folder_counts.count_folder_change,
    assign_automatically,
    daily_counts.count_daily_change,
)
ON_NOTE_ADDED: tuple[Effect, ...] = ()
ON_ASSIGNED: tuple[Effect, ...] = (folder_counts.count_folder_change,)
ON_TOPIC_CHANGED: tuple[Effect, ...] = (
    sla.move_deadlines,
    assign_automatically,
)
ON_CLOSED: tuple[Effect, ...] = (
    sla.clear_deadlines,
    flows.record_flow_starts,
    folder_counts.count_folder_change,
    daily_counts.count_daily_change,
)
ON_REOPENED: tuple[Effect, ...] = (
    sla.restart_deadlines,
    flows.cancel_flow_starts,
    folder_counts.count_folder_change,
    assign_automatically,
    daily_counts.count_daily_change,
)

EFFECTS: dict[str, tuple[Effect, ...]] = {
    Kind.OPENED: ON_OPENED,
    Kind.NOTE_ADDED: ON_NOTE_ADDED,
    Kind.ASSIGNED: ON_ASSIGNED,
    Kind.TOPIC_CHANGED: ON_TOPIC_CHANGED,
    Kind.CLOSED: ON_CLOSED,
    Kind.REOPENED: ON_REOPENED,
}


def run(row: tuple[Effect, ...], change: Change) -> None:
    """Run one row of the table for a change, in order. A change of no tickets sets off nothing."""
    if row is not EFFECTS[change.kind]:
        raise ValueError(f"A {change.kind} change runs the {change.kind} row of the effects table.")
    if change.ticket_ids:
        for effect in row:
            effect(change)
