"""Authentication, CSRF for session requests, and the JSON error for every kind of bad input."""

import json

import pytest
from sqlalchemy import func, select

from tests.api.conftest import ApiClient, open_ticket
from ticketer.extensions import db as _db
from ticketer.models import Contact, Ticket, User
from ticketer.models.api import ApiToken
from ticketer.services import api_tokens
from ticketer.services import users as user_service


def _error(response, status, code):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    assert set(response.json) == {"error"}
    assert set(response.json["error"]) == {"code", "message", "fields"}
    assert response.json["error"]["code"] == code
    return response.json["error"]


@pytest.mark.parametrize(
    "header",
    [None, "Token", "Token ", "Basic dXNlcjpwYXNz", "Token tkt_not-a-real-key", "Token " + "x" * 500],
)
def test_401_without_a_valid_token(client, header):
    headers = {"Authorization": header} if header is not None else {}
    response = client.get("/api/v1/tickets", headers=headers)
    _error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Token")
    _error(client.post("/api/v1/tickets", headers=headers, json={}), 401, "unauthorized")


def test_revoked_tokens_and_tokens_of_deactivated_owners_stop_working(app, client, make_token, db):
    key, owner_id = make_token()
    api = ApiClient(client, key)
    assert api.get("/api/v1/topics").status_code == 200
    token_id = db.session.execute(select(ApiToken.id)).scalar_one()
    owner = db.session.get(User, owner_id)
    assert api_tokens.revoke_token(token_id, by=owner) is True
    assert api_tokens.revoke_token(token_id, by=owner) is False
    db.session.commit()
    _error(api.get("/api/v1/topics"), 401, "unauthorized")

    key, owner_id = make_token()
    db.session.get(User, owner_id).active = False
    db.session.commit()
    assert "deactivated" in _error(ApiClient(client, key).get("/api/v1/topics"), 401, "unauthorized")["message"]


