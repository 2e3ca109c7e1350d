"""Tickets: open from a flow, list, read, and act on them (assign, note, topic, close, reopen)."""

import uuid as uuid_lib

import marshmallow as ma
from flask import request
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import joinedload

from ticketer.api import bp, present
from ticketer.api.auth import require
from ticketer.api.errors import ApiError, documents_errors
from ticketer.api.idempotency import HEADER_DOC, respond_once
from ticketer.api.schemas import (
    TicketActionResultSchema,
    TicketActionSchema,
    TicketListArgsSchema,
    TicketOpenSchema,
    TicketPageSchema,
    TicketSchema,
)
from ticketer.errors import NotFound, ValidationError
from ticketer.extensions import db
from ticketer.models import Contact, Ticket, Topic
from ticketer.roles import Capability
from ticketer.services import connections as connection_service
from ticketer.services import contacts as contact_service
from ticketer.services import tickets as ticket_service
from ticketer.services import topics as topic_service
from ticketer.services.users import find_user_by_email
from ticketer.ticket_lists import Cursor

WRITE_ERRORS = (400, 401, 403, 413, 422)


def parse_uuid(value: str) -> str | None:
    try:
        return str(uuid_lib.UUID(value))
    except (ValueError, AttributeError, TypeError):
        return None


def _assignee_id(email: str | None, field: str = "assignee") -> int | None:
    if not email:
        return None
    user = find_user_by_email(email)
    if user is None:
        raise ValidationError("No one with that email is a member.", field=field)
    return user.id


def find_topic(reference: str) -> Topic | None:
    """A topic by uuid, else by name ignoring case the way the topics service (and its unique
    index) does: the database's lower() on both sides."""
    topic_uuid = parse_uuid(reference)
    if topic_uuid is not None:
        topic = db.session.execute(select(Topic).where(Topic.uuid == topic_uuid)).scalar_one_or_none()
        if topic is not None:
            return topic
    return topic_service.find_topic_by_name(" ".join(reference.split()))


def _with_field_prefix(error: ValidationError, prefix: str) -> ValidationError:
    error.fields = {f"{prefix}.{name}" if name != prefix else name: text for name, text in error.fields.items()}
    return error


_TICKET_SCHEMA = TicketSchema()


@bp.route("/tickets", methods=["POST"])
@bp.arguments(TicketOpenSchema())
@bp.response(201, TicketSchema, description="A new ticket")
@bp.alt_response(200, schema=TicketSchema, description="The contact's open ticket, with the body added as a note")
@bp.doc(parameters=[HEADER_DOC])
@documents_errors(bp, *WRITE_ERRORS)
def open_ticket(data):
    """Open a ticket for a contact (RapidPro's "Call webhook" action)

    Upserts the contact (by uuid, else URN), creates the topic when new, evaluates the body's
    expressions against the posted results, fields and the contact. A contact with an open ticket gets
    that ticket back (200) with the body added as a note; otherwise a new ticket is made (201).
    """
    who = require(Capability.WORK_TICKETS)
    # A flow acting through a token opens the ticket itself; a signed-in person opens it as themself.
    opened_by = who.user if who.token_id is None else None

    def work():
        contact_in = data["contact"]
        urns = list(contact_in.get("urns") or [])
        if contact_in.get("urn"):
            urns.insert(0, contact_in["urn"])
        fields = {**(contact_in.get("fields") or {}), **(data.get("fields") or {})}
        try:
            contact = contact_service.upsert_contact_row(
                uuid=str(contact_in["uuid"]) if contact_in.get("uuid") else None,
                urns=urns,
                name=contact_in.get("name"),
                language=contact_in.get("language"),
                fields=fields or None,
            )
        except ValidationError as error:
            raise _with_field_prefix(error, "contact") from None
        if data.get("connection"):  # the workspace this contact's messages come from and go to
            connection_service.attach_contact(contact.id, data["connection"])
        flow = data.get("flow") or {}
        ticket_id, created = ticket_service.open_ticket_for(
            contact,
            topic_name=data.get("topic"),
            body=data.get("body") or "",
            results=data.get("results"),
            assignee_id=_assignee_id(data.get("assignee")),
            opened_by=opened_by,
            flow_uuid=str(flow["uuid"]) if flow.get("uuid") else None,
            flow_name=flow.get("name") or None,
        )
        return present.ticket_by_id(ticket_id), 201 if created else 200

    return respond_once(work, _TICKET_SCHEMA)


