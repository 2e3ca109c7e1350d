"""Who may open what: every admin URL and auth page x every role x anonymous (PRODUCT.md "Roles").

The endpoints come from the app's URL map, so a new view without a rule in RULES fails
`test_every_endpoint_has_a_rule`. To add a view, add one line per endpoint to RULES:

    "flows.index_view": Rule(Capability.INTEGRATIONS),               # GET page, 200 when allowed
    "flows.delete_view": Rule(Capability.INTEGRATIONS, allowed=SUBMIT),  # POST-only action

and, when its URL has a parameter no other rule uses, teach `url_values` (below) to build a real one.
A Flask-Admin model view gets all its endpoints from `model_view_rules(endpoint, capability)`, and
the object its `?id=` names from MODEL_VIEW_IDS.

For every endpoint and principal: a role without the capability gets 403, anonymous gets a redirect
to /login, an allowed role gets the rule's `allowed` outcome (200 for pages). Endpoints that accept
POST are posted to with an empty form as well: forbidden roles get 403, anonymous the login page, and
allowed roles anything but those (their form is empty, so success isn't required). Never a 5xx.
"""

from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from flask import url_for

from tests.factories import make_ticket
from ticketer.extensions import db as _db
from ticketer.integrations import media_storage
from ticketer.models import Topic, User
from ticketer.models.flows import FlowStart
from ticketer.models.media import MessageAttachment
from ticketer.roles import Capability, Role
from ticketer.services import api_tokens as api_token_service
from ticketer.services import connections as connection_service
from ticketer.services import flows as flow_service
from ticketer.services import invitations as invitation_service
from ticketer.services import media
from ticketer.services import password_resets as password_reset_service
from ticketer.services import tickets as ticket_service
from ticketer.services import users as user_service

# Who may enter, besides a Capability:
SIGNED_IN = "signed in"  # any active role
PUBLIC = "public"  # anyone, anonymous included

# What an allowed principal gets:
OK = 200
NOT_FOUND = 404  # allowed in, but the URL names nothing (e.g. Flask-Admin's unused ajax lookup)
REDIRECT = "redirect"  # a redirect that is not to the sign-in page (e.g. a feature turned off)
SUBMIT = "submit"  # a POST with an empty form: anything but 403, the sign-in page, or a 5xx
SIGNED_OUT = "signed out"  # sign-out: back to the sign-in page (without a ?next=)


@dataclass(frozen=True)
class Rule:
    who: Capability | str
    allowed: int | str = OK
    signed_in: int | str | None = None  # PUBLIC pages: what a signed-in person gets, when it differs


C = Capability


def model_view_rules(
    endpoint: str, who: Capability, *, writes: bool = True, creates: bool = True, edits: bool = True
) -> dict[str, Rule]:
    """The endpoints of a Flask-Admin model view on ServiceModelView: details and export are off (they
    redirect to the list), and so are create and edit where the view is read-only."""
    return {
        f"{endpoint}.index_view": Rule(who),
        f"{endpoint}.create_view": Rule(who, OK if writes and creates else REDIRECT),
        f"{endpoint}.edit_view": Rule(who, OK if writes and edits else REDIRECT),
        f"{endpoint}.details_view": Rule(who, REDIRECT),
        f"{endpoint}.delete_view": Rule(who, SUBMIT),
        f"{endpoint}.action_view": Rule(who, SUBMIT),
        f"{endpoint}.ajax_lookup": Rule(who, NOT_FOUND),
        f"{endpoint}.ajax_update": Rule(who, SUBMIT),
        f"{endpoint}.export": Rule(who, REDIRECT),
    }


# The object each model view's `?id=` names in the world below.
MODEL_VIEW_IDS = {
    "topics": "topic_id",
    "flows": "flow_id",
    "flow_triggers": "trigger_id",
    "flow_deliveries": "start_id",
    "flow_messages": "message_id",
    "connections": "connection_id",
    "people": "user_id",
    "invitations": "invitation_id",
}

