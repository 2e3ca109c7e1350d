"""Fixtures of the follow-up flow tests: an admin, flows on each engine, and the engine itself
(pytest-httpserver's `httpserver`: a real HTTP server on 127.0.0.1)."""

import pytest

from ticketer.extensions import db as _db
from ticketer.models import User
from ticketer.services import dispatch
from ticketer.services import flows as flow_service

RAPIDPRO_TOKEN = "0123456789abcdef0123456789abcdef01234567"
RAPIDPRO_FLOW_UUID = "9b5f1c1e-7d0a-4c55-8f5e-2f7f2a3f6b10"
WEBHOOK_SECRET = "s3cret-s3cret-s3cret"

# Fast settings: tests drive the dispatcher directly, one pass at a time.
SETTINGS = dispatch.Settings(batch_size=50, max_attempts=4, reclaim_after_seconds=60, http_timeout_seconds=3)


@pytest.fixture
def admin(db, make_user):
    return db.session.get(User, make_user("admin"))


@pytest.fixture
def rapidpro_flow(db, admin, httpserver):
    flow = flow_service.create_flow(
        name="Satisfaction survey",
        engine="rapidpro",
        uuid=RAPIDPRO_FLOW_UUID,
        base_url=httpserver.url_for("/").rstrip("/"),
        api_token=RAPIDPRO_TOKEN,
        by=admin,
    )
    _db.session.commit()
    return flow


@pytest.fixture
def webhook_flow(db, admin, httpserver):
    flow = flow_service.create_flow(
        name="Webhook survey",
        engine="webhook",
        webhook_url=httpserver.url_for("/hooks/ticketer"),
        webhook_secret=WEBHOOK_SECRET,
        by=admin,
    )
    _db.session.commit()
    return flow


@pytest.fixture
def builtin_flow(db, admin):
    flow = flow_service.create_flow(
        name="Thanks",
        engine="builtin",
        templates="Thanks @contact.name, your @ticket.topic ticket is closed.\nReply 1 if we solved it.",
        by=admin,
    )
    _db.session.commit()
    return flow


def run_dispatcher(settings: dispatch.Settings = SETTINGS) -> dispatch.Report:
    return dispatch.dispatch_due(settings)


@pytest.fixture(scope="session")
def httpserver_listen_address():
    return ("127.0.0.1", 0)
