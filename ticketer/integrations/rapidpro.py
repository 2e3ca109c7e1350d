"""A RapidPro-compatible workspace (RapidPro, TextIt ...) through rapidpro-python's temba_client.

What the desk reads and writes there (API v2; shared/contracts/rapidpro-api-v2.md):
GET org.json (the workspace's name: a token check), GET messages.json?after=&before= (newest
first, cursor pages followed through `next`), GET flows.json, POST messages.json (a reply to one
contact). Errors come back as WorkspaceError with the server's own words, and for 429 the
seconds its Retry-After asked for.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from temba_client.exceptions import (
    TembaBadRequestError,
    TembaConnectionError,
    TembaException,
    TembaNoSuchObjectError,
    TembaRateExceededError,
    TembaTokenError,
)
from temba_client.v2 import TembaClient

# Importing the engine routes temba_client's requests through ticketer/engines/outbound.py: targets
# checked against ENGINE_ALLOWED_HOSTS (after DNS, on every redirect), a deadline for each exchange.
from ticketer.engines import outbound
from ticketer.engines import rapidpro as _engine  # noqa: F401

USER_AGENT = "Ticketer"


class WorkspaceError(Exception):
    """A call the workspace refused or didn't answer. `retry_after`: seconds it asked us to wait (429)."""

    def __init__(self, message: str, *, retry_after: int | None = None, permanent: bool = False):
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.permanent = permanent


@dataclass(frozen=True)
class WorkspaceMessage:
    """One message as the workspace lists it."""

    uuid: str
    contact_uuid: str
    direction: str  # "in" or "out"
    status: str | None
    text: str
    attachments: list[dict]
    created_on: datetime


def client(base_url: str, api_token: str) -> TembaClient:
    return TembaClient(base_url, api_token, user_agent=USER_AGENT)


def _call(action, policy: outbound.Policy):
    """One exchange with the workspace under `policy`: its answer, or WorkspaceError."""
    try:
        with outbound.exchange(policy):
            return action()
    except outbound.Refused as error:
        raise WorkspaceError(f"Refused: {error.message}.", permanent=True) from None
    except outbound.DeadlineExceeded as error:
        raise WorkspaceError(f"The workspace didn't answer: {error.message}.") from None
    except TembaRateExceededError as error:
        raise WorkspaceError(f"The workspace is throttling requests: {error}", retry_after=error.retry_after) from None
    except TembaTokenError:
        raise WorkspaceError("The workspace refused the API token (HTTP 403).", permanent=True) from None
    except TembaNoSuchObjectError:
        raise WorkspaceError("The workspace answered 404: is the server URL right?", permanent=True) from None
    except TembaBadRequestError as error:
        detail = outbound.sanitise(str(error))
        raise WorkspaceError(f"The workspace refused the request: {detail}", permanent=True) from None
    except TembaConnectionError:
        raise WorkspaceError("Could not connect to the workspace's server.") from None
    except TembaException as error:
        raise WorkspaceError(f"The workspace answered with an error: {outbound.reason(error)}") from None
    except (ValueError, KeyError, TypeError) as error:  # an answer that isn't the API's JSON
        raise WorkspaceError(f"The server's answer is not RapidPro's API: {type(error).__name__}") from None
    except Exception as error:  # a timeout, a reset connection: try again later
        raise WorkspaceError(f"The workspace didn't answer: {outbound.reason(error)}.") from None


def workspace_name(base_url: str, api_token: str, *, policy: outbound.Policy) -> str:
    """The workspace's name (GET /api/v2/org.json, the alias temba_client calls): checks URL and token."""
    org = _call(lambda: client(base_url, api_token).get_org(), policy)
    if org is None or not getattr(org, "name", None):
        raise WorkspaceError("The server's answer is not RapidPro's API: no workspace name.")
    return org.name


def message_pages(
    base_url: str, api_token: str, *, after: datetime, before: datetime | None = None, policy: outbound.Policy
) -> Iterator[list[WorkspaceMessage]]:
    """Pages of messages created in [after, before], newest first, following the `next` cursors.

    No retries inside: a 429 surfaces as WorkspaceError(retry_after=...) and the caller waits.
    """
    query = client(base_url, api_token).get_messages(after=after, before=before)
    fetches = query.iterfetches(retry_on_rate_exceed=False)
    while True:
        page = _call(lambda: next(fetches, None), policy)  # one exchange, one deadline, per page
        if page is None:
            return
        yield [_message(m) for m in page if m.uuid and m.contact is not None and m.created_on is not None]


def send_message(
    base_url: str, api_token: str, *, contact_uuid: str, text: str, policy: outbound.Policy
) -> WorkspaceMessage:
    """An agent's reply to one contact: POST /api/v2/messages.json {contact, text} (create_message),
    not a broadcast. Returns the message the workspace made (its uuid and first status)."""
    message = _call(lambda: client(base_url, api_token).create_message(contact_uuid, text, None), policy)
    if message is None or not message.uuid:
        raise WorkspaceError("The server's answer is not RapidPro's API: no message uuid.")
    return _message(message)


def message_status(base_url: str, api_token: str, message_uuid: str, *, policy: outbound.Policy) -> str | None:
    """The workspace's status of one message (GET messages.json?uuid=), None if it lists none."""
    message = _call(lambda: client(base_url, api_token).get_messages(uuid=message_uuid).first(), policy)
    return message.status if message is not None else None


def _message(message) -> WorkspaceMessage:
    return WorkspaceMessage(
        uuid=str(message.uuid),
        contact_uuid=str(message.contact.uuid),
        direction=message.direction or "",
        status=message.status,
        text=message.text or "",
        attachments=[
            {"content_type": a.content_type, "url": a.url} for a in (message.attachments or []) if a is not None
        ],
        created_on=message.created_on,
    )
