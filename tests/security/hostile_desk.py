"""A desk whose every piece of untrusted text is an XSS payload, made through the services."""

from dataclasses import dataclass, field

from sqlalchemy import select, update

from tests.conftest import PASSWORD
from tests.security.xss_payloads import PAYLOADS, URN_PAYLOADS
from ticketer.extensions import db
from ticketer.models import Message
from ticketer.models.flows import FlowStart
from ticketer.services import contacts as contact_service
from ticketer.services import flows as flow_service
from ticketer.services import tickets as ticket_service
from ticketer.services import users as user_service

ADMIN_EMAIL = "admin-xss@example.com"


@dataclass
class HostileTicket:
    uuid: str
    is_open: bool
    shows: list[str]  # text the ticket page must show literally


@dataclass
class HostileDesk:
    tickets: list[HostileTicket] = field(default_factory=list)
    topic_names: list[str] = field(default_factory=list)
    topic_ids: list[int] = field(default_factory=list)
    contact_names: list[str] = field(default_factory=list)
    user_names: list[str] = field(default_factory=list)
    engine_answers: list[str] = field(default_factory=list)  # what a flow engine said, shown on Deliveries


def _topic_name(payload: str, taken: set[str]) -> str:
    name = " ".join(payload.split())[:64].strip()
    while name.lower() in taken:
        name = name[:60] + str(len(taken))
    taken.add(name.lower())
    return name


def seed_hostile_desk() -> HostileDesk:
    """Contacts, URNs, fields, tickets, bodies, flow results and names, notes, messages, topics and
    agents' names, all payloads. Commits; the caller should db.session.remove() before a live server writes."""
    desk = HostileDesk()
    admin = user_service.create_user(ADMIN_EMAIL, role="admin", password=PASSWORD, name="Ada Admin")
    agents = [
        user_service.create_user(f"xss-agent{i}@example.com", role="agent", name=payload)
        for i, payload in enumerate(PAYLOADS[:4])
    ]
    desk.user_names = [agent.name for agent in agents]
    # Closing starts a follow-up flow and replies go out through it: the Deliveries pages list both.
    flow = flow_service.create_flow(
        flow_service.FlowSettings(
            name=PAYLOADS[0], engine="webhook", webhook_url="http://127.0.0.1:9/hook", sends_replies=True
        ),
        by=admin,
    )
    flow_service.create_trigger(flow_id=flow.id, topic_id=None, delay_minutes=0, by=admin)
    taken: set[str] = set()
    for i, payload in enumerate(PAYLOADS):
        urns = [f"tel:+5939{i:08d}"]
        if payload in URN_PAYLOADS:
            urns.append(f"ext:{payload}")
        contact = contact_service.upsert_contact(
            urns=urns, name=payload[:128], fields={"city": payload, "plan": f"p{i} {payload}"}
        )
        ticket, _ = ticket_service.open_ticket(
            contact_id=contact.id,
            topic_name=_topic_name(payload, taken),
            body=payload if i % 3 else f"{payload} | @results.problem | @contact.name | @fields.city",
            results={"problem": {"value": payload, "category": payload[:60]}, payload[:60]: f"v{i}"},
            flow_name=payload[:128],
        )
        ticket_service.add_note(ticket.id, payload, by=admin)
        ticket_service.receive_message(contact.id, payload)
        ticket_service.reply(ticket.id, f"re: {payload}", by=admin)
        if i % 4 == 0:
            ticket_service.assign(ticket.id, agents[(i // 4) % len(agents)].id, by=admin, note=f"note {payload}")
        if i % 5 == 0:
            ticket_service.close(ticket.id, by=admin)
        db.session.flush()
        db.session.refresh(ticket)
        shows = [contact.name, ticket.body, payload, f"re: {payload}", ticket.topic.name, ticket.opened_in_flow_name]
        shows += [urn.identity for urn in contact.urns] + list(contact.fields.values())
        for name, result in ticket.results.items():
            shows += [name, result["value"]] + ([result["category"]] if result["category"] else [])
        if ticket.assignee is not None:
            shows += [ticket.assignee.name, f"note {payload}"]
        desk.tickets.append(HostileTicket(uuid=ticket.uuid, is_open=ticket.is_open, shows=shows))
        desk.topic_names.append(ticket.topic.name)
        desk.topic_ids.append(ticket.topic_id)
        desk.contact_names.append(contact.name)
    # A flow engine's answers and errors are untrusted text too (what the dispatcher records).
    desk.engine_answers = [f"engine said {p}" for p in PAYLOADS]
    starts = db.session.execute(select(FlowStart.id).order_by(FlowStart.id)).scalars().all()
    replies = db.session.execute(select(Message.id).where(Message.direction == "out").order_by(Message.id)).scalars()
    for row_id, answer in zip(starts, desk.engine_answers, strict=False):
        db.session.execute(update(FlowStart).where(FlowStart.id == row_id).values(status="failed", last_error=answer))
    for row_id, answer in zip(replies, reversed(desk.engine_answers), strict=False):
        db.session.execute(update(Message).where(Message.id == row_id).values(status="failed", last_error=answer))
    db.session.commit()
    return desk
