"""Replies through the workspace: create_message, the workspace's uuid recorded, its status followed."""

from tests.factories import make_contact, make_ticket
from ticketer.integrations import rapidpro as workspace
from ticketer.models import Message
from ticketer.services import connections, conversation
from ticketer.services import tickets as ticket_service


def test_a_reply_sent_through_the_workspace_and_its_status_followed(db, rapidpro):
    connection = connections.add_rapidpro(name="Soporte", base_url=rapidpro.url, api_token=rapidpro.token)
    contact_uuid = rapidpro.add_contact("María")
    ticket = make_ticket(make_contact("María", uuid=contact_uuid))
    reply = ticket_service.reply(ticket.id, "Hola María, ya lo reviso", by=None)
    db.session.commit()

    sent = workspace.send_message(
        rapidpro.url, rapidpro.token, contact_uuid=contact_uuid, text=reply.text, policy=connections.policy()
    )
    conversation.record_sent(reply.id, connection.id, sent)
    db.session.commit()
    [received] = rapidpro.sent()
    assert (received["contact"]["uuid"], received["text"], received["direction"]) == (contact_uuid, reply.text, "out")
    assert [r.body for r in rapidpro.requests_to("messages", "POST")] == [
        {"contact": contact_uuid, "text": reply.text, "quick_replies": []}
    ]
    db.session.expire_all()
    reply = db.session.get(Message, reply.id)
    assert (reply.external_uuid, reply.external_status) == (received["uuid"], "queued")

    for status in ("wired", "sent", "delivered"):
        rapidpro.set_status(received["uuid"], status)
        assert conversation.follow_statuses(connection.id, commit=db.session.commit) == 1
        assert db.session.get(Message, reply.id).external_status == status
    asked = len(rapidpro.requests)
    assert conversation.follow_statuses(connection.id, commit=db.session.commit) == 0
    assert len(rapidpro.requests) == asked  # delivered is final: not asked again


def test_a_reply_the_workspace_fails_shows_as_failed_with_the_reason(db, rapidpro):
    connection = connections.add_rapidpro(name="Soporte", base_url=rapidpro.url, api_token=rapidpro.token)
    contact_uuid = rapidpro.add_contact("María")
    ticket = make_ticket(make_contact("María", uuid=contact_uuid))
    reply = ticket_service.reply(ticket.id, "Hola", by=None)
    db.session.commit()
    sent = workspace.send_message(
        rapidpro.url, rapidpro.token, contact_uuid=contact_uuid, text="Hola", policy=connections.policy()
    )
    conversation.record_sent(reply.id, connection.id, sent)
    db.session.commit()
    rapidpro.set_status(sent.uuid, "failed")
    assert conversation.follow_statuses(connection.id, commit=db.session.commit) == 1
    reply = db.session.get(Message, reply.id)
    assert (reply.status, reply.external_status) == ("failed", "failed")
    assert reply.last_error == "The workspace could not deliver it (failed)."


def test_a_reply_to_a_contact_the_workspace_does_not_know_is_refused_with_its_words(db, rapidpro):
    import uuid

    import pytest

    with pytest.raises(workspace.WorkspaceError) as refused:
        workspace.send_message(
            rapidpro.url, rapidpro.token, contact_uuid=str(uuid.uuid4()), text="Hola", policy=connections.policy()
        )
    assert refused.value.permanent and "No such object" in refused.value.message


def test_replies_go_through_the_contacts_connection_else_the_only_one(db, rapidpro):
    lone, attached, nowhere = make_contact("A"), make_contact("B"), make_contact("C")
    db.session.commit()
    assert conversation.reply_routes([lone.id]) == {}
    first = connections.add_rapidpro(name="One", base_url=rapidpro.url, api_token=rapidpro.token)
    db.session.commit()
    assert {k: v.connection_id for k, v in conversation.reply_routes([lone.id, attached.id]).items()} == {
        lone.id: first.id,
        attached.id: first.id,
    }
    second = connections.add_rapidpro(name="Two", base_url="https://two.example.org", api_token="k")
    connections.attach_contact(attached.id, "Two")
    db.session.commit()
    routes = conversation.reply_routes([lone.id, attached.id, nowhere.id])
    assert {k: v.connection_id for k, v in routes.items()} == {attached.id: second.id}
    assert routes[attached.id].base_url == "https://two.example.org"
