"""Small builders for test data, made through the services like real work."""

from ticketer.extensions import db
from ticketer.services import contacts as contact_service
from ticketer.services import tickets as ticket_service


def make_contact(name: str = "María García", urn: str | None = None, **kwargs):
    import uuid

    urn = urn or f"tel:+5939{uuid.uuid4().int % 100_000_000:08d}"
    return contact_service.upsert_contact(urns=[urn], name=name, **kwargs)


def make_ticket(contact=None, *, topic: str | None = None, body: str = "Needs help", assignee_id=None, **kwargs):
    contact = contact or make_contact()
    ticket, _ = ticket_service.open_ticket(
        contact_id=contact.id, topic_name=topic, body=body, assignee_id=assignee_id, **kwargs
    )
    return ticket


def commit() -> None:
    db.session.commit()
