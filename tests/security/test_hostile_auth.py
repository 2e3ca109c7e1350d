"""Hostile requests against sessions, roles and links: refused POSTs (other roles' URLs, no CSRF
token) change nothing even with a form that works for those allowed; `next` never leaves the site;
forged, expired, used and cancelled invitation and reset links, and forged or revoked API tokens,
get a clear 4xx and change nothing."""

import secrets
import uuid
from datetime import timedelta
from urllib.parse import quote, urljoin, urlsplit

import pytest
from werkzeug.exceptions import MethodNotAllowed, NotFound

from tests.conftest import PASSWORD
from tests.security.evidence import changed_tables, forms_in, snapshot
from tests.test_access_matrix import OK, RULES, build_url, may_enter
from ticketer.clock import frozen, utcnow
from ticketer.extensions import db as _db
from ticketer.models import User
from ticketer.services import api_tokens
from ticketer.services import invitations as invitation_service
from ticketer.services import password_resets as password_reset_service
from ticketer.services import users as user_service

HOST = "localhost"


def _sign_in(client, cookie: str | None) -> None:
    with client.session_transaction() as session:
        session.clear()
        if cookie:
            session["_user_id"] = cookie
            session["_fresh"] = True


def harvest_forms(app, world) -> dict[str, list[dict]]:
    """endpoint -> the POST forms an admin sees on the panel's pages, filled in as a person would."""
    client = app.test_client()
    _sign_in(client, world["cookies"]["admin"])
    adapter = app.url_map.bind(HOST)
    found: dict[str, list[dict]] = {}
    for endpoint, rule in sorted(RULES.items()):
        if rule.allowed != OK or endpoint.startswith("auth."):
            continue
        url = build_url(app, endpoint, world)
        response = client.get(url)
        if response.status_code != 200 or response.mimetype != "text/html":
            continue
        for form in forms_in(response.get_data(as_text=True), url):
            if form["method"] != "post":
                continue
            try:
                target, _ = adapter.match(urlsplit(form["action"]).path, method="POST")
            except (NotFound, MethodNotAllowed):
                continue
            if target != "auth.logout" and form not in found.get(target, []):
                found.setdefault(target, []).append(form)
    return found


@pytest.fixture
def forms(app, world):
    found = harvest_forms(app, world)
    # The forms must reach the writes that matter, or the refusals below would prove little.
    expected = {
        "tickets.reply",
        "tickets.note",
        "tickets.close",
        "invitations.create_view",
        "people.action_view",
        "api_tokens.create",
    }
    assert expected <= set(found)
    return found


def _is_login_redirect(response) -> bool:
    return response.status_code == 302 and urlsplit(response.location).path == "/login"


@pytest.mark.parametrize("principal", ["anonymous", "viewer", "agent", "supervisor"])
def test_other_roles_posting_real_forms_are_refused_and_change_nothing(app, world, forms, principal):
    client = app.test_client()
    _sign_in(client, world["cookies"].get(principal))
    refused, failures = 0, []
    for endpoint, endpoint_forms in sorted(forms.items()):
        if endpoint not in RULES or may_enter(RULES[endpoint], principal):  # no rule: the matrix test fails
            continue
        for form in endpoint_forms[:2]:
            before = snapshot(app)
            response = client.post(form["action"], data=form["data"])
            changed = changed_tables(before, snapshot(app))
            ok = _is_login_redirect(response) if principal == "anonymous" else response.status_code == 403
            if not ok or changed:
                failures.append(f"{endpoint} {form['action']}: {response.status_code}, changed {changed}")
            refused += 1
    assert refused >= {"anonymous": 8, "viewer": 8, "agent": 4, "supervisor": 2}[principal]
    assert not failures, "\n".join(failures)


def test_the_same_forms_work_for_an_admin(app, world, forms):
    """The other side of the refusals: an admin posting those forms does change the database."""
    client = app.test_client()
    _sign_in(client, world["cookies"]["admin"])
    worked = set()
    # Closing and bulk actions last: the other forms were rendered for an open ticket.
    for endpoint, endpoint_forms in sorted(
        forms.items(), key=lambda item: (item[0] in ("tickets.close", "tickets.bulk"), item[0])
    ):
        before = snapshot(app)
        response = client.post(endpoint_forms[0]["action"], data=endpoint_forms[0]["data"])
        assert response.status_code < 500, endpoint
        if changed_tables(before, snapshot(app)):
            worked.add(endpoint)
    assert {"tickets.reply", "tickets.note", "people.action_view", "api_tokens.create"} <= worked


