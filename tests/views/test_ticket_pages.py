"""The agent's workspace through the test client: folders, a ticket's page and its actions."""

import re

import pytest
from sqlalchemy import select

from tests.factories import make_contact, make_ticket
from ticketer.models import Message, Ticket, TicketEvent, User
from ticketer.services import tickets as ticket_service

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def ticket_uuids(html: bytes) -> list[str]:
    return re.findall(r'data-ticket="([0-9a-f-]{36})"', html.decode())


def test_anonymous_is_sent_to_sign_in(client):
    response = client.get("/admin/tickets/?folder=all")
    assert response.status_code == 302
    assert response.location.startswith("/login?next=/admin/tickets/")


def test_folders_show_counts_and_the_right_tickets(db, client, login_as):
    me = login_as("agent")
    mine = make_ticket(make_contact("Mine Person"), assignee_id=me)
    unassigned = make_ticket(make_contact("Nobody Yet"))
    closed = make_ticket(make_contact("Done Deal"))
    ticket_service.close(closed.id, by=None)
    db.session.commit()
    ids = {"mine": mine.uuid, "unassigned": unassigned.uuid, "closed": closed.uuid}

    page = client.get("/admin/tickets/?folder=mine&status=open")
    assert page.status_code == 200
    assert ticket_uuids(page.data) == [ids["mine"]]
    html = page.data.decode()
    counts = dict(re.findall(r'data-count="([a-z]+\.[a-z]+)">([\d,]+)<', html))
    assert counts == {
        "mine.open": "1",
        "mine.closed": "0",
        "unassigned.open": "1",
        "unassigned.closed": "1",
        "all.open": "2",
        "all.closed": "1",
    }
    assert ticket_uuids(client.get("/admin/tickets/?folder=unassigned").data) == [ids["unassigned"]]
    assert ticket_uuids(client.get("/admin/tickets/?folder=all&status=closed").data) == [ids["closed"]]
    assert client.get("/admin/tickets/counts.json").json["all"] == {"open": 2, "closed": 1}


def test_newest_activity_first_and_keyset_pages(db, client, login_as, app):
    login_as("supervisor")
    tickets = [make_ticket() for _ in range(7)]
    ticket_service.receive_message(tickets[2].contact_id, "bump me to the top")
    db.session.commit()
    expected = [tickets[2].uuid] + [t.uuid for t in reversed(tickets) if t.uuid != tickets[2].uuid]
    app.config["TICKETS_PER_PAGE"] = 3
    try:
        seen, url = [], "/admin/tickets/?folder=all"
        while url:
            html = client.get(url).data.decode()
            seen.extend(ticket_uuids(html.encode()))
            older = re.search(r'id="older-page" href="([^"]+)"', html)
            url = older.group(1).replace("&amp;", "&") if older else None
        assert seen == expected
        # and back: the "Newer" link of the last page shows the page before it
        newer = re.search(r'id="newer-page" href="([^"]+)"', html).group(1).replace("&amp;", "&")
        assert ticket_uuids(client.get(newer).data) == expected[3:6]
    finally:
        app.config["TICKETS_PER_PAGE"] = 50


def test_search_by_name_urn_and_body_and_filters(db, client, login_as):
    login_as("admin")
    ana = make_ticket(make_contact("Ana Torres", urn="tel:+593911112222"), topic="Billing", body="refund please")
    luis = make_ticket(make_contact("Luis Vega", urn="whatsapp:593933334444"), topic="Delivery", body="late box")
    db.session.commit()

    def found(query: str) -> set[str]:
        return set(ticket_uuids(client.get(f"/admin/tickets/?folder=all&{query}").data))

    assert found("q=torres") == {ana.uuid}
    assert found("q=933334") == {luis.uuid}
    assert found("q=LATE+BOX") == {luis.uuid}
    assert found("q=100%25") == set()  # LIKE wildcards are literal
    assert found(f"topic={ana.topic_id}") == {ana.uuid}
    assert found("q=' OR 1=1 --") == set()
    assert client.get("/admin/tickets/?folder=nope&status=weird&topic=abc&assignee=-1").status_code == 200
    assert client.get("/admin/tickets/?after=%%%").status_code == 400  # a page link we never gave


def test_list_runs_a_fixed_number_of_queries(db, client, login_as, count_queries):
    agent = login_as("agent")
    for _ in range(3):
        make_ticket(assignee_id=agent)
    db.session.commit()
    with count_queries() as few:
        assert client.get("/admin/tickets/?folder=all").status_code == 200
    for _ in range(40):
        make_ticket(assignee_id=agent)
    db.session.commit()
    with count_queries() as many:
        assert client.get("/admin/tickets/?folder=all").status_code == 200
    assert len(ticket_uuids(client.get("/admin/tickets/?folder=all").data)) == 43
    assert len(many) == len(few)
    assert len(many) <= 6
    db.session.expire_all()
    with count_queries() as counts:
        assert client.get("/admin/tickets/counts.json").json["mine"] == {"open": 43, "closed": 0}
    assert len(counts) <= 2  # the signed-in user, then every figure