RULES: dict[str, Rule] = {
    # home and the ticket workspace
    "admin.index": Rule(C.VIEW_TICKETS, REDIRECT),
    "tickets.index": Rule(C.VIEW_TICKETS),
    "tickets.counts": Rule(C.VIEW_TICKETS),
    "tickets.detail": Rule(C.VIEW_TICKETS),
    "tickets.reply": Rule(C.WORK_TICKETS, SUBMIT),
    "tickets.note": Rule(C.WORK_TICKETS, SUBMIT),
    "tickets.assign": Rule(C.WORK_TICKETS, SUBMIT),
    "tickets.topic": Rule(C.WORK_TICKETS, SUBMIT),
    "tickets.close": Rule(C.WORK_TICKETS, SUBMIT),
    "tickets.reopen": Rule(C.WORK_TICKETS, SUBMIT),
    "tickets.bulk": Rule(C.BULK_ACTIONS, SUBMIT),
    # attachments: whoever may see tickets (viewers too); no list of files
    "media.index": Rule(C.VIEW_TICKETS, NOT_FOUND),
    "media.file": Rule(C.VIEW_TICKETS),
    # topics (Flask-Admin model view: details, delete and export are turned off)
    **model_view_rules("topics", C.MANAGE_TOPICS),
    # supervision: auto-assignment, SLA hours (topic managers); an agent's own availability toggle
    "supervision.index": Rule(C.MANAGE_TOPICS),
    "supervision.hours": Rule(C.MANAGE_TOPICS, SUBMIT),
    "supervision.topic": Rule(C.MANAGE_TOPICS),
    "availability.index": Rule(C.WORK_TICKETS, SUBMIT),
    # flows, triggers and their deliveries (model views; the deliveries are read-only)
    **model_view_rules("flows", C.INTEGRATIONS),
    **model_view_rules("flow_triggers", C.INTEGRATIONS),
    **model_view_rules("flow_deliveries", C.INTEGRATIONS, writes=False),
    **model_view_rules("flow_messages", C.INTEGRATIONS, writes=False),
    # dashboard and CSV export
    "dashboard.index": Rule(C.DASHBOARD),
    "dashboard.agent": Rule(C.DASHBOARD),
    "dashboard.medians": Rule(C.DASHBOARD),
    "dashboard.export": Rule(C.DASHBOARD),
    # people and invitations (model views: people join through invitations, which are not edited)
    **model_view_rules("people", C.MANAGE_PEOPLE, creates=False),
    **model_view_rules("invitations", C.MANAGE_PEOPLE, edits=False),
    # integrations: API tokens and the API reference
    # workspace connections (a model view)
    **model_view_rules("connections", C.INTEGRATIONS),
    "api_tokens.index": Rule(C.INTEGRATIONS),
    "api_tokens.create": Rule(C.INTEGRATIONS, SUBMIT),
    "api_tokens.revoke": Rule(C.INTEGRATIONS, SUBMIT),
    "api_docs.index": Rule(C.INTEGRATIONS),
    # sign in and out, invitations, passwords
    "auth.login": Rule(PUBLIC, OK, signed_in=REDIRECT),
    "auth.logout": Rule(SIGNED_IN, SIGNED_OUT),
    "auth.change_password": Rule(SIGNED_IN),
    "auth.accept_invitation": Rule(PUBLIC),
    "auth.reset_password": Rule(PUBLIC),
}

# Not pages of the panel: static files, and the JSON API (bearer tokens, tested in tests/api).
EXCLUDED_ENDPOINTS = {"static", "admin.static"}
PRINCIPALS = ["anonymous", *[role.value for role in Role]]


def covered_endpoints(app) -> dict[str, set[str]]:
    """Every endpoint under /admin, and every page of the auth blueprint, with its methods."""
    found: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint in EXCLUDED_ENDPOINTS:
            continue
        if rule.rule.startswith("/admin") or rule.endpoint.startswith("auth."):
            found.setdefault(rule.endpoint, set()).update(rule.methods - {"HEAD", "OPTIONS"})
    return found


