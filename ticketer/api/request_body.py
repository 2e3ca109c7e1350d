"""Checks of the raw JSON body before the schemas see it, so no input can cause a 500.

Refused: a body that isn't JSON, NaN/Infinity, numbers too large for a double or with thousands
of digits, nesting deeper than 32, and text with NUL characters or unpaired surrogates (the
databases can't store them).
"""

import json
import math
from urllib.parse import unquote_to_bytes

from flask import request

from ticketer.api.errors import ApiError

MAX_DEPTH = 32
MAX_NUMBER_DIGITS = 100


def _bad_json(message: str) -> ApiError:
    return ApiError(400, "malformed_json", message)


def _not_json() -> ApiError:
    return ApiError(400, "not_json", "Send a JSON body with `Content-Type: application/json`.")


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise _bad_json(f"Numbers may have at most {MAX_NUMBER_DIGITS} digits.")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _bad_json("A number is too large.")
    return value


def _parse_constant(text: str):
    raise _bad_json(f"{text} is not valid JSON.")


def _bad_text(value: str) -> bool:
    if "\x00" in value:
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _walk(value, path: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise _bad_json(f"The body is nested deeper than {MAX_DEPTH} levels.")
    if isinstance(value, str):
        if _bad_text(value):
            raise ApiError(422, "invalid", "Text can't contain NUL characters.", {path or "body": "Invalid text."})
    elif isinstance(value, dict):
        for key, item in value.items():
            name = f"{path}.{key}" if path else str(key)
            if _bad_text(key):
                raise ApiError(422, "invalid", "Names can't contain NUL characters.", {path or "body": "Invalid name."})
            _walk(item, name, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, f"{path}.{index}" if path else str(index), depth + 1)


def check_query_string() -> None:
    if b"%00" in request.query_string or b"\x00" in request.query_string:
        raise ApiError(422, "invalid", "The query can't contain NUL characters.", {"query": "Invalid text."})
    try:
        unquote_to_bytes(request.query_string).decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(422, "invalid", "The query must be UTF-8.", {"query": "Invalid text."}) from None


def check_json_body() -> None:
    """For a request with a body: it is JSON (Content-Type and syntax) and storable."""
    # By the headers first: a session's CSRF check may already have read a form body away.
    announced = bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    if announced and not request.is_json:
        raise _not_json()
    raw = request.get_data(cache=True)  # over MAX_CONTENT_LENGTH: werkzeug raises 413 here
    if not raw.strip():
        return
    if not request.is_json:
        raise _not_json()
    try:
        text = raw.decode("utf-8")
        data = json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant)
    except ApiError:
        raise
    except (ValueError, RecursionError):
        raise _bad_json("The body is not valid JSON.") from None
    _walk(data, "", 0)
