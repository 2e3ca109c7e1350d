"""The dispatcher against a real HTTP server on 127.0.0.1 standing in for the flow engine."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from werkzeug import Response

from tests.factories import make_contact, make_ticket
from tests.flows.conftest import RAPIDPRO_FLOW_UUID, RAPIDPRO_TOKEN, SETTINGS, WEBHOOK_SECRET, run_dispatcher
from ticketer.clock import frozen
from ticketer.engines import webhook
from ticketer.models import Message, User
from ticketer.models.flows import FlowStart
from ticketer.services import dispatch
from ticketer.services import flows as flow_service
from ticketer.services import tickets as ticket_service

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

FLOW_START_ANSWER = {
    "uuid": "09d23a05-47fe-11e4-bfe9-b8f6b119e9ab",
    "flow": {"uuid": RAPIDPRO_FLOW_UUID, "name": "Satisfaction survey"},
    "groups": [],
    "contacts": [{"uuid": "5079cb96-a1d8-4f47-8c87-d8c7bb6ddab9", "name": "Ana"}],
    "restart_participants": True,
    "exclude_active": False,
    "status": "pending",
    "params": {},
    "created_on": "2026-03-02T09:00:00.000000Z",
    "modified_on": "2026-03-02T09:00:00.000000Z",
}


def close_with_trigger(db, admin, flow, *, name="Ana", topic="Billing", delay=0):
    flow_service.create_trigger(flow_id=flow.id, delay_minutes=delay, by=admin)
    ticket = make_ticket(make_contact(name=name, urn="tel:+593987654321"), topic=topic)
    ids = {"ticket_id": ticket.id, "ticket_uuid": ticket.uuid, "contact_uuid": ticket.contact.uuid}
    ticket_service.close(ticket.id, by=admin)
    db.session.commit()
    ids["start"] = db.session.execute(select(FlowStart.id, FlowStart.delivery_id)).one()
    return ids


def start_row(db):
    db.session.expire_all()
    return db.session.execute(select(FlowStart)).scalar_one()


def test_rapidpro_flow_start_follows_api_v2(db, admin, rapidpro_flow, httpserver):
    with frozen(T0):
        ids = close_with_trigger(db, admin, rapidpro_flow)
    httpserver.expect_oneshot_request(
        "/api/v2/flow_starts.json",
        method="POST",
        headers={"Authorization": f"Token {RAPIDPRO_TOKEN}", "Content-Type": "application/json"},
        json={
            "flow": RAPIDPRO_FLOW_UUID,
            "contacts": [ids["contact_uuid"]],
            "params": {
                "ticket": {"uuid": ids["ticket_uuid"], "topic": "Billing", "closed_on": "2026-03-02T09:00:00+00:00"},
                "delivery_id": ids["start"].delivery_id,
            },
        },
    ).respond_with_json(FLOW_START_ANSWER, status=201)
    report = run_dispatcher()
    httpserver.check_assertions()
    assert report.sent == 1, report.errors
    start = start_row(db)
    assert start.status == "sent" and start.attempts == 1 and start.last_error is None
    assert json.loads(start.response)["uuid"] == FLOW_START_ANSWER["uuid"]


def test_rapidpro_bad_token_fails_at_once_with_the_error_shown(db, admin, rapidpro_flow, httpserver):
    close_with_trigger(db, admin, rapidpro_flow)
    httpserver.expect_request("/api/v2/flow_starts.json", method="POST").respond_with_json(
        {"detail": "Invalid token"}, status=403
    )
    report = run_dispatcher()
    assert report.failed == 1
    start = start_row(db)
    assert start.status == "failed" and start.attempts == 1
    assert "Authentication with provided token failed" in start.last_error


def test_agent_replies_go_out_as_rapidpro_broadcasts(db, admin, rapidpro_flow, httpserver):
    flow_service.update_flow(
        rapidpro_flow.id,
        flow_service.FlowSettings(
            name=rapidpro_flow.name,
            engine="rapidpro",
            uuid=rapidpro_flow.uuid,
            base_url=rapidpro_flow.base_url,
            api_token="",
            sends_replies=True,
        ),
        by=admin,
    )
    ticket = make_ticket(make_contact(name="Ana"))
    contact_uuid = ticket.contact.uuid
    ticket_service.reply(ticket.id, "Your order ships today.", by=admin)
    db.session.commit()
    httpserver.expect_oneshot_request(
        "/api/v2/broadcasts.json",
        method="POST",
        headers={"Authorization": f"Token {RAPIDPRO_TOKEN}"},
        json={"text": "Your order ships today.", "contacts": [contact_uuid]},
    ).respond_with_json(
        {
            "id": 1234,
            "urns": [],
            "contacts": [{"uuid": contact_uuid, "name": "Ana"}],
            "groups": [],
            "text": "Your order ships today.",
            "status": "queued",
            "created_on": "2026-03-02T09:00:00.000000Z",
        },
        status=201,
    )
    report = run_dispatcher()
    httpserver.check_assertions()
    assert report.sent == 1, report.errors
    message = db.session.execute(select(Message)).scalar_one()
    assert (message.status, message.attempts) == ("sent", 1)


def test_replies_without_a_reply_engine_are_kept_in_ticketer_and_marked_sent(db, admin, httpserver):
    ticket = make_ticket()
    ticket_service.reply(ticket.id, "Hello", by=admin)
    db.session.commit()
    assert run_dispatcher().sent == 1
    assert db.session.execute(select(Message.status)).scalar_one() == "sent"
    assert httpserver.log == []


def test_webhook_is_signed_and_the_signature_verifies(db, admin, webhook_flow, httpserver):
    ids = close_with_trigger(db, admin, webhook_flow)
    received = []

    def handler(request):
        received.append((dict(request.headers), request.get_data()))
        return Response("ok", status=200)

    httpserver.expect_oneshot_request("/hooks/ticketer", method="POST").respond_with_handler(handler)
    assert run_dispatcher().sent == 1
    [(headers, body)] = received
    assert headers["X-Ticketer-Event"] == "flow_start"
    assert headers["X-Ticketer-Delivery"] == ids["start"].delivery_id
    assert webhook.verify(WEBHOOK_SECRET, headers["X-Ticketer-Timestamp"], body, headers["X-Ticketer-Signature"])
    # A changed body, another secret or an old timestamp do not verify.
    assert not webhook.verify(
        WEBHOOK_SECRET, headers["X-Ticketer-Timestamp"], body + b" ", headers["X-Ticketer-Signature"]
    )
    assert not webhook.verify(
        "another-secret-123", headers["X-Ticketer-Timestamp"], body, headers["X-Ticketer-Signature"]
    )
    old = int(headers["X-Ticketer-Timestamp"]) + 3600
    assert not webhook.verify(
        WEBHOOK_SECRET, headers["X-Ticketer-Timestamp"], body, headers["X-Ticketer-Signature"], now=old
    )
    payload = json.loads(body)
    assert payload["event"] == "flow_start"
    assert payload["delivery_id"] == ids["start"].delivery_id
    assert payload["flow"] == {"uuid": webhook_flow.uuid, "name": "Webhook survey"}
    assert payload["contact"]["uuid"] == ids["contact_uuid"]
    assert payload["contact"]["urns"] == ["tel:+593987654321"]
    assert payload["ticket"]["uuid"] == ids["ticket_uuid"] and payload["ticket"]["topic"]["name"] == "Billing"
    assert payload["ticket"]["status"] == "closed" and payload["ticket"]["closed_on"]


def test_backoff_schedule_is_exponential_and_capped():
    assert [dispatch.backoff(n).total_seconds() for n in range(1, 6)] == [30, 60, 120, 240, 480]
    assert dispatch.backoff(12) == timedelta(seconds=30 * 2**11)
    assert dispatch.backoff(13) == timedelta(hours=24)
    assert dispatch.backoff(1000) == timedelta(hours=24)


def test_engine_down_then_up_retries_with_backoff_then_sends_once(db, admin, webhook_flow, httpserver):
    with frozen(T0):
        ids = close_with_trigger(db, admin, webhook_flow)
    deliveries = []

    def down(request):
        deliveries.append(request.headers["X-Ticketer-Delivery"])
        return Response("engine overloaded", status=503)

    httpserver.expect_request("/hooks/ticketer").respond_with_handler(down)
    with frozen(T0):
        assert run_dispatcher().retrying == 1
    start = start_row(db)
    assert (start.status, start.attempts) == ("pending", 1)
    assert start.next_attempt_on == T0 + timedelta(seconds=30)
    assert start.last_error == "Webhook answered HTTP 503 Service Unavailable"  # never the answer's body
    with frozen(T0 + timedelta(seconds=29)):
        run_dispatcher()  # not due yet
    assert len(deliveries) == 1
    with frozen(T0 + timedelta(seconds=30)):
        run_dispatcher()
    start = start_row(db)
    assert (start.attempts, start.next_attempt_on) == (2, T0 + timedelta(seconds=30 + 60))

    httpserver.clear()  # the engine is back
    httpserver.expect_request("/hooks/ticketer").respond_with_handler(
        lambda request: deliveries.append(request.headers["X-Ticketer-Delivery"]) or Response("ok")
    )
    with frozen(T0 + timedelta(seconds=90)):
        assert run_dispatcher().sent == 1
    with frozen(T0 + timedelta(days=2)):
        assert run_dispatcher().sent == 0
    start = start_row(db)
    assert (start.status, start.attempts, start.last_error) == ("sent", 3, None)
    assert deliveries == [ids["start"].delivery_id] * 3  # every try carries the same delivery id


def test_after_the_last_attempt_the_start_fails_and_retry_sends_it(db, admin, webhook_flow, httpserver):
    with frozen(T0):
        close_with_trigger(db, admin, webhook_flow)
    httpserver.expect_request("/hooks/ticketer").respond_with_data("down", status=502)
    when = T0
    for _ in range(SETTINGS.max_attempts):
        with frozen(when):
            run_dispatcher()
        when += timedelta(days=1)
    start = start_row(db)
    assert (start.status, start.attempts) == ("failed", SETTINGS.max_attempts)
    assert "502" in start.last_error

    httpserver.clear()
    httpserver.expect_request("/hooks/ticketer").respond_with_data("ok")
    flow_service.retry_start(start.id, by=db.session.get(User, admin.id))
    db.session.commit()
    assert run_dispatcher().sent == 1
    assert start_row(db).status == "sent"


def test_a_4xx_answer_is_permanent(db, admin, webhook_flow, httpserver):
    close_with_trigger(db, admin, webhook_flow)
    httpserver.expect_request("/hooks/ticketer").respond_with_data("no such flow", status=410)
    assert run_dispatcher().failed == 1
    assert start_row(db).status == "failed"


def test_unreachable_engine_is_retried(db, admin, httpserver):
    flow = flow_service.create_flow(
        flow_service.FlowSettings(
            name="Nowhere", engine="webhook", webhook_url="http://127.0.0.1:9/hook", webhook_secret="x" * 20
        ),
        by=admin,
    )
    close_with_trigger(db, admin, flow)
    report = run_dispatcher()
    assert report.retrying == 1
    assert "unreachable" in start_row(db).last_error


def test_a_stale_sending_row_is_reclaimed_with_the_same_delivery_id(db, admin, webhook_flow, httpserver):
    with frozen(T0):
        ids = close_with_trigger(db, admin, webhook_flow)
    # A dispatcher claimed it and died before recording the outcome.
    with frozen(T0):
        from sqlalchemy import update

        db.session.execute(update(FlowStart).values(status="sending", claimed_on=T0, attempts=1))
        db.session.commit()
    seen = []
    httpserver.expect_request("/hooks/ticketer").respond_with_handler(
        lambda request: seen.append(request.headers["X-Ticketer-Delivery"]) or Response("ok")
    )
    with frozen(T0 + timedelta(seconds=SETTINGS.reclaim_after_seconds - 1)):
        assert run_dispatcher().sent == 0  # may still be in flight elsewhere
    with frozen(T0 + timedelta(seconds=SETTINGS.reclaim_after_seconds + 1)):
        assert run_dispatcher().sent == 1
    assert seen == [ids["start"].delivery_id]
    assert start_row(db).attempts == 2


@pytest.mark.parametrize("status", [200, 500])
def test_webhook_replies_carry_the_message(db, admin, webhook_flow, httpserver, status):
    flow_service.update_flow(
        webhook_flow.id,
        flow_service.FlowSettings(
            name="Webhook survey", engine="webhook", webhook_url=webhook_flow.webhook_url, sends_replies=True
        ),
        by=admin,
    )
    ticket = make_ticket()
    message = ticket_service.reply(ticket.id, "On its way", by=admin)
    message_uuid = message.uuid
    db.session.commit()
    bodies = []
    httpserver.expect_request("/hooks/ticketer").respond_with_handler(
        lambda request: bodies.append((request.headers, request.get_json())) or Response("x", status=status)
    )
    with frozen(T0):
        run_dispatcher()
    [(headers, body)] = bodies
    assert headers["X-Ticketer-Event"] == "message" and headers["X-Ticketer-Delivery"] == message_uuid
    assert body["message"]["text"] == "On its way" and body["ticket"]["status"] == "open"
    message = db.session.execute(select(Message)).scalar_one()
    if status == 200:
        assert message.status == "sent"
    else:
        assert (message.status, message.attempts, message.next_attempt_on) == (
            "queued",
            1,
            T0 + timedelta(seconds=30),
        )
        assert "500" in message.last_error
        with frozen(T0 + timedelta(seconds=30)):
            run_dispatcher()
        assert [headers["X-Ticketer-Delivery"] for headers, _ in bodies] == [message_uuid] * 2  # the same on a retry


def test_a_reply_stuck_in_sending_is_released_when_replies_stay_in_ticketer(db, admin):
    ticket = make_ticket()
    message = ticket_service.reply(ticket.id, "Hello", by=admin)
    message.status, message.claimed_on, message.attempts = "sending", T0, 1
    db.session.commit()
    with frozen(T0 + timedelta(seconds=SETTINGS.reclaim_after_seconds - 1)):
        assert run_dispatcher().sent == 0  # a dispatcher may still be sending it
    with frozen(T0 + timedelta(seconds=SETTINGS.reclaim_after_seconds + 1)):
        assert run_dispatcher().sent == 1
    assert db.session.execute(select(Message.status)).scalar_one() == "sent"


def test_engines_receive_the_ticket_in_the_apis_one_shape(db, admin, webhook_flow, httpserver, client, login_as):
    ids = close_with_trigger(db, admin, webhook_flow)
    received = []

    def handler(request):
        received.append(json.loads(request.get_data()))
        return Response("ok", status=200)

    httpserver.expect_oneshot_request("/hooks/ticketer", method="POST").respond_with_handler(handler)
    assert run_dispatcher().sent == 1
    login_as("viewer")
    shown = client.get(f"/api/v1/tickets/{ids['ticket_uuid']}")
    assert shown.status_code == 200
    [payload] = received
    assert payload["ticket"] == shown.json
    assert payload["ticket"]["topic"]["name"] == "Billing" and payload["ticket"]["status"] == "closed"


def close_on_topic(db, admin, flow, topic: str, n: int) -> list[str]:
    """n closed tickets on `topic`, whose trigger starts `flow`; returns their starts' delivery ids."""
    tickets = [make_ticket(make_contact(name=f"{topic} {i}"), topic=topic) for i in range(n)]
    flow_service.create_trigger(flow_id=flow.id, topic_id=tickets[0].topic_id, by=admin)
    ticket_service.close_tickets([t.id for t in tickets], by=admin)
    db.session.commit()
    ids = [t.id for t in tickets]
    return list(
        db.session.execute(
            select(FlowStart.delivery_id).where(FlowStart.ticket_id.in_(ids)).order_by(FlowStart.id)
        ).scalars()
    )


