"""A ticket as JSON: the one shape of a ticket that leaves Ticketer, in RapidPro API v2's terms.

The API answers with it (its TicketSchema documents it) and flow engines receive it in every
delivery (a flow start's and a message's `ticket`). Values are JSON-ready: moments are ISO 8601
text in UTC.
"""

from datetime import datetime

from ticketer.models import Ticket, User


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def user_ref(email: str | None, name: str | None) -> dict | None:
    return {"email": email, "name": name or email} if email is not None else None


def ticket_json(row, *, contact: dict, topic: dict, assignee: dict | None, opened_by: dict | None) -> dict:
    """The shape, from a Ticket or a row with a ticket's columns, and its references made already."""
    flow = None
    if row.opened_in_flow_uuid or row.opened_in_flow_name:
        flow = {"uuid": row.opened_in_flow_uuid, "name": row.opened_in_flow_name}
    return {
        "uuid": row.uuid,
        "contact": contact,
        "status": row.status,
        "topic": topic,
        "assignee": assignee,
        "body": row.body,
        "results": row.results or {},
        "opened_on": iso(row.opened_on),
        "opened_by": opened_by,
        "opened_in": flow,
        "modified_on": iso(row.last_activity_on),
        "closed_on": iso(row.closed_on),
    }


def _user(user: User | None) -> dict | None:
    return user_ref(user.email, user.name) if user is not None else None


def of(ticket: Ticket) -> dict:
    """The shape of a loaded Ticket (its contact, topic, assignee and opener are read from it)."""
    return ticket_json(
        ticket,
        contact={"uuid": ticket.contact.uuid, "name": ticket.contact.name},
        topic={"uuid": ticket.topic.uuid, "name": ticket.topic.name},
        assignee=_user(ticket.assignee),
        opened_by=_user(ticket.opened_by),
    )
