"""A RapidPro-compatible workspace for the tests: a real, threaded HTTP server on 127.0.0.1.

It answers the API v2 endpoints an external desk uses with the shapes RapidPro documents
(nyaruka/rapidpro temba/api/v2/views.py and serializers.py; see shared/contracts/rapidpro-api-v2.md):
workspace (and its deprecated alias org), flows, contacts, groups, messages (GET, newest first,
`before` / `after` inclusive on created_on, cursor pages that `next` links to; POST sends one),
contact_actions (interrupt, add, remove; 204), flow_starts (201) and media is left to its own issue.

Every request is checked against the documentation: `Authorization: Token <key>`, a known path
and method, only the query parameters the endpoint reads (and at most one of the exclusive ones),
parseable dates and uuids, a JSON object body with known fields of the right types. A request of
the wrong shape gets a 400 and is added to `failures`; the `rapidpro` fixture fails the test when
that list is not empty. A wrong token gets RapidPro's 403 (that is a real answer, not a shape fault).

Controls for the tests: `add_contact`, `add_flow`, `add_group`, `receive` (a message from a
contact), `set_status`, `throttle(times, retry_after)` (429 with Retry-After), and `stall_next_page()`
(the next request for a second or later page waits until released).
"""

import base64
import json
import threading
import uuid as uuid_lib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

TOKEN = "5ca1ab1e0ddba11dec0de0123456789abcdef0123"
PAGE_SIZE = 250  # RapidPro's REST_FRAMEWORK PAGE_SIZE
MAX_TEXT_LENGTH = 4096
MESSAGE_STATUSES = ("queued", "handled", "wired", "sent", "delivered", "read", "errored", "failed")
CONTACT_ACTIONS = ("add", "remove", "block", "unblock", "interrupt", "archive_messages", "delete", "archive")

# Query parameters each endpoint reads (temba/api/v2/views.py); `cursor` is the paginator's.
QUERY_PARAMS = {
    "workspace": set(),
    "org": set(),
    "flows": {"uuid", "type", "archived", "before", "after", "cursor"},
    "contacts": {"uuid", "urn", "group", "deleted", "before", "after", "reverse", "cursor"},
    "groups": {"uuid", "name", "manual_only", "cursor"},
    "messages": {"uuid", "id", "contact", "folder", "label", "broadcast", "before", "after", "cursor"},
}
EXCLUSIVE_PARAMS = {"messages": ("contact", "folder", "label", "broadcast"), "groups": ("uuid", "name")}
METHODS = {
    "workspace": {"GET"},
    "org": {"GET"},
    "flows": {"GET"},
    "contacts": {"GET"},
    "groups": {"GET", "POST"},
    "messages": {"GET", "POST"},
    "contact_actions": {"POST"},
    "flow_starts": {"POST"},
}
FOLDERS = ("inbox", "flows", "archived", "outbox", "sent", "failed")


def iso(moment: datetime) -> str:
    """RapidPro's datetime format: UTC with microseconds and a Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class ShapeError(Exception):
    """A request RapidPro's documentation does not allow."""


@dataclass
class Recorded:
    method: str
    endpoint: str
    args: dict[str, list[str]]
    body: Any
    status: int = 0


@dataclass
class Stall:
    """The next request for a page after the first waits in the server until `release()`."""

    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self.released.set()


