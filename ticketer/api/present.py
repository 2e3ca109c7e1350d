"""Model -> response dicts in RapidPro API v2 shapes (the schemas in schemas.py document them)."""

from ticketer.models import Contact, Message, Ticket, Topic, User


def user_ref(user: User | None) -> dict | None:
    return {"email": user.email, "name": user.display_name} if user is not None else None


def contact_ref(contact: Contact) -> dict:
    return {"uuid": contact.uuid, "name": contact.name}


def topic_ref(topic: Topic) -> dict:
    return {"uuid": topic.uuid, "name": topic.name}


def ticket(ticket: Ticket) -> dict:
    flow = None
    if ticket.opened_in_flow_uuid or ticket.opened_in_flow_name:
        flow = {"uuid": ticket.opened_in_flow_uuid, "name": ticket.opened_in_flow_name}
    return {
        "uuid": ticket.uuid,
        "contact": contact_ref(ticket.contact),
        "status": ticket.status,
        "topic": topic_ref(ticket.topic),
        "assignee": user_ref(ticket.assignee),
        "body": ticket.body,
        "results": ticket.results or {},
        "opened_on": ticket.opened_on,
        "opened_by": user_ref(ticket.opened_by),
        "opened_in": flow,
        "modified_on": ticket.last_activity_on,
        "closed_on": ticket.closed_on,
    }


def message(message: Message, ticket_uuid: str | None) -> dict:
    return {
        "uuid": message.uuid,
        "contact": contact_ref(message.contact),
        "ticket": {"uuid": ticket_uuid} if ticket_uuid else None,
        "direction": message.direction,
        "text": message.text,
        "status": message.status,
        "created_by": user_ref(message.created_by),
        "created_on": message.created_on,
    }


def contact(contact: Contact, open_ticket_uuid: str | None) -> dict:
    return {
        "uuid": contact.uuid,
        "name": contact.name,
        "language": contact.language,
        "urns": [urn.identity for urn in contact.urns],
        "fields": {str(k): "" if v is None else str(v) for k, v in (contact.fields or {}).items()},
        "open_ticket": {"uuid": open_ticket_uuid} if open_ticket_uuid else None,
        "created_on": contact.created_on,
        "modified_on": contact.modified_on,
    }
