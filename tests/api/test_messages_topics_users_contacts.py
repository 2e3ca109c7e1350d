"""POST/GET /api/v1/messages, GET/POST /api/v1/topics, GET /api/v1/users, GET /api/v1/contacts/<uuid>."""

from sqlalchemy import select

from tests.api.conftest import open_ticket
from ticketer.models import Message, Ticket, User
from ticketer.services import tickets as ticket_service


def test_messages_join_the_open_ticket_by_uuid_or_urn(api, db):
    ticket = open_ticket(api, urn="tel:+593911000001").json
    contact_uuid = ticket["contact"]["uuid"]
    by_uuid = api.post("/api/v1/messages", json={"contact": contact_uuid, "text": "Hola"})
    assert by_uuid.status_code == 201, by_uuid.json
    assert by_uuid.json["ticket"] == {"uuid": ticket["uuid"]}
    assert by_uuid.json["direction"] == "in" and by_uuid.json["status"] == "received"
    by_urn = api.post("/api/v1/messages", json={"urn": "tel:+593 911-000-001", "text": "¿Alguien?"})
    assert by_urn.status_code == 201 and by_urn.json["contact"]["uuid"] == contact_uuid

    # an agent's reply shows in the conversation too, newest first
    ticket_id = db.session.execute(select(Ticket.id).where(Ticket.uuid == ticket["uuid"])).scalar_one()
    agent = db.session.execute(select(User).where(User.role == "admin")).scalar_one()
    ticket_service.reply(ticket_id, "Sí, dime", by=agent)
    agent_email = agent.email
    db.session.commit()
    db.session.remove()

    conversation = api.get(f"/api/v1/messages?contact={contact_uuid}")
    assert conversation.status_code == 200
    assert [m["text"] for m in conversation.json["results"]] == ["Sí, dime", "¿Alguien?", "Hola"]
    assert conversation.json["results"][0]["created_by"]["email"] == agent_email
    assert conversation.json["next"] is None
    incoming = api.get("/api/v1/messages?contact=tel:%2B593911000001&direction=in&limit=1").json
    assert [m["text"] for m in incoming["results"]] == ["¿Alguien?"]
    rest = api.get(incoming["next"]).json
    assert [m["text"] for m in rest["results"]] == ["Hola"] and rest["next"] is None


def test_message_without_an_open_ticket_is_kept_on_the_contact(api, db):
    ticket = open_ticket(api, urn="tel:+593911000002").json
    api.post("/api/v1/ticket_actions", json={"tickets": [ticket["uuid"]], "action": "close"})
    response = api.post("/api/v1/messages", json={"urn": "tel:+593911000002", "text": "Gracias"})
    assert response.status_code == 201 and response.json["ticket"] is None
    assert db.session.execute(select(Message.ticket_id)).scalar_one() is None


def test_message_errors(api, api_as):
    unknown = api.post("/api/v1/messages", json={"urn": "tel:+593911999999", "text": "?"})
    assert unknown.status_code == 404 and unknown.json["error"]["fields"] == {
        "contact": "No contact has that uuid or URN."
    }
    bad_urn = api.post("/api/v1/messages", json={"urn": "not a urn", "text": "?"})
    assert bad_urn.status_code == 422 and bad_urn.json["error"]["fields"] == {
        "urn": "Not a URN like tel:+593987654321."
    }
    assert api.post("/api/v1/messages", json={"text": "?"}).json["error"]["fields"] == {
        "contact": "Give the contact's uuid or a URN."
    }
    empty = api.post("/api/v1/messages", json={"urn": "tel:+593911", "text": ""})
    assert empty.status_code == 422 and "text" in empty.json["error"]["fields"]
    long = api.post("/api/v1/messages", json={"urn": "tel:+593911", "text": "x" * 4097})
    assert long.status_code == 422 and "text" in long.json["error"]["fields"]
    assert api.get("/api/v1/messages").json["error"]["fields"] == {"contact": "Missing data for required field."}
    assert api.get("/api/v1/messages?contact=nobody").status_code == 404
    assert api.get("/api/v1/messages?contact=tel:%2B593911&cursor=abc").status_code == 422
    assert api_as("viewer").post("/api/v1/messages", json={"urn": "tel:+593911", "text": "?"}).status_code == 403


def test_topics_list_with_counts_and_create(api, api_as):
    open_ticket(api, urn="tel:+593922000001", topic="Billing")
    closed = open_ticket(api, urn="tel:+593922000002", topic="billing").json["uuid"]
    api.post("/api/v1/ticket_actions", json={"tickets": [closed], "action": "close"})
    created = api.post("/api/v1/topics", json={"name": "  Sales  "})
    assert created.status_code == 201
    assert created.json["name"] == "Sales" and created.json["counts"] == {"open": 0, "closed": 0}
    listed = api.get("/api/v1/topics").json["results"]
    assert [(t["name"], t["counts"], t["system"]) for t in listed] == [
        ("Billing", {"open": 1, "closed": 1}, False),
        ("Sales", {"open": 0, "closed": 0}, False),
    ]
    duplicate = api.post("/api/v1/topics", json={"name": "SALES"})
    assert duplicate.status_code == 422 and "name" in duplicate.json["error"]["fields"]
    assert api.post("/api/v1/topics", json={"name": ""}).status_code == 422
    assert api.post("/api/v1/topics", json={"name": "x" * 65}).status_code == 422
    agent = api_as("agent")
    assert agent.get("/api/v1/topics").status_code == 200
    forbidden = agent.post("/api/v1/topics", json={"name": "Mine"})
    assert forbidden.status_code == 403 and forbidden.json["error"]["code"] == "forbidden"
    assert api_as("supervisor").post("/api/v1/topics", json={"name": "Returns"}).status_code == 201


def test_users_lists_active_people_and_their_roles(api, make_user, db):
    make_user("agent", email="ana@example.com", name="Ana")
    gone_id = make_user("supervisor", email="bob@example.com")
    db.session.get(User, gone_id).active = False
    db.session.commit()
    db.session.remove()
    users = api.get("/api/v1/users").json["results"]
    assert [(u["email"], u["name"], u["role"]) for u in users if u["email"] == "ana@example.com"] == [
        ("ana@example.com", "Ana", "agent")
    ]
    assert "bob@example.com" not in [u["email"] for u in users]
    assert {u["role"] for u in users} == {"admin", "agent"}


def test_contact_by_uuid(api):
    ticket = open_ticket(api, urn="tel:+593933000001", contact={"urn": "tel:+593933000001", "name": "Eva"}).json
    contact_uuid = ticket["contact"]["uuid"]
    api.post(
        "/api/v1/tickets",
        json={"contact": {"uuid": contact_uuid, "urns": ["telegram:12345"], "fields": {"age": 31, "vip": None}}},
    )
    response = api.get(f"/api/v1/contacts/{contact_uuid}")
    assert response.status_code == 200
    assert response.json["name"] == "Eva"
    assert response.json["urns"] == ["tel:+593933000001", "telegram:12345"]
    assert response.json["fields"] == {"age": "31", "vip": ""}
    assert response.json["open_ticket"] == {"uuid": ticket["uuid"]}
    assert api.get("/api/v1/contacts/8d3c0f7e-1a2b-4c5d-9e8f-7a6b5c4d3e2f").status_code == 404
    assert api.get("/api/v1/contacts/not-a-uuid").json["error"]["code"] == "not_found"
