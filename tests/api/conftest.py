"""Fixtures for the API tests: tokens made through the service, and a client that sends them."""

import pytest

from tests.conftest import app_context
from ticketer.extensions import db as _db
from ticketer.models import User
from ticketer.services import api_tokens


class ApiClient:
    """The Flask test client with `Authorization: Token <key>` on every request."""

    def __init__(self, client, key: str):
        self.client = client
        self.key = key

    def _headers(self, headers):
        return {"Authorization": f"Token {self.key}", **(headers or {})}

    def get(self, path, **kwargs):
        return self.client.get(path, headers=self._headers(kwargs.pop("headers", None)), **kwargs)

    def post(self, path, **kwargs):
        return self.client.post(path, headers=self._headers(kwargs.pop("headers", None)), **kwargs)


@pytest.fixture
def make_token(app, make_user):
    """make_token(role="admin") -> (key, user id): a token of a new user with that role."""

    def make(role: str = "admin", user_id: int | None = None, name: str = "RapidPro") -> tuple[str, int]:
        user_id = user_id or make_user("admin")
        with app_context(app):
            owner = _db.session.get(User, user_id)
            _, key = api_tokens.create_token(name, by=owner)
            if role != "admin":
                owner.role = role  # the creator's role changed later: the token acts with the new role
            _db.session.commit()
        return key, user_id

    return make


@pytest.fixture
def api(client, make_token):
    """An ApiClient with an admin's token."""
    key, _ = make_token()
    return ApiClient(client, key)


@pytest.fixture
def api_as(client, make_token):
    """api_as(role) -> ApiClient whose token acts with that role."""

    def make(role: str) -> ApiClient:
        key, _ = make_token(role)
        return ApiClient(client, key)

    return make


def open_ticket(api, urn="tel:+593999000111", headers=None, **body):
    payload = {"contact": {"urn": urn, "name": "Ana"}, "topic": "Billing", "body": "Help"}
    payload.update(body)
    return api.post("/api/v1/tickets", json=payload, headers=headers)
