"""Domain errors. Each carries a message fit for a person, a stable code and an HTTP status.

Views turn them into a flash or a form error; the API into {"error": {"code", "message", "fields"}}.
"""


class TicketerError(Exception):
    code = "error"
    status = 400

    def __init__(self, message: str, *, field: str | None = None, fields: dict | None = None):
        super().__init__(message)
        self.message = message
        self.fields = dict(fields or {})
        if field:
            self.fields.setdefault(field, message)


class ValidationError(TicketerError):
    code = "invalid"
    status = 422


class NotFound(TicketerError):
    code = "not_found"
    status = 404


class PermissionDenied(TicketerError):
    code = "forbidden"
    status = 403


class Conflict(TicketerError):
    code = "conflict"
    status = 409


class TooManyAttempts(TicketerError):
    code = "too_many_attempts"
    status = 429


class LinkUnusable(TicketerError):
    """An invitation or password reset link that was used, cancelled or has expired."""

    code = "link_unusable"
    status = 410


class ConnectionFailed(TicketerError):
    """A chatbot workspace refused or didn't answer a call (the message is its exact error)."""

    code = "connection_failed"
    status = 502
