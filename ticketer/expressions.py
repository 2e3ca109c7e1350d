"""RapidPro-style expressions in ticket bodies and message templates.

Supported: @results.NAME, @results.NAME.value, @results.NAME.category, @contact.name,
@contact.urn, @contact.uuid, @contact.language, @fields.KEY, @ticket.* (topic, uuid, ...).
An unknown reference renders empty, as in RapidPro; "@@" is a literal "@".
"""

import re
from collections.abc import Mapping
from typing import Any

_EXPRESSION = re.compile(r"@@|(?<![\w.])@(results|contact|fields|ticket)((?:\.[A-Za-z0-9_]+)*)")


def _lookup(root: Any, path: list[str]) -> str:
    value = root
    for key in path:
        if isinstance(value, Mapping):
            match = next((v for k, v in value.items() if str(k).lower() == key.lower()), None)
            value = match
        else:
            return ""
        if value is None:
            return ""
    if isinstance(value, Mapping):
        # @results.NAME and @ticket.topic render the mapping's value (RapidPro's default property).
        for default_key in ("value", "name", "text"):
            if default_key in value:
                return "" if value[default_key] is None else str(value[default_key])
        return ""
    return str(value)


def render(template: str, context: Mapping[str, Any]) -> str:
    """Evaluate the expressions in `template` against `context` (keys: results, contact, fields, ticket)."""

    def substitute(match: re.Match) -> str:
        if match.group(0) == "@@":
            return "@"
        root = context.get(match.group(1)) or {}
        path = [part for part in match.group(2).split(".") if part]
        if not path:
            return ""
        return _lookup(root, path)

    return _EXPRESSION.sub(substitute, template or "")


def normalise_results(results: Mapping[str, Any] | None) -> dict[str, dict[str, str | None]]:
    """Flow results as RapidPro posts them ({name: {value, category}}) or plain {name: value}."""
    normalised: dict[str, dict[str, str | None]] = {}
    for name, result in (results or {}).items():
        if isinstance(result, Mapping):
            value = result.get("value")
            category = result.get("category")
        else:
            value, category = result, None
        normalised[str(name)] = {
            "value": None if value is None else str(value),
            "category": None if category is None else str(category),
        }
    return normalised