def test_posts_without_a_csrf_token_are_refused_and_change_nothing(app, live_app, world, forms):
    """The live app has CSRF on, as deployed: no token, a forged one, or another session's is refused."""
    client = live_app.test_client()
    _sign_in(client, world["cookies"]["admin"])
    other = live_app.test_client()
    _sign_in(other, world["cookies"]["supervisor"])
    ticket_page = build_url(app, "tickets.detail", world)
    other_token = next(f for f in forms_in(other.get(ticket_page).get_data(as_text=True), ticket_page) if f["data"])
    other_token = other_token["data"]["csrf_token"]
    before = snapshot(app)
    failures = []
    for endpoint, endpoint_forms in sorted(forms.items()):
        for token in (None, "forged." + secrets.token_hex(20), other_token):
            data = {k: v for k, v in endpoint_forms[0]["data"].items() if k != "csrf_token"}
            if token:
                data["csrf_token"] = token
            response = client.post(endpoint_forms[0]["action"], data=data)
            if response.status_code != 400:
                failures.append(f"{endpoint} with csrf_token={token!r}: {response.status_code}")
    # Sign-in and the JSON API with the session cookie (a browser sends it on its own) need it too.
    response = client.post("/api/v1/topics", json={"name": "Made by CSRF"})
    if response.status_code not in (400, 401, 403):
        failures.append(f"API POST with the session cookie only: {response.status_code}")
    response = live_app.test_client().post("/login", data={"email": "x@example.com", "password": "whatever-long"})
    if response.status_code != 400:
        failures.append(f"sign-in without a token: {response.status_code}")
    assert not failures, "\n".join(failures)
    assert changed_tables(before, snapshot(app)) == []

    # With this session's own token the same kind of POST goes through: the refusals were about the token.
    page = client.get(ticket_page).get_data(as_text=True)
    note_form = next(f for f in forms_in(page, ticket_page) if f["action"].endswith("/note"))
    assert note_form["data"]["csrf_token"]
    response = client.post(note_form["action"], data=note_form["data"])
    assert response.status_code == 302
    assert "ticket_events" in changed_tables(before, snapshot(app))


# --- where `next` may send you ----------------------------------------------------------------

NEXT_PAYLOADS = [
    "//evil.example",
    "///evil.example",
    "https://evil.example/",
    "http:evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\t/evil.example",
    "/%09/evil.example",
    " //evil.example",
    "\n//evil.example",
    "/\r\n/evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "https:/\\evil.example",
    "//evil.example@localhost",
    "/%2F%2Fevil.example",
    "%2F%2Fevil.example",
    "/.//evil.example",
    "http://localhost.evil.example/",
    "\x00//evil.example",
    "\u3000//evil.example",
]


def browser_destination(location: str, base: str = f"http://{HOST}/login") -> tuple[str, str]:
    """(scheme, host) a browser goes to for this Location, following the URL standard's leniencies:
    leading and trailing C0 controls and spaces are dropped, tabs and newlines anywhere are
    removed, and a backslash counts as a slash in http(s) URLs."""
    cleaned = location.strip("".join(chr(c) for c in range(0x21)))
    cleaned = cleaned.replace("\t", "").replace("\n", "").replace("\r", "").replace("\\", "/")
    parts = urlsplit(urljoin(base, cleaned))
    return parts.scheme.lower(), (parts.hostname or "").lower()


def test_browser_destination_knows_the_tricks():
    assert browser_destination("/\\evil.example") == ("http", "evil.example")
    assert browser_destination("/\t/evil.example") == ("http", "evil.example")
    assert browser_destination("/admin/tickets/") == ("http", HOST)


@pytest.mark.parametrize("signed_in_already", [False, True])
def test_next_never_leaves_the_site(app, make_user, signed_in_already):
    email = f"next-{signed_in_already}@example.com"
    user_id = make_user("agent", email=email)
    with app.app_context():
        cookie = user_service.start_sign_in(_db.session.get(User, user_id)).get_id()
        _db.session.commit()
    failures = []
    # Signing in costs a password hash: the POST path gets the trickiest few, the signed-in path all of them.
    payloads = NEXT_PAYLOADS if signed_in_already else NEXT_PAYLOADS[4:9] + ["https:/\\evil.example"]
    for payload in payloads + ["/admin/tickets/?folder=all"]:
        client = app.test_client()
        if signed_in_already:
            _sign_in(client, cookie)
            response = client.get(f"/login?next={quote(payload)}")
        else:
            response = client.post(f"/login?next={quote(payload)}", data={"email": email, "password": PASSWORD})
        assert response.status_code == 302, payload
        destination = browser_destination(response.location)
        if destination != ("http", HOST):
            failures.append(f"next={payload!r} -> {response.location!r} -> {destination}")
    assert not failures, "\n".join(failures)
    # The control case kept its path: safe targets are still honoured.
    assert response.location.endswith("/admin/tickets/?folder=all")


def test_next_in_real_chromium(page, live_server, make_user):
    make_user("agent", email="chromium-next@example.com")
    origin = urlsplit(live_server.url)[:2]
    for payload in ["/\\evil.example/", "/%09/evil.example/", "//evil.example/", "https:evil.example"]:
        page.context.clear_cookies()
        page.goto(f"{live_server.url}/login?next={quote(payload)}")
        sign_in_url = page.url
        page.fill("input[name=email]", "chromium-next@example.com")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url, before=sign_in_url: url != before)
        assert urlsplit(page.url)[:2] == origin, f"next={payload!r} took the browser to {page.url}"


# --- links and tokens ---------------------------------------------------------------------------

