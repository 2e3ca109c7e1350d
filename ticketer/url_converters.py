"""URL converters for every blueprint: an `<int:...>` in a path names a row, or answers 404."""

from flask import Flask
from werkzeug.routing import IntegerConverter

from ticketer.models import MAX_ID


class IdConverter(IntegerConverter):
    """Werkzeug's `int`, refusing (404) numbers past what an id column holds, e.g. 2**63."""

    def __init__(self, map, fixed_digits: int = 0, min: int | None = None, max: int | None = MAX_ID, signed=False):
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def init_url_converters(app: Flask) -> None:
    """Before any route is added: rules pick their converters when they are registered."""
    app.url_map.converters["int"] = IdConverter
