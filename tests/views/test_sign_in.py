"""Signing in and out with Flask-Login."""

import pytest

from tests.conftest import PASSWORD


def sign_in(client, email, password=PASSWORD, next_url=None):
    url = "/login" + (f"?next={next_url}" if next_url else "")
    return client.post(url, data={"email": email, "password": password})


def test_sign_in_lands_on_tickets_and_sign_out_ends_the_session(client, make_user):
    make_user("agent", email="ana@example.com")
    response = sign_in(client, "ANA@example.com")
    assert response.status_code == 302 and response.location == "/admin/"
    assert client.get("/admin/").location == "/admin/tickets/"  # agents land on their tickets
    assert client.get("/admin/tickets/").status_code == 200
    assert client.post("/logout").status_code == 302
    assert client.get("/admin/tickets/").status_code == 302


def test_wrong_password_or_unknown_email_get_the_same_answer(client, make_user):
    make_user("agent", email="ana@example.com")
    wrong = sign_in(client, "ana@example.com", "not-the-password")
    unknown = sign_in(client, "nobody@example.com", "not-the-password")
    assert wrong.status_code == unknown.status_code == 400
    message = b"That email and password don&#39;t match an active account."
    assert message in wrong.data and message in unknown.data
    assert client.get("/admin/tickets/").status_code == 302


def test_passwords_are_stored_hashed(db, make_user):
    from ticketer.models import User

    user = db.session.get(User, make_user("agent"))
    assert PASSWORD not in (user.password_hash or "")
    assert user.password_hash.startswith(("scrypt:", "pbkdf2:"))


def test_deactivated_user_cannot_sign_in(db, client, make_user):
    from ticketer.models import User

    user_id = make_user("agent", email="gone@example.com")
    db.session.get(User, user_id).active = False
    db.session.commit()
    assert sign_in(client, "gone@example.com").status_code == 400


@pytest.mark.parametrize(
    ("next_url", "expected"),
    [
        ("/admin/topics/", "/admin/topics/"),
        ("https://evil.example.com/", "/admin/"),
        ("//evil.example.com/", "/admin/"),
        ("/\\evil.example.com", "/admin/"),
        ("javascript:alert(1)", "/admin/"),
    ],
)
def test_next_must_be_a_local_path(client, make_user, next_url, expected):
    make_user("admin", email="boss@example.com")
    response = sign_in(client, "boss@example.com", next_url=next_url)
    assert response.status_code == 302
    assert response.location == expected


def test_sign_in_page_renders_and_needs_csrf(app, client, monkeypatch, make_user):
    make_user("agent", email="ana@example.com")
    page = client.get("/login")
    assert page.status_code == 200 and b'name="password"' in page.data
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    assert sign_in(client, "ana@example.com").status_code == 400
    assert client.get("/admin/tickets/").status_code == 302