FORGED_TOKENS = [
    "x",
    secrets.token_urlsafe(32),
    "' OR '1'='1",
    "%27%20OR%201%3D1--",
    "..%2F..%2Fetc%2Fpasswd",
    "A" * 5000,
    "%00",
    "😀\u202e",
]


def test_forged_expired_used_and_cancelled_links_are_refused(app, world, make_user):
    with app.app_context():
        admin = _db.session.get(User, world["users"]["admin"])
        target_id = make_user("agent", email="reset-target@example.com")
        with frozen(utcnow() - timedelta(days=60)):
            expired_invite = invitation_service.invite("late@example.com", "agent", by=admin).token
            expired_reset = password_reset_service.send_password_reset(target_id, by=admin).token
        cancelled = invitation_service.invite("cancelled@example.com", "admin", by=admin)
        invitation_service.cancel_invitation(cancelled.id, by=admin)
        used = invitation_service.invite("used@example.com", "agent", by=admin).token
        _db.session.commit()
    client = app.test_client()
    form = {"name": "Mallory", "password": "a-long-enough-password-1", "confirm": "a-long-enough-password-1"}
    assert client.post(f"/invitations/{used}", data=form).status_code == 302  # used once, rightly
    client = app.test_client()
    before = snapshot(app)
    cases = [(f"/invitations/{quote(t, safe='')}", 404) for t in FORGED_TOKENS]
    cases += [(f"/password-reset/{quote(t, safe='')}", 404) for t in FORGED_TOKENS]
    cases += [
        (f"/invitations/{expired_invite}", 410),
        (f"/invitations/{cancelled.token}", 410),
        (f"/invitations/{used}", 410),
        (f"/password-reset/{expired_reset}", 410),
        (f"/invitations/{world['reset_token']}", 404),  # a reset token is no invitation
        (f"/password-reset/{world['invitation_token']}", 404),
    ]
    failures = []
    for url, status in cases:
        for method in ("GET", "POST"):
            response = client.open(url, method=method, data=form if method == "POST" else None)
            if response.status_code != status:
                failures.append(f"{method} {url[:80]}: {response.status_code}, expected {status}")
    assert not failures, "\n".join(failures)
    assert changed_tables(before, snapshot(app)) == []


def test_forged_revoked_and_orphaned_api_tokens_are_refused(app, world, make_user, capsys):
    with app.app_context():
        admin = _db.session.get(User, world["users"]["admin"])
        _, good_key = api_tokens.create_token("Good", by=admin)
        revoked, revoked_key = api_tokens.create_token("Revoked", by=admin)
        api_tokens.revoke_token(revoked.id, by=admin)
        leaver_id = make_user("admin", email="leaver@example.com")
        leaver = _db.session.get(User, leaver_id)
        _, orphan_key = api_tokens.create_token("Leaver's", by=leaver)
        leaver.active = False
        _db.session.commit()
    headers = [
        None,
        "Token",
        "Token ",
        "Token forged",
        f"Token tkt_{secrets.token_urlsafe(32)}",
        f"Token {good_key}x",
        f"Token {good_key[:-1]}",
        f"Token {good_key.upper()}",
        f"Basic {good_key}",
        f"Token {revoked_key}",
        f"Token {orphan_key}",
        "Token ' OR '1'='1",
        "Token " + "A" * 10_000,
        f"Token {good_key} {good_key}",
        "Token 😀",
    ]
    body = {"contact": {"urn": "tel:+593999000111", "name": "Forger"}, "body": "let me in"}
    client = app.test_client()
    before = snapshot(app)
    failures = []
    for header in headers:
        sent = {"Authorization": header} if header is not None else {}
        for method, url, payload in (
            ("POST", "/api/v1/tickets", body),
            ("POST", "/api/v1/messages", {"urn": "tel:+593999000111", "text": "hi"}),
            ("GET", "/api/v1/tickets", None),
            ("GET", f"/api/v1/tickets/{uuid.uuid4()}", None),
        ):
            response = client.open(url, method=method, json=payload, headers=sent)
            error = (response.get_json(silent=True) or {}).get("error", {})
            if response.status_code != 401 or error.get("code") != "unauthorized":
                failures.append(f"{method} {url} with {str(header)[:40]!r}: {response.status_code} {error}")
    assert not failures, "\n".join(failures)
    assert changed_tables(before, snapshot(app)) == []
    # The good key does work, so the refusals above are about the keys.
    response = client.post("/api/v1/tickets", json=body, headers={"Authorization": f"Token {good_key}"})
    assert response.status_code == 201, response.get_json()
    capsys.readouterr()


def test_flask_admin_return_url_never_leaves_the_site(client, login_as):
    """Flask-Admin's `url` (where to go after saving) gets the same tricks as `next`."""
    login_as("admin")
    failures = []
    for i, payload in enumerate(NEXT_PAYLOADS):
        response = client.post(f"/admin/topics/new/?url={quote(payload)}", data={"name": f"Topic {i}"})
        assert response.status_code == 302, payload
        destination = browser_destination(response.location)
        if destination != ("http", HOST):
            failures.append(f"url={payload!r} -> {response.location!r} -> {destination}")
    assert not failures, "\n".join(failures)
