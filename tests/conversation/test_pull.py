"""Pulling the contact's messages from the workspace into their tickets (ticketer/services/conversation.py)."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from tests.factories import make_contact, make_ticket
from tests.rapidpro_server import RapidProServer
from ticketer.extensions import db
from ticketer.models import Message, Ticket
from ticketer.models.connections import ConnectionSync
from ticketer.services import connections, conversation
from ticketer.services import tickets as ticket_service


def connect(rapidpro):
    connection = connections.add_rapidpro(name="Soporte", base_url=rapidpro.url, api_token=rapidpro.token)
    db.session.commit()
    return connection.id


def known_contact(rapidpro, name="María"):
    """A contact in the workspace that a flow handed over to Ticketer (same uuid on both sides)."""
    contact_uuid = rapidpro.add_contact(name)
    contact = make_contact(name, urn=rapidpro.contacts[contact_uuid]["urns"][0], uuid=contact_uuid)
    db.session.commit()
    return contact


def pull_all(connection_id):
    reports = []
    while True:
        report = conversation.pull(connection_id, commit=db.session.commit)
        reports.append(report)
        if report.finished or report.error or report.skipped:
            return reports


def stored(contact_id=None):
    query = select(Message).where(Message.external_uuid.is_not(None)).order_by(Message.created_on)
    if contact_id is not None:
        query = query.where(Message.contact_id == contact_id)
    return db.session.execute(query).scalars().all()


def test_an_incoming_message_joins_the_open_ticket_bumps_it_and_marks_it_waiting(db, rapidpro):
    connection_id = connect(rapidpro)
    contact = known_contact(rapidpro)
    ticket = make_ticket(contact)
    db.session.commit()
    opened_activity = ticket.last_activity_on
    sent = rapidpro.receive(contact.uuid, "¿Hay alguien?")

    [report] = pull_all(connection_id)

    assert report.stored == 1 and report.finished
    [message] = stored()
    assert (message.ticket_id, message.direction, message.text) == (ticket.id, "in", "¿Hay alguien?")
    assert (message.external_uuid, message.external_status, message.connection_id) == (
        sent["uuid"],
        "handled",
        connection_id,
    )
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket.id)
    assert ticket.last_activity_on > opened_activity
    assert ticket.waiting_since == message.created_on
    assert db.session.get(type(contact), contact.id).connection_id == connection_id  # it came from there


def test_a_reply_ends_the_wait(db, rapidpro):
    connection_id = connect(rapidpro)
    contact = known_contact(rapidpro)
    ticket = make_ticket(contact)
    db.session.commit()
    rapidpro.receive(contact.uuid, "Hola")
    pull_all(connection_id)
    assert db.session.get(Ticket, ticket.id).waiting_since is not None
    ticket_service.reply(ticket.id, "Hola, soy Lucía", by=None)
    db.session.commit()
    assert db.session.get(Ticket, ticket.id).waiting_since is None


def test_bot_messages_and_unknown_contacts_are_left_in_the_workspace(db, rapidpro):
    connection_id = connect(rapidpro)
    contact = known_contact(rapidpro)
    stranger = rapidpro.add_contact("Stranger")
    rapidpro.bot_says(contact.uuid, "Hi! I'm the bot")
    rapidpro.receive(stranger, "hello?")
    pull_all(connection_id)
    assert stored() == []


def test_a_message_with_no_open_ticket_is_kept_on_the_contact(db, rapidpro):
    connection_id = connect(rapidpro)
    contact = known_contact(rapidpro)
    ticket = make_ticket(contact)
    ticket_service.close(ticket.id, by=None)
    db.session.commit()
    rapidpro.receive(contact.uuid, "Gracias, ¡otra pregunta!")

    [report] = pull_all(connection_id)

    assert report.without_ticket == 1
    [message] = stored()
    assert message.ticket_id is None and message.contact_id == contact.id
    assert [m.text for m in conversation.contact_history(contact.id)] == ["Gracias, ¡otra pregunta!"]


def test_pages_are_followed_and_nothing_is_stored_twice(db, rapidpro):
    rapidpro.page_size = 3
    connection_id = connect(rapidpro)
    contact = known_contact(rapidpro)
    make_ticket(contact)
    db.session.commit()
    for i in range(10):
        rapidpro.receive(contact.uuid, f"m{i}")

    reports = pull_all(connection_id)
    assert [r.pages for r in reports] == [4]
    assert [m.text for m in stored()] == [f"m{i}" for i in range(10)]
    state = db.session.get(ConnectionSync, connection_id)
    newest = max(datetime.fromisoformat(m["created_on"]) for m in rapidpro.messages)
    assert state.after == newest and state.resume_before is None and state.window_newest is None

    # the next passes read the overlap again and store nothing twice; new messages come in
    rapidpro.receive(contact.uuid, "m10")
    pull_all(connection_id)
    pull_all(connection_id)
    assert [m.text for m in stored()] == [f"m{i}" for i in range(11)]
    messages = rapidpro.requests_to("messages", "GET")
    assert all(r.args.get("after") for r in messages if "cursor" not in r.args)


def test_messages_from_before_the_connection_are_not_imported(db, rapidpro):
    contact_uuid = rapidpro.add_contact("Old")
    old = datetime.now(UTC) - timedelta(days=3)
    rapidpro.receive(contact_uuid, "three days ago", created_on=old)
    make_contact("Old", uuid=contact_uuid)
    db.session.commit()
    connection_id = connect(rapidpro)
    pull_all(connection_id)
    assert stored() == []


def test_a_pass_cut_short_resumes_where_its_commits_stopped(db, rapidpro):
    rapidpro.page_size = 2
    connection_id = connect(rapidpro)
    contact = known_contact(rapidpro)
    make_ticket(contact)
    db.session.commit()
    for i in range(7):
        rapidpro.receive(contact.uuid, f"m{i}")

    first = conversation.pull(connection_id, commit=db.session.commit, max_pages=2)
    assert (first.pages, first.stored, first.finished) == (2, 4, False)
    state = db.session.get(ConnectionSync, connection_id)
    assert state.resume_before is not None
    rapidpro.receive(contact.uuid, "m7 (while cut short)")

    pull_all(connection_id)
    pull_all(connection_id)
    texts = [m.text for m in stored()]
    assert texts == [f"m{i}" for i in range(7)] + ["m7 (while cut short)"]


def test_429_waits_for_retry_after_and_makes_no_request_before(db, rapidpro):
    connection_id = connect(rapidpro)
    contact = known_contact(rapidpro)
    rapidpro.receive(contact.uuid, "hola")
    rapidpro.throttle(times=1, retry_after=120)

    report = conversation.pull(connection_id, commit=db.session.commit)
    assert report.retry_after == 120 and "throttling" in report.error
    state = db.session.get(ConnectionSync, connection_id)
    assert state.retry_on >= state.last_run_on + timedelta(seconds=120)
    assert conversation.connections_due() == []

    requests_before = len(rapidpro.requests)
    for _ in range(5):  # the scheduler's next runs: no request at all until Retry-After has passed
        assert conversation.pull(connection_id, commit=db.session.commit).skipped
    assert len(rapidpro.requests) == requests_before
    assert stored() == []

    state.retry_on = datetime.now(UTC) - timedelta(seconds=1)  # the wait is over
    db.session.commit()
    assert conversation.connections_due() == [connection_id]
    pull_all(connection_id)
    assert [m.text for m in stored()] == ["hola"]
    assert db.session.get(ConnectionSync, connection_id).last_error is None


def test_failures_back_off_exponentially(db):
    connection = connections.add_rapidpro(name="Down", base_url="http://127.0.0.1:9", api_token="abc")
    db.session.commit()
    waits = []
    for _ in range(4):
        state = db.session.get(ConnectionSync, connection.id)
        state.retry_on = None
        db.session.commit()
        report = conversation.pull(connection.id, commit=db.session.commit)
        assert report.error == "Could not connect to the workspace's server."
        state = db.session.get(ConnectionSync, connection.id)
        waits.append(round((state.retry_on - state.last_run_on).total_seconds()))
    assert waits == [5, 10, 20, 40]


def test_a_fixed_number_of_queries_per_page(db, count_queries):
    def queries_for(pages: int, page_size: int = 5) -> int:
        workspace = RapidProServer(page_size=page_size).start()  # a workspace of its own for each count
        try:
            connection = connections.add_rapidpro(
                name=f"W{pages}x{page_size}", base_url=workspace.url, api_token=workspace.token
            )
            db.session.commit()
            contacts = [known_contact(workspace, f"C{i}") for i in range(10)]
            for contact in contacts[:5]:  # half of them have an open ticket
                make_ticket(contact)
            db.session.commit()
            for n in range(pages * workspace.page_size):
                workspace.receive(contacts[n % 10].uuid, f"text {n}")
            with count_queries() as queries:
                [report] = pull_all(connection.id)
            assert (report.pages, report.stored) == (pages, pages * page_size)
            assert workspace.failures == []
            return len(queries)
        finally:
            workspace.stop()

    # per page: contacts, open tickets, INSERT, UPDATE tickets, UPDATE contacts (first sight), the cursor
    one, eight = queries_for(1), queries_for(8)
    assert eight <= one + 7 * 6
    assert queries_for(2, page_size=5) == queries_for(2, page_size=50)  # nothing per message
