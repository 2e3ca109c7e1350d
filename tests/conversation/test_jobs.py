"""The scheduler pulls every connection's messages: the job, its interval, and the real process."""

import os
import subprocess
import sys
import time
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select

from tests.factories import make_contact, make_ticket
from ticketer import jobs
from ticketer.config import Config
from ticketer.models import Message
from ticketer.scheduler import build_scheduler
from ticketer.services import connections

ROOT = Path(__file__).resolve().parents[2]


def test_the_pull_runs_every_rapidpro_sync_seconds_default_5(app, monkeypatch):
    monkeypatch.delenv("RAPIDPRO_SYNC_SECONDS", raising=False)
    assert Config().RAPIDPRO_SYNC_SECONDS == 5
    monkeypatch.setenv("RAPIDPRO_SYNC_SECONDS", "2.5")
    assert Config().RAPIDPRO_SYNC_SECONDS == 2.5
    app.config["RAPIDPRO_SYNC_SECONDS"] = 7
    try:
        job = build_scheduler(app, BackgroundScheduler).get_job("pull-messages")
    finally:
        app.config["RAPIDPRO_SYNC_SECONDS"] = 5
    assert job.func is jobs.pull_messages
    assert job.trigger.interval.total_seconds() == 7


def test_the_job_pulls_each_connection_and_skips_a_throttled_one(app, db, rapidpro):
    from tests.rapidpro_server import RapidProServer

    other = RapidProServer().start()
    try:
        connections.add_rapidpro(name="A", base_url=rapidpro.url, api_token=rapidpro.token)
        connections.add_rapidpro(name="B", base_url=other.url, api_token=other.token)
        first, second = rapidpro.add_contact("Ana"), other.add_contact("Beto")
        make_ticket(make_contact("Ana", uuid=first))
        make_contact("Beto", uuid=second)
        db.session.commit()
        rapidpro.receive(first, "hola desde A")
        other.receive(second, "hola desde B")
        other.throttle(times=1, retry_after=60)

        assert jobs.pull_messages() == {"stored": 1, "without_ticket": 0, "failed": 1, "statuses": 0}
        asked = len(other.requests)
        assert jobs.pull_messages() == {"stored": 0, "without_ticket": 0, "failed": 0, "statuses": 0}
        assert len(other.requests) == asked  # B is waiting out its Retry-After
        texts = db.session.execute(select(Message.text).where(Message.external_uuid.is_not(None))).scalars().all()
        assert texts == ["hola desde A"]
        assert other.failures == []
    finally:
        other.stop()


def test_the_scheduler_process_brings_a_message_into_the_ticket(db, database_url, rapidpro):
    connections.add_rapidpro(name="Soporte", base_url=rapidpro.url, api_token=rapidpro.token)
    contact_uuid = rapidpro.add_contact("María")
    ticket = make_ticket(make_contact("María", uuid=contact_uuid))
    db.session.commit()
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "scheduler"],
        cwd=ROOT,
        env=dict(
            os.environ,
            DATABASE_URL=database_url,
            SECRET_KEY="test-scheduler",
            RAPIDPRO_SYNC_SECONDS="0.2",
            ENGINE_ALLOWED_HOSTS="127.0.0.1",  # the test workspace is on loopback
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        rapidpro.receive(contact_uuid, "¿Me ayudan?")
        deadline = time.monotonic() + 60  # a bound on the wait, not a latency target
        found = None
        while found is None and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
            found = db.session.execute(select(Message.text).where(Message.ticket_id == ticket.id)).scalar()
            db.session.rollback()  # never hold SQLite's write lock while the scheduler works
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert found == "¿Me ayudan?", output
