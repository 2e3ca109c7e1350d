"""SQL-ish, oversized and malformed values in every search box, filter, form field and API field:
a clear 4xx or quietly ignored, never a 500, never reflected as markup, and a refused request
changes nothing in the database."""

import base64
import copy
import json
import re
import uuid
from dataclasses import dataclass

import pytest
from flask import url_for
from werkzeug.exceptions import MethodNotAllowed, NotFound

from tests.security.evidence import changed_tables, forms_in, snapshot
from tests.security.test_hostile_auth import HOST, _sign_in, harvest_forms
from tests.test_access_matrix import OK, RULES, build_url, url_values
from ticketer.extensions import db as _db
from ticketer.models import User
from ticketer.services import api_tokens

SCRIPT = "<script>alert(1)</script>"
HOSTILE = [
    "' OR '1'='1' --",
    "1; DROP TABLE tickets; --",
    "%' UNION SELECT email, password_hash FROM users --",
    "%_%\\",
    "-1",
    "99999999999999999999999999",
    "1e999",
    "NaN",
    "\x00",
    "../../../../etc/passwd",
    "😀\u202e\ufeff",
    SCRIPT,
    # Values at the edges of what the databases hold: datetimes that leave the calendar once
    # converted to UTC, a date with no day after it, and cursors and ids past 64 bits.
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31",
    str(2**63),
    "x" * 20_000,
]
# The nastiest few, for the many single-field requests: SQL, an integer no column holds, NUL, size.
SHORT_HOSTILE = [HOSTILE[0], HOSTILE[5], HOSTILE[8], SCRIPT, HOSTILE[-1]]


def raw_cursor(text: str) -> str:
    """A cursor in the lists' encoding holding any text, e.g. an id no column holds."""
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


# Decodable cursors whose position the databases can't hold: an id past 64 bits, moments off the calendar.
EDGE_CURSORS = [
    raw_cursor(f"2026-01-01T00:00:00+00:00|{2**63}"),
    raw_cursor(f"2026-01-01T00:00:00+00:00|{2**64}"),
    raw_cursor("0001-01-01T00:00:00+14:00|1"),
    raw_cursor("9999-12-31T23:59:59-14:00|1"),
]
HOSTILE[-1:-1] = EDGE_CURSORS
BIG_INTEGERS = [2**63, 2**64, 10**30]
# Query parameters the panel's pages read, whether or not a form shows them.
PROBE_PARAMS = ["q", "search", "folder", "status", "topic", "assignee", "after", "before", "page", "sort", "desc"]
PROBE_PARAMS += ["page_size", "days", "from", "to", "start", "end", "period", "agent", "user", "id", "flt0_0", "back"]


@dataclass
class Answer:
    status_code: int
    mimetype: str
    text: str

    def get_json(self, silent: bool = True):
        try:
            return json.loads(self.text)
        except ValueError:
            return None


def ask(client, method: str, url: str, **kwargs) -> Answer:
    """The response, read to the end and closed; an exception the app let out counts as a 500."""
    try:
        response = client.open(url, method=method, **kwargs)
    except Exception as error:  # TESTING propagates the app's exceptions: for this test, that is a 500
        return Answer(500, "text/plain", f"{type(error).__name__}: {error}")
    try:
        return Answer(response.status_code, response.mimetype, response.get_data(as_text=True))
    except Exception as error:  # raised while streaming the body
        return Answer(500, "text/plain", f"{type(error).__name__} while streaming: {error}")
    finally:
        response.close()


def _check_answer(response: Answer, where: str, failures: list[str]) -> None:
    if response.status_code >= 500:
        failures.append(f"{where}: {response.status_code} {response.text[:200]}")
    elif response.mimetype == "text/html" and SCRIPT in response.text:
        failures.append(f"{where}: the page reflects {SCRIPT} unescaped")


def _admin_client(app, world):
    client = app.test_client()
    _sign_in(client, world["cookies"]["admin"])
    return client


