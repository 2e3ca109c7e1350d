"""Sign-in limits per account and per address, and the session cookie's flags."""

from datetime import timedelta

import pytest

from app import create_app
from tests.conftest import PASSWORD
from ticketer import clock
from ticketer.config import Config
from ticketer.extensions import db as _db

TRY_LATER = "Too many failed sign-in attempts. Try again in 15 minutes."
NO_MATCH = "That email and password don&#39;t match an active account."


def sign_in(client, email, password=PASSWORD, address="10.0.0.1"):
    return client.post(
        "/login", data={"email": email, "password": password}, environ_overrides={"REMOTE_ADDR": address}
    )


def test_ten_failures_lock_the_account_then_try_later_even_with_the_right_password(app, client, make_user):
    make_user("agent", email="ana@example.com")
    start = clock.utcnow()
    with clock.frozen(start):
        for attempt in range(10):
            response = sign_in(client, "ana@example.com", "wrong-password", address=f"10.0.0.{attempt}")
            assert response.status_code == 400 and NO_MATCH in response.get_data(as_text=True)
        locked = sign_in(client, "ana@example.com", PASSWORD, address="10.9.9.9")
    assert locked.status_code == 429 and TRY_LATER in locked.get_data(as_text=True)
    assert client.get("/admin/tickets/").status_code == 302  # not signed in
    with clock.frozen(start + timedelta(minutes=14)):
        assert sign_in(client, "ana@example.com", PASSWORD).status_code == 429
    with clock.frozen(start + timedelta(minutes=15, seconds=1)):
        assert sign_in(client, "ana@example.com", PASSWORD).status_code == 302


def test_an_unknown_email_gets_the_same_answers(app, client, make_user, monkeypatch):
    monkeypatch.setitem(app.config, "SIGNIN_MAX_FAILURES", 3)
    for _ in range(3):
        response = sign_in(client, "nobody@example.com", "wrong-password")
        assert response.status_code == 400 and NO_MATCH in response.get_data(as_text=True)
    locked = sign_in(client, "nobody@example.com", "wrong-password")
    assert locked.status_code == 429 and TRY_LATER in locked.get_data(as_text=True)


def test_the_limit_per_address_covers_many_emails(app, client, make_user, monkeypatch):
    monkeypatch.setitem(app.config, "SIGNIN_MAX_FAILURES_PER_ADDRESS", 5)
    make_user("agent", email="ana@example.com")
    for n in range(5):
        assert sign_in(client, f"guess{n}@example.com", "wrong-password", address="10.1.1.1").status_code == 400
    assert sign_in(client, "ana@example.com", PASSWORD, address="10.1.1.1").status_code == 429
    # Another address is not affected.
    assert sign_in(client, "ana@example.com", PASSWORD, address="10.2.2.2").status_code == 302


def test_a_success_clears_the_account_count(app, client, make_user, monkeypatch):
    monkeypatch.setitem(app.config, "SIGNIN_MAX_FAILURES", 3)
    make_user("agent", email="ana@example.com")
    for _ in range(2):
        sign_in(client, "ana@example.com", "wrong-password", address="10.3.3.3")
    assert sign_in(client, "ana@example.com", PASSWORD, address="10.3.3.4").status_code == 302
    client.post("/logout")
    for _ in range(2):  # without the clearing, these would make 4 failures: past the limit of 3
        sign_in(client, "ana@example.com", "wrong-password", address="10.3.3.5")
    assert sign_in(client, "ana@example.com", PASSWORD, address="10.3.3.6").status_code == 302


def test_failures_are_counted_in_the_database_for_every_worker(app, make_user, monkeypatch):
    """Two app instances (as two gunicorn workers) share the count."""
    make_user("agent", email="ana@example.com")
    from ticketer.config import TestConfig

    other_worker = create_app(TestConfig(app.config["SQLALCHEMY_DATABASE_URI"], SIGNIN_MAX_FAILURES=4))
    monkeypatch.setitem(app.config, "SIGNIN_MAX_FAILURES", 4)
    try:
        first, second = app.test_client(), other_worker.test_client()
        for n in range(4):
            assert sign_in(first if n % 2 else second, "ana@example.com", "nope-nope-nope").status_code == 400
        assert sign_in(first, "ana@example.com").status_code == 429
        assert sign_in(second, "ana@example.com").status_code == 429
    finally:
        with other_worker.app_context():
            _db.session.remove()
            _db.engine.dispose()


def test_session_cookie_is_httponly_and_samesite_lax(client, make_user):
    make_user("agent", email="ana@example.com")
    response = client.post("/login", data={"email": "ana@example.com", "password": PASSWORD, "remember": "y"})
    cookies = response.headers.getlist("Set-Cookie")
    session_cookie = next(c for c in cookies if c.startswith("session="))
    remember_cookie = next(c for c in cookies if c.startswith("remember_token="))
    for cookie in (session_cookie, remember_cookie):
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert "Secure" not in cookie  # PUBLIC_URL is http in tests


@pytest.fixture
def https_app(database_url, monkeypatch):
    monkeypatch.setenv("PUBLIC_URL", "https://desk.example.com")
    monkeypatch.setenv("SECRET_KEY", "test-secret-key")
    config = Config()
    config.SQLALCHEMY_DATABASE_URI = database_url
    config.TESTING = True
    config.WTF_CSRF_ENABLED = False
    https_app = create_app(config)
    yield https_app
    with https_app.app_context():
        _db.session.remove()
        _db.engine.dispose()


def test_session_cookie_is_secure_when_public_url_is_https(app, https_app, make_user):
    make_user("agent", email="ana@example.com")
    client = https_app.test_client()
    response = client.post(
        "/login",
        data={"email": "ana@example.com", "password": PASSWORD, "remember": "y"},
        base_url="https://desk.example.com",
    )
    assert response.status_code == 302
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith(("session=", "remember_token="))]
    assert len(cookies) == 2
    assert all("Secure" in c and "HttpOnly" in c and "SameSite=Lax" in c for c in cookies)