def test_every_endpoint_has_a_rule(app):
    endpoints = covered_endpoints(app)
    missing = sorted(set(endpoints) - set(RULES))
    assert not missing, f"Endpoints without an access rule in tests/test_access_matrix.py RULES: {missing}"
    stale = sorted(set(RULES) - set(endpoints))
    assert not stale, f"Rules for endpoints that no longer exist: {stale}"


def test_the_matrix_follows_the_role_table():
    """The rules agree with PRODUCT.md's table, read the other way round (a typo here fails)."""
    table = {
        Role.ADMIN: set(Capability),
        Role.SUPERVISOR: set(Capability) - {C.MANAGE_PEOPLE, C.INTEGRATIONS},
        Role.AGENT: {C.VIEW_TICKETS, C.WORK_TICKETS},
        Role.VIEWER: {C.VIEW_TICKETS, C.DASHBOARD},
    }
    for role, capabilities in table.items():
        assert {c for c in Capability if User(role=role.value, active=True).can(c)} == capabilities


# --- the matrix ------------------------------------------------------------------------------------


@pytest.fixture
def world(app, make_user):
    """One person per role and real objects for every URL parameter, committed."""
    users = {role.value: make_user(role.value) for role in Role}
    target = make_user("agent", email="target@example.com")
    with app.app_context():
        admin = _db.session.get(User, users["admin"])
        ticket = make_ticket(assignee_id=users["agent"])
        invitation = invitation_service.invite("invited@example.com", "agent", by=admin)
        reset = password_reset_service.send_password_reset(target, by=admin)
        topic_id = _db.session.execute(_db.select(Topic.id)).scalars().first()
        flow = flow_service.create_flow(
            flow_service.FlowSettings(name="Survey", engine="builtin", templates="Thanks!"), by=admin
        )
        trigger = flow_service.create_trigger(flow_id=flow.id, by=admin)
        api_token, _ = api_token_service.create_token("Matrix", by=admin)
        connection = connection_service.add_rapidpro(name="Matrix", base_url="https://rp.example.org", api_token="k")
        ticket_service.close(make_ticket().id, by=admin)  # the trigger records a flow start
        start_id = _db.session.execute(_db.select(FlowStart.id)).scalars().first()
        assert start_id is not None
        message = ticket_service.reply(ticket.id, "Hello", by=admin)
        attachment_uuid = stored_attachment(app, ticket.contact_id)
        values = {
            "users": users,
            "cookies": {
                role: user_service.start_sign_in(_db.session.get(User, user_id)).get_id()
                for role, user_id in users.items()
            },
            "ticket_uuid": ticket.uuid,
            "topic_id": topic_id,
            "user_id": target,
            "invitation_id": invitation.id,
            "invitation_token": invitation.token,
            "reset_token": reset.token,
            "flow_id": flow.id,
            "trigger_id": trigger.id,
            "token_id": api_token.id,
            "start_id": start_id,
            "message_id": message.id,
            "connection_id": connection.id,
            "attachment_uuid": attachment_uuid,
        }
        _db.session.commit()
    return values


def stored_attachment(app, contact_id: int) -> str:
    """A contact's photo kept in the media store; its uuid."""
    message = ticket_service.receive_message(
        contact_id, "", attachments=[{"content_type": "image/png", "url": "https://files.example/a.png"}]
    )
    attachment = _db.session.execute(
        _db.select(MessageAttachment).where(MessageAttachment.message_id == message.id)
    ).scalar_one()
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    media.keep(attachment.id, png, media_storage.from_config(app.config), media.Settings.from_config(app.config))
    return attachment.uuid


