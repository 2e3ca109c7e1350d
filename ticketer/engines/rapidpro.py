"""RapidPro-compatible servers, through rapidpro-python's temba_client (API v2).

A flow start is POST /api/v2/flow_starts.json {flow, contacts, params}; an agent reply is
POST /api/v2/broadcasts.json {text, contacts}. Both carry `Authorization: Token <api token>`.
"""

import json
from typing import Any

import temba_client.base
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

from ticketer.engines import DeliveryError, outbound

USER_AGENT = "Ticketer"


def _request_through_outbound(method, url, **kwargs):
    # temba_client sends every request through this module-level function (its documented seam for
    # tests): route it through outbound, which checks the target and holds the exchange's deadline.
    if "data" in kwargs:
        kwargs["data"] = json.dumps(kwargs["data"])  # as temba_client.utils.request does
    return outbound.request(method, url, **kwargs)


temba_client.base.request = _request_through_outbound


def _client(base_url: str, api_token: str) -> TembaClient:
    return TembaClient(base_url, api_token, user_agent=USER_AGENT)


def _call(action, policy: outbound.Policy) -> Any:
    """The object the server answered with (None if its answer didn't parse), or DeliveryError.

    Error texts carry the answer's status line and the library's own messages, never the body of
    an answer (a 400's body is what temba_client would put in its error).
    """
    exchange = None
    try:
        with outbound.exchange(policy) as exchange:
            return action()
    except TembaSerializationException:
        return None  # the server accepted it (2xx); only its answer has an unexpected shape
    except outbound.Refused as error:
        raise DeliveryError(f"RapidPro refused: {error.message}", permanent=True) from None
    except outbound.DeadlineExceeded as error:
        raise DeliveryError(f"RapidPro unreachable: {error.message}") from None
    except TembaRateExceededError as error:
        raise DeliveryError(f"RapidPro rate limit: {error}") from None
    except TembaBadRequestError:
        raise DeliveryError(f"RapidPro refused it: {exchange.status}", permanent=True) from None
    except (TembaTokenError, TembaNoSuchObjectError) as error:
        raise DeliveryError(f"RapidPro refused it: {exchange.status} ({error})", permanent=True) from None
    except TembaConnectionError as error:
        raise DeliveryError(f"RapidPro unreachable: {outbound.reason(error)}") from None
    except TembaException:
        status = exchange.status if exchange is not None and exchange.status else "no answer"
        raise DeliveryError(f"RapidPro error: {status}") from None
    except Exception as error:  # a malformed answer, a lost connection: retry later
        raise DeliveryError(f"RapidPro error: {outbound.reason(error)}") from None


def start_flow(
    *, base_url: str, api_token: str, flow_uuid: str, contact_uuid: str, params: dict, policy: outbound.Policy
) -> str:
    """Start the flow for the contact; returns the engine's answer (the flow start it made)."""
    start = _call(
        lambda: _client(base_url, api_token).create_flow_start(flow_uuid, contacts=[contact_uuid], params=params),
        policy,
    )
    return json.dumps(start.serialize(), default=str) if start is not None else "accepted"


def send_message(*, base_url: str, api_token: str, contact_uuid: str, text: str, policy: outbound.Policy) -> str:
    """Send an agent reply to the contact as a broadcast; returns the engine's answer."""
    broadcast = _call(lambda: _client(base_url, api_token).create_broadcast(text, contacts=[contact_uuid]), policy)
    return json.dumps(broadcast.serialize(), default=str) if broadcast is not None else "accepted"