def test_hostile_query_strings_on_every_page(app, world):
    client = _admin_client(app, world)
    before = snapshot(app)
    failures: list[str] = []
    pages = 0
    for endpoint, rule in sorted(RULES.items()):
        if rule.allowed != OK or endpoint.startswith("auth."):
            continue
        url = build_url(app, endpoint, world)
        response = ask(client, "GET", url)
        if response.status_code != 200:
            continue
        pages += 1
        url, _, own_query = url.partition("?")
        own = dict(pair.split("=", 1) for pair in own_query.split("&") if "=" in pair)
        separator = f"?{own_query}&" if own_query else "?"
        # Bytes that are not UTF-8, in every parameter at once.
        raw = "&".join(f"{name}=%ff%fe%27" for name in PROBE_PARAMS)
        _check_answer(ask(client, "GET", url + separator + raw), f"{endpoint} non-UTF-8", failures)
        form_params = set()
        if response.mimetype == "text/html":
            for form in forms_in(response.text, url):
                if form["method"] == "get":
                    form_params |= set(form["data"])
        for value in HOSTILE:
            # Every parameter at once, then each field of the page's search and filter forms alone.
            # (The oversized value goes in one parameter at a time: 25 of them make a 500 kB URL.)
            names = PROBE_PARAMS + sorted(form_params) if value != HOSTILE[-1] else sorted(form_params)[:1]
            query = {**own, **dict.fromkeys(names, value)}
            _check_answer(ask(client, "GET", url, query_string=query), f"{endpoint} all={value[:30]!r}", failures)
            for name in sorted(form_params) if value in SHORT_HOSTILE else ():
                response = ask(client, "GET", url, query_string={**own, name: value})
                _check_answer(response, f"{endpoint} {name}={value[:30]!r}", failures)
    assert pages >= 8
    assert not failures, "\n".join(failures[:30])
    assert changed_tables(before, snapshot(app)) == []


def test_hostile_values_in_every_form_field(app, world):
    forms = harvest_forms(app, world)
    client = _admin_client(app, world)
    adapter = app.url_map.bind(HOST)
    failures: list[str] = []
    posted = 0
    for endpoint, endpoint_forms in sorted(forms.items(), key=lambda item: (item[0] == "tickets.close", item[0])):
        form = endpoint_forms[0]
        for name in sorted(set(form["data"]) - {"csrf_token"}):
            for value in SHORT_HOSTILE:
                data = {**form["data"], name: value}
                before = snapshot(app)
                response = ask(client, "POST", form["action"], data=data)
                posted += 1
                where = f"{endpoint} {name}={value[:30]!r}"
                _check_answer(response, where, failures)
                if 400 <= response.status_code < 500 and (changed := changed_tables(before, snapshot(app))):
                    failures.append(f"{where}: refused with {response.status_code} but changed {changed}")
        try:
            adapter.match(form["action"].split("?")[0], method="POST")
        except (NotFound, MethodNotAllowed):
            failures.append(f"{endpoint}: {form['action']} is no POST endpoint")
    assert posted >= 40
    assert not failures, "\n".join(failures[:30])


def test_oversized_and_malformed_bodies(app, world):
    client = _admin_client(app, world)
    with app.app_context():
        _, key = api_tokens.create_token("Hostile", by=_db.session.get(User, world["users"]["admin"]))
        _db.session.commit()
    token = {"Authorization": f"Token {key}"}
    note_url = build_url(app, "tickets.note", world)
    before = snapshot(app)
    big = "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    assert client.post(note_url, data={"note": big}).status_code == 413
    anonymous = app.test_client()
    assert anonymous.post("/login", data={"email": "a@example.com", "password": big}).status_code == 413
    response = client.post(
        "/api/v1/tickets", data=json.dumps({"body": big}), headers=token, content_type="application/json"
    )
    assert response.status_code == 413
    assert response.get_json()["error"]["code"]
    nested = "[" * 100_000 + "]" * 100_000
    cases = [
        ("deep nesting", nested, "application/json"),
        ("not JSON", "{'contact': ", "application/json"),
        ("a JSON string", json.dumps("hello"), "application/json"),
        ("a JSON list", "[]", "application/json"),
        ("bad UTF-8", b'{"contact": {"urn": "tel:\xff\xfe"}}', "application/json"),
        ("form encoded", "contact=tel%3A%2B593", "application/x-www-form-urlencoded"),
        ("no content type", '{"contact": {"urn": "tel:+593999"}}', None),
        ("huge number", '{"contact": {"urn": "tel:+593999"}, "topic": ' + "9" * 5000 + "}", "application/json"),
        ("NaN", '{"contact": {"urn": "tel:+593999"}, "topic": NaN}', "application/json"),
        ("duplicate keys", '{"contact": {"urn": "tel:+593999"}, "contact": 1}', "application/json"),
    ]
    failures = []
    for label, body, content_type in cases:
        response = ask(client, "POST", "/api/v1/tickets", data=body, headers=token, content_type=content_type)
        error = (response.get_json(silent=True) or {}).get("error") or {}
        if not (400 <= response.status_code < 500 and error.get("code")):
            failures.append(f"{label}: {response.status_code} {response.text[:120]}")
    assert not failures, "\n".join(failures)
    assert changed_tables(before, snapshot(app)) == []


# --- every field of the JSON API, from its own OpenAPI description ----------------------------