class RapidProServer:
    def __init__(self, token: str = TOKEN, page_size: int = PAGE_SIZE):
        self.token = token
        self.page_size = page_size
        self.workspace = {
            "uuid": str(uuid_lib.uuid4()),
            "name": "Soporte Quito",
            "country": "EC",
            "languages": ["spa", "eng"],
            "timezone": "America/Guayaquil",
            "date_style": "day_first",
            "anon": False,
            "credits": {"used": -1, "remaining": -1},
            "primary_language": "spa",
        }
        self.flows: list[dict] = []
        self.contacts: dict[str, dict] = {}
        self.groups: list[dict] = []
        self.messages: list[dict] = []  # every message, in the order created
        self.contact_actions: list[dict] = []
        self.flow_starts: list[dict] = []
        self.requests: list[Recorded] = []
        self.failures: list[str] = []
        self._lock = threading.RLock()
        self._sequence = 0
        self._throttled = 0
        self._retry_after = 1
        self._stall: Stall | None = None
        self._clock = datetime.now(UTC)
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # --- life -----------------------------------------------------------------------------

    def start(self) -> "RapidProServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._stall is not None:
            self._stall.release()
        self._server.shutdown()
        self._server.server_close()

    # --- controls -------------------------------------------------------------------------

    def _next_moment(self, created_on: datetime | None) -> datetime:
        # Distinct, increasing created_on values unless a test gives its own.
        with self._lock:
            self._clock = max(self._clock + timedelta(microseconds=1000), datetime.now(UTC))
            return created_on or self._clock

    def add_contact(self, name: str = "María", urns: list[str] | None = None, contact_uuid: str | None = None) -> str:
        contact_uuid = contact_uuid or str(uuid_lib.uuid4())
        now = self._next_moment(None)
        with self._lock:
            self.contacts[contact_uuid] = {
                "uuid": contact_uuid,
                "name": name,
                "status": "active",
                "language": "spa",
                "urns": urns or [f"whatsapp:5939{uuid_lib.uuid4().int % 100_000_000:08d}"],
                "groups": [],
                "fields": {},
                "flow": None,
                "created_on": iso(now),
                "modified_on": iso(now),
                "last_seen_on": None,
            }
        return contact_uuid

    def add_flow(self, name: str, *, archived: bool = False, flow_type: str = "message") -> str:
        flow_uuid = str(uuid_lib.uuid4())
        now = iso(self._next_moment(None))
        with self._lock:
            self.flows.append(
                {
                    "uuid": flow_uuid,
                    "name": name,
                    "type": flow_type,
                    "archived": archived,
                    "labels": [],
                    "expires": 10080,
                    "runs": {"active": 0, "waiting": 0, "completed": 0, "interrupted": 0, "expired": 0, "failed": 0},
                    "results": [],
                    "parent_refs": [],
                    "created_on": now,
                    "modified_on": now,
                }
            )
        return flow_uuid

    def add_group(self, name: str) -> dict:
        group = {"uuid": str(uuid_lib.uuid4()), "name": name, "query": None, "status": "ready", "system": False}
        with self._lock:
            self.groups.append(group)
        return group

    def receive(self, contact_uuid: str, text: str, *, created_on: datetime | None = None, **extra) -> dict:
        """The contact sends a message (RapidPro handled it: it is visible to the API at once)."""
        return self._message(contact_uuid, "in", text, status="handled", created_on=created_on, **extra)

    def bot_says(self, contact_uuid: str, text: str, *, created_on: datetime | None = None) -> dict:
        """A flow sends the contact a message."""
        return self._message(contact_uuid, "out", text, status="sent", created_on=created_on)

    def _message(self, contact_uuid, direction, text, *, status, created_on=None, attachments=None, flow=None) -> dict:
        contact = self.contacts[contact_uuid]
        moment = self._next_moment(created_on)
        with self._lock:
            self._sequence += 1
            message = {
                "id": self._sequence,
                "uuid": str(uuid_lib.uuid4()),
                "contact": {"uuid": contact_uuid, "name": contact["name"]},
                "urn": contact["urns"][0] if contact["urns"] else None,
                "channel": {"uuid": "9a8b001e-a913-486c-80f4-1356e23f582e", "name": "WhatsApp"},
                "direction": direction,
                "type": "text",
                "status": status,
                "archived": False,
                "visibility": "visible",
                "text": text,
                "labels": [],
                "flow": flow,
                "attachments": attachments or [],
                "quick_replies": [],
                "created_on": iso(moment),
                "sent_on": iso(moment) if direction == "out" and status != "queued" else None,
                "modified_on": iso(moment),
                "media": None,
                "broadcast": None,
                "_created": moment,
            }
            self.messages.append(message)
        return message

    def set_status(self, message_uuid: str, status: str) -> None:
        assert status in MESSAGE_STATUSES
        with self._lock:
            for message in self.messages:
                if message["uuid"] == message_uuid:
                    message["status"] = status
                    message["modified_on"] = iso(datetime.now(UTC))
                    return
        raise KeyError(message_uuid)

    def throttle(self, times: int = 1, retry_after: int = 1) -> None:
        """The next `times` requests get 429 with `Retry-After: retry_after`."""
        with self._lock:
            self._throttled = times
            self._retry_after = retry_after

    def stall_next_page(self) -> Stall:
        """The next GET of a second or later page waits until the returned Stall is released."""
        self._stall = Stall()
        return self._stall

    def sent(self) -> list[dict]:
        """Messages created through POST messages.json (the desk's replies), oldest first."""
        with self._lock:
            return [m for m in self.messages if m.get("_via_api")]

    def requests_to(self, endpoint: str, method: str | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.endpoint == endpoint and (method is None or r.method == method)]

    # --- the HTTP side --------------------------------------------------------------------

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        response = self._handle(request)
        return response(environ, start_response)

    def _handle(self, request: Request) -> Response:
        endpoint = self._endpoint(request.path)
        recorded = Recorded(request.method, endpoint or request.path, request.args.to_dict(flat=False), None)
        with self._lock:
            self.requests.append(recorded)
        try:
            if endpoint is None:
                raise ShapeError(f"{request.method} {request.path}: not an API v2 endpoint")
            if request.method not in METHODS[endpoint]:
                raise ShapeError(f"{request.method} {request.path}: method not allowed")
            auth = request.headers.get("Authorization")
            if not auth or not auth.startswith("Token "):
                raise ShapeError(f"{request.method} {request.path}: no 'Authorization: Token ...' header")
            if auth != f"Token {self.token}":
                response = _json({"detail": "Invalid token"}, 403)
            elif self._take_throttle():
                detail = f"Request was throttled. Expected available in {self._retry_after} seconds."
                response = _json({"detail": detail}, 429)
                response.headers["Retry-After"] = str(self._retry_after)
            elif request.method == "GET":
                self._check_query(endpoint, request)
                response = getattr(self, f"_get_{endpoint}")(request)
            else:
                if request.args:
                    raise ShapeError(f"POST {endpoint}: unexpected query string {dict(request.args)}")
                body = self._json_body(request)
                recorded.body = body
                response = getattr(self, f"_post_{endpoint}")(body)
        except ShapeError as error:
            with self._lock:
                self.failures.append(str(error))
            response = _json({"detail": str(error)}, 400)
        recorded.status = response.status_code
        return response

    @staticmethod
    def _endpoint(path: str) -> str | None:
        prefix, suffix = "/api/v2/", ".json"
        if not (path.startswith(prefix) and path.endswith(suffix)):
            return None
        name = path[len(prefix) : -len(suffix)]
        return name if name in METHODS else None

    def _take_throttle(self) -> bool:
        with self._lock:
            if self._throttled > 0:
                self._throttled -= 1
                return True
            return False

    def _check_query(self, endpoint: str, request: Request) -> None:
        unknown = set(request.args) - QUERY_PARAMS[endpoint]
        if unknown:
            raise ShapeError(f"GET {endpoint}: unknown query parameters {sorted(unknown)}")
        for name in request.args:
            if len(request.args.getlist(name)) > 1 and name != "uuid":
                raise ShapeError(f"GET {endpoint}: {name} given more than once")
        exclusive = [p for p in EXCLUSIVE_PARAMS.get(endpoint, ()) if request.args.get(p)]
        if len(exclusive) > 1:
            raise ShapeError(f"GET {endpoint}: only one of {exclusive} may be given")
        for name in ("before", "after"):
            if name in request.args:
                try:
                    parse_iso(request.args[name])
                except ValueError:
                    raise ShapeError(f"GET {endpoint}: {name}={request.args[name]!r} is not ISO 8601") from None
        for name in ("uuid", "contact"):
            for value in request.args.getlist(name):
                _check_uuid(value, f"GET {endpoint}: {name}")
        if endpoint == "messages" and "folder" in request.args and request.args["folder"].lower() not in FOLDERS:
            raise ShapeError(f"GET messages: unknown folder {request.args['folder']!r}")

    @staticmethod
    def _json_body(request: Request) -> dict:
        if request.mimetype != "application/json":
            raise ShapeError(f"POST {request.path}: Content-Type {request.mimetype!r}, not application/json")
        try:
            body = json.loads(request.get_data(as_text=True))
        except ValueError:
            raise ShapeError(f"POST {request.path}: the body is not JSON") from None
        if not isinstance(body, dict):
            raise ShapeError(f"POST {request.path}: the body is not a JSON object")
        return body

    # --- pages ----------------------------------------------------------------------------

    def _page(self, request: Request, endpoint: str, items: list[dict], order_key) -> Response:
        """Cursor pagination as DRF's CursorPagination does it: newest first, `next` a full URL."""
        items = sorted(items, key=order_key, reverse=True)
        cursor = request.args.get("cursor")
        if cursor:
            stall = self._stall
            if stall is not None:
                self._stall = None
                stall.reached.set()
                stall.released.wait(timeout=60)
            try:
                position = json.loads(base64.urlsafe_b64decode(cursor.encode()))
            except ValueError:
                raise ShapeError(f"GET {endpoint}: a cursor this server never gave: {cursor!r}") from None
            items = [item for item in items if list(order_key(item)) < position]
        page, rest = items[: self.page_size], items[self.page_size :]
        next_url = None
        if rest:
            position = json.dumps(list(order_key(page[-1])), default=str)
            query = {k: v for k, v in request.args.items() if k != "cursor"}
            query["cursor"] = base64.urlsafe_b64encode(position.encode()).decode()
            next_url = f"{self.url}/api/v2/{endpoint}.json?{urlencode(query)}"
        public = [{k: v for k, v in item.items() if not k.startswith("_")} for item in page]
        return _json({"next": next_url, "previous": None, "results": public})

    @staticmethod
    def _between(request: Request, items: list[dict], field_name: str) -> list[dict]:
        # RapidPro's filter_before_after: before is created_on <= before, after is >= after.
        if "before" in request.args:
            before = parse_iso(request.args["before"])
            items = [i for i in items if parse_iso(i[field_name]) <= before]
        if "after" in request.args:
            after = parse_iso(request.args["after"])
            items = [i for i in items if parse_iso(i[field_name]) >= after]
        return items

    def _get_workspace(self, request: Request) -> Response:
        return _json(self.workspace)

    _get_org = _get_workspace

    def _get_flows(self, request: Request) -> Response:
        with self._lock:
            flows = list(self.flows)
        if "uuid" in request.args:
            flows = [f for f in flows if f["uuid"] == request.args["uuid"]]
        if "type" in request.args:
            flows = [f for f in flows if f["type"] == request.args["type"]]
        if request.args.get("archived"):
            wanted = request.args["archived"].lower() in ("1", "true", "yes")
            flows = [f for f in flows if f["archived"] == wanted]
        flows = self._between(request, flows, "modified_on")
        return self._page(request, "flows", flows, lambda f: (f["created_on"], f["uuid"]))

    def _get_contacts(self, request: Request) -> Response:
        with self._lock:
            contacts = list(self.contacts.values())
        if "uuid" in request.args:
            contacts = [c for c in contacts if c["uuid"] == request.args["uuid"]]
        if "urn" in request.args:
            contacts = [c for c in contacts if request.args["urn"] in c["urns"]]
        contacts = self._between(request, contacts, "modified_on")
        return self._page(request, "contacts", contacts, lambda c: (c["modified_on"], c["uuid"]))

    def _get_groups(self, request: Request) -> Response:
        with self._lock:
            groups = [dict(g, count=self._members(g)) for g in self.groups]
        if "uuid" in request.args:
            groups = [g for g in groups if g["uuid"] == request.args["uuid"]]
        if "name" in request.args:
            groups = [g for g in groups if g["name"].lower() == request.args["name"].lower()]
        return self._page(request, "groups", groups, lambda g: (g["uuid"],))

    def _members(self, group: dict) -> int:
        return sum(1 for c in self.contacts.values() if any(g["uuid"] == group["uuid"] for g in c["groups"]))

    def _get_messages(self, request: Request) -> Response:
        with self._lock:
            messages = [m for m in self.messages if m["visibility"] in ("visible", "archived")]
        if "uuid" in request.args:
            messages = [m for m in messages if m["uuid"] == request.args["uuid"]]
        if request.args.get("contact"):
            messages = [m for m in messages if m["contact"]["uuid"] == request.args["contact"]]
        folder = request.args.get("folder", "").lower()
        if folder == "inbox":
            messages = [m for m in messages if m["direction"] == "in" and not m["flow"]]
        elif folder == "flows":
            messages = [m for m in messages if m["direction"] == "in" and m["flow"]]
        elif folder in ("outbox", "sent", "failed"):
            wanted = {"outbox": ("queued",), "sent": ("wired", "sent", "delivered", "read"), "failed": ("failed",)}
            messages = [m for m in messages if m["direction"] == "out" and m["status"] in wanted[folder]]
        messages = self._between(request, messages, "created_on")
        return self._page(request, "messages", messages, lambda m: (m["created_on"], m["id"]))

    # --- writes ---------------------------------------------------------------------------

    def _post_groups(self, body: dict) -> Response:
        _check_fields("groups", body, required={"name": str}, optional={})
        name = body["name"].strip()
        if not name or len(name) > 64:
            return _json({"name": ["Ensure this field has no more than 64 characters."]}, 400)
        with self._lock:
            if any(g["name"].lower() == name.lower() for g in self.groups):
                return _json({"name": ["This field must be unique."]}, 400)
        group = self.add_group(name)
        return _json(dict(group, count=0), 201)

    def _post_contact_actions(self, body: dict) -> Response:
        _check_fields("contact_actions", body, required={"contacts": list, "action": str}, optional={"group": str})
        if body["action"] not in CONTACT_ACTIONS:
            raise ShapeError(f"POST contact_actions: unknown action {body['action']!r}")
        if not body["contacts"] or len(body["contacts"]) > 100:
            raise ShapeError("POST contact_actions: contacts must hold 1 to 100 items")
        if body["action"] in ("add", "remove") and not body.get("group"):
            raise ShapeError(f"POST contact_actions: action {body['action']!r} needs a group")
        if body["action"] not in ("add", "remove") and "group" in body:
            raise ShapeError(f"POST contact_actions: action {body['action']!r} takes no group")
        with self._lock:
            contacts = [self._find_contact(ref) for ref in body["contacts"]]
            if None in contacts:
                return _json({"contacts": ["No such object: a contact"]}, 400)
            group = None
            if "group" in body:
                group = next(
                    (g for g in self.groups if body["group"] in (g["uuid"], g["name"])),
                    None,
                )
                if group is None:
                    return _json({"group": [f"No such object: {body['group']}"]}, 400)
            for contact in contacts:
                refs = contact["groups"]
                if body["action"] == "add" and not any(g["uuid"] == group["uuid"] for g in refs):
                    refs.append({"uuid": group["uuid"], "name": group["name"]})
                elif body["action"] == "remove":
                    contact["groups"] = [g for g in refs if g["uuid"] != group["uuid"]]
            self.contact_actions.append(body)
        return Response(status=204)

    def _find_contact(self, ref: Any) -> dict | None:
        if not isinstance(ref, str):
            raise ShapeError(f"a contact reference must be a uuid or URN string, not {ref!r}")
        if ":" in ref:
            return next((c for c in self.contacts.values() if ref in c["urns"]), None)
        _check_uuid(ref, "a contact")
        return self.contacts.get(ref)

    def _post_flow_starts(self, body: dict) -> Response:
        _check_fields(
            "flow_starts",
            body,
            required={"flow": str},
            optional={
                "contacts": list,
                "groups": list,
                "urns": list,
                "restart_participants": bool,
                "exclude_active": bool,
                "extra": dict,
                "params": dict,
            },
        )
        _check_uuid(body["flow"], "POST flow_starts: flow")
        if not (body.get("contacts") or body.get("groups") or body.get("urns")):
            return _json({"non_field_errors": ["Must specify at least one group, contact or URN"]}, 400)
        if len(json.dumps(body.get("params") or {})) > 10_000:
            return _json({"params": ["Cannot exceed 10,000 characters encoded."]}, 400)
        with self._lock:
            flow = next((f for f in self.flows if f["uuid"] == body["flow"]), None)
            if flow is None:
                return _json({"flow": [f"No such object: {body['flow']}"]}, 400)
            contacts = [self._find_contact(ref) for ref in body.get("contacts", [])]
            if None in contacts:
                return _json({"contacts": ["No such object: a contact"]}, 400)
            now = iso(datetime.now(UTC))
            start = {
                "uuid": str(uuid_lib.uuid4()),
                "flow": {"uuid": flow["uuid"], "name": flow["name"]},
                "status": "pending",
                "progress": {"total": -1, "started": 0},
                "groups": [],
                "contacts": [{"uuid": c["uuid"], "name": c["name"]} for c in contacts],
                "params": body.get("params") or {},
                "created_on": now,
                "modified_on": now,
                "id": len(self.flow_starts) + 1,
                "extra": body.get("params") or {},
                "restart_participants": body.get("restart_participants", True),
                "exclude_active": body.get("exclude_active", False),
            }
            self.flow_starts.append(start)
        return _json(start, 201)

    def _post_messages(self, body: dict) -> Response:
        _check_fields(
            "messages",
            body,
            required={"contact": str},
            optional={"text": str, "attachments": list, "quick_replies": list},
        )
        text = body.get("text") or ""
        if len(text) > MAX_TEXT_LENGTH:
            return _json({"text": [f"Ensure this field has no more than {MAX_TEXT_LENGTH} characters."]}, 400)
        if len(body.get("attachments") or []) > 10 or len(body.get("quick_replies") or []) > 10:
            return _json({"non_field_errors": ["At most 10 attachments and 10 quick replies."]}, 400)
        for reference in body.get("attachments") or []:
            _check_uuid(reference, "POST messages: an attachment (a media uuid)")
        for reply in body.get("quick_replies") or []:
            if not isinstance(reply, dict) or not isinstance(reply.get("text"), str):
                raise ShapeError(f"POST messages: a quick reply is an object with text, not {reply!r}")
        if not (text or body.get("attachments")):
            return _json({"non_field_errors": ["Must provide either text or attachments."]}, 400)
        _check_uuid(body["contact"], "POST messages: contact")
        if body["contact"] not in self.contacts:
            return _json({"contact": [f"No such object: {body['contact']}"]}, 400)
        message = self._message(body["contact"], "out", text, status="queued")
        message["_via_api"] = True
        return _json({k: v for k, v in message.items() if not k.startswith("_")}, 201)


def _check_fields(endpoint: str, body: dict, *, required: dict, optional: dict) -> None:
    unknown = set(body) - set(required) - set(optional)
    if unknown:
        raise ShapeError(f"POST {endpoint}: unknown fields {sorted(unknown)}")
    for name in required:
        if name not in body:
            raise ShapeError(f"POST {endpoint}: {name} is required")
    for name, kind in {**required, **optional}.items():
        if name in body and not isinstance(body[name], kind):
            raise ShapeError(f"POST {endpoint}: {name} must be {kind.__name__}, not {body[name]!r}")


def _check_uuid(value: Any, what: str) -> None:
    try:
        uuid_lib.UUID(str(value))
    except ValueError:
        raise ShapeError(f"{what}: {value!r} is not a uuid") from None


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")
