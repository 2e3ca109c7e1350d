"""The JSON API for flows and integrations, at /api/v1 (flask-smorest + marshmallow).

The OpenAPI document (/api/v1/openapi.json) is generated from the same schemas that validate
requests. Token-authenticated requests are exempt from CSRF; session-authenticated writes (the
panel's own scripts) must send the X-CSRFToken header.
"""

import flask
from flask import Flask, g, request
from flask_smorest import Api, Blueprint
from werkzeug.exceptions import HTTPException

from ticketer import database
from ticketer.api import auth, request_body
from ticketer.api.errors import ApiError, register_error_handlers
from ticketer.api.schemas import ErrorSchema
from ticketer.extensions import csrf, db
from ticketer.services import api_tokens

bp = Blueprint("api", __name__, url_prefix="/api/v1", description="Tickets, messages, topics, users and contacts")
register_error_handlers(bp)

# Import the endpoint modules for their routes on `bp` (after it exists).
from ticketer.api import contacts, messages, tickets, topics, users  # noqa: E402,F401,I001


class TicketerApi(Api):
    ERROR_SCHEMA = ErrorSchema

    def _register_error_handlers(self):
        # flask-smorest would turn every HTTP error of the whole app (panel pages too) into JSON;
        # the API blueprint has its own handlers instead.
        pass


@bp.before_request
def _authenticate_and_check_input():
    if request.method == "OPTIONS":
        return _options()
    if request.headers.get("Authorization"):
        # Only reads, then ends its transaction: on SQLite the handler's first write takes the
        # write lock, so concurrent flows hold it only for the work itself.
        with database.read_only_transactions():
            g.api_caller, token = auth.authenticate()
            db.session.commit()
        api_tokens.note_use(token)
    else:
        g.api_caller, _ = auth.authenticate()
    request_body.check_query_string()
    if request.method in ("POST", "PUT", "PATCH"):
        request_body.check_json_body()


def _allowed_methods(path: str) -> list[str]:
    """The methods some endpoint of the API answers at `path` (the catch-all 404 rule aside)."""
    adapter = flask.current_app.url_map.bind("localhost")
    allowed = []
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        try:
            endpoint, _ = adapter.match(path, method=method)
        except HTTPException:  # no rule for this method
            continue
        if endpoint != "api.not_found":
            allowed.append(method)
    return allowed


def _options():
    """OPTIONS: the methods the path really has (Flask's own answer would list the catch-all's)."""
    allowed = _allowed_methods(request.path)
    if not allowed:
        raise ApiError(404, "not_found", "There is no such API endpoint.")
    methods = [*allowed, *(["HEAD"] if "GET" in allowed else []), "OPTIONS"]
    response = flask.current_app.response_class(status=204)
    response.headers["Allow"] = ", ".join(methods)
    return response


def _not_found(rest: str):
    """Unknown /api/v1 paths: a JSON 404 (or 405 when the path exists with other methods)."""
    allowed = _allowed_methods(request.path)
    if allowed:
        raise ApiError(
            405, "method_not_allowed", f"Use {' or '.join(allowed)} here.", headers={"Allow": ", ".join(allowed)}
        )
    raise ApiError(404, "not_found", "There is no such API endpoint.")


# Registered with Flask's own add_url_rule so that it stays out of the OpenAPI document.
flask.Blueprint.add_url_rule(
    bp, "/<path:rest>", "not_found", _not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]
)


def init_api(app: Flask) -> Api:
    """Register the /api/v1 blueprint and its OpenAPI document on `app`."""
    app.config.setdefault("API_TITLE", "Ticketer API")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/api/v1")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.config.setdefault(
        "API_SPEC_OPTIONS",
        {
            "security": [{"TokenAuth": []}],
            "components": {
                "securitySchemes": {
                    "TokenAuth": {
                        "type": "apiKey",
                        "in": "header",
                        "name": "Authorization",
                        "description": "`Token <key>`: create keys in the panel under API tokens.",
                    }
                }
            },
            "info": {"description": "Open tickets from chatbot flows and relay the conversation."},
        },
    )
    api = TicketerApi(app)
    api.register_blueprint(bp)
    csrf.exempt(bp)
    return api
