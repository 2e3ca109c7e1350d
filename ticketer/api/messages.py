"""Messages: relay what the contact says to their open ticket, and read the conversation."""

import marshmallow as ma
from flask import request
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ticketer.api import bp, present
from ticketer.api.auth import require
from ticketer.api.errors import ApiError, documents_errors
from ticketer.api.idempotency import HEADER_DOC, respond_once
from ticketer.api.schemas import MessageInSchema, MessageListArgsSchema, MessagePageSchema, MessageSchema
from ticketer.api.tickets import parse_uuid
from ticketer.errors import NotFound, ValidationError
from ticketer.extensions import db
from ticketer.models import Contact, ContactURN, Message, Ticket
from ticketer.roles import Capability
from ticketer.services import contacts as contact_service
from ticketer.services import tickets as ticket_service


def find_contact(reference: str) -> Contact:
    """A contact by uuid, else by URN; NotFound otherwise."""
    contact_uuid = parse_uuid(reference)
    if contact_uuid is not None:
        contact = db.session.execute(select(Contact).where(Contact.uuid == contact_uuid)).scalar_one_or_none()
        if contact is not None:
            return contact
    else:
        try:
            identity, _, _ = contact_service.normalise_urn(reference)
        except ValidationError:
            raise NotFound("No contact has that uuid or URN.", field="contact") from None
        contact = db.session.execute(
            select(Contact).join(ContactURN).where(ContactURN.identity == identity)
        ).scalar_one_or_none()
        if contact is not None:
            return contact
    raise NotFound("No contact has that uuid or URN.", field="contact")


def _ticket_uuid(ticket_id: int | None) -> str | None:
    if ticket_id is None:
        return None
    return db.session.execute(select(Ticket.uuid).where(Ticket.id == ticket_id)).scalar_one_or_none()


@bp.route("/messages", methods=["POST"])
@bp.arguments(MessageInSchema())
@bp.response(201, MessageSchema, description="The message, attached to the contact's open ticket if any")
@bp.doc(parameters=[HEADER_DOC])
@documents_errors(bp, 400, 401, 403, 404, 413, 422)
def receive_message(data):
    """Relay a message from the contact (by uuid or URN); it joins their open ticket"""
    require(Capability.WORK_TICKETS)

    def work():
        contact = find_contact(str(data["contact"]) if data.get("contact") else data["urn"])
        message = ticket_service.receive_message(contact.id, data["text"])
        return MessageSchema().dump(present.message(message, _ticket_uuid(message.ticket_id))), 201

    return respond_once(work)


@bp.route("/messages", methods=["GET"])
@bp.arguments(MessageListArgsSchema, location="query", unknown=ma.RAISE)
@bp.response(200, MessagePageSchema)
@documents_errors(bp, 400, 401, 403, 404, 422)
def list_messages(args):
    """A contact's conversation, newest first (incoming and outgoing)"""
    require(Capability.VIEW_TICKETS)
    cursor = args.get("cursor")
    if cursor and (not (cursor.isascii() and cursor.isdigit()) or len(cursor) > 18):
        raise ApiError(422, "invalid", "That cursor is not one we gave.", {"cursor": "Invalid cursor."})
    contact = find_contact(args["contact"])
    conditions = [Message.contact_id == contact.id]
    if cursor:
        conditions.append(Message.id < int(cursor))
    if "direction" in args:
        conditions.append(Message.direction == args["direction"])
    limit = args["limit"]
    rows = list(
        db.session.execute(
            select(Message, Ticket.uuid)
            .outerjoin(Ticket, Ticket.id == Message.ticket_id)
            .where(*conditions)
            .options(joinedload(Message.contact), joinedload(Message.created_by))
            .order_by(Message.id.desc())
            .limit(limit + 1)
        ).all()
    )
    next_url = None
    if len(rows) > limit:
        rows = rows[:limit]
        query = {k: v for k, v in request.args.items() if k != "cursor"}
        next_url = present.public_link("api.list_messages", **query, cursor=str(rows[-1][0].id))
    return {"next": next_url, "results": [present.message(m, ticket_uuid) for m, ticket_uuid in rows]}
