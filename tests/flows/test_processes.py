"""The scheduler process for real: `flask --app app scheduler` subprocesses against the test database.

Two dispatchers share 1,000 starts with none sent twice, and share starts to an engine slower than
the reclaim time with none sent twice (a live dispatcher renews its claims); a dispatcher killed
with SIGKILL mid-send loses nothing after a restart (the cut-off start is sent once more, with the
same delivery id); SIGTERM stops a dispatcher cleanly.
"""

import os
import re
import signal
import threading
import time
from collections import Counter
from datetime import UTC, datetime

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select
from werkzeug import Response

from tests.flows.conftest import start_dispatcher, stop
from ticketer.database import read_only_transactions
from ticketer.models import Contact, Ticket, User
from ticketer.models.flows import FlowStart
from ticketer.services import flows as flow_service
from ticketer.services import tickets as ticket_service


def close_many(db, admin, flow, n: int) -> list[str]:
    """n closed tickets (of n contacts) with a trigger on `flow`: n pending starts; returns delivery ids."""
    flow_service.create_trigger(flow_id=flow.id, by=admin)
    topic_id = ticket_service.topic_service.default_topic().id
    now = datetime.now(UTC)
    tag = os.urandom(3).hex()
    db.session.execute(
        Contact.__table__.insert(),
        [
            {
                "uuid": f"{tag}00-0000-4000-8000-{i:012d}",
                "name": f"P{i}",
                "fields": {},
                "created_on": now,
                "modified_on": now,
            }
            for i in range(n)
        ],
    )
    contact_ids = list(db.session.execute(select(Contact.id).where(Contact.uuid.like(f"{tag}%"))).scalars())
    db.session.execute(
        Ticket.__table__.insert(),
        [
            {
                "uuid": f"{tag}01-0000-4000-8000-{i:012d}",
                "contact_id": cid,
                "topic_id": topic_id,
                "status": "open",
                "body": "",
                "results": {},
                "opened_on": now,
                "last_activity_on": now,
            }
            for i, cid in enumerate(contact_ids)
        ],
    )
    ids = list(db.session.execute(select(Ticket.id).where(Ticket.uuid.like(f"{tag}%"))).scalars())
    ticket_service.close_tickets(ids, by=db.session.get(User, admin.id))
    delivery_ids = list(db.session.execute(select(FlowStart.delivery_id)).scalars())
    db.session.commit()
    assert len(delivery_ids) == n
    return delivery_ids


def count_by_status(db) -> dict[str, int]:
    """Read, then end the transaction: the test never holds a lock while the dispatchers write."""
    db.session.remove()
    with read_only_transactions():
        counts = dict(db.session.execute(select(FlowStart.status, func.count()).group_by(FlowStart.status)).all())
    db.session.remove()
    return counts


def wait_for_sent(db, target: int, stall_seconds: float = 120) -> None:
    """Until `target` starts are sent. It gives up only when the count stops moving for `stall_seconds`
    (a hang), never because a busy machine is slow: no rate and no deadline is asserted."""
    last, quiet_since = None, time.monotonic()
    while (sent := count_by_status(db).get("sent", 0)) != target:
        if sent != last:
            last, quiet_since = sent, time.monotonic()
        elif time.monotonic() - quiet_since > stall_seconds:
            raise AssertionError(f"{sent} of {target} starts sent, and none more for {stall_seconds} s")
        time.sleep(0.2)


