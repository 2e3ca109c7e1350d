"""Signed webhooks: a JSON POST whose HMAC-SHA256 signature receivers check with the flow's secret.

Headers: X-Ticketer-Event, X-Ticketer-Delivery (the same on every try of one delivery),
X-Ticketer-Timestamp (unix seconds) and X-Ticketer-Signature: sha256=HEX, where HEX is
HMAC-SHA256(secret, f"{timestamp}.{body}") over the raw body bytes.
"""

import hashlib
import hmac
import json
import time

import requests

from ticketer.engines import DeliveryError, outbound

SIGNATURE_TOLERANCE_SECONDS = 300


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    now: float | None = None,
    tolerance: int = SIGNATURE_TOLERANCE_SECONDS,
) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent (no replays)."""
    try:
        age = abs((time.time() if now is None else now) - int(timestamp))
    except (TypeError, ValueError):
        return False
    return age <= tolerance and hmac.compare_digest(sign(secret, timestamp, body), signature or "")


def post(*, url: str, secret: str, event: str, delivery_id: str, payload: dict, policy: outbound.Policy) -> str:
    """POST the signed payload; returns the answer's status line. 2xx is success; no redirects.

    What is kept of a failure is its status line and a short reason, never the answer's body.
    """
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Ticketer-Event": event,
        "X-Ticketer-Delivery": delivery_id,
        "X-Ticketer-Timestamp": timestamp,
        "X-Ticketer-Signature": sign(secret, timestamp, body),
    }
    try:
        with outbound.exchange(policy):
            response = outbound.request("POST", url, data=body, headers=headers, allow_redirects=False)
    except outbound.Refused as error:
        raise DeliveryError(f"Webhook refused: {error.message}", permanent=True) from None
    except (outbound.DeadlineExceeded, requests.RequestException) as error:
        raise DeliveryError(f"Webhook unreachable: {outbound.reason(error)}") from None
    answer = outbound.status_line(response)
    if 200 <= response.status_code < 300:
        return answer
    # 4xx means the receiver refuses this delivery as it is; 408/429 and 5xx may pass later.
    permanent = 400 <= response.status_code < 500 and response.status_code not in (408, 409, 425, 429)
    raise DeliveryError(f"Webhook answered {answer}", permanent=permanent)