@bp.route("/tickets", methods=["GET"])
@bp.arguments(TicketListArgsSchema, location="query", unknown=ma.RAISE)
@bp.response(200, TicketPageSchema)
@documents_errors(bp, 400, 401, 403)
def list_tickets(args):
    """List tickets, most recently active first

    Cursor pagination on (modified_on, id): a page never repeats or skips a ticket because others
    were opened meanwhile. A ticket modified while you page moves to the front: to follow changes,
    poll again with `after` set to the newest `modified_on` you have seen.
    """
    require(Capability.VIEW_TICKETS)
    limit = args["limit"]
    conditions = []
    if "status" in args:
        conditions.append(Ticket.status == args["status"])
    if "topic" in args:
        topic = find_topic(args["topic"])
        conditions.append(Ticket.topic_id == (topic.id if topic else -1))
    if "assignee" in args:
        if args["assignee"].strip():
            user = find_user_by_email(args["assignee"])
            conditions.append(Ticket.assignee_id == (user.id if user else -1))
        else:
            conditions.append(Ticket.assignee_id.is_(None))
    if "contact" in args:
        conditions.append(Ticket.contact.has(Contact.uuid == str(args["contact"])))
    if "after" in args:
        conditions.append(Ticket.last_activity_on > args["after"])
    if "before" in args:
        conditions.append(Ticket.last_activity_on < args["before"])
    if args.get("cursor"):
        cursor = Cursor.decode(args["cursor"])
        if cursor is None:
            raise ApiError(422, "invalid", "That cursor is not one we gave.", {"cursor": "Invalid cursor."})
        conditions.append(
            or_(
                Ticket.last_activity_on < cursor.last_activity_on,
                and_(Ticket.last_activity_on == cursor.last_activity_on, Ticket.id < cursor.ticket_id),
            )
        )
    rows = list(
        db.session.execute(
            select(Ticket)
            .where(*conditions)
            .options(
                joinedload(Ticket.contact),
                joinedload(Ticket.topic),
                joinedload(Ticket.assignee),
                joinedload(Ticket.opened_by),
            )
            .order_by(Ticket.last_activity_on.desc(), Ticket.id.desc())
            .limit(limit + 1)
        ).scalars()
    )
    next_url = None
    if len(rows) > limit:
        rows = rows[:limit]
        query = {k: v for k, v in request.args.items() if k != "cursor"}
        next_url = present.public_link("api.list_tickets", **query, cursor=Cursor.of(rows[-1]).encode())
    return {"next": next_url, "results": [present.ticket(t) for t in rows]}


@bp.route("/tickets/<ticket_uuid>", methods=["GET"])
@bp.response(200, TicketSchema)
@documents_errors(bp, 401, 403, 404)
def get_ticket(ticket_uuid):
    """One ticket by uuid"""
    require(Capability.VIEW_TICKETS)
    parsed = parse_uuid(ticket_uuid)
    if parsed is None:
        raise NotFound("That ticket doesn't exist.")
    return present.ticket(ticket_service.get_ticket_by_uuid(parsed))


def _ticket_ids(uuids: list) -> list[int]:
    wanted = list(dict.fromkeys(str(u) for u in uuids))
    rows = db.session.execute(select(Ticket.uuid, Ticket.id).where(Ticket.uuid.in_(wanted))).all()
    found = dict(rows)
    missing = [u for u in wanted if u not in found]
    if missing:
        raise NotFound(
            f"{len(missing)} of these tickets don't exist.", fields={"tickets": "Unknown: " + ", ".join(missing[:10])}
        )
    return [found[u] for u in wanted]


@bp.route("/ticket_actions", methods=["POST"])
@bp.arguments(TicketActionSchema())
@bp.response(200, TicketActionResultSchema, description="How many tickets changed, and how many were skipped")
@bp.doc(parameters=[HEADER_DOC])
@documents_errors(bp, *WRITE_ERRORS, 404, 409)
def ticket_actions(data):
    """Act on up to 100 tickets: assign, add_note, change_topic, close, reopen

    One ticket needs the "work tickets" right (agents); several need bulk actions (supervisors,
    admins). Tickets already in the wanted state are skipped.
    """
    user = require(Capability.WORK_TICKETS).user
    action = data["action"]

    def work():
        ids = _ticket_ids(data["tickets"])
        topic_id = None
        if action == "change_topic":
            topic = find_topic(data.get("topic") or "") if data.get("topic") else None
            if topic is None:
                raise ValidationError("Name an existing topic by uuid or name.", field="topic")
            topic_id = topic.id
        result = ticket_service.apply_action(
            action,
            ids,
            by=user,
            assignee_id=_assignee_id(data.get("assignee")) if action == "assign" else None,
            topic_id=topic_id,
            note=data.get("note"),
        )
        return TicketActionResultSchema().dump({"changed": result.changed, "skipped": result.skipped}), 200

    return respond_once(work)
