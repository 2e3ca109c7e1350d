"""The dashboard, the per-agent page and the CSV export through the test client."""

import csv
import io
import re
from datetime import timedelta

import pytest

from tests.factories import make_contact, make_ticket
from tests.reports.conftest import T0, build_known_desk
from ticketer.clock import frozen
from ticketer.services import tickets as ticket_service

URLS = ["/admin/dashboard/", "/admin/dashboard/medians", "/admin/dashboard/export.csv"]


@pytest.mark.parametrize("url", URLS)
def test_anonymous_is_sent_to_sign_in(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response.location.startswith("/login?next=/admin/dashboard/")


@pytest.mark.parametrize("url", URLS)
def test_agents_may_not_enter(client, login_as, url):
    login_as("agent")
    assert client.get(url).status_code == 403


def test_agents_may_not_see_an_agent_page(client, login_as, make_user):
    login_as("agent")
    assert client.get(f"/admin/dashboard/agents/{make_user('agent')}").status_code == 403


@pytest.mark.parametrize("role", ["viewer", "supervisor", "admin"])
def test_dashboard_roles_enter_and_land_there(client, login_as, role):
    login_as(role)
    assert client.get("/admin/dashboard/").status_code == 200
    assert client.get("/admin/").location == "/admin/dashboard/"
    assert client.get("/").location == "/admin/"


def test_agents_land_on_tickets(client, login_as):
    login_as("agent")
    assert client.get("/admin/").location == "/admin/tickets/"


def test_dashboard_shows_the_known_figures(db, client, login_as, make_user):
    login_as("supervisor")
    desk = build_known_desk(db, make_user)
    with frozen(desk.now):
        html = client.get("/admin/dashboard/?days=30").get_data(as_text=True)
        medians = client.get("/admin/dashboard/medians?days=30").get_data(as_text=True)
    assert 'id="tile-open">2<' in html
    assert 'id="tile-opened">7<' in html
    assert 'id="tile-closed">5<' in html
    for chart in ("chart-daily", "chart-open-topic", "chart-open-assignee", "chart-sla"):
        assert re.search(rf'<svg class="chart [a-z-]+" id="{chart}"', html), chart
    assert "Mar 02: 7 opened" in html and "Mar 02: 5 closed" in html
    assert 'data-src="/admin/dashboard/medians?start=2026-02-03&amp;end=2026-03-04"' in html

    assert "<html" not in medians  # a fragment for the panel
    assert 'id="tile-first-reply">1m<' in medians  # 100 s
    assert 'id="tile-resolution">15m<' in medians  # 900 s
    for chart in ("chart-median-agent", "chart-median-topic"):
        assert re.search(rf'<svg class="chart [a-z-]+" id="{chart}"', medians), chart
    assert "Ana Agent: median resolution 20m over 3 tickets" in medians  # 1200 s
    assert "Beto Agent: median resolution 8m over 2 tickets" in medians  # 500 s
    assert "Ana Agent: median first reply 1m over 4 tickets" in medians  # 90 s
    assert "Billing: median resolution 15m over 3 tickets" in medians  # 900 s
    assert "Delivery: median first reply 2m over 2 tickets" in medians  # 165 s


def test_dashboard_costs_a_fixed_number_of_queries(db, client, login_as, make_user, count_queries):
    login_as("admin")
    with frozen(T0):
        make_ticket(topic="Billing")
    db.session.commit()
    with count_queries() as few:
        assert client.get("/admin/dashboard/").status_code == 200
    with count_queries() as few_medians:
        assert client.get("/admin/dashboard/medians").status_code == 200
    build_known_desk(db, make_user)
    for i in range(5):
        make_user("agent")
        with frozen(T0 + timedelta(hours=i)):
            make_ticket(make_contact(name=f"n{i}"), topic=f"Topic {i}")
    db.session.commit()
    with count_queries() as many:
        assert client.get("/admin/dashboard/").status_code == 200
    with count_queries() as many_medians:
        assert client.get("/admin/dashboard/medians").status_code == 200
    assert len(many) == len(few) <= 10
    assert len(many_medians) == len(few_medians) <= 8


def test_bad_period_shows_the_error_by_the_field(client, login_as):
    login_as("viewer")
    html = client.get("/admin/dashboard/?start=2026-02-01&end=2026-01-01").get_data(as_text=True)
    assert "The end must not be before the start." in html
    assert 'id="end" name="end"' in html and "is-invalid" in html


def test_agent_page(db, client, login_as, make_user):
    login_as("viewer")
    desk = build_known_desk(db, make_user)
    with frozen(desk.now):
        html = client.get(f"/admin/dashboard/agents/{desk.agent_a}?start=2026-02-01&end=2026-03-04").get_data(
            as_text=True
        )
    assert "Ana Agent" in html
    assert 'id="agent-open">1<' in html
    assert 'id="agent-closed-week">3<' in html
    assert 'id="agent-first-reply">1m<' in html  # 90 s
    assert 'id="agent-resolution">20m<' in html  # 1200 s
    assert 'id="chart-agent-daily"' in html


def test_agent_page_of_a_viewer_or_nobody_is_404(client, login_as, make_user):
    login_as("admin")
    assert client.get(f"/admin/dashboard/agents/{make_user('viewer')}").status_code == 404
    assert client.get("/admin/dashboard/agents/999999").status_code == 404


def test_untrusted_names_are_escaped(db, client, login_as, make_user):
    login_as("admin")
    make_user("agent", name='<script>alert("x")</script>')
    make_ticket(topic="<b>bold</b>")
    db.session.commit()
    html = client.get("/admin/dashboard/").get_data(as_text=True)
    assert '<script>alert("x")' not in html and "<b>bold</b>" not in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html


def read_csv(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_export_streams_the_folder_and_filters_as_csv(db, client, login_as, make_user):
    me = login_as("supervisor")
    desk = build_known_desk(db, make_user)
    contact = make_contact(name='=HYPERLINK("http://x")', urn="tel:+593999000111")
    mine = make_ticket(contact, topic="-Topic", assignee_id=me)
    db.session.commit()
    mine_uuid = mine.uuid

    response = client.get("/admin/dashboard/export.csv?folder=mine&status=open")
    assert response.status_code == 200
    assert response.is_streamed
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = read_csv(response)
    assert [r["ticket_uuid"] for r in rows] == [mine_uuid]
    assert rows[0]["contact_name"] == """'=HYPERLINK("http://x")"""
    assert rows[0]["topic"] == "'-Topic"
    assert rows[0]["urn"] == "tel:+593999000111"
    assert rows[0]["first_reply_seconds"] == "" and rows[0]["closed_on"] == ""

    closed = read_csv(client.get(f"/admin/dashboard/export.csv?folder=all&status=closed&assignee={desk.agent_a}"))
    assert sorted(int(r["resolution_seconds"]) for r in closed) == [600, 1200, 3000, 99999]
    assert sorted(int(r["first_reply_seconds"]) for r in closed) == [10, 60, 120, 300]
    assert {r["assignee"] for r in closed} == {"Ana Agent"}
    assert {r["status"] for r in closed} == {"closed"}
    assert all(r["opened_on"].endswith("+00:00") for r in closed)

    billing_open = read_csv(client.get(f"/admin/dashboard/export.csv?folder=unassigned&topic={desk.billing}"))
    assert [(r["topic"], r["assignee"]) for r in billing_open] == [("Billing", "")]


def test_export_of_many_rows_comes_in_chunks(db, client, login_as, app, monkeypatch):
    from ticketer import reports

    login_as("admin")
    for i in range(25):
        ticket = make_ticket(make_contact(name=f"person {i}"))
        ticket_service.close(ticket.id, by=None)
    db.session.commit()
    monkeypatch.setattr(reports, "EXPORT_BATCH", 10)
    response = client.get("/admin/dashboard/export.csv?status=closed", buffered=False)
    chunks = [c for c in response.response if c]
    assert len(chunks) == 3  # header + 10 rows, 10 rows, 5 rows
    assert len(read_csv(client.get("/admin/dashboard/export.csv?status=closed"))) == 25


def test_export_with_a_search_keeps_only_matching_tickets(db, client, login_as):
    login_as("viewer")
    wanted = make_ticket(make_contact(name="Rosa Search", urn="tel:+593911222333"))
    make_ticket(make_contact(name="Someone Else"))
    db.session.commit()
    wanted_uuid = wanted.uuid
    for query in ("rosa", "tel:+593911222"):
        rows = read_csv(client.get("/admin/dashboard/export.csv", query_string={"status": "open", "q": query}))
        assert [r["ticket_uuid"] for r in rows] == [wanted_uuid], query
