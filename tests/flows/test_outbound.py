"""Server-side requests: engines never reach loopback, link-local or private addresses unless the
host is listed in ENGINE_ALLOWED_HOSTS (checked when a flow is saved, and on every connection the
dispatcher makes, after DNS and on every redirect), and a failed answer is kept as its status
line and a short reason only, never its body.

The suite's engines run on 127.0.0.1, which TestConfig lists; these tests take it off the list.
"""

import dataclasses
import re

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import select
from werkzeug import Response

from tests.flows.conftest import RAPIDPRO_FLOW_UUID, RAPIDPRO_TOKEN, SETTINGS, run_dispatcher
from tests.flows.test_dispatch import close_with_trigger, start_row
from ticketer.errors import ValidationError
from ticketer.models.flows import Flow
from ticketer.services import flows as flow_service

NOT_LISTED = dataclasses.replace(SETTINGS, allowed_hosts="")
INTERNAL_PAGE = "root:x:0:0 internal-secret-page"

INTERNAL_URLS = [
    "http://127.0.0.1:8080/hook",
    "http://localhost/hook",  # a name: refused for what it resolves to
    "http://10.0.0.5/hook",
    "http://172.16.3.4/hook",
    "http://192.168.1.10/hook",
    "http://169.254.169.254/latest/meta-data/",  # link-local: cloud metadata
    "http://100.64.0.1/hook",  # shared address space (carrier-grade NAT)
    "http://0.0.0.0:5000/hook",
    "http://[::1]:8080/hook",
    "http://[fd00::1]/hook",
    "http://[fe80::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
]


@pytest.fixture
def nothing_listed(app, monkeypatch):
    monkeypatch.setitem(app.config, "ENGINE_ALLOWED_HOSTS", "")


@pytest.mark.parametrize("url", INTERNAL_URLS)
def test_an_internal_address_is_refused_when_a_flow_is_saved(db, admin, nothing_listed, url):
    with pytest.raises(ValidationError) as webhook_error:
        flow_service.create_flow(flow_service.FlowSettings(name="Hook", engine="webhook", webhook_url=url), by=admin)
    assert list(webhook_error.value.fields) == ["webhook_url"]
    assert "ENGINE_ALLOWED_HOSTS" in str(webhook_error.value)
    with pytest.raises(ValidationError) as rapidpro_error:
        flow_service.create_flow(
            flow_service.FlowSettings(
                name="RP", engine="rapidpro", uuid=RAPIDPRO_FLOW_UUID, base_url=url, api_token="t" * 20
            ),
            by=admin,
        )
    assert list(rapidpro_error.value.fields) == ["base_url"]


def test_listed_hosts_and_public_addresses_are_accepted(db, admin, app, monkeypatch):
    monkeypatch.setitem(app.config, "ENGINE_ALLOWED_HOSTS", "10.0.0.0/8, rapidpro.internal [fd00::1]")
    for url in [
        "http://10.1.2.3:8000/hook",  # in a listed network
        "http://rapidpro.internal/hook",  # a listed name
        "http://[fd00::1]/hook",
        "https://93.184.216.34/hook",  # public
        "https://no-such-host.invalid/hook",  # doesn't resolve here: checked again on every send
    ]:
        flow_service.create_flow(flow_service.FlowSettings(name=url[:60], engine="webhook", webhook_url=url), by=admin)
    with pytest.raises(ValidationError):
        flow_service.create_flow(
            flow_service.FlowSettings(name="Other", engine="webhook", webhook_url="http://192.168.0.1/"), by=admin
        )


def test_the_flow_form_shows_the_refusal_by_the_field(client, login_as, db, nothing_listed):
    login_as("admin")
    response = client.post(
        "/admin/flows/new/", data={"name": "Hook", "engine": "webhook", "webhook_url": "http://127.0.0.1:6379/"}
    )
    assert response.status_code == 200  # Flask-Admin shows the form again, the error by the field
    page = response.get_data(as_text=True)
    assert re.search(r'id="webhook_url"[^>]*>\s*<div class="invalid-feedback">[^/]*127.0.0.1 is a loopback', page)
    assert "ENGINE_ALLOWED_HOSTS" in page
    assert db.session.scalar(select(Flow.id)) is None


def test_sending_refuses_an_address_that_is_no_longer_allowed(db, admin, webhook_flow, rapidpro_flow, httpserver):
    # Both flows were saved while 127.0.0.1 was listed; the dispatcher checks again on connecting.
    close_with_trigger(db, admin, webhook_flow)
    httpserver.expect_request("/hooks/ticketer").respond_with_data(INTERNAL_PAGE)
    report = run_dispatcher(NOT_LISTED)
    assert report.failed == 1  # refused: permanent, nothing to retry until the setting changes
    start = start_row(db)
    assert start.status == "failed"
    assert "127.0.0.1 is a loopback address" in start.last_error and "ENGINE_ALLOWED_HOSTS" in start.last_error
    assert httpserver.log == []  # nothing reached the internal server


