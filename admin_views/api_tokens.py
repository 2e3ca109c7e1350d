"""API tokens (create: shown once; list with last use; revoke) and the API reference page. Admins only."""

from flask import current_app, flash, redirect, request, url_for
from flask_admin import expose
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from admin_views.base import SecuredView, show_error
from ticketer.errors import TicketerError
from ticketer.extensions import db
from ticketer.roles import Capability
from ticketer.services import api_tokens as token_service


class TokenForm(FlaskForm):
    name = StringField(
        "Name",
        validators=[
            DataRequired("Name the token after what uses it."),
            Length(max=token_service.TOKEN_NAME_MAX_LENGTH),
        ],
        description="What uses it, e.g. “RapidPro production”.",
    )


class ApiTokensView(SecuredView):
    """Hand-written: a new key is shown once, in the very response that creates it (only its hash is
    kept), which Flask-Admin's create-then-redirect can't do."""

    capability = Capability.INTEGRATIONS

    def _render(self, form: TokenForm, new_key: str | None = None, status: int = 200):
        return (
            self.render(
                "admin/api/tokens.html",
                form=form,
                tokens=token_service.list_tokens(),
                new_key=new_key,
                api_url=request.host_url.rstrip("/") + "/api/v1",
            ),
            status,
        )

    @expose("/")
    def index(self):
        return self._render(TokenForm())

    @expose("/create", methods=["POST"])
    def create(self):
        form = TokenForm()
        if not form.validate_on_submit():
            return self._render(form, status=422)
        try:
            _, key = token_service.create_token(form.name.data, by=current_user)
            db.session.commit()
        except TicketerError as error:
            db.session.rollback()
            show_error(error, form)
            return self._render(form, status=422)
        # Rendered, not redirected: the key exists only in this response and is never shown again.
        response = self._render(TokenForm(formdata=None), new_key=key, status=201)
        return response[0], 201, {"Cache-Control": "no-store"}

    @expose("/<int:token_id>/revoke", methods=["POST"])
    def revoke(self, token_id: int):
        try:
            token_service.revoke_token(token_id, by=current_user)
            db.session.commit()
            flash("Token revoked: it no longer works.", "success")
        except TicketerError as error:
            db.session.rollback()
            show_error(error)
        return redirect(url_for(".index"))


def _resolve(spec: dict, schema: dict | None) -> dict:
    """Follow a $ref (and a nullable allOf wrapper) to the component schema it names."""
    schema = schema or {}
    if "allOf" in schema and len(schema["allOf"]) == 1:
        schema = {**schema["allOf"][0], **{k: v for k, v in schema.items() if k != "allOf"}}
    ref = schema.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        name = ref.rsplit("/", 1)[1]
        return {"title": name, **spec["components"]["schemas"].get(name, {})}
    return schema


def _describe_type(spec: dict, schema: dict) -> str:
    if "$ref" in schema or "allOf" in schema:
        resolved = _resolve(spec, schema)
        text = resolved.get("title", "object")
    elif schema.get("type") == "array":
        text = f"array of {_describe_type(spec, schema.get('items', {}))}"
    else:
        text = schema.get("type", "any")
        if schema.get("format"):
            text += f" ({schema['format']})"
        if schema.get("enum"):
            text += ": " + " | ".join(str(v) for v in schema["enum"] if v is not None)
    if schema.get("nullable"):
        text += ", or null"
    return text


def _properties(spec: dict, schema: dict | None) -> list[dict]:
    resolved = _resolve(spec, schema)
    required = set(resolved.get("required", []))
    rows = []
    for name, prop in (resolved.get("properties") or {}).items():
        limits = []
        if "maxLength" in prop:
            limits.append(f"at most {prop['maxLength']:,} characters")
        if "maxItems" in prop:
            limits.append(f"at most {prop['maxItems']} items")
        if "maximum" in prop:
            limits.append(f"{prop.get('minimum', 0)} to {prop['maximum']}")
        target = prop.get("items", prop) if prop.get("type") == "array" else prop
        ref = _resolve(spec, target).get("title") if ("$ref" in target or "allOf" in target) else None
        rows.append(
            {
                "name": name,
                "ref": ref,
                "type": _describe_type(spec, prop),
                "required": name in required,
                "description": prop.get("description", ""),
                "limits": ", ".join(limits),
            }
        )
    return rows


def api_reference(spec: dict) -> list[dict]:
    """The endpoints of the OpenAPI document, flattened for a server-rendered page."""
    operations = []
    for path, methods in spec.get("paths", {}).items():
        for method, operation in methods.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            body_schema = _resolve(spec, body) if body else None
            parameters = [
                {
                    "name": p["name"],
                    "in": p["in"],
                    "type": _describe_type(spec, p.get("schema", {})),
                    "required": p.get("required", False),
                    "description": p.get("description", ""),
                }
                for p in operation.get("parameters", [])
            ]
            responses = []
            for status, response in sorted(operation.get("responses", {}).items()):
                if status == "default":
                    continue
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                responses.append(
                    {
                        "status": status,
                        "description": response.get("description", ""),
                        "schema": _resolve(spec, schema).get("title", "") if schema else "",
                    }
                )
            operations.append(
                {
                    "id": f"{method}-{path}".replace("/", "-").replace("{", "").replace("}", ""),
                    "method": method.upper(),
                    "path": path,
                    "summary": operation.get("summary", ""),
                    "description": operation.get("description", ""),
                    "parameters": parameters,
                    "body": _properties(spec, body) if body else None,
                    "body_name": body_schema.get("title", "") if body_schema else "",
                    "responses": responses,
                }
            )
    schemas = {
        name: _properties(spec, {"$ref": f"#/components/schemas/{name}"})
        for name in sorted(spec.get("components", {}).get("schemas", {}))
    }
    return operations, schemas


class ApiDocsView(SecuredView):
    """The API reference, rendered on the server from the OpenAPI document. Not flask-smorest's ReDoc or
    Swagger UI page: those load their scripts from a CDN (no installed package ships them) and run an
    inline script, and the CSP allows only the app's own files."""

    capability = Capability.INTEGRATIONS

    @expose("/")
    def index(self):
        api = current_app.extensions["flask-smorest"]["apis"][""]["ext_obj"]
        spec = api.spec.to_dict()
        operations, schemas = api_reference(spec)
        return self.render(
            "admin/api/docs.html",
            operations=operations,
            schemas=schemas,
            api_url=request.host_url.rstrip("/") + "/api/v1",
            spec_url=url_for("api-docs.openapi_json"),
        )
