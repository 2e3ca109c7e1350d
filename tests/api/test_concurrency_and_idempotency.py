"""One open ticket per contact under 50 concurrent API calls, and Idempotency-Key retries."""

import json
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from tests.api.conftest import open_ticket
from tests.conftest import app_context
from ticketer.clock import frozen
from ticketer.extensions import db as _db
from ticketer.models import Contact, Message, Ticket, TicketEvent
from ticketer.models.api import IdempotencyKey


def _post(url: str, key: str, body: dict, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Token {key}", "Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _in_parallel(count: int, call) -> list:
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = call(index)
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def _count(app, model, *where) -> int:
    with app_context(app):
        total = _db.session.scalar(select(func.count()).select_from(model).where(*where))
        _db.session.remove()
        return total


def test_fifty_concurrent_opens_for_one_contact_leave_exactly_one_open_ticket(app, live_server, make_token):
    key, _ = make_token()
    url = f"{live_server.url}/api/v1/tickets"
    results = _in_parallel(
        50,
        lambda i: _post(url, key, {"contact": {"urn": "tel:+593987000050", "name": "Rosa"}, "body": f"Try {i}"}),
    )
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] * 49 + [201], results
    assert len({body["uuid"] for _, body in results}) == 1
    assert _count(app, Contact) == 1
    assert _count(app, Ticket) == 1
    assert _count(app, Ticket, Ticket.status == "open") == 1
    assert _count(app, TicketEvent, TicketEvent.kind == "opened") == 1
    assert _count(app, TicketEvent, TicketEvent.kind == "note_added") == 49


def test_concurrent_retries_with_one_idempotency_key_do_the_work_once(app, live_server, make_token):
    key, _ = make_token()
    url = f"{live_server.url}/api/v1/messages"
    # the contact exists, with an open ticket
    _post(f"{live_server.url}/api/v1/tickets", key, {"contact": {"urn": "tel:+593987000051"}})
    body = {"urn": "tel:+593987000051", "text": "Only once"}
    results = _in_parallel(10, lambda i: _post(url, key, body, {"Idempotency-Key": "msg-42"}))
    assert {status for status, _ in results} == {201}, results
    assert len({answer["uuid"] for _, answer in results}) == 1
    assert _count(app, Message) == 1
    assert _count(app, IdempotencyKey) == 1


def test_a_retry_with_the_same_key_returns_the_first_answer_and_creates_nothing(api, db):
    headers = {"Idempotency-Key": "flow-run-7d1c/ticket"}
    first = open_ticket(api, body="First", headers=headers)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    retry = open_ticket(api, body="First", headers=headers)
    assert retry.status_code == 201
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json == first.json
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 1
    assert db.session.scalar(select(func.count()).select_from(TicketEvent)) == 1  # no note from the retry

    # the same key with another body is refused; another key does the work (the open ticket + a note)
    reused = open_ticket(api, body="Different", headers=headers)
    assert reused.status_code == 422
    assert reused.json["error"]["fields"] == {
        "Idempotency-Key": "This Idempotency-Key was already used for a different request."
    }
    other = open_ticket(api, body="Second", headers={"Idempotency-Key": "flow-run-8"})
    assert other.status_code == 200
    assert db.session.scalar(select(func.count()).select_from(TicketEvent)) == 2


def test_failed_requests_leave_their_key_free_and_keys_are_per_token(api, api_as, db):
    headers = {"Idempotency-Key": "k1"}
    failed = api.post("/api/v1/topics", json={"name": ""}, headers=headers)
    assert failed.status_code == 422
    assert api.post("/api/v1/topics", json={"name": "Sales"}, headers=headers).status_code == 201
    again = api.post("/api/v1/topics", json={"name": "Sales"}, headers=headers)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    # another token's k1 is its own key: the duplicate name is refused by the topic rule
    other = api_as("admin").post("/api/v1/topics", json={"name": "Sales"}, headers=headers)
    assert other.status_code == 422 and "name" in other.json["error"]["fields"]
    bad = api.post("/api/v1/topics", json={"name": "X"}, headers={"Idempotency-Key": " "})
    assert bad.status_code == 422 and "Idempotency-Key" in bad.json["error"]["fields"]
    too_long = api.post("/api/v1/topics", json={"name": "X"}, headers={"Idempotency-Key": "k" * 256})
    assert too_long.status_code == 422


def test_keys_expire_after_a_day(api, db):
    headers = {"Idempotency-Key": "daily"}
    start = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    with frozen(start):
        assert api.post("/api/v1/topics", json={"name": "Day one"}, headers=headers).status_code == 201
    with frozen(start + timedelta(hours=23)):
        replay = api.post("/api/v1/topics", json={"name": "Day one"}, headers=headers)
        assert replay.headers.get("Idempotent-Replayed") == "true"
    with frozen(start + timedelta(hours=25)):
        # the old answer is gone: the same key now does new work
        fresh = api.post("/api/v1/topics", json={"name": "Day two"}, headers=headers)
        assert fresh.status_code == 201 and "Idempotent-Replayed" not in fresh.headers
    assert db.session.scalar(select(func.count()).select_from(IdempotencyKey)) == 1