def test_a_name_that_resolves_to_an_internal_address_is_refused_when_sending(db, admin, httpserver):
    flow = flow_service.create_flow(
        flow_service.FlowSettings(
            name="Hook", engine="webhook", webhook_url=httpserver.url_for("/hook").replace("127.0.0.1", "localhost")
        ),
        by=admin,
    )
    close_with_trigger(db, admin, flow)
    httpserver.expect_request("/hook").respond_with_data(INTERNAL_PAGE)
    assert run_dispatcher(dataclasses.replace(SETTINGS, allowed_hosts="")).failed == 1
    assert "localhost (127.0.0.1) is a loopback address" in start_row(db).last_error
    assert httpserver.log == []


def test_a_redirect_to_an_internal_address_is_refused(db, admin, httpserver):
    """RapidPro requests follow redirects: every hop is checked. `localhost` is listed, 127.0.0.1 is not."""
    internal = HTTPServer(host="127.0.0.1", port=0)
    internal.start()
    try:
        internal.expect_request("/api/v2/flow_starts.json").respond_with_data(INTERNAL_PAGE)
        flow = flow_service.create_flow(
            flow_service.FlowSettings(
                name="Survey",
                engine="rapidpro",
                uuid=RAPIDPRO_FLOW_UUID,
                base_url=httpserver.url_for("/").rstrip("/").replace("127.0.0.1", "localhost"),
                api_token=RAPIDPRO_TOKEN,
            ),
            by=admin,
        )
        close_with_trigger(db, admin, flow)
        httpserver.expect_request("/api/v2/flow_starts.json").respond_with_response(
            Response(status=307, headers={"Location": internal.url_for("/api/v2/flow_starts.json")})
        )
        report = run_dispatcher(dataclasses.replace(SETTINGS, allowed_hosts="localhost"))
        assert len(httpserver.log) == 1  # the listed host was asked ...
        assert internal.log == []  # ... and its redirect to an internal address was not followed
        assert report.failed == 1
        start = start_row(db)
        assert start.status == "failed" and "127.0.0.1 is a loopback address" in start.last_error
    finally:
        internal.stop()


@pytest.mark.parametrize("status", [500, 404])
def test_a_failed_webhook_answer_is_kept_as_its_status_line_only(db, admin, webhook_flow, httpserver, status):
    close_with_trigger(db, admin, webhook_flow)
    httpserver.expect_request("/hooks/ticketer").respond_with_response(
        Response(INTERNAL_PAGE, status=f"{status} {INTERNAL_PAGE}")  # the reason phrase is the server's too
    )
    run_dispatcher()
    start = start_row(db)
    phrase = {500: "Internal Server Error", 404: "Not Found"}[status]
    assert start.last_error == f"Webhook answered HTTP {status} {phrase}"
    assert "secret" not in (start.response or "") + start.last_error


def test_a_successful_webhook_answer_is_kept_as_its_status_line_only(db, admin, webhook_flow, httpserver):
    close_with_trigger(db, admin, webhook_flow)
    httpserver.expect_request("/hooks/ticketer").respond_with_data(INTERNAL_PAGE, status=202)
    assert run_dispatcher().sent == 1
    assert start_row(db).response == "HTTP 202 Accepted"


def test_a_rapidpro_refusal_is_kept_without_its_body(db, admin, rapidpro_flow, httpserver):
    close_with_trigger(db, admin, rapidpro_flow)
    httpserver.expect_request("/api/v2/flow_starts.json").respond_with_json(
        {"detail": INTERNAL_PAGE, "flow": [INTERNAL_PAGE]}, status=400
    )
    assert run_dispatcher().failed == 1
    start = start_row(db)
    assert start.last_error == "RapidPro refused it: HTTP 400 Bad Request"


def test_a_reply_is_refused_too(db, admin, webhook_flow, httpserver):
    from tests.factories import make_ticket
    from ticketer.models import Message
    from ticketer.services import tickets as ticket_service

    flow_service.update_flow(
        webhook_flow.id,
        flow_service.FlowSettings(
            name=webhook_flow.name, engine="webhook", webhook_url=webhook_flow.webhook_url, sends_replies=True
        ),
        by=admin,
    )
    ticket_service.reply(make_ticket().id, "Hello", by=admin)
    db.session.commit()
    assert run_dispatcher(NOT_LISTED).failed == 1
    message = db.session.execute(select(Message)).scalar_one()
    assert message.status == "failed" and "loopback" in message.last_error
    assert httpserver.log == []
