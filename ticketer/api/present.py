"""Model -> response dicts in RapidPro API v2 shapes (the schemas in schemas.py document them)."""

from flask import current_app, url_for
from sqlalchemy import bindparam, select

from ticketer import ticket_json
from ticketer.extensions import db
from ticketer.models import Contact, Message, Ticket, Topic, User


def public_link(endpoint: str, **values) -> str:
    """An absolute link for a response (a page's `next`): PUBLIC_URL, never the request's Host header."""
    return current_app.config["PUBLIC_URL"].rstrip("/") + url_for(endpoint, **values)


def user_ref(user: User | None) -> dict | None:
    return ticket_json.user_ref(user.email, user.name) if user is not None else None


def contact_ref(contact: Contact) -> dict:
    return {"uuid": contact.uuid, "name": contact.name}


def topic_ref(topic: Topic) -> dict:
    return {"uuid": topic.uuid, "name": topic.name}


def ticket(ticket: Ticket) -> dict:
    """The one ticket shape (ticketer/ticket_json.py)."""
    return ticket_json.of(ticket)


_TICKETS = Ticket.__table__
_CONTACTS = Contact.__table__
_TOPICS = Topic.__table__
_ASSIGNEES = User.__table__.alias("assignee")
_OPENERS = User.__table__.alias("opener")
# One prebuilt query for the ticket an API write just made or changed.
_TICKET_BY_ID = (
    select(
        _TICKETS,
        _CONTACTS.c.uuid.label("contact_uuid"),
        _CONTACTS.c.name.label("contact_name"),
        _TOPICS.c.uuid.label("topic_uuid"),
        _TOPICS.c.name.label("topic_name"),
        _ASSIGNEES.c.email.label("assignee_email"),
        _ASSIGNEES.c.name.label("assignee_name"),
        _OPENERS.c.email.label("opener_email"),
        _OPENERS.c.name.label("opener_name"),
    )
    .join(_CONTACTS, _CONTACTS.c.id == _TICKETS.c.contact_id)
    .join(_TOPICS, _TOPICS.c.id == _TICKETS.c.topic_id)
    .outerjoin(_ASSIGNEES, _ASSIGNEES.c.id == _TICKETS.c.assignee_id)
    .outerjoin(_OPENERS, _OPENERS.c.id == _TICKETS.c.opened_by_id)
    .where(_TICKETS.c.id == bindparam("id"))
)


def ticket_by_id(ticket_id: int) -> dict:
    """ticket() read with one prebuilt query, without loading models."""
    row = db.session.execute(_TICKET_BY_ID, {"id": ticket_id}).one()
    return ticket_json.ticket_json(
        row,
        contact={"uuid": row.contact_uuid, "name": row.contact_name},
        topic={"uuid": row.topic_uuid, "name": row.topic_name},
        assignee=ticket_json.user_ref(row.assignee_email, row.assignee_name),
        opened_by=ticket_json.user_ref(row.opener_email, row.opener_name),
    )


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
