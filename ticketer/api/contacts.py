"""Contacts: one contact with its URNs, fields and open ticket."""

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ticketer.api import bp, present
from ticketer.api.auth import require
from ticketer.api.errors import documents_errors
from ticketer.api.schemas import ContactSchema
from ticketer.api.tickets import parse_uuid
from ticketer.errors import NotFound
from ticketer.extensions import db
from ticketer.models import Contact, Ticket, TicketStatus
from ticketer.roles import Capability


@bp.route("/contacts/<contact_uuid>", methods=["GET"])
@bp.response(200, ContactSchema)
@documents_errors(bp, 401, 403, 404)
def get_contact(contact_uuid):
    """One contact by uuid"""
    require(Capability.VIEW_TICKETS)
    parsed = parse_uuid(contact_uuid)
    contact = None
    if parsed is not None:
        contact = db.session.execute(
            select(Contact).where(Contact.uuid == parsed).options(selectinload(Contact.urns))
        ).scalar_one_or_none()
    if contact is None:
        raise NotFound("That contact doesn't exist.")
    open_uuid = db.session.execute(
        select(Ticket.uuid).where(Ticket.contact_id == contact.id, Ticket.status == TicketStatus.OPEN)
    ).scalar_one_or_none()
    return present.contact(contact, open_uuid)
