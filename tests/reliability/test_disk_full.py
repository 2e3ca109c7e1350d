"""A full disk on SQLite: writes answer 503 `storage_full` with Retry-After (API JSON, a clear panel
page), reads still work, nothing half-written is kept, and the desk writes again by itself as soon
as space returns; the write-ahead log stays bounded, so it can't take all of a small volume.

The database lives on a 20 MB tmpfs the test mounts itself (root and mount rights needed)."""

import os
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from app import create_app
from tests.conftest import PASSWORD, on_postgres
from ticketer import database
from ticketer.config import TestConfig
from ticketer.extensions import db as _db
from ticketer.models import ContactURN, Ticket
from ticketer.services import api_tokens
from ticketer.services import users as user_service

pytestmark = pytest.mark.skipif(on_postgres(), reason="SQLite only: PostgreSQL's disk is the server's")

VOLUME = "20m"


@pytest.fixture
def small_volume(tmp_path):
    mount_point = tmp_path / "volume"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={VOLUME},mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"mounting a {VOLUME} tmpfs is not allowed here ({mounted.stderr.strip() or 'not root'})")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(directory) -> str:
    """Take every free byte of the volume with a file; returns its path (delete it to give the space back)."""
    path = os.path.join(directory, "filler")
    with open(path, "wb", buffering=0) as filler:
        for size in (1024 * 1024, 4096, 1):
            try:
                while True:
                    filler.write(b"\0" * size)
            except OSError:
                pass  # ENOSPC: go on with smaller pieces
    return path


def _open(client, key, n):
    payload = {"contact": {"urn": f"tel:+59399{n:07d}", "name": f"Contact {n}"}, "topic": "Billing", "body": "Help"}
    return client.post("/api/v1/tickets", json=payload, headers={"Authorization": f"Token {key}"})


def test_a_full_disk_answers_503_storage_full_and_the_desk_recovers_when_space_returns(small_volume):
    path = small_volume / "ticketer.db"
    app = create_app(TestConfig(f"sqlite:///{path}"))
    client = app.test_client()
    try:
        with app.app_context():
            _db.create_all()
            admin = user_service.create_user("admin@example.com", role="admin", password=PASSWORD, name="Admin")
            _, key = api_tokens.create_token("RapidPro", by=admin)
            cookie_id = user_service.start_sign_in(admin).get_id()
            _db.session.commit()
        with client.session_transaction() as session:
            session["_user_id"] = cookie_id
            session["_fresh"] = True

        # Enough tickets to go through several checkpoints of the write-ahead log: it stays bounded.
        acknowledged = []
        for n in range(300):
            answer = _open(client, key, n)
            assert answer.status_code == 201, answer.json
            acknowledged.append(answer.json["uuid"])
        wal = f"{path}-wal"
        assert os.path.getsize(wal) <= database.JOURNAL_SIZE_LIMIT_BYTES + 1024 * 1024

        with app.app_context():
            database.give_back_log_space(_db.engine)  # the log emptied: the next write needs room
        filler = fill(small_volume)

        refused = _open(client, key, 1000)
        assert refused.status_code == 503
        assert refused.json["error"]["code"] == "storage_full"
        assert int(refused.headers["Retry-After"]) > 0
        with app.app_context():
            _db.engine.dispose()  # as after a restart: new connections can't even make their -shm file
        assert _open(client, key, 1001).json["error"]["code"] == "storage_full"

        page = client.post(f"/admin/tickets/{acknowledged[0]}/note", data={"note": "Called back"})
        assert page.status_code == 503 and int(page.headers["Retry-After"]) > 0
        assert b"storage is full" in page.data

        folder = client.get("/admin/tickets/?folder=all")  # reads still work
        assert folder.status_code == 200 and acknowledged[-1].encode() in folder.data

        os.unlink(filler)
        for n in range(2000, 2020):  # by itself: no restart, no command
            answer = _open(client, key, n)
            assert answer.status_code == 201, answer.json
            acknowledged.append(answer.json["uuid"])
        assert client.post(f"/admin/tickets/{acknowledged[0]}/note", data={"note": "Called back"}).status_code == 302

        with app.app_context():
            stored = set(_db.session.execute(select(Ticket.uuid)).scalars())
            assert stored == set(acknowledged)  # every acknowledged ticket, and nothing half-written
            assert _db.session.execute(select(func.count()).select_from(Ticket)).scalar() == len(acknowledged)
            refused_urn = select(ContactURN.id).where(ContactURN.path == "+593990001000")
            assert _db.session.execute(refused_urn).first() is None  # the refused open's contact too
    finally:
        with app.app_context():
            _db.session.remove()
            _db.engine.dispose()


def test_the_scheduler_backs_off_while_the_disk_is_full(small_volume):
    """A job that fails on a full disk postpones every job, 5 s then doubling; other failures don't;
    once the failing job has run again without error, the backoff starts afresh."""
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
    from apscheduler.schedulers.background import BackgroundScheduler
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    from ticketer import scheduler as scheduler_module

    app = create_app(TestConfig(f"sqlite:///{small_volume / 'ticketer.db'}"))
    scheduler = scheduler_module.build_scheduler(app, BackgroundScheduler)
    scheduler.start(paused=True)  # the jobs never run by themselves here
    try:
        with app.app_context():
            _db.create_all()
            database.give_back_log_space(_db.engine)
            filler = fill(small_volume)
            with pytest.raises(OperationalError) as full:
                _db.session.execute(
                    text("INSERT INTO topics (uuid, name, is_default, created_on) VALUES ('x', 'x', 0, '2026-01-01')")
                )
                _db.session.commit()
            _db.session.rollback()
            with pytest.raises(OperationalError) as other:
                _db.session.execute(text("SELECT * FROM no_such_table"))
            _db.session.rollback()
        os.unlink(filler)

        backoff = scheduler_module.StorageFullBackoff(scheduler, app)

        def run(job_id, exception=None):
            code = EVENT_JOB_ERROR if exception is not None else EVENT_JOB_EXECUTED
            backoff(JobExecutionEvent(code, job_id, "default", datetime.now(UTC), exception=exception))

        def postponed_by(job_id, exception=None) -> timedelta:
            """How far after the moment the job ended the earliest job now runs (no wall-clock window)."""
            ended = datetime.now(UTC)
            run(job_id, exception)
            return min(job.next_run_time for job in scheduler.get_jobs()) - ended

        assert postponed_by("dispatch-due", other.value) < timedelta(seconds=2) and backoff.delay == 0
        assert postponed_by("dispatch-due", full.value) >= timedelta(seconds=5) and backoff.delay == 5
        assert postponed_by("dispatch-due", full.value) >= timedelta(seconds=10) and backoff.delay == 10
        run("hand-out-backlog")  # a job that needed no write: the dispatcher still waits for room
        assert backoff.delay == 10
        run("dispatch-due")
        assert backoff.delay == 0
        run("dispatch-due", full.value)
        assert backoff.delay == 5
    finally:
        scheduler.shutdown(wait=False)
        with app.app_context():
            _db.session.remove()
            _db.engine.dispose()
