"""Open redirects (issue 14 item 1): every redirect target a page takes from the request (Flask-Admin's
`url`, the sign-in page's `next`, back links) must be a path on this site, on every model view.

The payloads are written as they appear in a query string (percent-escapes included); a browser reads
`http:/evil.example`, `http:evil.example` and `\\\\evil.example` as other sites, Python's URL parsing
does not, so the check here is deliberately stricter than "same host after urljoin".
"""

import re
from urllib.parse import unquote

import pytest
from flask_admin.contrib.sqla import ModelView

from tests.conftest import PASSWORD
from ticketer.extensions import db as _db
from ticketer.models import Topic

PAYLOADS = [
    "http:/evil.example",
    "http:evil.example",
    "http:%2fevil.example",
    "http:%2F%2Fevil.example",
    "//evil.example",
    "%2F%2Fevil.example",
    "%5C%5Cevil.example",
    "/%5Cevil.example",
    "https://evil.example/",
    "/%09/evil.example",
    "%20//evil.example",
    "javascript:alert(1)",
]
UNKNOWN_ID = 987654321


def is_site_path(location: str) -> bool:
    """What a browser keeps on this site: one leading slash, then no second slash or backslash, no
    whitespace or control characters (browsers drop tabs and newlines, and read \\ as /)."""
    return (
        location.startswith("/")
        and location[1:2] not in ("/", "\\")
        and "\\" not in location
        and not re.search(r"[\x00-\x20\x7f]", location)
    )


def assert_stays_on_site(response, payload: str, what: str) -> None:
    assert response.status_code < 500, what
    location = response.headers.get("Location")
    if location is not None:
        assert is_site_path(location), f"{what}: redirects to {location!r}"
    body = response.get_data(as_text=True)
    decoded = unquote(payload)
    for shown in {decoded, decoded.replace("&", "&amp;")}:
        assert f'href="{shown}"' not in body and f'value="{shown}"' not in body, f"{what}: links to {shown!r}"


def model_views(app) -> list[ModelView]:
    views = [view for view in app.extensions["admin"][0]._views if isinstance(view, ModelView)]
    assert views, "no Flask-Admin model views found"
    return views


def one_id(view) -> str:
    with view.admin.app.app_context():
        row = _db.session.execute(_db.select(view.model).limit(1)).scalar_one_or_none()
        return str(view.get_pk_value(row)) if row is not None else str(UNKNOWN_ID)


@pytest.fixture
def admin_client(client, login_as, db):
    login_as("admin")
    db.session.add(Topic(name="Billing"))
    db.session.commit()
    return client


@pytest.mark.parametrize("payload", PAYLOADS)
def test_model_views_never_send_anyone_off_site(app, admin_client, payload):
    client = admin_client
    failures = []
    for view in model_views(app):
        base = view.url.rstrip("/")
        known = one_id(view)
        gets = [
            f"{base}/?url={payload}",
            f"{base}/details/?id={known}&url={payload}",
            f"{base}/details/?id={UNKNOWN_ID}&url={payload}",
            f"{base}/edit/?id={known}&url={payload}",
            f"{base}/edit/?id={UNKNOWN_ID}&url={payload}",
            f"{base}/new/?url={payload}",
            f"{base}/export/csv/?url={payload}",
        ]
        posts = [
            (f"{base}/action/", {"action": "no-such-action", "rowid": known, "url": unquote(payload)}),
            (f"{base}/delete/", {"id": UNKNOWN_ID, "url": unquote(payload)}),
            (f"{base}/edit/?id={UNKNOWN_ID}&url={payload}", {}),
        ]
        for url in gets:
            response = client.get(url, buffered=True)
            try:
                assert_stays_on_site(response, payload, f"GET {url}")
            except AssertionError as error:
                failures.append(str(error).splitlines()[0])
        for url, data in posts:
            response = client.post(url, data=data)
            try:
                assert_stays_on_site(response, payload, f"POST {url}")
            except AssertionError as error:
                failures.append(str(error).splitlines()[0])
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_after_save_the_page_stays_on_site(admin_client, db, payload):
    created = admin_client.post(f"/admin/topics/new/?url={payload}", data={"name": "Sales"})
    assert_stays_on_site(created, payload, "create")
    topic_id = db.session.execute(db.select(Topic.id).where(Topic.name == "Billing")).scalar_one()
    saved = admin_client.post(f"/admin/topics/edit/?id={topic_id}&url={payload}", data={"name": "Invoices"})
    assert_stays_on_site(saved, payload, "edit")


@pytest.mark.parametrize("payload", PAYLOADS)
def test_sign_in_next_stays_on_site(app, make_user, payload):
    make_user("admin", email="ada@example.com")
    visitor = app.test_client()
    assert_stays_on_site(visitor.get(f"/login?next={payload}"), payload, "sign-in page")
    signed_in = visitor.post(f"/login?next={payload}", data={"email": "ada@example.com", "password": PASSWORD})
    assert signed_in.status_code == 302
    assert_stays_on_site(signed_in, payload, "after sign-in")
    assert_stays_on_site(visitor.get(f"/login?next={payload}"), payload, "signed in already")


@pytest.mark.parametrize("payload", PAYLOADS)
def test_sign_in_next_to_a_page_that_takes_url(app, make_user, payload):
    """The report's chain: sign-in's `next` is a local page whose own `url` points away."""
    make_user("admin", email="ada@example.com")
    visitor = app.test_client()
    local = f"/admin/topics/details/?id=1%26url={payload.replace('%', '%25')}"
    signed_in = visitor.post(f"/login?next={local}", data={"email": "ada@example.com", "password": PASSWORD})
    assert signed_in.status_code == 302 and is_site_path(signed_in.location)
    assert_stays_on_site(visitor.get(signed_in.location), payload, "the page after sign-in")


def test_local_targets_still_work(admin_client, db):
    """The check keeps Flask-Admin's own return links: a list URL with its query string comes back."""
    back = "/admin/topics/?sort=0&search=Bil"
    url = "/admin/topics/new/?url=%2Fadmin%2Ftopics%2F%3Fsort%3D0%26search%3DBil"
    response = admin_client.post(url, data={"name": "Sales"})
    assert response.status_code == 302 and response.location == back
