"""RapidPro-compatible servers, through rapidpro-python's temba_client (API v2).

A flow start is POST /api/v2/flow_starts.json {flow, contacts, params}; an agent reply is
POST /api/v2/broadcasts.json {text, contacts}. Both carry `Authorization: Token <api token>`.
"""

import json
from typing import Any

import temba_client.base
from temba_client import utils as temba_utils
from temba_client.exceptions import (
    TembaBadRequestError,
    TembaConnectionError,
    TembaException,
    TembaNoSuchObjectError,
    TembaRateExceededError,
    TembaSerializationException,
    TembaTokenError,
)
from temba_client.v2 import TembaClient

from ticketer.engines import DeliveryError

USER_AGENT = "Ticketer"
DEFAULT_TIMEOUT = 20.0
_timeout = DEFAULT_TIMEOUT


def _request_with_timeout(method, url, **kwargs):
    # temba_client sets no timeout: a server that never answers would hang the dispatcher.
    kwargs.setdefault("timeout", _timeout)
    return temba_utils.request(method, url, **kwargs)


temba_client.base.request = _request_with_timeout


def set_timeout(seconds: float) -> None:
    global _timeout
    _timeout = seconds


def _client(base_url: str, api_token: str) -> TembaClient:
    return TembaClient(base_url, api_token, user_agent=USER_AGENT)


def _call(action) -> Any:
    """The object the server answered with (None if its answer didn't parse), or DeliveryError."""
    try:
        return action()
    except TembaSerializationException:
        return None  # the server accepted it (2xx); only its answer has an unexpected shape
    except TembaRateExceededError as error:
        raise DeliveryError(f"RapidPro rate limit: {error}") from None
    except (TembaBadRequestError, TembaTokenError, TembaNoSuchObjectError) as error:
        raise DeliveryError(f"RapidPro refused it: {error}", permanent=True) from None
    except TembaConnectionError as error:
        raise DeliveryError(f"RapidPro unreachable: {error}") from None
    except TembaException as error:
        raise DeliveryError(f"RapidPro error: {error}") from None
    except Exception as error:  # a malformed answer, a timeout: retry later
        raise DeliveryError(f"RapidPro error: {type(error).__name__}: {error}") from None


def start_flow(*, base_url: str, api_token: str, flow_uuid: str, contact_uuid: str, params: dict) -> str:
    """Start the flow for the contact; returns the engine's answer (the flow start it made)."""
    start = _call(
        lambda: _client(base_url, api_token).create_flow_start(flow_uuid, contacts=[contact_uuid], params=params)
    )
    return json.dumps(start.serialize(), default=str) if start is not None else "accepted"


def send_message(*, base_url: str, api_token: str, contact_uuid: str, text: str) -> str:
    """Send an agent reply to the contact as a broadcast; returns the engine's answer."""
    broadcast = _call(lambda: _client(base_url, api_token).create_broadcast(text, contacts=[contact_uuid]))
    return json.dumps(broadcast.serialize(), default=str) if broadcast is not None else "accepted"
