"""The admin pages: API tokens (create shown once, list, revoke) and the API reference."""

import json
import re
import urllib.request

import pytest
from sqlalchemy import select

from tests.conftest import sign_in
from ticketer.errors import PermissionDenied
from ticketer.models import User
from ticketer.models.api import ApiToken
from ticketer.services import api_tokens

URLS = [
    ("get", "/admin/api-tokens/"),
    ("post", "/admin/api-tokens/create"),
    ("post", "/admin/api-tokens/1/revoke"),
    ("get", "/admin/api-docs/"),
]


def test_anonymous_visitors_sign_in_first_and_only_admins_enter(client, login_as):
    # (tests/test_access_matrix.py checks these URLs for every role too; one test here keeps it quick)
    for method, url in URLS:
        response = getattr(client, method)(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"], url
    for role in ("supervisor", "agent", "viewer"):
        login_as(role)
        for method, url in URLS:
            assert getattr(client, method)(url, data={"name": "x"}).status_code == 403, (role, url)


def test_admin_creates_a_token_shown_once_and_revokes_it(client, login_as, db):
    admin_id = login_as("admin")
    empty = client.get("/admin/api-tokens/")
    assert empty.status_code == 200 and b"No tokens yet" in empty.data

    created = client.post("/admin/api-tokens/create", data={"name": "RapidPro <prod>"})
    assert created.status_code == 201
    assert created.headers["Cache-Control"] == "no-store"
    page = created.get_data(as_text=True)
    key = re.search(r'id="new-token-key" value="([^"]+)"', page).group(1)
    assert key.startswith("tkt_") and len(key) > 40
    assert "RapidPro &lt;prod&gt;" in page  # escaped

    token = db.session.execute(select(ApiToken)).scalar_one()
    assert token.token_hash == api_tokens.hash_key(key) and key not in (token.token_hash, token.prefix)
    assert token.created_by_id == admin_id and token.last_used_on is None
    token_id = token.id
    db.session.commit()

    listed = client.get("/admin/api-tokens/").get_data(as_text=True)
    assert key not in listed and token.prefix in listed and "never" in listed

    assert client.get("/api/v1/users", headers={"Authorization": f"Token {key}"}).status_code == 200
    db.session.expire_all()
    assert db.session.get(ApiToken, token_id).last_used_on is not None
    db.session.commit()
    assert "never" not in client.get("/admin/api-tokens/").get_data(as_text=True)

    revoked = client.post(f"/admin/api-tokens/{token_id}/revoke", follow_redirects=True)
    assert b"Token revoked" in revoked.data and b"Revoked" in revoked.data
    assert client.get("/api/v1/users", headers={"Authorization": f"Token {key}"}).status_code == 401
    again = client.post(f"/admin/api-tokens/{token_id}/revoke", follow_redirects=True)
    assert again.status_code == 200
    missing = client.post("/admin/api-tokens/999/revoke", follow_redirects=True)
    assert b"That token doesn&#39;t exist." in missing.data


def test_a_token_needs_a_name(client, login_as, db):
    login_as("admin")
    response = client.post("/admin/api-tokens/create", data={"name": "  "})
    assert response.status_code == 422
    assert b"Name the token after what uses it." in response.data
    assert db.session.execute(select(ApiToken)).first() is None


def test_the_service_refuses_non_admins(db, make_user):
    supervisor = db.session.get(User, make_user("supervisor"))
    with pytest.raises(PermissionDenied, match="Only admins"):
        api_tokens.create_token("x", by=supervisor)


def test_api_reference_page_lists_every_endpoint_without_inline_scripts(client, login_as):
    login_as("admin")
    response = client.get("/admin/api-docs/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    spec = client.get("/api/v1/openapi.json").json
    for path, methods in spec["paths"].items():
        for method in methods:
            if method != "parameters":
                assert f'id="{method}-{path}"'.replace("/", "-").replace("{", "").replace("}", "") in page
    assert "/api/v1/openapi.json" in page and "Idempotency-Key" in page and "TicketOpen" in page
    nonce = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"]).group(1)
    for tag in re.findall(r"<script[^>]*>", page):
        assert "src=" in tag or f'nonce="{nonce}"' in tag
    assert " style=" not in page


def test_admin_creates_a_token_in_the_browser_and_a_flow_uses_it(page, live_server, make_user):
    email = "root@example.com"
    make_user("admin", email=email)
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    sign_in(page, live_server, email)
    page.goto(f"{live_server.url}/admin/api-tokens/")
    page.fill("input[name=name]", "Botpress")
    page.click("#create-token")
    key = page.input_value("#new-token-key")
    request = urllib.request.Request(
        f"{live_server.url}/api/v1/tickets",
        data=json.dumps({"contact": {"urn": "telegram:777"}, "topic": "Ventas", "body": "Hola"}).encode(),
        headers={"Authorization": f"Token {key}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
    page.goto(f"{live_server.url}/admin/api-tokens/")
    assert page.locator("#new-token").count() == 0  # shown once
    row = page.locator("#tokens tbody tr", has_text="Botpress")
    assert row.locator(".last-used time").count() == 1
    page.goto(f"{live_server.url}/admin/api-docs/")
    assert page.locator(".api-operation").count() == 10
    page.click("#endpoint-index a >> nth=0")
    assert errors == []