def url_values(endpoint: str, arguments: set[str], world: dict) -> dict:
    """Real values for the endpoint's URL parameters, and the query string some need."""
    special = {
        "auth.accept_invitation": {"token": world["invitation_token"]},
        "auth.reset_password": {"token": world["reset_token"]},
        "dashboard.agent": {"user_id": world["users"]["agent"]},
    }
    if endpoint in special:
        return special[endpoint]
    view, _, name = endpoint.partition(".")
    if view in MODEL_VIEW_IDS:
        model_view_values = {
            "edit_view": {"id": world[MODEL_VIEW_IDS[view]]},
            "details_view": {"id": world[MODEL_VIEW_IDS[view]]},
            "export": {"export_type": "csv"},
            "ajax_lookup": {"name": "nothing", "query": "x"},
        }
        return model_view_values.get(name, {})
    by_name = {
        "ticket_uuid": world["ticket_uuid"],
        "user_id": world["user_id"],
        "invitation_id": world["invitation_id"],
        "topic_id": world["topic_id"],
        "flow_id": world["flow_id"],
        "trigger_id": world["trigger_id"],
        "token_id": world["token_id"],
        "start_id": world["start_id"],
        "message_id": world["message_id"],
        "attachment_uuid": world["attachment_uuid"],
    }
    return {name: by_name[name] for name in arguments if name in by_name}


def build_url(app, endpoint: str, world: dict) -> str:
    (rule,) = [r for r in app.url_map.iter_rules() if r.endpoint == endpoint]
    values = url_values(endpoint, set(rule.arguments), world)
    missing = rule.arguments - set(values)
    assert not missing, f"{endpoint}: teach url_values() a real value for {sorted(missing)}"
    with app.test_request_context():
        return url_for(endpoint, **values)  # values that aren't URL parameters go to the query string


def may_enter(rule: Rule, principal: str) -> bool:
    if rule.who == PUBLIC:
        return True
    if principal == "anonymous":
        return False
    if rule.who == SIGNED_IN:
        return True
    return User(role=principal, active=True).can(rule.who)


def is_login_redirect(response) -> bool:
    return response.status_code == 302 and urlsplit(response.location).path == "/login"


def check(response, expected) -> bool:
    status = response.status_code
    if status >= 500:
        return False
    if expected == "login":
        return is_login_redirect(response)
    if expected == REDIRECT:
        return status == 302 and not is_login_redirect(response)
    if expected == SUBMIT:
        return status != 403 and not is_login_redirect(response)
    if expected == SIGNED_OUT:
        return is_login_redirect(response) and "next=" not in response.location
    return status == expected


def expectation(rule: Rule, principal: str, method: str):
    if not may_enter(rule, principal):
        return "login" if principal == "anonymous" else 403
    if rule.who == PUBLIC and principal != "anonymous" and rule.signed_in is not None:
        return rule.signed_in if method == "GET" else SUBMIT
    if method == "POST" and rule.allowed != SIGNED_OUT:
        return SUBMIT
    return rule.allowed


def test_access_matrix(app, world, capsys):
    """Every principal on every endpoint (the world of users and objects is built once)."""
    client = app.test_client()
    endpoints = covered_endpoints(app)
    # Every GET before any POST: an admin's POST may re-issue the invitation link a GET opens.
    requests = [
        (principal, endpoint, method)
        for method in ("GET", "POST")
        for principal in PRINCIPALS
        for endpoint in sorted(endpoints)
        if method in endpoints[endpoint]
    ]
    failures = []
    for principal, endpoint, method in requests:
        rule = RULES.get(endpoint)
        if rule is None:
            failures.append(f"{endpoint} has no rule in RULES")
            continue
        url = build_url(app, endpoint, world)
        with client.session_transaction() as session:
            session.clear()
            if principal != "anonymous":
                session["_user_id"] = world["cookies"][principal]
                session["_fresh"] = True
        # Buffered, so a streamed response (the CSV export) ends its transaction here.
        response = client.open(url, method=method, data={} if method == "POST" else None, buffered=True)
        response.close()
        if endpoint == "auth.logout" and principal != "anonymous":  # that sign-in ended: sign in again
            with app.app_context():
                user = _db.session.get(User, world["users"][principal])
                world["cookies"][principal] = user_service.start_sign_in(user).get_id()
                _db.session.commit()
        expected = expectation(rule, principal, method)
        if not check(response, expected):
            failures.append(
                f"{method} {url} ({endpoint}) as {principal}: got {response.status_code} "
                f"{response.location or ''}, expected {expected}"
            )
    capsys.readouterr()  # the password reset mails printed to the console
    assert len(requests) >= len(PRINCIPALS) * len(endpoints) > 0
    assert not failures, "\n".join(failures)
