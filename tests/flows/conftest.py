"""Fixtures of the follow-up flow tests: an admin, flows on each engine, and the engine itself
(pytest-httpserver's `httpserver`: a real HTTP server on 127.0.0.1)."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ticketer.extensions import db as _db
from ticketer.models import User
from ticketer.services import dispatch
from ticketer.services import flows as flow_service

ROOT = Path(__file__).resolve().parents[2]
RAPIDPRO_TOKEN = "0123456789abcdef0123456789abcdef01234567"
RAPIDPRO_FLOW_UUID = "9b5f1c1e-7d0a-4c55-8f5e-2f7f2a3f6b10"
WEBHOOK_SECRET = "s3cret-s3cret-s3cret"

# Fast settings: tests drive the dispatcher directly, one pass at a time.
SETTINGS = dispatch.Settings(
    batch_size=50, max_attempts=4, reclaim_after_seconds=60, http_timeout_seconds=3, allowed_hosts="127.0.0.1"
)


@pytest.fixture
def admin(db, make_user):
    return db.session.get(User, make_user("admin"))


@pytest.fixture
def rapidpro_flow(db, admin, httpserver):
    flow = flow_service.create_flow(
        flow_service.FlowSettings(
            name="Satisfaction survey",
            engine="rapidpro",
            uuid=RAPIDPRO_FLOW_UUID,
            base_url=httpserver.url_for("/").rstrip("/"),
            api_token=RAPIDPRO_TOKEN,
        ),
        by=admin,
    )
    _db.session.commit()
    return flow


@pytest.fixture
def webhook_flow(db, admin, httpserver):
    flow = flow_service.create_flow(
        flow_service.FlowSettings(
            name="Webhook survey",
            engine="webhook",
            webhook_url=httpserver.url_for("/hooks/ticketer"),
            webhook_secret=WEBHOOK_SECRET,
        ),
        by=admin,
    )
    _db.session.commit()
    return flow


@pytest.fixture
def builtin_flow(db, admin):
    flow = flow_service.create_flow(
        flow_service.FlowSettings(
            name="Thanks",
            engine="builtin",
            templates="Thanks @contact.name, your @ticket.topic ticket is closed.\nReply 1 if we solved it.",
        ),
        by=admin,
    )
    _db.session.commit()
    return flow


def run_dispatcher(settings: dispatch.Settings = SETTINGS) -> dispatch.Report:
    return dispatch.dispatch_due(settings)


@pytest.fixture(scope="session")
def httpserver_listen_address():
    return ("127.0.0.1", 0)


def start_dispatcher(database_url: str, **settings) -> subprocess.Popen:
    """Run `flask --app app scheduler` on the test database, with fast settings (overridable)."""
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        SECRET_KEY="test-dispatcher-secret",
        PYTHONUNBUFFERED="1",
        ENGINE_ALLOWED_HOSTS="127.0.0.1, localhost",
    )
    fast = {"DISPATCH_INTERVAL_SECONDS": 0.2, "DISPATCH_BATCH_SIZE": 20, "DISPATCH_HTTP_TIMEOUT_SECONDS": 10}
    env.update({key: str(value) for key, value in {**fast, **settings}.items()})
    return subprocess.Popen(
        [sys.executable, "-X", "faulthandler", "-m", "flask", "--app", "app", "scheduler"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop(process: subprocess.Popen) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        output, _ = process.communicate(timeout=120)  # a hang guard: a clean stop takes a second or two
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack: where it hung
        output, _ = process.communicate()
        output = "[did not stop on SIGTERM within 120 s]\n" + output[-20000:]
    return output


class TricklingEngine:
    """A real HTTP server on 127.0.0.1 that answers `200 OK` with its headers at once, then its body
    one byte every `interval` seconds (`length` bytes in all): requests' timeout is per read, so
    only a deadline on the whole exchange ends such a send. `trickle = False` answers at once.

    For every connection it records the delivery id it carried and, when the connection ended,
    what `on_end()` returned (the test's view of the other engine at that moment).
    """

    def __init__(self, *, length: int = 12, interval: float = 1.0, on_end=lambda: None):
        import socketserver
        import threading

        self.length, self.interval, self.on_end = length, interval, on_end
        self.trickle = True
        self.deliveries: list[str] = []
        self.ends: list[object] = []
        self.lock = threading.Lock()
        engine = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                try:
                    engine._serve(self.rfile, self.wfile)
                finally:
                    with engine.lock:
                        engine.ends.append(engine.on_end())

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def _serve(self, rfile, wfile) -> None:
        import time

        headers = {}
        rfile.readline()  # request line
        while (line := rfile.readline().decode("latin-1").strip()) != "":
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        rfile.read(int(headers.get("content-length") or 0))
        with self.lock:
            self.deliveries.append(headers.get("x-ticketer-delivery", ""))
        wfile.write(f"HTTP/1.1 200 OK\r\nContent-Length: {self.length}\r\nConnection: close\r\n\r\n".encode())
        wfile.flush()
        for _ in range(self.length):
            if self.trickle:
                time.sleep(self.interval)
            try:
                wfile.write(b"x")
                wfile.flush()
            except OSError:
                return  # the client hung up: its deadline passed

    def wait_for_ends(self, n: int, timeout: float = 30) -> list:
        """The first n connection ends (waits until the server has seen them hang up)."""
        import time

        deadline = time.monotonic() + timeout
        while len(self.ends) < n and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.ends[:n]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def trickling_engine():
    engines = []

    def make(**kwargs) -> TricklingEngine:
        engines.append(TricklingEngine(**kwargs))
        return engines[-1]

    yield make
    for engine in engines:
        engine.close()
