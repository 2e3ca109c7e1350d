"""What opening a ticket through the API costs: a fixed handful of statements, and on SQLite no
write lock while the caller's token is checked (flows open hundreds of tickets a second)."""

import sqlite3

import pytest

from tests.api.conftest import open_ticket
from tests.conftest import app_context
from ticketer.extensions import db as _db


def _statements(queries: list[str]) -> str:
    return "\n".join(" ".join(q.split())[:120] for q in queries)


def test_opening_a_ticket_for_a_new_contact_runs_a_fixed_number_of_statements(api, count_queries):
    assert open_ticket(api, urn="tel:+593990000001").status_code == 201  # the topic exists from now on
    with count_queries() as queries:
        response = open_ticket(api, urn="tel:+593990000002")
    assert response.status_code == 201
    assert response.json["contact"]["name"] == "Ana" and response.json["topic"]["name"] == "Billing"
    # token, contact lookup, contact, URN, topic, ticket, event, daily count, folder count,
    # auto-assignment, SLA target, the answer
    assert len(queries) <= 12, _statements(queries)


def test_a_second_open_for_the_same_contact_runs_a_fixed_number_of_statements(api, count_queries):
    first = open_ticket(api, urn="tel:+593990000003")
    with count_queries() as queries:
        again = open_ticket(api, urn="tel:+593990000003", body="More detail")
    assert again.status_code == 200 and again.json["uuid"] == first.json["uuid"]
    # token, contact lookup and update, its URNs, topic, the open ticket, the note, its activity, the answer
    assert len(queries) <= 10, _statements(queries)


def test_the_token_is_checked_without_waiting_for_the_write_lock(app, api, db):
    """A write in progress elsewhere doesn't hold up checking who calls: a bad token gets its 401
    at once, where it used to queue for the write lock behind every other flow's request."""
    with app_context(app):
        if _db.engine.dialect.name != "sqlite":
            pytest.skip("SQLite only: PostgreSQL has no database-wide write lock")
        path = _db.engine.url.database
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # another process is writing
        response = api.client.post(
            "/api/v1/tickets",
            json={"contact": {"urn": "tel:+593990000004"}},
            headers={"Authorization": "Token tkt_not-a-real-key"},
        )
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"
