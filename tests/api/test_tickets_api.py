"""POST/GET /api/v1/tickets, GET /api/v1/tickets/<uuid> and POST /api/v1/ticket_actions."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from tests.api.conftest import open_ticket
from tests.factories import make_contact, make_ticket
from ticketer.clock import frozen
from ticketer.models import Contact, Ticket, TicketEvent, Topic, User

Kind = TicketEvent.Kind


def _events(db, ticket_uuid):
    ticket = db.session.execute(select(Ticket).where(Ticket.uuid == ticket_uuid)).scalar_one()
    return [
        (e.kind, e.note, e.created_by_id)
        for e in db.session.execute(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id)
        ).scalars()
    ]


def test_open_ticket_from_a_flow_creates_contact_topic_and_ticket(api, db, make_user):
    agent_id = make_user("agent", email="lucia@example.com", name="Lucía")
    response = api.post(
        "/api/v1/tickets",
        json={
            "contact": {
                "uuid": "5f0ab5a4-8c2c-4f57-8dd6-3c5f1b0b6a11",
                "urn": "whatsapp:593987654321",
                "name": "María",
                "language": "spa",
                "fields": {"city": "Quito"},
            },
            "topic": "Facturación",
            "assignee": "LUCIA@example.com",
            "body": "Pedido @results.order (@results.order.category) de @contact.name en @fields.city, "
            "@fields.plan, tema @ticket.topic @results.missing.",
            "results": {"order": {"value": "1234", "category": "Has Number"}},
            "fields": {"plan": "gold"},
            "flow": {"uuid": "b7cf0d83-f1c9-411c-96fd-c511a4cfa86d", "name": "Soporte"},
        },
    )
    assert response.status_code == 201, response.json
    ticket = response.json
    assert ticket["status"] == "open"
    assert ticket["contact"] == {"uuid": "5f0ab5a4-8c2c-4f57-8dd6-3c5f1b0b6a11", "name": "María"}
    assert ticket["topic"]["name"] == "Facturación"
    assert ticket["assignee"] == {"email": "lucia@example.com", "name": "Lucía"}
    assert ticket["body"] == "Pedido 1234 (Has Number) de María en Quito, gold, tema Facturación ."
    assert ticket["opened_by"] is None  # opened by the flow, not by the token's admin
    assert ticket["opened_in"] == {"uuid": "b7cf0d83-f1c9-411c-96fd-c511a4cfa86d", "name": "Soporte"}
    assert ticket["results"]["order"] == {"value": "1234", "category": "Has Number"}
    assert ticket["closed_on"] is None
    contact = db.session.execute(select(Contact).where(Contact.uuid == ticket["contact"]["uuid"])).scalar_one()
    assert contact.fields == {"city": "Quito", "plan": "gold"}
    assert contact.language == "spa"
    assert [u.identity for u in contact.urns] == ["whatsapp:593987654321"]
    stored = db.session.execute(select(Ticket)).scalar_one()
    assert stored.assignee_id == agent_id


def test_second_open_returns_the_open_ticket_with_the_body_as_a_note(api, db):
    first = open_ticket(api, body="First")
    again = open_ticket(api, body="Again for @contact.name", topic="Other")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json["uuid"] == first.json["uuid"]
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 1
    assert [(k, n) for k, n, _ in _events(db, first.json["uuid"])] == [
        (Kind.OPENED, None),
        (Kind.NOTE_ADDED, "Again for Ana"),
    ]


def test_open_ticket_with_default_topic_and_contact_by_uuid_only(api):
    response = api.post("/api/v1/tickets", json={"contact": {"uuid": "0d6a3c8e-5d59-4b3c-a0c5-9b0f7f0b8a10"}})
    assert response.status_code == 201
    assert response.json["topic"]["name"] == "General"
    assert response.json["body"] == ""


def test_open_ticket_refuses_bad_input_naming_the_fields(api, db):
    unknown = api.post("/api/v1/tickets", json={"contact": {"urn": "tel:+593911", "nick": "x"}, "colour": "red"})
    assert unknown.status_code == 422
    assert unknown.json["error"]["code"] == "invalid"
    assert set(unknown.json["error"]["fields"]) == {"contact.nick", "colour"}
    assert "Unknown field" in unknown.json["error"]["fields"]["colour"]

    no_contact = api.post("/api/v1/tickets", json={"topic": "x"})
    assert no_contact.status_code == 422 and "contact" in no_contact.json["error"]["fields"]

    no_ids = api.post("/api/v1/tickets", json={"contact": {"name": "Ana"}})
    assert no_ids.status_code == 422 and "contact.uuid" in no_ids.json["error"]["fields"]

    bad_urn = api.post("/api/v1/tickets", json={"contact": {"urn": "not a urn"}})
    assert bad_urn.status_code == 422 and "contact.urn" in bad_urn.json["error"]["fields"]

    bad_language = api.post("/api/v1/tickets", json={"contact": {"urn": "tel:+593911", "language": "es"}})
    assert bad_language.status_code == 422 and "contact.language" in bad_language.json["error"]["fields"]

    nobody = api.post("/api/v1/tickets", json={"contact": {"urn": "tel:+593911"}, "assignee": "ghost@example.com"})
    assert nobody.status_code == 422 and nobody.json["error"]["fields"] == {
        "assignee": "No one with that email is a member."
    }

    too_long = api.post("/api/v1/tickets", json={"contact": {"urn": "tel:+593911"}, "body": "x" * 10_001})
    assert too_long.status_code == 422 and "body" in too_long.json["error"]["fields"]

    wrong_types = api.post("/api/v1/tickets", json={"contact": {"urn": 5, "uuid": "nope"}, "results": []})
    assert wrong_types.status_code == 422
    assert {"contact.urn", "contact.uuid", "results"} <= set(wrong_types.json["error"]["fields"])
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 0


def test_a_viewer_token_cannot_open_tickets(api_as):
    response = open_ticket(api_as("viewer"))
    assert response.status_code == 403
    assert response.json["error"]["code"] == "forbidden"


def test_get_ticket_by_uuid(api, db):
    created = open_ticket(api).json
    response = api.get(f"/api/v1/tickets/{created['uuid']}")
    assert response.status_code == 200
    assert response.json == created
    missing = api.get("/api/v1/tickets/7e0f8a7c-4b5d-4f7a-9d55-2d1f3c4b5a6e")
    assert missing.status_code == 404 and missing.json["error"]["code"] == "not_found"
    assert api.get("/api/v1/tickets/not-a-uuid").status_code == 404


def _seed_tickets(db, count, start):
    """`count` tickets whose last activity is one minute apart, starting at `start`."""
    uuids = []
    for n in range(count):
        with frozen(start + timedelta(minutes=n)):
            uuids.append(make_ticket(make_contact(name=f"C{n}"), topic="Billing" if n % 2 else "Sales").uuid)
    db.session.commit()
    return uuids


def test_list_tickets_pages_by_cursor_without_repeats_while_tickets_are_opened(api, db, count_queries):
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    uuids = _seed_tickets(db, 7, start)
    db.session.remove()
    seen = []
    api.get("/api/v1/tickets?limit=1")  # notes the token's use, which later requests needn't
    with count_queries() as queries:
        page = api.get("/api/v1/tickets?limit=3").json
    # the same number of queries whatever the page size: token, tickets with their joins
    with count_queries() as bigger:
        api.get("/api/v1/tickets?limit=7")
    assert len(queries) == len(bigger) <= 3
    seen += [t["uuid"] for t in page["results"]]
    # New tickets opened between pages go to the front; the next pages neither repeat nor skip.
    with db.session.no_autoflush:
        make_ticket(make_contact(name="Newcomer"))
        db.session.commit()
        db.session.remove()
    while page["next"]:
        assert page["next"].startswith("http://127.0.0.1:5000/api/v1/tickets?")  # TestConfig's PUBLIC_URL
        page = api.get(page["next"].removeprefix("http://127.0.0.1:5000")).json
        seen += [t["uuid"] for t in page["results"]]
    assert seen == list(reversed(uuids))


def test_list_tickets_filters(api, db, make_user):
    agent_id = make_user("agent", email="pat@example.com")
    start = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)
    uuids = _seed_tickets(db, 4, start)  # Sales, Billing, Sales, Billing
    ticket = db.session.execute(select(Ticket).where(Ticket.uuid == uuids[0])).scalar_one()
    ticket.assignee_id = agent_id
    closed = db.session.execute(select(Ticket).where(Ticket.uuid == uuids[1])).scalar_one()
    closed.status = "closed"
    contact_uuid = closed.contact.uuid
    billing_uuid = db.session.execute(select(Topic.uuid).where(Topic.name == "Billing")).scalar_one()
    db.session.commit()
    db.session.remove()

    def listed(query):
        response = api.get(f"/api/v1/tickets?{query}")
        assert response.status_code == 200, response.json
        return [t["uuid"] for t in response.json["results"]]

    assert listed("status=closed") == [uuids[1]]
    assert listed("status=open") == [uuids[3], uuids[2], uuids[0]]
    assert listed("topic=billing") == [uuids[3], uuids[1]]
    assert listed(f"topic={billing_uuid}") == [uuids[3], uuids[1]]
    assert listed("topic=Nothing") == []
    assert listed("assignee=pat@example.com") == [uuids[0]]
    assert listed("assignee=") == [uuids[3], uuids[2], uuids[1]]
    assert listed("assignee=ghost@example.com") == []
    assert listed(f"contact={contact_uuid}") == [uuids[1]]
    assert listed("after=2026-02-01T12:01:00%2B00:00") == [uuids[3], uuids[2]]
    assert listed("before=2026-02-01T12:01:00Z") == [uuids[0]]

    bad = api.get("/api/v1/tickets?status=pending&limit=0&cursor=zzz&colour=1")
    assert bad.status_code == 422
    assert set(bad.json["error"]["fields"]) == {"status", "limit", "colour"}
    bad_cursor = api.get("/api/v1/tickets?cursor=zzz")
    assert bad_cursor.status_code == 422 and bad_cursor.json["error"]["fields"] == {"cursor": "Invalid cursor."}
    naive = api.get("/api/v1/tickets?after=2026-02-01T12:00:00")
    assert naive.status_code == 422 and "after" in naive.json["error"]["fields"]


def _action(api, tickets, action, **extra):
    return api.post("/api/v1/ticket_actions", json={"tickets": tickets, "action": action, **extra})


def test_ticket_actions_assign_note_topic_close_reopen(api, db, make_user):
    make_user("agent", email="sam@example.com")
    first = open_ticket(api, urn="tel:+593900000001").json["uuid"]
    second = open_ticket(api, urn="tel:+593900000002").json["uuid"]
    both = [first, second]

    assigned = _action(api, both, "assign", assignee="sam@example.com", note="Yours")
    assert assigned.status_code == 200 and assigned.json == {"changed": 2, "skipped": 0}
    assert _action(api, [first], "assign", assignee="sam@example.com").json == {"changed": 0, "skipped": 1}
    noted = _action(api, both, "add_note", note="Called back")
    assert noted.json == {"changed": 2, "skipped": 0}
    moved = _action(api, both, "change_topic", topic="Billing")
    assert moved.json == {"changed": 0, "skipped": 2}  # already in Billing
    sales = api.post("/api/v1/topics", json={"name": "Sales"}).json["uuid"]
    assert _action(api, [first], "change_topic", topic=sales).json == {"changed": 1, "skipped": 0}
    assert _action(api, both, "close").json == {"changed": 2, "skipped": 0}
    assert _action(api, [first], "close").json == {"changed": 0, "skipped": 1}
    assert _action(api, [first], "reopen").json == {"changed": 1, "skipped": 0}
    assert _action(api, both, "reopen").json == {"changed": 1, "skipped": 1}
    assert _action(api, [first], "assign", assignee=None).json == {"changed": 1, "skipped": 0}

    admin_id = db.session.execute(select(User.id).where(User.role == "admin")).scalar_one()
    kinds = [(k, n, by) for k, n, by in _events(db, first)]
    assert kinds == [
        (Kind.OPENED, None, None),
        (Kind.ASSIGNED, "Yours", admin_id),
        (Kind.NOTE_ADDED, "Called back", admin_id),
        (Kind.TOPIC_CHANGED, None, admin_id),
        (Kind.CLOSED, None, admin_id),
        (Kind.REOPENED, None, admin_id),
        (Kind.ASSIGNED, None, admin_id),
    ]


def test_ticket_actions_errors(api, api_as, db):
    ticket = open_ticket(api, urn="tel:+593900000003").json
    other = open_ticket(api, urn="tel:+593900000004").json["uuid"]
    unknown = "3a9e8f6c-0d1b-4c2a-8e7f-5b6c7d8e9f00"

    missing = _action(api, [ticket["uuid"], unknown], "close")
    assert missing.status_code == 404 and unknown in missing.json["error"]["fields"]["tickets"]
    assert _action(api, [], "close").status_code == 422
    too_many = _action(api, [unknown] * 101, "close")
    assert too_many.status_code == 422 and "tickets" in too_many.json["error"]["fields"]
    assert _action(api, [ticket["uuid"]], "explode").json["error"]["fields"] == {
        "action": "Must be one of: assign, add_note, change_topic, close, reopen."
    }
    assert _action(api, [ticket["uuid"]], "add_note").json["error"]["fields"] == {"note": "Write the note."}
    assert _action(api, [ticket["uuid"]], "change_topic", topic="Nope").status_code == 422
    assert _action(api, [ticket["uuid"]], "assign", assignee="ghost@example.com").status_code == 422

    # 409: reopening a closed ticket while the contact has another open one
    _action(api, [ticket["uuid"]], "close")
    open_ticket(api, urn="tel:+593900000003")
    conflict = _action(api, [ticket["uuid"]], "reopen")
    assert conflict.status_code == 409 and conflict.json["error"]["code"] == "conflict"

    # an agent may act on one ticket, not on many; a viewer on none
    agent = api_as("agent")
    assert _action(agent, [other], "add_note", note="mine").status_code == 200
    bulk = _action(agent, [other, ticket["uuid"]], "close")
    assert bulk.status_code == 403 and bulk.json["error"]["code"] == "forbidden"
    assert _action(api_as("viewer"), [other], "close").status_code == 403
    assert db.session.execute(select(Ticket.status).where(Ticket.uuid == other)).scalar_one() == "open"


def test_the_documented_rapidpro_webhook_body_opens_a_ticket(api):
    """What RapidPro sends for the body template in the README (goflow's json() of contact and results)."""
    body = {
        "contact": {
            "uuid": "6a1b8f3e-2c4d-4e5f-8a9b-0c1d2e3f4a5b",
            "name": "",
            "urn": "tel:+593987654321",
            "language": "",
            "fields": {"city": "Quito", "age": 31, "vip": None},
        },
        "topic": "Soporte",
        "body": "Pedido @results.order (@results.order.category) de @contact.name en @fields.city",
        "results": {
            "order": {
                "name": "Order",
                "value": "1234",
                "category": "Has Number",
                "node_uuid": "2b3c4d5e-6f70-4812-9a3b-4c5d6e7f8091",
                "input": "1234",
                "created_on": "2026-11-25T13:00:00.000000Z",
                "extra": None,
            }
        },
        "flow": {"uuid": "b7cf0d83-f1c9-411c-96fd-c511a4cfa86d", "name": "Soporte"},
    }
    response = api.post("/api/v1/tickets", json=body, headers={"Idempotency-Key": "1c2d3e4f-run"})
    assert response.status_code == 201, response.json
    assert response.json["body"] == "Pedido 1234 (Has Number) de  en Quito"
    assert response.json["results"]["order"] == {"value": "1234", "category": "Has Number"}


def test_non_ascii_topic_names_filter_open_and_act_alike_on_both_databases(api, db):
    # "Ñandú" with its ASCII letters in other cases: every database's lower() folds those (SQLite's
    # folds nothing else), so these name one topic everywhere, in the filter as in the unique index.
    opened = open_ticket(api, urn="tel:+593900000101", topic="Ñandú")
    assert opened.status_code == 201 and opened.json["topic"]["name"] == "Ñandú"
    again = open_ticket(api, urn="tel:+593900000102", topic="ÑANDú")
    assert again.status_code == 201 and again.json["topic"]["uuid"] == opened.json["topic"]["uuid"]
    other = open_ticket(api, urn="tel:+593900000103", topic="Árbol").json["uuid"]
    assert (
        db.session.execute(select(func.count()).select_from(Topic).where(Topic.name.in_(["Ñandú", "ÑANDú"]))).scalar()
        == 1
    )

    def listed(topic):
        response = api.get("/api/v1/tickets", query_string={"topic": topic})
        assert response.status_code == 200, response.json
        return {t["uuid"] for t in response.json["results"]}

    both = {opened.json["uuid"], again.json["uuid"]}
    assert listed("Ñandú") == both
    assert listed("ñANDú".replace("ñ", "Ñ")) == both
    assert listed(" Ñandú ") == both
    assert listed("Árbol") == {other}
    moved = _action(api, [other], "change_topic", topic="Ñandú")
    assert moved.status_code == 200 and moved.json == {"changed": 1, "skipped": 0}
    assert listed("ÑANDÚ".replace("Ú", "ú")) == both | {other}
