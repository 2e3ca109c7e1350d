"""Security headers on every response of every endpoint in app.url_map, for every method it takes,
signed in and not, whatever the status: a CSP that allows only the app's own origin,
frame-ancestors 'none', nosniff, a Referrer-Policy and X-Frame-Options; and `Cache-Control: no-store`
on everything but static files, so no page, answer or export stays in a browser's or proxy's cache."""

import uuid

import pytest
from werkzeug.routing import IntegerConverter, PathConverter, UUIDConverter

# Real files, so that static responses (200) are checked as well as misses.
STATIC_FILES = {"static": "ticketer.css", "admin.static": "admin/js/helpers.js"}
ALLOWED_SOURCES = {"'self'", "'none'"}
# Bootstrap's stylesheet draws its icons (select arrows, toggler) as data: SVG; images can't run script.
DATA_ALLOWED_IN = {"img-src"}


def parse_csp(header: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            assert words[0] not in directives, f"{words[0]} given twice"
            directives[words[0]] = words[1:]
    return directives


def check_security_headers(response, where: str) -> str:
    """Assert the headers; returns the CSP nonce (or "")."""
    headers = response.headers
    assert headers.get("X-Content-Type-Options") == "nosniff", where
    assert headers.get("Referrer-Policy") in ("same-origin", "strict-origin-when-cross-origin", "no-referrer"), where
    assert headers.get("X-Frame-Options") == "DENY", where
    csp = headers.get("Content-Security-Policy")
    assert csp, f"{where}: no Content-Security-Policy"
    directives = parse_csp(csp)
    assert directives.get("default-src") == ["'self'"], where
    assert directives.get("frame-ancestors") == ["'none'"], where
    assert directives.get("object-src") == ["'none'"], where
    assert directives.get("base-uri") in (["'self'"], ["'none'"]), where
    assert directives.get("form-action") == ["'self'"], where
    nonces = set()
    for name, sources in directives.items():
        for source in sources:
            if source.startswith("'nonce-"):
                assert name in ("script-src", "style-src"), f"{where}: nonce in {name}"
                assert len(source) >= len("'nonce-'") + 16, f"{where}: short nonce"
                nonces.add(source)
            elif source == "data:":
                assert name in DATA_ALLOWED_IN, f"{where}: data: allowed in {name}"
            else:
                assert source in ALLOWED_SOURCES, f"{where}: {name} allows {source}"
    assert len(nonces) <= 1, where
    return next(iter(nonces), "")


STATIC_ENDPOINTS = set(STATIC_FILES)


def check_cache_control(response, endpoint: str, where: str) -> None:
    directives = {d.strip() for d in response.headers.get("Cache-Control", "").split(",")}
    if endpoint in STATIC_ENDPOINTS:
        assert "no-store" not in directives, f"{where}: static files may be cached"
    else:
        assert "no-store" in directives, f"{where}: Cache-Control {response.headers.get('Cache-Control')!r}"


def test_panel_pages_are_not_stored_in_any_cache(client, login_as):
    assert "no-store" in client.get("/login").headers.get("Cache-Control", "")
    login_as("agent")
    for url in ("/admin/tickets/", "/admin/", "/account/password", "/no/such/page"):
        response = client.get(url)
        assert "no-store" in response.headers.get("Cache-Control", ""), (url, response.status_code)
    assert "no-store" not in client.get("/static/ticketer.css").headers.get("Cache-Control", "")


def _url(rule) -> str:
    values = {}
    for name, converter in rule._converters.items():
        if isinstance(converter, UUIDConverter):
            values[name] = uuid.uuid4()
        elif isinstance(converter, IntegerConverter):
            values[name] = 987654
        elif isinstance(converter, PathConverter):
            values[name] = STATIC_FILES.get(rule.endpoint, "no/such/thing")
        else:
            values[name] = "csv" if name == "export_type" else "no-such-thing"
    return rule.build(values, append_unknown=False)[1]


def _endpoints(app):
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method


@pytest.mark.parametrize("role", [None, "viewer", "agent", "admin"])
def test_every_endpoint_sends_the_security_headers(app, client, login_as, role):
    if role:
        login_as(role)
    seen_nonces = set()
    checked = 0
    for rule, method in _endpoints(app):
        url = _url(rule)
        response = client.open(url, method=method, data={} if method != "GET" else None)
        where = f"{role or 'anonymous'} {method} {url} -> {response.status_code}"
        assert response.status_code < 500, where
        nonce = check_security_headers(response, where)
        check_cache_control(response, rule.endpoint, where)
        if nonce:
            assert nonce not in seen_nonces, f"{where}: nonce reused"
            seen_nonces.add(nonce)
        checked += 1
        response.close()
    assert checked >= 20


def test_error_pages_and_static_files_send_the_headers(client, app):
    for url, status in (("/no/such/page", 404), ("/static/ticketer.css", 200), ("/static/nothing.css", 404)):
        response = client.get(url)
        assert response.status_code == status
        check_security_headers(response, url)
    response = client.delete("/login")
    assert response.status_code == 405
    check_security_headers(response, "DELETE /login")


def test_the_policy_check_refuses_loose_policies(client):
    """The check above can fail: each loosening of the real policy is caught."""
    response = client.get("/login")
    good = response.headers["Content-Security-Policy"]
    loosenings = [
        good.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'"),
        good.replace("script-src 'self'", "script-src 'self' https://cdn.example"),
        good.replace("frame-ancestors 'none'", "frame-ancestors *"),
        good.replace("default-src 'self'", "default-src *"),
        good.replace("object-src 'none'", "object-src 'self' data:"),
        good.replace("; frame-ancestors 'none'", ""),
    ]
    for policy in loosenings:
        assert policy != good
        response.headers["Content-Security-Policy"] = policy
        with pytest.raises(AssertionError):
            check_security_headers(response, policy)


def test_https_deployments_send_hsts(database_url):
    """Behind HTTPS (PUBLIC_URL https://...) browsers are told to stay on HTTPS; plain HTTP doesn't say so."""
    from app import create_app
    from ticketer.config import TestConfig
    from ticketer.extensions import db

    for public_url, expected in (("https://desk.example.org", "max-age=31536000"), ("http://127.0.0.1:5000", None)):
        app = create_app(TestConfig(database_url, PUBLIC_URL=public_url))
        assert app.test_client().get("/login").headers.get("Strict-Transport-Security") == expected
        with app.app_context():
            db.engine.dispose()