def test_a_search_found_by_prefix_costs_no_extra_query(db, client, login_as, count_queries):
    agent = login_as("agent")
    make_ticket(make_contact("Ana Torres", urn="tel:+593911112222"), assignee_id=agent)
    db.session.commit()
    with count_queries() as plain:
        assert client.get("/admin/tickets/?folder=all").status_code == 200
    for query in ("tel:%2B593911112222", "ana+tor", "%2B593+91111"):
        db.session.expire_all()  # every request loads the signed-in user, as the first one did
        with count_queries() as searched:
            response = client.get(f"/admin/tickets/?folder=all&q={query}")
        assert len(ticket_uuids(response.data)) == 1, query
        assert len(searched) == len(plain), query


def test_a_search_some_contact_starts_with_never_falls_back_to_text(db, client, login_as):
    login_as("agent")
    ana = make_ticket(make_contact("Ana Torres"), body="closed long ago")
    ticket_service.close(ana.id, by=None)
    other = make_ticket(make_contact("Luis Vega"), body="ask ana about it")
    db.session.commit()

    def found(status: str, query: str) -> list[str]:
        return ticket_uuids(client.get(f"/admin/tickets/?folder=all&status={status}&q={query}").data)

    # "ana" starts Ana's name: the open folder has none of her tickets, and Luis's text doesn't count.
    assert found("open", "ana") == []
    assert found("closed", "ana") == [ana.uuid]
    # Nothing starts with "about": found inside the text.
    assert found("open", "about") == [other.uuid]


def test_ticket_page_shows_conversation_contact_and_results_escaped(db, client, login_as):
    agent = login_as("agent")
    contact = make_contact(XSS, urn="tel:+593955556666", fields={"city": XSS, "plan": "pro"}, language="spa")
    ticket, _ = ticket_service.open_ticket(
        contact_id=contact.id,
        topic_name=XSS,
        body="Problem: @results.problem",
        results={"problem": {"value": XSS, "category": "Other"}},
        flow_name="Support bot",
    )
    ticket_service.receive_message(contact.id, XSS)
    ticket_service.reply(ticket.id, "On it", by=db.session.get(User, agent))
    ticket_service.add_note(ticket.id, XSS, by=db.session.get(User, agent))
    db.session.commit()
    response = client.get(f"/admin/tickets/{ticket.uuid}")
    html = response.data.decode()
    assert response.status_code == 200
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "tel:+593955556666" in html and "spa" in html and "pro" in html
    assert 'id="flow-results"' in html and "Other" in html and "Support bot" in html
    assert html.index("On it") < html.index("added a note")


def test_ticket_page_runs_a_fixed_number_of_queries(db, client, login_as, count_queries):
    agent_id = login_as("agent")
    ticket = make_ticket()
    db.session.commit()
    with count_queries() as few:
        client.get(f"/admin/tickets/{ticket.uuid}")
    agent = db.session.get(User, agent_id)
    for n in range(30):
        ticket_service.receive_message(ticket.contact_id, f"message {n}")
        ticket_service.reply(ticket.id, f"reply {n}", by=agent)
        ticket_service.add_note(ticket.id, f"note {n}", by=agent)
    db.session.commit()
    with count_queries() as many:
        assert b"reply 29" in client.get(f"/admin/tickets/{ticket.uuid}").data
    assert len(many) == len(few)


def test_assign_with_note_close_and_reopen(db, client, login_as, make_user):
    login_as("agent")
    colleague = make_user("agent", name="Colleague Carla")
    ticket = make_ticket()
    db.session.commit()
    url = f"/admin/tickets/{ticket.uuid}"

    response = client.post(f"{url}/assign", data={"assignee": str(colleague), "note": "Carla knows billing"})
    assert response.status_code == 302 and response.location == url
    page = client.get(url).data.decode()
    assert "assigned this to Colleague Carla" in page and "Carla knows billing" in page

    assert client.post(f"{url}/close").status_code == 302
    page = client.get(url).data.decode()
    assert 'id="reopen-ticket"' in page and 'id="close-ticket"' not in page
    assert client.post(f"{url}/reopen").status_code == 302
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).status == "open"
    kinds = (
        db.session.execute(select(TicketEvent.kind).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id))
        .scalars()
        .all()
    )
    assert kinds == ["opened", "assigned", "closed", "reopened"]


