"""Checks of untrusted text shared by the services (length limits, cleaning)."""

from ticketer.errors import ValidationError

NOTE_MAX_LENGTH = 10_000
BODY_MAX_LENGTH = 10_000
MESSAGE_MAX_LENGTH = 4_096


def clean_text(value: str | None, *, field: str, max_length: int, required: bool = False) -> str:
    """Strip `value`, refuse it when too long (or empty and required), and drop NUL characters."""
    if value is not None and not isinstance(value, str):
        raise ValidationError(f"{field} must be text.", field=field)
    text = (value or "").replace("\x00", "").strip()
    if required and not text:
        raise ValidationError(f"{field.capitalize()} can't be empty.", field=field)
    if len(text) > max_length:
        raise ValidationError(
            f"{field.capitalize()} is too long ({len(text):,} characters; the limit is {max_length:,}).",
            field=field,
        )
    return text
