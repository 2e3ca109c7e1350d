"""Workspace connections: the service and the CLI (add-rapidpro, list, remove, test)."""

import pytest

from ticketer.errors import Conflict, ConnectionFailed, PermissionDenied, ValidationError
from ticketer.extensions import db
from ticketer.models import User
from ticketer.models.connections import Connection
from ticketer.services import connections


def add(rapidpro, name="Soporte", token=None):
    connection = connections.add_rapidpro(name=name, base_url=rapidpro.url, api_token=token or rapidpro.token)
    db.session.commit()
    return connection


def test_add_keeps_the_token_and_starts_pulling_from_now(db, rapidpro):
    connection = add(rapidpro)
    assert connection.kind == "rapidpro" and connection.silence_bot is True
    assert connection.api_token == rapidpro.token
    assert connection.sync.after == connection.created_on


@pytest.mark.parametrize(
    ("url", "stored"),
    [
        ("https://app.rapidpro.io/", "https://app.rapidpro.io"),
        ("https://rp.example.org/api/v2/flows.json", "https://rp.example.org"),
        ("http://rapidpro.internal.example:8000/rapidpro/", "http://rapidpro.internal.example:8000/rapidpro"),
    ],
)
def test_the_server_url_is_its_root(db, url, stored):
    assert connections.clean_base_url(url) == stored


@pytest.mark.parametrize(
    "url", ["ftp://rp.example.org", "rp.example.org", "https://u:p@rp.example.org", "https://x?y=1"]
)
def test_urls_that_are_not_a_server_are_refused(db, url):
    with pytest.raises(ValidationError):
        connections.add_rapidpro(name="x", base_url=url, api_token="abc")


def test_internal_addresses_are_refused_unless_allowed(app, db):
    with pytest.raises(ValidationError) as refused:
        connections.add_rapidpro(name="LAN", base_url="http://10.0.0.5:8000", api_token="abc")
    assert "ENGINE_ALLOWED_HOSTS" in refused.value.message
    app.config["ENGINE_ALLOWED_HOSTS"] = "127.0.0.1, localhost, 10.0.0.0/8"
    try:
        assert connections.add_rapidpro(name="LAN", base_url="http://10.0.0.5:8000", api_token="abc").id
    finally:
        app.config["ENGINE_ALLOWED_HOSTS"] = "127.0.0.1, localhost"


def test_a_connection_pointed_at_an_internal_address_later_is_refused_at_each_call(app, db, rapidpro):
    connection = connections.add_rapidpro(name="Soporte", base_url=rapidpro.url, api_token=rapidpro.token)
    db.session.commit()
    app.config["ENGINE_ALLOWED_HOSTS"] = ""
    try:
        with pytest.raises(ConnectionFailed) as refused:
            connections.check_connection(connection.id)
    finally:
        app.config["ENGINE_ALLOWED_HOSTS"] = "127.0.0.1, localhost"
    assert "loopback" in refused.value.message and "ENGINE_ALLOWED_HOSTS" in refused.value.message
    assert rapidpro.requests == []


def test_names_are_unique_ignoring_case_and_tokens_are_one_word(db, rapidpro):
    add(rapidpro, "Soporte")
    with pytest.raises(Conflict):
        connections.add_rapidpro(name="SOPORTE", base_url=rapidpro.url, api_token="abc")
    with pytest.raises(ValidationError):
        connections.add_rapidpro(name="Other", base_url=rapidpro.url, api_token="two words")


def test_only_admins_manage_connections(db, rapidpro, make_user):
    supervisor = db.session.get(User, make_user("supervisor"))
    with pytest.raises(PermissionDenied):
        connections.add_rapidpro(name="x", base_url=rapidpro.url, api_token="abc", by=supervisor)
    admin = db.session.get(User, make_user("admin"))
    assert connections.add_rapidpro(name="x", base_url=rapidpro.url, api_token="abc", by=admin).id


def test_test_connection_gives_the_workspace_name(db, rapidpro):
    connection = add(rapidpro)
    assert connections.check_connection(connection.id) == "Soporte Quito"
    assert rapidpro.requests_to("org", "GET")  # the endpoint temba_client's get_org() calls


def test_test_connection_gives_the_exact_error(db, rapidpro):
    connection = add(rapidpro, token="not-the-token")
    with pytest.raises(ConnectionFailed) as refused:
        connections.check_connection(connection.id)
    assert refused.value.message == "The workspace refused the API token (HTTP 403)."


def test_test_connection_to_nothing_says_so(db):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    connection = connections.add_rapidpro(name="Gone", base_url=f"http://127.0.0.1:{port}", api_token="abc")
    with pytest.raises(ConnectionFailed) as refused:
        connections.check_connection(connection.id)
    assert refused.value.message == "Could not connect to the workspace's server."


def test_remove_keeps_contacts_and_messages(db, rapidpro):
    from tests.factories import make_contact

    connection = add(rapidpro)
    contact = make_contact()
    contact.connection_id = connection.id
    db.session.commit()
    connections.remove(connection.id)
    db.session.commit()
    db.session.expire_all()
    assert contact.connection_id is None
    assert db.session.query(Connection).count() == 0


def test_the_only_connection_is_every_contacts_until_there_are_two(db, rapidpro):
    from tests.factories import make_contact

    contact = make_contact()
    first = add(rapidpro, "One")
    assert connections.connection_of(contact) == first
    second = add(rapidpro, "Two")
    assert connections.connection_of(contact) is None
    connections.attach_contact(contact.id, "two")
    db.session.expire_all()
    assert connections.connection_of(contact) == second


# --- the CLI ---------------------------------------------------------------------------------


def test_cli_add_list_test_remove(app, runner, rapidpro):
    result = runner.invoke(
        args=["connections", "add-rapidpro", "--name", "Soporte", "--url", rapidpro.url, "--token", rapidpro.token]
    )
    assert result.exit_code == 0, result.output
    listed = runner.invoke(args=["connections", "list"])
    assert "Soporte" in listed.output and rapidpro.url in listed.output
    assert rapidpro.token not in listed.output and rapidpro.token[:8] not in listed.output
    tested = runner.invoke(args=["connections", "test", "soporte"])
    assert tested.exit_code == 0 and "Soporte Quito" in tested.output
    again = runner.invoke(
        args=["connections", "add-rapidpro", "--name", "soporte", "--url", rapidpro.url, "--token", "x"]
    )
    assert again.exit_code != 0 and "exists already" in again.output
    removed = runner.invoke(args=["connections", "remove", "Soporte"])
    assert removed.exit_code == 0
    assert "No connections" in runner.invoke(args=["connections", "list"]).output
    assert runner.invoke(args=["connections", "remove", "Soporte"]).exit_code != 0


def test_cli_test_prints_the_exact_error(app, runner, rapidpro):
    runner.invoke(args=["connections", "add-rapidpro", "--name", "Bad", "--url", rapidpro.url, "--token", "nope"])
    result = runner.invoke(args=["connections", "test", "Bad"])
    assert result.exit_code != 0
    assert "The workspace refused the API token (HTTP 403)." in result.output