def test_bearer_scheme_is_accepted_and_last_use_is_recorded(client, make_token, db):
    key, _ = make_token()
    assert db.session.execute(select(ApiToken.last_used_on)).scalar_one() is None
    db.session.commit()
    assert client.get("/api/v1/users", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    db.session.expire_all()
    assert db.session.execute(select(ApiToken.last_used_on)).scalar_one() is not None


def test_session_requests_work_and_their_writes_need_the_csrf_token(live_app, make_user):
    # live_app has CSRF on, as in production.
    client = live_app.test_client()
    with live_app.app_context():
        user_id = make_user("agent")
        cookie_id = user_service.start_sign_in(_db.session.get(User, user_id)).get_id()
        _db.session.commit()
        _db.session.remove()
    with client.session_transaction() as session:
        session["_user_id"] = cookie_id
        session["_fresh"] = True
    assert client.get("/api/v1/topics").status_code == 200
    body = {"contact": {"urn": "tel:+593955500001"}, "body": "from the panel"}
    _error(client.post("/api/v1/tickets", json=body), 400, "csrf_failed")
    # a token for the page comes from any panel page's csrf_token(); fetch one as a script would
    with client.session_transaction() as session:
        session.pop("csrf_token", None)
    with live_app.test_request_context():
        from flask import session as flask_session
        from flask_wtf.csrf import generate_csrf

        with client.session_transaction() as stored:
            flask_session.update(stored)
            token = generate_csrf()
            stored.update(flask_session)
    created = client.post("/api/v1/tickets", json=body, headers={"X-CSRFToken": token})
    assert created.status_code == 201, created.json
    assert created.json["opened_by"]["email"].startswith("agent")  # a person, not a flow

    # a token needs no CSRF token, even on an app with CSRF on
    with live_app.app_context():
        admin = _db.session.get(User, make_user("admin"))
        _, key = api_tokens.create_token("bot", by=admin)
        _db.session.commit()
        _db.session.remove()
    fresh = live_app.test_client()
    response = fresh.post(
        "/api/v1/tickets", json={"contact": {"urn": "tel:+593955500002"}}, headers={"Authorization": f"Token {key}"}
    )
    assert response.status_code == 201


def test_400_for_malformed_json_and_wrong_content_type(api):
    for raw in [b"{", b'{"contact": }', b"[1, 2", b"\xff\xfe{}", b'{"a": NaN}', b'{"a": Infinity}', b"-Infinity"]:
        _error(api.post("/api/v1/tickets", data=raw, content_type="application/json"), 400, "malformed_json")
    _error(
        api.post("/api/v1/tickets", data="contact=x", content_type="application/x-www-form-urlencoded"), 400, "not_json"
    )
    _error(api.post("/api/v1/tickets", data='{"contact": {}}', content_type="text/plain"), 400, "not_json")
    nested = "[" * 5000 + "]" * 5000
    _error(api.post("/api/v1/tickets", data=nested, content_type="application/json"), 400, "malformed_json")
    deep = '{"contact": {"urn": "tel:+593911"}, "results": {"a": ' + "[" * 40 + "1" + "]" * 40 + "}}"
    _error(api.post("/api/v1/tickets", data=deep, content_type="application/json"), 400, "malformed_json")


def test_huge_numbers_are_refused_without_a_500(api):
    huge_int = '{"contact": {"urn": "tel:+593911"}, "results": {"n": ' + "9" * 5000 + "}}"
    _error(api.post("/api/v1/tickets", data=huge_int, content_type="application/json"), 400, "malformed_json")
    huge_float = '{"contact": {"urn": "tel:+593911"}, "results": {"n": 1e999}}'
    _error(api.post("/api/v1/tickets", data=huge_float, content_type="application/json"), 400, "malformed_json")
    big = api.post("/api/v1/tickets", json={"contact": {"urn": "tel:+593911"}, "results": {"n": 10**50}})
    assert big.status_code == 201
    assert big.json["results"]["n"]["value"] == str(10**50)
    _error(api.get("/api/v1/tickets?limit=" + "9" * 400), 422, "invalid")
    _error(api.get("/api/v1/messages?contact=tel:+593911&cursor=" + "9" * 30), 422, "invalid")


def test_nul_bytes_and_unpaired_surrogates_are_refused(api, db):
    for body in [
        {"contact": {"urn": "tel:+593\u0000911"}},
        {"contact": {"urn": "tel:+593911", "name": "A\u0000na"}},
        {"contact": {"urn": "tel:+593911"}, "results": {"x\u0000": "1"}},
        {"contact": {"urn": "tel:+593911"}, "fields": {"city": "Qu\u0000ito"}},
    ]:
        error = _error(api.post("/api/v1/tickets", json=body), 422, "invalid")
        assert error["fields"]
    surrogate = '{"contact": {"urn": "tel:+593911", "name": "\\ud800"}}'
    _error(api.post("/api/v1/tickets", data=surrogate, content_type="application/json"), 422, "invalid")
    _error(api.get("/api/v1/tickets?topic=a%00b"), 422, "invalid")
    _error(api.get("/api/v1/tickets?topic=%ff%fe"), 422, "invalid")
    assert db.session.scalar(select(func.count()).select_from(Contact)) == 0


def test_413_for_bodies_over_one_megabyte(api, db):
    body = json.dumps({"contact": {"urn": "tel:+593911"}, "body": "x" * (1024 * 1024)})
    error = _error(api.post("/api/v1/tickets", data=body, content_type="application/json"), 413, "too_large")
    assert "1,048,576" in error["message"]
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 0


def test_404_and_405_for_unknown_paths_and_methods(api):
    _error(api.get("/api/v1/nothing/here"), 404, "not_found")
    _error(api.post("/api/v1/tickets/abc/def", json={}), 404, "not_found")
    response = api.client.delete("/api/v1/tickets", headers={"Authorization": f"Token {api.key}"})
    _error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "GET, POST"
    _error(api.post("/api/v1/users", json={}), 405, "method_not_allowed")


def test_panel_errors_stay_html(client, login_as):
    login_as("agent")
    response = client.get("/admin/api-tokens/")
    assert response.status_code == 403
    assert not response.is_json


def test_open_ticket_through_a_session_as_an_agent(client, login_as):
    login_as("agent")  # the test app has CSRF off
    response = open_ticket(client, urn="tel:+593955500003")
    assert response.status_code == 201 and response.json["opened_by"] is not None


def test_next_links_start_with_public_url_whatever_the_host_header(app, api, db):
    for n in range(3):
        open_ticket(api, urn=f"tel:+59395550010{n}")
    public = app.config["PUBLIC_URL"]
    hostile = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    tickets = api.get("/api/v1/tickets?limit=1&status=open", headers=hostile)
    assert tickets.status_code == 200
    link = tickets.json["next"]
    assert link.startswith(f"{public}/api/v1/tickets?") and "evil" not in link
    assert "status=open" in link and "limit=1" in link
    # Following it (path and query only) gives the next page.
    following = api.get(link.removeprefix(public))
    assert following.status_code == 200 and following.json["results"][0]["uuid"] != tickets.json["results"][0]["uuid"]
    messages = api.get("/api/v1/messages?contact=tel:%2B593955500100&limit=1", headers=hostile)
    api.post("/api/v1/messages", json={"urn": "tel:+593955500100", "text": "one"})
    api.post("/api/v1/messages", json={"urn": "tel:+593955500100", "text": "two"})
    messages = api.get("/api/v1/messages?contact=tel:%2B593955500100&limit=1", headers=hostile)
    assert messages.status_code == 200, messages.json
    assert messages.json["next"].startswith(f"{public}/api/v1/messages?")


def test_a_form_encoded_session_post_is_400_not_json(live_app, make_user):
    # CSRF on, the token sent as a form field: reading it must not hide that the body isn't JSON.
    client = live_app.test_client()
    with live_app.app_context():
        cookie_id = user_service.start_sign_in(_db.session.get(User, make_user("agent"))).get_id()
        _db.session.commit()
        _db.session.remove()
    with client.session_transaction() as session:
        session["_user_id"] = cookie_id
        session["_fresh"] = True
    with live_app.test_request_context():
        from flask import session as flask_session
        from flask_wtf.csrf import generate_csrf

        with client.session_transaction() as stored:
            flask_session.update(stored)
            token = generate_csrf()
            stored.update(flask_session)
    for path in ("/api/v1/tickets", "/api/v1/ticket_actions", "/api/v1/messages", "/api/v1/topics"):
        response = client.post(path, data={"csrf_token": token, "contact": "tel:+593955500200"})
        _error(response, 400, "not_json")
        response = client.post(path, data={"contact": "x"}, headers={"X-CSRFToken": token})
        _error(response, 400, "not_json")


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/api/v1/tickets", {"GET", "HEAD", "POST", "OPTIONS"}),
        ("/api/v1/tickets/3a9e8f6c-0d1b-4c2a-8e7f-5b6c7d8e9f00", {"GET", "HEAD", "OPTIONS"}),
        ("/api/v1/ticket_actions", {"POST", "OPTIONS"}),
        ("/api/v1/users", {"GET", "HEAD", "OPTIONS"}),
        ("/api/v1/topics", {"GET", "HEAD", "POST", "OPTIONS"}),
        ("/api/v1/messages", {"GET", "HEAD", "POST", "OPTIONS"}),
    ],
)
def test_options_advertises_only_the_methods_a_path_has(client, path, allowed):
    response = client.open(path, method="OPTIONS")
    assert response.status_code in (200, 204)
    assert set(response.headers["Allow"].split(", ")) == allowed


def test_options_on_an_unknown_api_path_is_a_json_404(client):
    _error(client.open("/api/v1/nothing/here", method="OPTIONS"), 404, "not_found")
