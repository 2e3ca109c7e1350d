"""The API's open call may name the connection the contact talks through; the pull keeps to it."""

import uuid

from sqlalchemy import select

from tests.api.conftest import ApiClient
from ticketer.extensions import db
from ticketer.models import Contact, Message
from ticketer.services import api_tokens, connections, conversation


def api_client(client, make_user) -> ApiClient:
    from ticketer.models import User

    owner = db.session.get(User, make_user("admin"))
    _, key = api_tokens.create_token("RapidPro", by=owner)
    db.session.commit()
    return ApiClient(client, key)


def open_ticket(api, contact_uuid, **extra):
    return api.post(
        "/api/v1/tickets",
        json={"contact": {"uuid": contact_uuid, "urn": f"whatsapp:5939{uuid.uuid4().int % 10**8:08d}"}, **extra},
    )


def test_the_open_call_names_the_connection(db, client, make_user, rapidpro):
    api = api_client(client, make_user)
    first = connections.add_rapidpro(name="Quito", base_url=rapidpro.url, api_token=rapidpro.token)
    connections.add_rapidpro(name="Guayaquil", base_url="https://gye.example.org", api_token="k")
    db.session.commit()
    contact_uuid = rapidpro.add_contact("Ana")

    answer = open_ticket(api, contact_uuid, connection="quito")
    assert answer.status_code == 201, answer.get_json()
    contact = db.session.execute(select(Contact).where(Contact.uuid == contact_uuid)).scalar_one()
    assert contact.connection_id == first.id
    assert connections.connection_of(contact) == first

    rapidpro.receive(contact_uuid, "hola")
    while not conversation.pull(first.id, commit=db.session.commit).finished:
        pass
    assert db.session.execute(select(Message.text).where(Message.contact_id == contact.id)).scalars().all() == ["hola"]


def test_an_unknown_connection_is_refused_and_nothing_is_opened(db, client, make_user):
    api = api_client(client, make_user)
    answer = open_ticket(api, str(uuid.uuid4()), connection="Nowhere")
    assert answer.status_code == 422
    assert answer.get_json()["error"]["fields"] == {"connection": "No connection is named 'Nowhere'."}
    assert db.session.execute(select(Contact)).first() is None


def test_a_contact_of_another_connection_is_not_taken_by_this_ones_pull(db, client, make_user, rapidpro):
    from tests.rapidpro_server import RapidProServer

    api = api_client(client, make_user)
    other = RapidProServer().start()
    try:
        here = connections.add_rapidpro(name="Here", base_url=rapidpro.url, api_token=rapidpro.token)
        connections.add_rapidpro(name="There", base_url=other.url, api_token=other.token)
        db.session.commit()
        contact_uuid = rapidpro.add_contact("Same uuid in two workspaces", contact_uuid=str(uuid.uuid4()))
        assert open_ticket(api, contact_uuid, connection="There").status_code == 201
        rapidpro.receive(contact_uuid, "not from its workspace")
        while not conversation.pull(here.id, commit=db.session.commit).finished:
            pass
        assert db.session.execute(select(Message)).first() is None
    finally:
        other.stop()
