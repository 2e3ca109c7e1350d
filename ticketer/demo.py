"""Demo data for a first look: people of every role, topics, contacts with fields, and tickets
in every state with conversations and events. Made through the services, like real work."""

import random
from datetime import timedelta

from sqlalchemy import func, select

from ticketer.clock import frozen, utcnow
from ticketer.extensions import db
from ticketer.models import User
from ticketer.models.flows import Flow
from ticketer.services import contacts as contact_service
from ticketer.services import flows as flow_service
from ticketer.services import tickets as ticket_service
from ticketer.services import topics as topic_service
from ticketer.services import users as user_service

DEMO_PASSWORD = "ticketer-demo-2026"
SURVEY_NAME = "Satisfaction survey"
SURVEY_TEXT = "Hi @contact.name, we closed your @ticket.topic ticket. Did we solve it? Reply YES or NO."
PEOPLE = [
    ("admin@example.com", "Ada Admin", "admin"),
    ("supervisor@example.com", "Sam Supervisor", "supervisor"),
    ("agent@example.com", "Alex Agent", "agent"),
    ("agent2@example.com", "Bea Agent", "agent"),
    ("viewer@example.com", "Val Viewer", "viewer"),
]
TOPICS = ["General", "Billing", "Delivery", "Returns", "Technical support"]
FIRST = [
    "María",
    "José",
    "Lucía",
    "Carlos",
    "Ana",
    "Luis",
    "Sofía",
    "Diego",
    "Valentina",
    "Jorge",
    "Camila",
    "Andrés",
    "Paula",
    "Miguel",
    "Daniela",
    "Pedro",
    "Gabriela",
    "Juan",
    "Elena",
    "Raúl",
]
LAST = ["García", "Pérez", "López", "Torres", "Ramírez", "Flores", "Vega", "Castro", "Morales", "Ortiz"]
CITIES = ["Quito", "Guayaquil", "Cuenca", "Lima", "Bogotá", "Medellín"]
BODIES = [
    "Customer asks about order @results.order_number (@results.order_number.category).",
    "@contact.name needs help: @results.problem",
    "Wants to return an item bought in @fields.city.",
    "Payment failed, plan @fields.plan.",
    "Asked for a human after the FAQ menu.",
]
INCOMING = [
    "Hola, necesito ayuda",
    "My order hasn't arrived",
    "¿Pueden llamarme?",
    "I was charged twice",
    "The app won't open",
    "Gracias!",
    "Is anyone there?",
    "Here is my order number",
]
REPLIES = [
    "Hi! I'm looking into it.",
    "Could you send me your order number?",
    "Thanks, that's fixed now.",
    "I've passed this to billing.",
    "Can you try again now?",
]


def is_empty() -> bool:
    return not db.session.execute(select(func.count()).select_from(User)).scalar()


def sign_in_banner() -> str:
    return (
        "Demo sign-in: admin@example.com / " + DEMO_PASSWORD + "\n"
        "  (also supervisor@, agent@, agent2@ and viewer@example.com with the same password)"
    )


def seed(*, n_contacts: int = 40, n_tickets: int = 200, seed_value: int = 7) -> None:
    """Create demo data; times are spread over the last 30 days."""
    rng = random.Random(seed_value)
    people = {}
    for email, name, role in PEOPLE:
        people[email] = user_service.find_user_by_email(email) or user_service.create_user(
            email, role=role, password=DEMO_PASSWORD, name=name
        )
    workers = [u for u in people.values() if u.can_take_tickets]
    topics = [topic_service.get_or_create_topic(name) for name in TOPICS]
    topic_service.default_topic()

    contacts = []
    for i in range(n_contacts):
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        urns = [f"tel:+5939{rng.randrange(10_000_000, 99_999_999)}"]
        if i % 3 == 0:
            urns.append(f"whatsapp:5939{rng.randrange(10_000_000, 99_999_999)}")
        contacts.append(
            contact_service.upsert_contact(
                urns=urns,
                name=name,
                language=rng.choice(["spa", "eng"]),
                fields={
                    "city": rng.choice(CITIES),
                    "plan": rng.choice(["basic", "pro", "family"]),
                    "customer_id": str(10_000 + i),
                },
            )
        )

    now = utcnow()
    start = now - timedelta(days=30)
    step = timedelta(days=30) / max(n_tickets, 1)
    open_tickets: dict[int, int] = {}
    for i in range(n_tickets):
        contact = contacts[i % len(contacts)]
        at = start + step * i
        previous = open_tickets.pop(contact.id, None)
        if previous is not None:
            # The contact's earlier ticket is resolved before the bot hands them over again.
            with frozen(at - timedelta(minutes=1)):
                ticket_service.close(previous, by=rng.choice(workers))
        with frozen(at):
            ticket, created = ticket_service.open_ticket(
                contact_id=contact.id,
                topic_name=rng.choice(topics).name,
                body=rng.choice(BODIES),
                results={
                    "order_number": {"value": str(rng.randrange(1000, 9999)), "category": "Has Number"},
                    "problem": {"value": rng.choice(["late delivery", "wrong size", "no refund"]), "category": "Other"},
                },
                assignee_id=rng.choice(workers).id if rng.random() < 0.4 else None,
                flow_uuid="6e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b",
                flow_name="Support bot",
            )
        with frozen(at + timedelta(minutes=1)):
            ticket_service.receive_message(contact.id, rng.choice(INCOMING))
        agent = rng.choice(workers)
        if rng.random() < 0.7:
            with frozen(at + timedelta(minutes=rng.randrange(2, 90))):
                ticket_service.reply(ticket.id, rng.choice(REPLIES), by=agent)
        if rng.random() < 0.3:
            with frozen(at + timedelta(minutes=95)):
                ticket_service.assign(
                    ticket.id, agent.id, by=people["supervisor@example.com"], note="Taking this one, please follow up."
                )
        if rng.random() < 0.15:
            with frozen(at + timedelta(minutes=100)):
                ticket_service.add_note(ticket.id, "Customer is a long-time client.", by=agent)
        # Most tickets older than a few days are done; recent ones stay open.
        if rng.random() < 0.3:
            with frozen(min(at + timedelta(hours=rng.randrange(2, 48)), now)):
                ticket_service.close(ticket.id, by=agent)
        else:
            open_tickets[contact.id] = ticket.id
    # A follow-up that works with no external system: closing a ticket from now on sends this.
    if not db.session.execute(select(Flow).where(Flow.name == SURVEY_NAME)).scalar_one_or_none():
        survey = flow_service.create_flow(
            flow_service.FlowSettings(name=SURVEY_NAME, engine="builtin", templates=[SURVEY_TEXT]), by=None
        )
        flow_service.create_trigger(flow_id=survey.id, topic_id=None, delay_minutes=0, by=None)
    db.session.flush()
