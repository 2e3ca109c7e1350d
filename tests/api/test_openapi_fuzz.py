"""Property-based fuzz of the API from its own OpenAPI document (schemathesis): no 5xx, and every
answer conforms to the document (status codes, content type, body schema)."""

import base64

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import open_ticket
from tests.conftest import app_context
from ticketer.extensions import db as _db

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Bounded so the whole fuzz stays well under a minute per database.
EXAMPLES = {GenerationMode.POSITIVE: 20, GenerationMode.NEGATIVE: 12}


def test_the_openapi_document_describes_every_endpoint(client):
    spec = client.get("/api/v1/openapi.json").json
    assert spec["openapi"].startswith("3.")
    operations = {
        (method.upper(), path)
        for path, methods in spec["paths"].items()
        for method in methods
        if method != "parameters"
    }
    assert operations == {
        ("POST", "/api/v1/tickets"),
        ("GET", "/api/v1/tickets"),
        ("GET", "/api/v1/tickets/{ticket_uuid}"),
        ("POST", "/api/v1/ticket_actions"),
        ("POST", "/api/v1/messages"),
        ("GET", "/api/v1/messages"),
        ("GET", "/api/v1/topics"),
        ("POST", "/api/v1/topics"),
        ("GET", "/api/v1/users"),
        ("GET", "/api/v1/contacts/{contact_uuid}"),
    }
    error = spec["components"]["schemas"]["Error"]
    assert error["properties"]["error"]["$ref"] == "#/components/schemas/ErrorDetail"
    assert spec["components"]["schemas"]["TicketOpen"]["additionalProperties"] is False
    assert spec["security"] == [{"TokenAuth": []}]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
def test_fuzz_finds_no_server_error_and_no_answer_off_schema(app, api, mode):
    with app_context(app):
        open_ticket(api, urn="tel:+593944000001")  # something to list, read and act on
        _db.session.remove()
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    headers = {"Authorization": f"Token {api.key}"}
    statuses: dict[str, set[int]] = {}

    def fuzz(operation) -> None:
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES[mode],
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def run(case):
            case.headers = {**(case.headers or {}), **headers}
            response = case.call_and_validate(checks=CHECKS)
            statuses.setdefault(operation.label, set()).add(response.status_code)

        run()

    for result in schema.get_all_operations():
        fuzz(result.ok())

    assert len(statuses) == 10
    if mode == GenerationMode.POSITIVE:
        # valid input reaches the handlers (random tickets mostly fail the contact rules: a documented 422)
        assert 200 in statuses["GET /api/v1/tickets"]
        assert 201 in statuses["POST /api/v1/topics"]
    else:
        # invalid input is refused with a documented 4xx wherever there is input to spoil
        for label in (
            "POST /api/v1/tickets",
            "POST /api/v1/ticket_actions",
            "POST /api/v1/messages",
            "GET /api/v1/tickets",
        ):
            assert statuses[label] & {400, 404, 422}, (label, statuses[label])


# Shapes random generation rarely reaches: moments that leave the calendar once converted to UTC, and
# integers past 64 bits (as cursors and in every path parameter).
EDGE_DATETIMES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+00:01"]
BIG_INTEGERS = [str(2**63), str(2**64), "9" * 40]


def _cursor_holding(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


EDGE_CURSORS = BIG_INTEGERS + [
    _cursor_holding(f"2026-01-01T00:00:00+00:00|{2**63}"),
    *(_cursor_holding(f"{moment}|1") for moment in EDGE_DATETIMES),
]


def test_edge_datetimes_cursors_and_integers_in_every_parameter_answer_4xx_naming_it(app, api):
    with app_context(app):
        open_ticket(api, urn="tel:+593944000002")
        _db.session.remove()
    spec = api.client.get("/api/v1/openapi.json").json
    failures, checked = [], 0
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method != "get":
                continue
            parameters = operation.get("parameters", [])
            for parameter in parameters:
                name, where = parameter["name"], parameter["in"]
                if where == "path":
                    for value in BIG_INTEGERS:
                        checked += 1
                        response = api.get(path.replace("{" + name + "}", value))
                        if response.status_code != 404:
                            failures.append(f"{path} {name}={value}: {response.status_code}")
                    continue
                schema = parameter.get("schema", {})
                if schema.get("format") == "date-time":
                    values = EDGE_DATETIMES
                elif name == "cursor":
                    values = EDGE_CURSORS
                else:
                    continue
                needed = {p["name"]: "tel:+593944000002" for p in parameters if p.get("required") and p["name"] != name}
                for value in values:
                    checked += 1
                    response = api.get(path, query_string={**needed, name: value})
                    error = (response.get_json(silent=True) or {}).get("error", {})
                    if response.status_code != 422 or name not in error.get("fields", {}):
                        failures.append(f"{path} {name}={value}: {response.status_code} {response.data[:120]!r}")
    assert checked >= 20
    assert not failures, "\n".join(failures)
