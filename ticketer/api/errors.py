"""Every API error is JSON: {"error": {"code", "message", "fields"}} with the right HTTP status."""

from collections.abc import Mapping

from flask import current_app, jsonify
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import IntegrityError, OperationalError
from werkzeug.exceptions import HTTPException

from ticketer import database
from ticketer.errors import TicketerError
from ticketer.extensions import db

# Codes for HTTP errors that don't come from a domain error.
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
}


class ApiError(Exception):
    """An error raised by the API layer itself (authentication, request checks)."""

    def __init__(self, status: int, code: str, message: str, fields: Mapping[str, str] | None = None, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = dict(fields or {})
        self.headers = dict(headers or {})


def error_response(status: int, code: str, message: str, fields: Mapping[str, str] | None = None, headers=None):
    response = jsonify({"error": {"code": code, "message": message, "fields": dict(fields or {})}})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def flatten_messages(messages, prefix: str = "") -> dict[str, str]:
    """marshmallow's nested messages -> {"contact.uuid": "Not a valid UUID."}."""
    flat: dict[str, str] = {}
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            key = str(key)
            name = prefix if key == "_schema" else (f"{prefix}.{key}" if prefix else key)
            flat.update(flatten_messages(value, name))
    elif isinstance(messages, list | tuple) and all(isinstance(m, str) for m in messages):
        flat[prefix or "request"] = " ".join(messages)
    elif isinstance(messages, list | tuple):
        for index, value in enumerate(messages):
            flat.update(flatten_messages(value, f"{prefix}.{index}" if prefix else str(index)))
    else:
        flat[prefix or "request"] = str(messages)
    return flat


def _validation_fields(data: Mapping) -> dict[str, str]:
    messages = data.get("messages") or data.get("errors") or {}
    # webargs keys messages by location ("json", "query"); the field names are what a client knows.
    flat: dict[str, str] = {}
    if isinstance(messages, Mapping):
        for location, location_messages in messages.items():
            if isinstance(location_messages, Mapping):
                flat.update(flatten_messages(location_messages))
            else:
                flat.update(flatten_messages(location_messages, "body" if location == "json" else str(location)))
    return flat


def handle_api_error(error: ApiError):
    db.session.rollback()
    return error_response(error.status, error.code, error.message, error.fields, error.headers)


def handle_domain_error(error: TicketerError):
    db.session.rollback()
    return error_response(error.status, error.code, error.message, error.fields)


def handle_http_error(error: HTTPException):
    db.session.rollback()
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    if isinstance(error, CSRFError):
        return error_response(400, "csrf_failed", "Session requests must send the X-CSRFToken header.")
    if status == 422:
        fields = _validation_fields(data)
        names = ", ".join(sorted(fields)) or "the request"
        return error_response(422, "invalid", f"Check these fields: {names}.", fields)
    if status == 400 and data.get("messages"):
        return error_response(400, "malformed_json", "The body is not valid JSON.", _validation_fields(data))
    if status == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
        return error_response(413, "too_large", f"The body is larger than {limit:,} bytes.")
    headers = {"Allow": ", ".join(error.valid_methods)} if getattr(error, "valid_methods", None) else None
    return error_response(status, _HTTP_CODES.get(status, "error"), error.description or error.name, headers=headers)


def handle_integrity_error(error: IntegrityError):
    # A unique rule the services didn't foresee (e.g. a race): the request conflicts with stored data.
    db.session.rollback()
    return error_response(409, "conflict", "This conflicts with data that changed meanwhile; try again.")


def handle_operational_error(error: OperationalError):
    if not database.is_storage_full(error, database.sqlite_path(db.engine)):
        return handle_unexpected_error(error)
    db.session.rollback()
    current_app.logger.error("API write refused: the database's disk is full (%s)", error.orig)
    return error_response(
        503,
        "storage_full",
        "The desk's storage is full; nothing was saved. Try again later.",
        headers={"Retry-After": str(database.STORAGE_FULL_RETRY_AFTER_SECONDS)},
    )


def handle_unexpected_error(error: Exception):
    db.session.rollback()
    current_app.logger.exception("API request failed")
    return error_response(500, "server_error", "Something went wrong on our side; it was logged.")


def register_error_handlers(bp) -> None:
    bp.register_error_handler(ApiError, handle_api_error)
    bp.register_error_handler(TicketerError, handle_domain_error)
    bp.register_error_handler(HTTPException, handle_http_error)
    bp.register_error_handler(IntegrityError, handle_integrity_error)
    bp.register_error_handler(OperationalError, handle_operational_error)
    bp.register_error_handler(Exception, handle_unexpected_error)


_DESCRIPTIONS = {
    400: "Malformed JSON, not JSON, or a session request without its CSRF token",
    401: "No valid `Authorization: Token <key>` (nor a signed-in session)",
    403: "The caller's role doesn't allow this",
    404: "Not found",
    409: "Conflicts with the current state (e.g. the contact has another open ticket)",
    413: "The body is larger than 1 MB",
    422: "Invalid or unknown fields, named in `fields`",
}


def documents_errors(bp, *statuses: int):
    """Document the error answers an endpoint can give, all in the shape of ErrorSchema."""
    from ticketer.api.schemas import ErrorSchema

    def decorator(func):
        for status in statuses:
            func = bp.alt_response(status, schema=ErrorSchema, description=_DESCRIPTIONS[status])(func)
        return func

    return decorator
