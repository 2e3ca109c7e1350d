"""The test workspace itself answers as RapidPro's API v2 does, through the client Ticketer uses."""

from datetime import UTC, datetime, timedelta

import pytest
import requests
from temba_client.exceptions import TembaRateExceededError, TembaTokenError
from temba_client.v2 import TembaClient

from tests.rapidpro_server import TOKEN, RapidProServer
from ticketer.engines import outbound


@pytest.fixture(autouse=True)
def loopback_exchange():
    """temba_client's requests go through Ticketer's outbound module (once ticketer.engines.rapidpro
    is imported); here they run in one exchange that may reach the test server on loopback."""
    with outbound.exchange(outbound.Policy(allowed_hosts=outbound.AllowedHosts.parse("127.0.0.1"))):
        yield


def client(server: RapidProServer, token: str = TOKEN) -> TembaClient:
    return TembaClient(server.url, token)


@pytest.fixture(autouse=True)
def _test_app(app):
    """temba_client's requests go through ticketer.engines.outbound once it is imported: with the
    test app's settings, which allow the workspace on 127.0.0.1 (ENGINE_ALLOWED_HOSTS)."""
    with app.app_context():
        yield


def test_workspace_and_its_deprecated_alias(rapidpro):
    org = client(rapidpro).get_org()
    assert org.name == "Soporte Quito"
    answer = requests.get(f"{rapidpro.url}/api/v2/workspace.json", headers={"Authorization": f"Token {TOKEN}"})
    assert answer.json()["name"] == "Soporte Quito"


def test_a_wrong_token_gets_403_like_rapidpro(rapidpro):
    with pytest.raises(TembaTokenError):
        client(rapidpro, token="wrong").get_org()


def test_messages_come_newest_first_in_cursor_pages_and_after_is_inclusive(rapidpro):
    rapidpro.page_size = 3
    contact = rapidpro.add_contact()
    start = datetime.now(UTC)
    sent = [rapidpro.receive(contact, f"m{i}", created_on=start + timedelta(seconds=i)) for i in range(7)]
    pages = list(client(rapidpro).get_messages(after=start + timedelta(seconds=1)).iterfetches())
    assert [[m.text for m in page] for page in pages] == [["m6", "m5", "m4"], ["m3", "m2", "m1"]]
    before = client(rapidpro).get_messages(before=start + timedelta(seconds=2)).all()
    assert [m.text for m in before] == ["m2", "m1", "m0"]
    assert sent[0]["uuid"] == before[-1].uuid


def test_429_carries_retry_after(rapidpro):
    rapidpro.throttle(times=1, retry_after=7)
    with pytest.raises(TembaRateExceededError) as raised:
        client(rapidpro).get_messages().all()
    assert raised.value.retry_after == 7
    assert client(rapidpro).get_messages().all() == []


def test_wrong_shapes_get_400_and_are_recorded():
    server = RapidProServer().start()
    try:
        headers = {"Authorization": f"Token {TOKEN}"}
        assert requests.get(f"{server.url}/api/v2/messages.json?colour=red", headers=headers).status_code == 400
        assert requests.get(f"{server.url}/api/v2/messages.json", headers={}).status_code == 400
        assert requests.get(f"{server.url}/api/v2/messages.json?after=yesterday", headers=headers).status_code == 400
        answer = requests.post(f"{server.url}/api/v2/messages.json", json={"contacts": ["x"]}, headers=headers)
        assert answer.status_code == 400
        answer = requests.post(
            f"{server.url}/api/v2/contact_actions.json", json={"contacts": [], "action": "interrupt"}, headers=headers
        )
        assert answer.status_code == 400
        assert requests.get(f"{server.url}/api/v2/broadcasts.json", headers=headers).status_code == 400
        assert len(server.failures) == 6
    finally:
        server.stop()


def test_contact_actions_flow_starts_and_messages(rapidpro):
    contact = rapidpro.add_contact("Ana")
    flow = rapidpro.add_flow("Survey")
    rapidpro.add_flow("Old survey", archived=True)
    api = client(rapidpro)
    assert [f.name for f in api.get_flows(archived=False).all()] == ["Survey"]
    group = api.create_group("In handoff (Ticketer)")
    api.bulk_interrupt_contacts([contact])
    api.bulk_add_contacts([contact], group.uuid)
    assert rapidpro.contacts[contact]["groups"] == [{"uuid": group.uuid, "name": group.name}]
    api.bulk_remove_contacts([contact], group.uuid)
    assert rapidpro.contacts[contact]["groups"] == []
    start = api.create_flow_start(flow, contacts=[contact], params={"ticket": {"uuid": "x"}})
    assert start.flow.uuid == flow
    message = api.create_message(contact, "Hola Ana", [])
    assert message.direction == "out" and message.status == "queued"
    rapidpro.set_status(message.uuid, "delivered")
    assert api.get_messages(uuid=message.uuid).first().status == "delivered"
