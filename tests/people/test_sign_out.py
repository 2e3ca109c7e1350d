"""Signing out ends that sign-in on the server: its cookies, copied before, stop working after.

Other sign-ins of the same person (another device) go on.
"""

import pytest
from werkzeug.security import check_password_hash

from tests.conftest import PASSWORD
from ticketer.extensions import db as _db
from ticketer.models import User
from ticketer.services import users as user_service

COOKIES = ("session", "remember_token")


def sign_in(client, email, *, remember=True):
    data = {"email": email, "password": PASSWORD}
    if remember:
        data["remember"] = "y"
    response = client.post("/login", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)


def saved_cookies(client) -> dict[str, str]:
    cookies = {name: client.get_cookie(name) for name in COOKIES}
    assert all(cookies.values()), cookies
    return {name: cookie.value for name, cookie in cookies.items()}


def client_with(app, cookies: dict[str, str]):
    other = app.test_client()
    for name, value in cookies.items():
        other.set_cookie(name, value)
    return other


def signed_in(client) -> bool:
    response = client.get("/admin/tickets/")
    assert response.status_code in (200, 302)
    return response.status_code == 200


@pytest.mark.parametrize("kept", [COOKIES, ("session",), ("remember_token",)])
def test_cookies_copied_before_sign_out_are_refused_after_it(app, make_user, kept):
    make_user("agent", email="ana@example.com")
    device = app.test_client()
    sign_in(device, "ana@example.com")
    copied = {name: value for name, value in saved_cookies(device).items() if name in kept}
    assert signed_in(client_with(app, copied))  # the copy works while the sign-in lasts

    assert device.post("/logout").status_code == 302

    assert not signed_in(device)
    assert not signed_in(client_with(app, copied))


def test_signing_out_on_one_device_keeps_the_others_signed_in(app, make_user):
    make_user("agent", email="ana@example.com")
    laptop, phone = app.test_client(), app.test_client()
    sign_in(laptop, "ana@example.com")
    sign_in(phone, "ana@example.com", remember=False)
    phone_cookies = {"session": phone.get_cookie("session").value}

    laptop.post("/logout")

    assert signed_in(phone) and signed_in(client_with(app, phone_cookies))
    phone.post("/logout")
    assert not signed_in(client_with(app, phone_cookies))


def test_a_password_change_ends_the_other_sign_ins_and_keeps_this_one(app, make_user):
    make_user("agent", email="ana@example.com")
    laptop, phone = app.test_client(), app.test_client()
    sign_in(laptop, "ana@example.com")
    sign_in(phone, "ana@example.com")
    phone_cookies = saved_cookies(phone)
    new_password = "a-brand-new-password"
    response = laptop.post(
        "/account/password",
        data={"current_password": PASSWORD, "password": new_password, "confirm": new_password},
    )
    assert response.status_code == 302
    assert signed_in(laptop)
    assert not signed_in(phone) and not signed_in(client_with(app, phone_cookies))
    old_laptop_cookies = saved_cookies(laptop)
    laptop.post("/logout")
    assert not signed_in(client_with(app, old_laptop_cookies))


# --- one password-hash check per attempt, whatever the account (issue 14, item 4) ------------------


@pytest.fixture
def hash_checks(monkeypatch):
    """Counts the calls of werkzeug's check_password_hash made by sign-in (they still run for real)."""
    calls = []

    def counting(pwhash, password):
        calls.append(pwhash)
        return check_password_hash(pwhash, password)

    monkeypatch.setattr(user_service, "check_password_hash", counting)
    return calls


@pytest.mark.parametrize("account", ["unknown", "deactivated", "active", "no_password"])
@pytest.mark.parametrize("password", [PASSWORD, "wrong-password"])
def test_every_sign_in_attempt_costs_exactly_one_password_hash_check(app, make_user, hash_checks, account, password):
    user_id = make_user("agent", email="ana@example.com")
    with app.app_context():
        user = _db.session.get(User, user_id)
        if account == "deactivated":
            user.active = False
        if account == "no_password":
            user.password_hash = None
        _db.session.commit()
    email = "nobody@example.com" if account == "unknown" else "ana@example.com"
    with app.test_request_context():
        signed = user_service.authenticate(email, password, address="10.0.0.1")
        _db.session.rollback()
    assert len(hash_checks) == 1
    assert (signed is not None) == (account == "active" and password == PASSWORD)


def test_a_password_change_keeps_this_browsers_keep_me_signed_in(app, make_user):
    make_user("agent", email="ana@example.com")
    laptop = app.test_client()
    sign_in(laptop, "ana@example.com")
    new_password = "a-brand-new-password"
    laptop.post(
        "/account/password",
        data={"current_password": PASSWORD, "password": new_password, "confirm": new_password},
    )
    # The browser restarts: only the remember cookie is left, and it still signs this sign-in in.
    assert signed_in(client_with(app, {"remember_token": laptop.get_cookie("remember_token").value}))
