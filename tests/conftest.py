"""Shared fixtures: app, client, runner, db, login_as, make_user, count_queries, and a live server
with real Chromium for page tests. Set TEST_DATABASE_URL to a PostgreSQL server URL to run the
suite on PostgreSQL (each run gets its own throw-away database)."""

import os
import threading
import uuid
from contextlib import contextmanager

import pytest
from flask import has_app_context
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url
from werkzeug.serving import make_server

from app import create_app
from ticketer.config import TestConfig, database_url_from_env
from ticketer.extensions import db as _db
from ticketer.models import User
from ticketer.services import users as user_service

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct-horse-battery"


def on_postgres() -> bool:
    return os.environ.get("TEST_DATABASE_URL", "").startswith("postgres")


@contextmanager
def app_context(app):
    """The test's app context when it has one (one session, no self-blocking), else a new one."""
    if has_app_context():
        yield
    else:
        with app.app_context():
            yield


@contextmanager
def throwaway_database(sqlite_path, prefix: str = "ticketer_test"):
    """A database of its own for the duration: the SQLite file at `sqlite_path`, or, when
    TEST_DATABASE_URL names a PostgreSQL server, a new database there, dropped afterwards."""
    server = os.environ.get("TEST_DATABASE_URL", "")
    if not server.startswith("postgres"):
        yield f"sqlite:///{sqlite_path}"
        return
    server_url = make_url(database_url_from_env(server))
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    with throwaway_database(tmp_path_factory.mktemp("db") / "test.db") as url:
        yield url


@pytest.fixture(scope="session")
def app(database_url):
    app = create_app(TestConfig(database_url))
    with app.app_context():
        _db.create_all()
    yield app
    with app.app_context():
        _db.session.remove()
        _db.engine.dispose()


def _empty_all_tables(app) -> None:
    with app.app_context():
        _db.session.remove()
        tables = _db.metadata.sorted_tables
        # DELETE, children first: on tables this small it is much faster than TRUNCATE on PostgreSQL.
        with _db.engine.begin() as connection:
            for table in reversed(tables):
                connection.execute(table.delete())


@pytest.fixture(autouse=True)
def _clean_database(request):
    """Every test starts from empty tables (when it used the database at all)."""
    yield
    if "app" in request.fixturenames:
        _empty_all_tables(request.getfixturevalue("app"))


@pytest.fixture
def db(app):
    """The database, inside an app context for the test."""
    with app.app_context():
        yield _db
        _db.session.remove()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def make_user(app):
    """make_user(role, email=None, name=None, password=PASSWORD) -> user id (committed)."""
    counter = {"n": 0}

    def make(role: str, email: str | None = None, name: str | None = None, password: str = PASSWORD) -> int:
        counter["n"] += 1
        email = email or f"{role}{counter['n']}-{uuid.uuid4().hex[:6]}@example.com"
        with app_context(app):
            user = user_service.create_user(
                email, role=role, password=password, name=name or f"{role.title()} {counter['n']}"
            )
            _db.session.commit()
            return user.id

    return make


@pytest.fixture
def login_as(app, client, make_user):
    """login_as(role) signs the test client in as a new user of that role; returns the user id."""

    def login(role: str, **kwargs) -> int:
        user_id = make_user(role, **kwargs)
        with app_context(app):
            cookie_id = user_service.start_sign_in(_db.session.get(User, user_id)).get_id()
            _db.session.commit()
        with client.session_transaction() as session:
            session["_user_id"] = cookie_id
            session["_fresh"] = True
        return user_id

    return login


@pytest.fixture
def count_queries(app):
    """with count_queries() as queries: ...; len(queries) is the number of SQL statements run."""

    @contextmanager
    def counting():
        statements: list[str] = []

        def record(conn, cursor, statement, parameters, context, executemany):
            if not statement.lstrip().upper().startswith(("BEGIN", "SAVEPOINT", "RELEASE", "PRAGMA")):
                statements.append(statement)

        with app.app_context():
            engine = _db.engine
        event.listen(engine, "before_cursor_execute", record)
        try:
            yield statements
        finally:
            event.remove(engine, "before_cursor_execute", record)

    return counting


# --- real Chromium against a live server -------------------------------------------------------


class LiveServer:
    def __init__(self, app):
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "LiveServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="session")
def live_app(database_url):
    """A second app on the same database, with CSRF on, as a real deployment has it."""
    app = create_app(TestConfig(database_url, WTF_CSRF_ENABLED=True))
    yield app
    with app.app_context():
        _db.session.remove()
        _db.engine.dispose()


@pytest.fixture(scope="session")
def live_server(live_app):
    server = LiveServer(live_app).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package.")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, app):
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def sign_in(page, live_server, email: str, password: str = PASSWORD) -> None:
    """Sign in through the real sign-in form."""
    page.goto(f"{live_server.url}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)


# --- a real SMTP server (aiosmtpd) on 127.0.0.1 --------------------------------------------------


class SMTPServer:
    """Mail received by a real SMTP server: `.messages` (parsed), `.links()`, `.use_for(app)`."""

    def __init__(self, port: int):
        self.host = "127.0.0.1"
        self.port = port
        self.messages: list = []
        self._apps: list = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler hook
        from email import message_from_bytes
        from email.policy import default

        message = message_from_bytes(envelope.original_content or envelope.content, policy=default)
        self.messages.append(message)
        return "250 Message accepted for delivery"

    def use_for(self, app) -> None:
        """Send `app`'s mail here for this test (the `app` fixture is set up already; e.g. live_app)."""
        self._apps.append((app, {k: app.config.get(k) for k in ("MAIL_SERVER", "MAIL_PORT")}))
        app.config.update(MAIL_SERVER=self.host, MAIL_PORT=self.port)

    def restore(self) -> None:
        for app, previous in reversed(self._apps):
            app.config.update(previous)
        self._apps.clear()

    def wait_for(self, count: int = 1, timeout: float = 120.0) -> list:  # a hang guard, not a promise
        import time

        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.messages) >= count, f"expected {count} mail(s), got {len(self.messages)}"
        return self.messages

    @staticmethod
    def links(message) -> list[str]:
        import re

        return re.findall(r"https?://\S+", message.get_body(("plain",)).get_content())


@pytest.fixture
def smtp_server(app):
    """A real SMTP server on a free local port; `app` sends its mail there during the test."""
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = SMTPServer(port)
    controller = Controller(server, hostname="127.0.0.1", port=port)
    controller.start()
    server.use_for(app)
    try:
        yield server
    finally:
        server.restore()
        controller.stop()
