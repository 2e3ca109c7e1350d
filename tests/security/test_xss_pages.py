"""Untrusted text in real Chromium: every payload of the corpus, put everywhere a contact or a flow
can write, is shown as text on every page that shows it; no dialog opens, no CSP violation fires,
and no injected element or handler appears in the DOM."""

import re
from urllib.parse import quote, urlsplit

import pytest
from pytest_httpserver import HTTPServer

from tests.conftest import sign_in
from tests.security.browser_guard import BrowserGuard, squash
from tests.security.hostile_desk import ADMIN_EMAIL, seed_hostile_desk
from tests.security.xss_payloads import PAYLOADS


@pytest.fixture
def hostile(db):
    desk = seed_hostile_desk()
    db.session.remove()  # hold no transaction while the live server works
    return desk


@pytest.fixture
def guard(page, live_server, hostile):
    guard = BrowserGuard(page)
    sign_in(page, live_server, ADMIN_EMAIL)
    return guard


def _missing(text: str, expected: list[str]) -> list[str]:
    return [s for s in expected if s and squash(s) not in text]


def test_the_guard_catches_script_that_runs(page, httpserver: HTTPServer):
    """The harness itself: an unescaped payload under the app's CSP is reported, and without a CSP it runs."""
    html = "<html><body><p>hi</p>" + PAYLOADS[1] + "<script>alert(99)</script></body></html>"
    httpserver.expect_request("/unsafe").respond_with_data(html, content_type="text/html")
    httpserver.expect_request("/strict").respond_with_data(
        html,
        content_type="text/html",
        headers={"Content-Security-Policy": "default-src 'self'; script-src 'self'; object-src 'none'"},
    )
    guard = BrowserGuard(page)
    problems = guard.visit(httpserver.url_for("/unsafe"))
    assert any("onerror" in p for p in problems)
    assert guard.dialogs, "a payload without CSP should have opened a dialog"
    guard.dialogs.clear()
    guard.visit(httpserver.url_for("/strict"))
    assert not guard.dialogs
    assert any('"directive":"script-src' in v for v in guard.violations), guard.violations


def test_payloads_show_as_text_on_folders_ticket_and_topic_pages(guard, live_server, hostile):
    problems: list[str] = []
    for status in ("open", "closed"):
        problems += guard.visit(f"{live_server.url}/admin/tickets/?folder=all&status={status}")
        text = guard.text()
        shown = [t for t in hostile.tickets if t.is_open == (status == "open")]
        assert len(guard.page.query_selector_all("tr[data-ticket]")) == len(shown)
        names = [name for t, name in zip(hostile.tickets, hostile.contact_names, strict=True) if t in shown]
        assert not _missing(text, names), _missing(text, names)[:5]
        assert not _missing(text, hostile.user_names)
        assert not _missing(text, hostile.topic_names)  # in the topic filter
    for ticket in hostile.tickets:
        problems += guard.visit(f"{live_server.url}/admin/tickets/{ticket.uuid}")
        missing = _missing(guard.text(), ticket.shows)
        assert not missing, f"ticket {ticket.uuid} does not show {missing[:3]} as text"
    for deliveries in ("/admin/deliveries/", "/admin/deliveries/messages"):
        problems += guard.visit(live_server.url + deliveries)
        assert "engine said" in guard.text()
        shown = [a for a in hostile.engine_answers if squash(a) in guard.text()]
        assert len(shown) >= 10, f"{deliveries} shows {len(shown)} engine answers as text"
    problems += guard.visit(f"{live_server.url}/admin/topics/")
    assert not _missing(guard.text(), hostile.topic_names)
    for topic_id, name in list(zip(hostile.topic_ids, hostile.topic_names, strict=True))[:6]:
        problems += guard.visit(f"{live_server.url}/admin/topics/edit/?id={topic_id}")
        assert guard.page.input_value("input[name=name]") == name
    guard.assert_clean(problems)


def test_query_strings_are_not_reflected_as_markup_and_every_page_is_clean(guard, live_server, hostile):
    """Search boxes and the ticket page's back link echo the URL: still text, never markup or a foreign link.
    Then every kind of page reachable from the panel, with the hostile desk in place."""
    problems: list[str] = []
    ticket = hostile.tickets[1]
    origin = urlsplit(live_server.url)[:2]
    for payload in PAYLOADS[::4]:
        problems += guard.visit(f"{live_server.url}/admin/tickets/?folder=all&q={quote(payload)}")
        assert guard.page.input_value("input[name=q]") == squash(payload)[:200]
    for payload in PAYLOADS[::8] + ["/\\evil.example/", "/\t/evil.example/", "//evil.example", "https://evil.example/"]:
        problems += guard.visit(f"{live_server.url}/admin/tickets/{ticket.uuid}?back={quote(payload)}")
        href = guard.page.evaluate(
            "() => Array.from(document.querySelectorAll('a')).find((a) => /Back to tickets/.test(a.textContent)).href"
        )
        assert urlsplit(href)[:2] == origin, f"back={payload!r} links to {href}"
    for payload in PAYLOADS[::8]:
        problems += guard.visit(f"{live_server.url}/admin/topics/?search={quote(payload)}")
    guard.assert_clean(problems)
    _crawl(guard, live_server)


def _page_kind(url: str) -> tuple:
    parts = urlsplit(url)
    path = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\d+", "#", parts.path)
    keys = sorted({pair.split("=")[0] for pair in parts.query.split("&") if pair} - {"back", "after", "before"})
    return path, tuple(keys)


def _crawl(guard, live_server) -> None:
    """Crawl the panel as an admin, one page of each kind, with the hostile desk in place."""
    start = f"{live_server.url}/admin/"
    queue, seen_kinds, visited, problems = [start], set(), [], []
    while queue and len(visited) < 40:
        url = queue.pop(0)
        kind = _page_kind(url)
        if kind in seen_kinds:
            continue
        seen_kinds.add(kind)
        visited.append(url)
        problems += guard.visit(url)
        queue += guard.same_origin_links(live_server.url)
    assert len(visited) >= 5, visited
    guard.assert_clean(problems)