def test_reply_note_and_topic_change(db, client, login_as):
    login_as("agent")
    ticket = make_ticket(topic="Billing")
    other_topic = make_ticket(topic="Returns").topic_id
    db.session.commit()
    url = f"/admin/tickets/{ticket.uuid}"
    assert client.post(f"{url}/reply", data={"text": "Hello María"}).status_code == 302
    assert client.post(f"{url}/note", data={"note": "VIP"}).status_code == 302
    assert client.post(f"{url}/topic", data={"topic": str(other_topic)}).status_code == 302
    db.session.expire_all()
    message = db.session.execute(select(Message).where(Message.ticket_id == ticket.id)).scalar_one()
    assert (message.text, message.status, message.direction) == ("Hello María", "queued", "out")
    assert db.session.get(Ticket, ticket.id).topic_id == other_topic


@pytest.mark.parametrize(
    ("action", "data", "message"),
    [
        ("note", {"note": "x" * 10_001}, "Field cannot be longer than 10000 characters."),
        ("note", {"note": ""}, "Write a note first."),
        ("reply", {"text": "   "}, "Write a reply first."),
        ("assign", {"assignee": "999999", "note": ""}, "Not a valid choice."),
        ("topic", {"topic": "424242"}, "Not a valid choice."),
    ],
)
def test_bad_input_shows_the_error_by_the_field_and_keeps_the_text(db, client, login_as, action, data, message):
    login_as("agent")
    ticket = make_ticket()
    db.session.commit()
    response = client.post(f"/admin/tickets/{ticket.uuid}/{action}", data=data)
    assert response.status_code == 400
    html = response.data.decode()
    assert 'class="invalid-feedback d-block"' in html and message in html
    if action == "note" and data["note"]:
        assert data["note"] in html  # nothing typed is lost


def test_domain_error_is_shown_by_the_field(db, client, login_as):
    login_as("agent")
    ticket = make_ticket()
    ticket_service.close(ticket.id, by=None)
    db.session.commit()
    response = client.post(f"/admin/tickets/{ticket.uuid}/reply", data={"text": "hello?"})
    assert response.status_code == 400
    assert "Reopen the ticket to reply." in response.data.decode()


def test_reopen_conflict_is_explained(db, client, login_as):
    login_as("agent")
    contact = make_contact()
    old = make_ticket(contact)
    ticket_service.close(old.id, by=None)
    make_ticket(contact)
    db.session.commit()
    response = client.post(f"/admin/tickets/{old.uuid}/reopen")
    assert response.status_code == 400
    assert "already has an open ticket" in response.data.decode()


def test_viewer_reads_but_cannot_act(db, client, login_as):
    login_as("viewer")
    ticket = make_ticket()
    db.session.commit()
    page = client.get(f"/admin/tickets/{ticket.uuid}")
    assert page.status_code == 200
    assert b'id="reply-form"' not in page.data and b'id="close-ticket"' not in page.data
    for action in ("reply", "note", "assign", "topic", "close", "reopen"):
        assert client.post(f"/admin/tickets/{ticket.uuid}/{action}", data={}).status_code == 403
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).status == "open"


def test_unknown_ticket_is_404(client, login_as):
    login_as("agent")
    assert client.get("/admin/tickets/00000000-0000-4000-8000-000000000000").status_code == 404
    assert client.get("/admin/tickets/not-a-uuid").status_code == 404


def test_posts_need_a_csrf_token(db, app, client, login_as, monkeypatch):
    login_as("agent")
    ticket = make_ticket()
    db.session.commit()
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    response = client.post(f"/admin/tickets/{ticket.uuid}/close")
    assert response.status_code == 400
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).status == "open"


@pytest.mark.parametrize("action", ["close", "note", "reply", "assign", "reopen"])
def test_after_an_action_the_page_redirects_with_the_uuid_it_received(db, client, login_as, count_queries, action):
    me = login_as("agent")
    ticket = make_ticket()
    if action == "reopen":
        ticket_service.close(ticket.id, by=None)
    db.session.commit()
    client.get(f"/admin/tickets/{ticket.uuid}")  # the signed-in user is loaded, as on any later request
    data = {"note": "Called back", "text": "Hello", "assignee": str(me)}
    with count_queries() as queries:
        response = client.post(f"/admin/tickets/{ticket.uuid}/{action}", data=data)
    assert response.status_code == 302 and response.location == f"/admin/tickets/{ticket.uuid}"
    # The ticket is read once, to act on it; nothing reads it again once the action is committed
    # (that would start another transaction, a write one on SQLite, for a value the URL already had).
    loads = [q for q in queries if re.search(r"^\s*SELECT .*FROM tickets\b.*WHERE tickets\.(uuid|id) = ", q, re.S)]
    assert len(loads) == 1, loads