@pytest.fixture
def threaded_engine():
    """An engine that answers concurrent requests (the two dispatchers send at the same time)."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


def test_two_dispatchers_send_1000_starts_none_twice(db, admin, threaded_engine, database_url):
    httpserver = threaded_engine
    flow = flow_service.create_flow(
        flow_service.FlowSettings(name="Survey", engine="webhook", webhook_url=httpserver.url_for("/hooks/ticketer")),
        by=admin,
    )
    delivery_ids = close_many(db, admin, flow, 1000)
    received: list[str] = []
    lock = threading.Lock()
    # Each dispatcher sends one start at a time (DISPATCH_CONCURRENCY=1), so two sends in flight at
    # once are one from each: the first send waits for the second, and both dispatchers take part
    # however late one starts.
    both_sending = threading.Barrier(2, timeout=240)

    def engine(request):
        with lock:
            received.append(request.headers["X-Ticketer-Delivery"])
            first_two = len(received) <= 2
        if first_two:
            both_sending.wait()
        return Response("ok")

    httpserver.expect_request("/hooks/ticketer", method="POST").respond_with_handler(engine)
    db.session.remove()
    # The engine's answer to the first send waits for the second dispatcher: no timeout before that.
    dispatchers = [
        start_dispatcher(database_url, DISPATCH_HTTP_TIMEOUT_SECONDS=300, DISPATCH_CONCURRENCY=1) for _ in range(2)
    ]
    try:
        wait_for_sent(db, 1000)
    finally:
        outputs = [stop(process) for process in dispatchers]
    assert [process.returncode for process in dispatchers] == [0, 0], outputs
    assert all("Scheduler stopped." in output for output in outputs), outputs
    # Both took part: each logged some of the sends ("dispatch: {'sent': N, ...}").
    sent_by = [sum(int(n) for n in re.findall(r"dispatch: \{'sent': (\d+)", output)) for output in outputs]
    assert sum(sent_by) == 1000 and min(sent_by) > 0, sent_by
    assert len(received) == 1000
    assert Counter(received).most_common(1)[0][1] == 1  # none twice
    assert set(received) == set(delivery_ids)
    assert count_by_status(db) == {"sent": 1000}


def test_two_dispatchers_and_an_engine_slower_than_the_reclaim_time_send_nothing_twice(
    db, admin, threaded_engine, database_url
):
    """Each answer takes longer than DISPATCH_RECLAIM_AFTER_SECONDS: a claim that its live holder
    did not renew would look abandoned, and the other dispatcher would send it again."""
    httpserver = threaded_engine
    flow = flow_service.create_flow(
        flow_service.FlowSettings(name="Survey", engine="webhook", webhook_url=httpserver.url_for("/hooks/slow")),
        by=admin,
    )
    delivery_ids = close_many(db, admin, flow, 24)
    received: list[str] = []
    lock = threading.Lock()

    def slow_engine(request):
        with lock:
            received.append(request.headers["X-Ticketer-Delivery"])
        time.sleep(4)  # longer than the reclaim time below
        return Response("ok", status=201)

    httpserver.expect_request("/hooks/slow", method="POST").respond_with_handler(slow_engine)
    db.session.remove()
    settings = {"DISPATCH_RECLAIM_AFTER_SECONDS": 3, "DISPATCH_HTTP_TIMEOUT_SECONDS": 15}
    dispatchers = [start_dispatcher(database_url, **settings), start_dispatcher(database_url, **settings)]
    try:
        wait_for_sent(db, 24)
    finally:
        outputs = [stop(process) for process in dispatchers]
    with lock:
        counts = Counter(received)
    assert set(counts) == set(delivery_ids)  # none lost
    assert [d for d, n in counts.items() if n > 1] == []  # none twice
    assert count_by_status(db) == {"sent": 24}
    assert [process.returncode for process in dispatchers] == [0, 0], outputs


def test_kill_9_mid_send_then_restart_loses_nothing(db, admin, webhook_flow, httpserver, database_url):
    delivery_ids = close_many(db, admin, webhook_flow, 30)
    received: list[str] = []
    mid_send = threading.Event()
    release = threading.Event()

    def engine(request):
        received.append(request.headers["X-Ticketer-Delivery"])
        if len(received) == 10:
            mid_send.set()
            release.wait(240)  # the dispatcher is killed while it waits for this answer
        return Response("ok")

    httpserver.expect_request("/hooks/ticketer", method="POST").respond_with_handler(engine)
    db.session.remove()
    # One send at a time, so that exactly the 10th is cut off.
    first = start_dispatcher(database_url, DISPATCH_RECLAIM_AFTER_SECONDS=1, DISPATCH_CONCURRENCY=1)
    try:
        assert mid_send.wait(240), "the dispatcher never reached the engine"  # a hang guard
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        release.set()
        stop(first)
    cut_off = received[9]
    before = count_by_status(db)
    assert before.get("sent", 0) == 9
    assert before.get("sending", 0) >= 1  # claimed, never recorded: the at-least-once window

    second = start_dispatcher(database_url, DISPATCH_RECLAIM_AFTER_SECONDS=1)
    try:
        wait_for_sent(db, 30)
    finally:
        output = stop(second)
    assert second.returncode == 0, output
    counts = Counter(received)
    assert set(counts) == set(delivery_ids)  # nothing lost
    assert counts[cut_off] == 2  # the cut-off send went once more, with the same delivery id
    assert all(n == 1 for delivery_id, n in counts.items() if delivery_id != cut_off)
    assert count_by_status(db) == {"sent": 30}