def test_a_trickling_engine_is_cut_at_the_deadline_and_holds_up_no_other_engine(
    db, admin, httpserver, trickling_engine
):
    fast_received = []
    httpserver.expect_request("/hooks/fast").respond_with_handler(
        lambda request: fast_received.append(request.headers["X-Ticketer-Delivery"]) or Response("ok")
    )
    # Headers at once, then one byte a second for 12 s: each read is quick, the exchange is not.
    slow = trickling_engine(length=12, interval=1.0, on_end=lambda: len(fast_received))
    slow_flow = flow_service.create_flow(
        flow_service.FlowSettings(name="Slow", engine="webhook", webhook_url=slow.url()), by=admin
    )
    fast_flow = flow_service.create_flow(
        flow_service.FlowSettings(name="Fast", engine="webhook", webhook_url=httpserver.url_for("/hooks/fast")),
        by=admin,
    )
    with frozen(T0):
        slow_ids = close_on_topic(db, admin, slow_flow, "Slow", 2)  # claimed first: lower ids
        fast_ids = close_on_topic(db, admin, fast_flow, "Fast", 5)
    with frozen(T0):
        report = run_dispatcher()  # SETTINGS: a 3 s deadline per exchange
    # The deadline ended both slow sends (a retryable failure), and the other engine did not wait:
    # all its deliveries had arrived while the trickling answers were still open.
    assert sorted(slow.deliveries) == sorted(slow_ids)
    assert slow.wait_for_ends(2) == [5, 5], slow.ends
    assert sorted(fast_received) == sorted(fast_ids)
    assert (report.sent, report.retrying, report.failed) == (5, 2, 0), report.errors
    db.session.expire_all()
    rows = {s.delivery_id: s for s in db.session.execute(select(FlowStart)).scalars()}
    for delivery_id in slow_ids:
        start = rows[delivery_id]
        assert (start.status, start.attempts, start.next_attempt_on) == ("pending", 1, T0 + timedelta(seconds=30))
        assert "deadline" in start.last_error
    assert all(rows[d].status == "sent" for d in fast_ids)

    # The engine had the whole request each time: the next try sends it again, with the same id.
    slow.trickle = False
    with frozen(T0 + timedelta(seconds=30)):
        assert run_dispatcher().sent == 2
    assert sorted(slow.deliveries) == sorted(slow_ids * 2)
