"""Workspace connections: add, list, test and remove the chatbot workspaces Ticketer talks to.

A connection's API token is stored (Ticketer calls the workspace with it) but never shown again:
lists and pages show only whether one is set. Which connection a contact belongs to: the one the
open call named (contacts.connection_id), else the only connection there is.
"""

from urllib.parse import urlparse

from flask import current_app
from sqlalchemy import func, select, update

from ticketer.clock import utcnow
from ticketer.engines import outbound
from ticketer.errors import Conflict, ConnectionFailed, NotFound, ValidationError
from ticketer.extensions import db
from ticketer.integrations import rapidpro
from ticketer.models import Contact, Message, User
from ticketer.models.connections import Connection, ConnectionKind, ConnectionSync
from ticketer.roles import Capability, require
from ticketer.services.validation import clean_text

NAME_MAX_LENGTH = 64
URL_MAX_LENGTH = 500
TOKEN_MAX_LENGTH = 255


def clean_base_url(value: str | None) -> str:
    """The server's root URL: http(s), a host, no query; a pasted `/api/v2/...` is cut off."""
    url = clean_text(value, field="base_url", max_length=URL_MAX_LENGTH, required=True).strip()
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValidationError("Enter the server's URL, starting with http:// or https://.", field="base_url")
    if parsed.query or parsed.fragment or parsed.username or parsed.password:
        raise ValidationError("Enter the server's URL without a query, fragment or credentials.", field="base_url")
    path = parsed.path
    if "/api/v2" in path:
        path = path[: path.index("/api/v2")]
    url = f"{parsed.scheme}://{parsed.netloc}{path.rstrip('/')}"
    try:  # checked again on every connection the pull or a send makes (ticketer/engines/outbound.py)
        outbound.check_url(url, outbound.AllowedHosts.parse(current_app.config.get("ENGINE_ALLOWED_HOSTS", "")))
    except outbound.Refused as refused:
        raise ValidationError(
            f"Ticketer doesn't connect to this address: {refused.message}.", field="base_url"
        ) from None
    return url


def policy() -> outbound.Policy:
    """What calls to a workspace may reach (ENGINE_ALLOWED_HOSTS) and their deadline, from the app's config."""
    return outbound.Policy.from_config(current_app.config)


def _clean_name(value: str | None) -> str:
    name = clean_text(value, field="name", max_length=NAME_MAX_LENGTH, required=True).strip()
    if not name:
        raise ValidationError("Give the connection a name.", field="name")
    return name


def _clean_token(value: str | None) -> str:
    token = (value or "").strip()
    if not token or len(token) > TOKEN_MAX_LENGTH or any(c.isspace() or not c.isprintable() for c in token):
        raise ValidationError("Paste the workspace's API token (one word, at most 255 characters).", field="api_token")
    return token


def add_rapidpro(
    *, name: str, base_url: str, api_token: str, silence_bot: bool = True, by: User | None = None
) -> Connection:
    """Add a RapidPro-compatible workspace. Its messages are pulled from this moment on."""
    require(by, Capability.INTEGRATIONS)
    name = _clean_name(name)
    if find_by_name(name) is not None:
        raise Conflict(f"A connection named {name!r} exists already.", field="name")
    connection = Connection(
        name=name,
        kind=ConnectionKind.RAPIDPRO.value,
        base_url=clean_base_url(base_url),
        api_token=_clean_token(api_token),
        silence_bot=bool(silence_bot),
        created_on=utcnow(),
    )
    connection.sync = ConnectionSync(after=connection.created_on)
    db.session.add(connection)
    db.session.flush()
    return connection


def update_connection(
    connection_id: int,
    *,
    name: str | None = None,
    base_url: str | None = None,
    api_token: str | None = None,
    silence_bot: bool | None = None,
    by: User | None = None,
) -> Connection:
    """Change a connection; an empty `api_token` keeps the stored one (it is never shown to be edited)."""
    require(by, Capability.INTEGRATIONS)
    connection = get_connection(connection_id)
    if name is not None:
        name = _clean_name(name)
        other = find_by_name(name)
        if other is not None and other.id != connection.id:
            raise Conflict(f"A connection named {name!r} exists already.", field="name")
        connection.name = name
    if base_url is not None:
        connection.base_url = clean_base_url(base_url)
    if api_token:
        connection.api_token = _clean_token(api_token)
    if silence_bot is not None:
        connection.silence_bot = bool(silence_bot)
    db.session.flush()
    return connection


def get_connection(connection_id: int) -> Connection:
    connection = db.session.get(Connection, connection_id)
    if connection is None:
        raise NotFound("That connection doesn't exist.")
    return connection


def find_by_name(name: str) -> Connection | None:
    return db.session.execute(
        select(Connection).where(func.lower(Connection.name) == name.strip().lower())
    ).scalar_one_or_none()


def find(reference: str) -> Connection:
    """A connection by name (ignoring case) or uuid; NotFound otherwise."""
    connection = (
        find_by_name(reference)
        or db.session.execute(select(Connection).where(Connection.uuid == reference.strip())).scalar_one_or_none()
    )
    if connection is None:
        raise NotFound(f"No connection is named {reference!r}.", field="connection")
    return connection


def list_connections() -> list[Connection]:
    return list(db.session.execute(select(Connection).order_by(Connection.name)).scalars())


def remove(connection_id: int, *, by: User | None = None) -> None:
    """Remove a connection. Its contacts and messages stay; they just no longer point at it."""
    require(by, Capability.INTEGRATIONS)
    connection = get_connection(connection_id)
    db.session.execute(update(Contact).where(Contact.connection_id == connection.id).values(connection_id=None))
    db.session.execute(update(Message).where(Message.connection_id == connection.id).values(connection_id=None))
    db.session.delete(connection)
    db.session.flush()


def check_connection(connection_id: int, *, by: User | None = None) -> str:
    """Test connection: the workspace endpoint, called with the stored token, gives the workspace's
    name; otherwise ConnectionFailed carries the exact error."""
    require(by, Capability.INTEGRATIONS)
    connection = get_connection(connection_id)
    try:
        return rapidpro.workspace_name(connection.base_url, connection.api_token, policy=policy())
    except rapidpro.WorkspaceError as error:
        raise ConnectionFailed(error.message) from None


def connection_of(contact: Contact) -> Connection | None:
    """The workspace a contact talks through: the one they came from, else the only one there is."""
    if contact.connection_id is not None:
        return db.session.get(Connection, contact.connection_id)
    connections = db.session.execute(select(Connection).limit(2)).scalars().all()
    return connections[0] if len(connections) == 1 else None


def attach_contact(contact_id: int, reference: str) -> Connection:
    """Remember that a contact came from the connection named (or with the uuid) `reference`."""
    try:
        connection = find(reference)
    except NotFound as error:
        raise ValidationError(error.message, field="connection") from None
    db.session.execute(update(Contact).where(Contact.id == contact_id).values(connection_id=connection.id))
    return connection