JSON_HOSTILE = [HOSTILE[0], HOSTILE[8], HOSTILE[-1], None, 10**30, True, ["x"] * 500, {"a": {"b": [SCRIPT]}}]


def _resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].split("/")[-1]]
    for option in schema.get("anyOf", []):
        if "$ref" in option or option.get("properties"):
            return _resolve(spec, option)
    return schema


def field_paths(spec: dict, schema: dict, base, prefix: tuple = ()) -> list[tuple]:
    """Every property (nested objects, array items and map entries of `base` too) as a path."""
    schema = _resolve(spec, schema)
    paths = []
    for name, child in schema.get("properties", {}).items():
        path = (*prefix, name)
        paths.append(path)
        value = base.get(name) if isinstance(base, dict) else None
        child = _resolve(spec, child)
        if child.get("type") == "array" and value:
            paths.append((*path, 0))
        elif child.get("properties"):
            paths += field_paths(spec, child, value or {}, path)
        elif child.get("type") == "object" and isinstance(value, dict):
            paths += [(*path, key) for key in value]
    return paths


def _with(body, path: tuple, value):
    body = copy.deepcopy(body)
    target = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return body


def test_hostile_values_in_every_api_field(app, world):
    with app.app_context():
        admin = _db.session.get(User, world["users"]["admin"])
        agent_email = _db.session.get(User, world["users"]["agent"]).email
        _, key = api_tokens.create_token("Hostile", by=admin)
        _db.session.commit()
    client = app.test_client()
    token = {"Authorization": f"Token {key}"}
    spec = client.get("/api/v1/openapi.json").get_json()
    bases = {
        "TicketOpen": {
            "contact": {
                "uuid": str(uuid.uuid4()),
                "urn": "tel:+593999111222",
                "urns": ["whatsapp:593999111222"],
                "name": "Base Contact",
                "language": "spa",
                "fields": {"city": "Quito"},
            },
            "topic": "Billing",
            "assignee": agent_email,
            "body": "Help with @results.order",
            "results": {"order": {"value": "4521", "category": "Has Number"}},
            "fields": {"plan": "pro"},
            "flow": {"uuid": str(uuid.uuid4()), "name": "Support bot"},
        },
        "TicketAction": {"tickets": [world["ticket_uuid"]], "action": "add_note", "note": "hi", "topic": "General"},
        "MessageIn": {"urn": "tel:+593999111222", "text": "hello"},
        "TopicIn": {"name": "Hostile topics"},
    }
    failures: list[str] = []
    fuzzed = 0
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if not isinstance(operation, dict):
                continue
            url = path.replace("{ticket_uuid}", world["ticket_uuid"]).replace("{contact_uuid}", str(uuid.uuid4()))
            schema_ref = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if schema_ref:
                name = schema_ref["$ref"].split("/")[-1]
                assert name in bases, f"teach this test a valid {name} body"
                base = bases[name]
                response = client.open(url, method=method.upper(), json=base, headers=token)
                assert response.status_code in (200, 201), (name, response.get_json())
                requests = [(p, _with(base, p, v)) for p in field_paths(spec, schema_ref, base) for v in JSON_HOSTILE]
                requests += [(("<key>",), {**base, SCRIPT: 1})]
            else:
                params = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
                requests = [((p,), {p: v}) for p in params for v in SHORT_HOSTILE]
            for field, payload in requests:
                before = snapshot(app)
                if schema_ref:
                    response = ask(client, method.upper(), url, json=payload, headers=token)
                else:
                    response = ask(client, method.upper(), url, query_string=payload, headers=token)
                fuzzed += 1
                where = f"{method.upper()} {path} {'.'.join(map(str, field))}={json.dumps(payload)[:60]}"
                status = response.status_code
                body = response.get_json(silent=True)
                if status >= 500:
                    failures.append(f"{where}: {status} {response.text[:200]}")
                    continue
                if status >= 400:
                    if not (isinstance(body, dict) and body.get("error", {}).get("code")):
                        failures.append(f"{where}: {status} without a JSON error")
                    if changed := changed_tables(before, snapshot(app)):
                        failures.append(f"{where}: refused with {status} but changed {changed}")
    assert fuzzed >= 150
    assert not failures, "\n".join(failures[:30])


@pytest.mark.parametrize("path", ["/api/v1/tickets/{}", "/api/v1/contacts/{}"])
def test_hostile_path_parameters(app, world, path):
    with app.app_context():
        _, key = api_tokens.create_token("Hostile", by=_db.session.get(User, world["users"]["admin"]))
        _db.session.commit()
    client = app.test_client()
    for value in ["' OR '1'='1", "1", "-1", "x" * 5000, "%00", "..%2F..%2F", str(uuid.uuid4()).upper()]:
        response = client.get(path.format(value), headers={"Authorization": f"Token {key}"})
        assert response.status_code in (400, 404), (value[:40], response.status_code)
        assert response.get_json()["error"]["code"]


