"""What hostile-request tests compare and submit: a snapshot of every table, and the forms the
panel really renders (so a refused POST is refused with a form that would otherwise work)."""

from html.parser import HTMLParser
from urllib.parse import urlsplit

from sqlalchemy import String, cast, func, literal, select, union_all

from ticketer import database
from ticketer.extensions import db as _db

# Columns a request may touch without changing anything anyone asked for.
VOLATILE_COLUMNS = {"last_used_on"}


def _row_text(table):
    """One text value per row of `table` (every column but the volatile ones; NULL shown as ~)."""
    columns = [c for c in table.columns if c.name not in VOLATILE_COLUMNS]
    text = None
    for column in columns:
        part = func.coalesce(cast(column, String), literal("~", String))
        text = part if text is None else text + literal("|", String) + part
    return select(literal(table.name, String).label("name"), text.label("row"))


_STATEMENTS: dict[tuple, str] = {}


def snapshot(app) -> dict[str, list[str]]:
    """Every row of every table (volatile columns left out), comparable with ==. One query."""
    result: dict[str, list[str]] = {}
    with app.app_context(), database.read_only_transactions(), _db.engine.connect() as connection:
        tables = _db.metadata.sorted_tables
        key = (connection.dialect.name, *(t.name for t in tables))
        if key not in _STATEMENTS:
            _STATEMENTS[key] = str(
                union_all(*(_row_text(t) for t in tables)).compile(connection, compile_kwargs={"literal_binds": True})
            )
        for name, row in connection.exec_driver_sql(_STATEMENTS[key]):
            result.setdefault(name, []).append(row)
    for table in tables:
        result.setdefault(table.name, [])
    return {name: sorted(rows) for name, rows in result.items()}


def changed_tables(before: dict, after: dict) -> list[str]:
    return [name for name in before if before[name] != after.get(name)]


class _FormParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[dict] = []
        self._form: dict | None = None
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            method = (attrs.get("method") or "get").lower()
            self._form = {"method": method, "action": attrs.get("action") or "", "data": {}}
            self.forms.append(self._form)
        elif self._form is None:
            return
        elif tag == "input" and attrs.get("name"):
            kind = (attrs.get("type") or "text").lower()
            if kind in ("checkbox", "radio"):
                # Tick the first box of a name (e.g. the first ticket of a bulk form).
                self._form["data"].setdefault(attrs["name"], attrs.get("value", "on"))
            elif kind not in ("submit", "button", "file"):
                value = attrs.get("value") or ("hostile test" if kind in ("text", "search") else "")
                if kind == "email" and not value:
                    value = f"someone-new-{len(self._form['data'])}@example.com"
                if kind == "password":
                    value = "a-long-enough-password-1"
                self._form["data"][attrs["name"]] = value
        elif tag == "select" and attrs.get("name"):
            self._select = attrs["name"]
        elif tag == "option" and self._select:
            value = attrs.get("value", "")
            data = self._form["data"]
            # The last non-empty option: a real choice other than the current one, when there is one.
            if value or self._select not in data:
                data[self._select] = value
        elif tag == "textarea" and attrs.get("name"):
            self._textarea = attrs["name"]
            self._form["data"][attrs["name"]] = "hostile test text"
        elif tag == "button" and attrs.get("name") and attrs.get("value"):
            self._form["data"].setdefault(attrs["name"], attrs["value"])

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def forms_in(html: str, page_url: str) -> list[dict]:
    """[{method, action (a path), data}] of every form in the page; fields filled as a person would."""
    parser = _FormParser()
    parser.feed(html)
    for form in parser.forms:
        action = form["action"] or page_url
        parts = urlsplit(action)
        form["action"] = parts.path + (f"?{parts.query}" if parts.query else "")
    return parser.forms
