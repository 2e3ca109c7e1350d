"""Fixtures of the conversation tests: a RapidPro-compatible workspace (tests/rapidpro_server.py)."""

import pytest

from tests.rapidpro_server import RapidProServer


@pytest.fixture
def rapidpro():
    """A RapidPro-compatible server on 127.0.0.1; the test fails if any request had the wrong shape."""
    server = RapidProServer().start()
    yield server
    server.stop()
    assert server.failures == [], f"requests RapidPro's API v2 would refuse: {server.failures}"