# --- values at the edges of what the databases hold (issue 14, item 3) ------------------------


_PATH_PARAMETER = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


def _path_with_integer(rule, world: dict, big: int) -> str:
    """The rule's path with `big` for each <int:...> and real values for the rest."""
    values = url_values(rule.endpoint, set(rule.arguments), world)

    def fill(match) -> str:
        converter, name = match.groups()
        return str(big) if converter == "int" else str(values[name])

    return _PATH_PARAMETER.sub(fill, rule.rule)


def test_path_integers_past_64_bits_answer_404_on_every_page(app, world):
    client = _admin_client(app, world)
    before = snapshot(app)
    failures, checked = [], 0
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if "<int:" not in rule.rule:
            continue
        for big in BIG_INTEGERS:
            path = _path_with_integer(rule, world, big)
            for method in sorted(rule.methods & {"GET", "POST"}):
                checked += 1
                response = ask(client, method, path)
                if response.status_code not in (400, 404):
                    failures.append(f"{method} {path}: {response.status_code} {response.text[:120]}")
    assert checked >= 10
    assert not failures, "\n".join(failures)
    assert changed_tables(before, snapshot(app)) == []


@pytest.mark.parametrize("cursor", EDGE_CURSORS)
@pytest.mark.parametrize("name", ["after", "before"])
def test_panel_cursors_off_the_calendar_or_past_64_bits_answer_400(app, world, name, cursor):
    client = _admin_client(app, world)
    for folder in ("all", "overdue"):
        response = ask(client, "GET", "/admin/tickets/", query_string={"folder": folder, name: cursor})
        assert response.status_code == 400, (folder, response.status_code, response.text[:200])


@pytest.mark.parametrize("path", ["/admin/dashboard/", "/admin/dashboard/medians", "agent"])
@pytest.mark.parametrize(
    "period",
    [
        {"start": "9999-12-31", "end": "9999-12-31"},
        {"start": "0001-01-01", "end": "0001-01-01"},
        {"start": "9999-12-01", "end": "9999-12-31"},
        {"start": "0001-01-01"},
    ],
)
def test_dashboard_periods_at_the_edges_of_the_calendar_answer_400(app, world, path, period):
    client = _admin_client(app, world)
    if path == "agent":
        path = f"/admin/dashboard/agents/{world['users']['agent']}"
    response = ask(client, "GET", path, query_string=period)
    assert response.status_code == 400, (response.status_code, response.text[:300])


def _api_client(app, world):
    with app.app_context():
        _, key = api_tokens.create_token("Edges", by=_db.session.get(User, world["users"]["admin"]))
        _db.session.commit()
    return app.test_client(), {"Authorization": f"Token {key}"}


@pytest.mark.parametrize(
    "value", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+00:01"]
)
@pytest.mark.parametrize("name", ["after", "before"])
def test_api_datetimes_off_the_calendar_in_utc_answer_422_naming_the_field(app, world, name, value):
    client, token = _api_client(app, world)
    response = ask(client, "GET", "/api/v1/tickets", query_string={name: value}, headers=token)
    assert response.status_code == 422, response.text[:300]
    assert name in response.get_json()["error"]["fields"]
    # The very edges that stay on the calendar are fine.
    for fine in ("0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59+00:00", "9999-12-31T23:59:59+14:00"):
        assert ask(client, "GET", "/api/v1/tickets", query_string={name: fine}, headers=token).status_code == 200


@pytest.mark.parametrize("cursor", EDGE_CURSORS)
def test_api_cursors_past_64_bits_or_off_the_calendar_answer_422(app, world, cursor):
    client, token = _api_client(app, world)
    response = ask(client, "GET", "/api/v1/tickets", query_string={"cursor": cursor}, headers=token)
    assert response.status_code == 422, response.text[:300]
    assert "cursor" in response.get_json()["error"]["fields"]


@pytest.mark.parametrize("endpoint", ["flows.edit_view", "flow_triggers.edit_view", "topics.edit_view"])
def test_model_view_ids_past_64_bits_answer_404(app, world, endpoint):
    # The edit and details pages of the ModelViews take the id from the query string.
    client = _admin_client(app, world)
    with app.test_request_context():
        base = url_for(endpoint)
    for big in BIG_INTEGERS:
        response = ask(client, "GET", base, query_string={"id": str(big)})
        assert response.status_code == 404, (big, response.status_code)
    assert ask(client, "GET", base, query_string={"id": "999999999"}).status_code == 302  # unknown: Flask-Admin's way
