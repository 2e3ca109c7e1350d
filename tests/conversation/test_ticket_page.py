"""The ticket page shows what the pull brought: the wait, and the contact's messages outside tickets."""

from tests.factories import make_contact, make_ticket
from ticketer.services import connections, conversation
from ticketer.services import tickets as ticket_service


def test_the_ticket_page_shows_the_wait_and_messages_sent_while_no_ticket_was_open(db, client, login_as, rapidpro):
    login_as("agent")
    connection = connections.add_rapidpro(name="Soporte", base_url=rapidpro.url, api_token=rapidpro.token)
    contact_uuid = rapidpro.add_contact("María")
    contact = make_contact("María", uuid=contact_uuid)
    first = make_ticket(contact)
    ticket_service.close(first.id, by=None)
    db.session.commit()
    rapidpro.receive(contact_uuid, "<b>¿Siguen ahí?</b>")  # written after the close
    while not conversation.pull(connection.id, commit=db.session.commit).finished:
        pass

    second = make_ticket(contact, body="Vuelve a escribir")
    db.session.commit()
    html = client.get(f"/admin/tickets/{second.uuid}").get_data(as_text=True)
    assert 'id="outside-tickets"' in html
    assert "&lt;b&gt;¿Siguen ahí?&lt;/b&gt;" in html and "<b>¿Siguen" not in html
    assert 'id="ticket-waiting"' not in html

    rapidpro.receive(contact_uuid, "Hola otra vez")
    while not conversation.pull(connection.id, commit=db.session.commit).finished:
        pass
    html = client.get(f"/admin/tickets/{second.uuid}").get_data(as_text=True)
    assert 'id="ticket-waiting"' in html and "Hola otra vez" in html


def test_the_reply_box_says_when_nothing_can_deliver_replies(db, client, login_as, make_user):
    from ticketer.models import User
    from ticketer.services import flows as flow_service

    login_as("agent")
    ticket = make_ticket()
    db.session.commit()
    html = client.get(f"/admin/tickets/{ticket.uuid}").get_data(as_text=True)
    assert 'id="replies-kept"' in html and "kept in Ticketer and not sent" in html

    admin = db.session.get(User, make_user("admin"))
    settings = flow_service.FlowSettings(
        name="Replies", engine="webhook", webhook_url="https://hooks.example.org/t", sends_replies=True
    )
    flow_service.create_flow(settings, by=admin)
    db.session.commit()
    assert 'id="replies-kept"' not in client.get(f"/admin/tickets/{ticket.uuid}").get_data(as_text=True)
