"""Follow-up flows (admins): the flows Ticketer can start, and the triggers that start them after a close.

Both are Flask-Admin model views on the service-calling base: their forms go to ticketer.services.flows.
The deliveries those starts become are in admin_views/deliveries.py.
"""

from dataclasses import fields

from flask import request
from flask_admin import Admin
from flask_login import current_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from sqlalchemy import select
from wtforms import BooleanField, IntegerField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import Optional

from admin_views.base import ServiceModelView
from admin_views.deliveries import OutgoingMessagesView, StartsView
from ticketer.extensions import db
from ticketer.models import Topic
from ticketer.models.flows import Flow, FlowEngine, Trigger
from ticketer.roles import Capability
from ticketer.services import flows as flow_service

ENGINE_CHOICES = [
    (FlowEngine.BUILTIN.value, "Built-in messages (no external system)"),
    (FlowEngine.RAPIDPRO.value, "RapidPro-compatible server"),
    (FlowEngine.WEBHOOK.value, "Signed webhook"),
]
ENGINE_LABELS = dict(ENGINE_CHOICES)


class FlowForm(FlaskForm):
    """The fields of FlowSettings, by the same names; static/flows.js shows only the picked engine's."""

    name = StringField("Name")
    engine = SelectField("Engine", choices=ENGINE_CHOICES)
    uuid = StringField("Flow UUID", description="RapidPro: the flow's UUID on that server. Others: optional.")
    base_url = StringField("Server URL", description="e.g. https://rapidpro.example.org")
    api_token = PasswordField("API token", description="Left empty when editing: the current token is kept.")
    webhook_url = StringField("Webhook URL")
    webhook_secret = PasswordField(
        "Webhook secret", description="Signs every POST. Left empty: generated (or, when editing, kept)."
    )
    templates = TextAreaField(
        "Messages", description="One message per line; @contact.name, @ticket.topic, @results.NAME, @fields.KEY ..."
    )
    sends_replies = BooleanField("Send agent replies through this flow's engine")


def flow_settings(form: FlowForm) -> flow_service.FlowSettings:
    return flow_service.FlowSettings(
        **{field.name: form[field.name].data for field in fields(flow_service.FlowSettings)}
    )


def _where(view, context, flow: Flow, name):
    if flow.engine == FlowEngine.RAPIDPRO:
        return flow.base_url
    if flow.engine == FlowEngine.WEBHOOK:
        return flow.webhook_url
    count = len(flow.templates or [])
    return f"{count} message{'' if count == 1 else 's'}"


def _replies(view, context, flow: Flow, name):
    return Markup('<span class="badge badge-info">sends replies</span>') if flow.sends_replies else ""


class FlowsView(ServiceModelView):
    """Flows Ticketer can start for a contact after a ticket is closed; replies go out through the one
    marked "sends replies" (with none, they stay in Ticketer)."""

    capability = write_capability = Capability.INTEGRATIONS
    form = FlowForm
    create_template = edit_template = "admin/flows/flow_form.html"
    column_list = ("name", "engine", "uuid", "where", "sends_replies")
    column_labels = {"uuid": "UUID", "where": "Where", "sends_replies": "Replies"}
    column_formatters = {
        "engine": lambda view, context, flow, name: ENGINE_LABELS.get(flow.engine, flow.engine),
        "where": _where,
        "sends_replies": _replies,
    }
    column_sortable_list = ("name", "engine")
    column_default_sort = "name"

    def create_with_service(self, form):
        return flow_service.create_flow(flow_settings(form), by=current_user)

    def update_with_service(self, form, model) -> None:
        flow_service.update_flow(model.id, flow_settings(form), by=current_user)

    def on_form_prefill(self, form, id) -> None:
        if request.method == "GET":  # after a refused save the form keeps what was typed
            form.templates.data = "\n".join(form.templates.object_data or [])


def _optional_id(value) -> int | None:
    """A row id or None; anything else (text, past 64 bits) is the field's "Invalid Choice" error."""
    if value in (None, "", "None"):
        return None
    number = int(value)
    if not 0 < number < 2**63:
        raise ValueError("not an id")
    return number


class TriggerForm(FlaskForm):
    flow_id = SelectField("Flow", coerce=_optional_id, validate_choice=False)
    topic_id = SelectField("Topic", coerce=_optional_id, validate_choice=False)
    delay_minutes = IntegerField("Delay (minutes)", default=0, validators=[Optional()])
    active = BooleanField("Active", default=True)


def _topic(view, context, trigger: Trigger, name):
    return trigger.topic.name if trigger.topic else "All topics"


def _delay(view, context, trigger: Trigger, name):
    return f"{trigger.delay_minutes} min" if trigger.delay_minutes else "at once"


def _active(view, context, trigger: Trigger, name):
    if trigger.active:
        return Markup('<span class="badge badge-success">active</span>')
    return Markup('<span class="badge badge-secondary">off</span>')


class TriggersView(ServiceModelView):
    """ "Start a flow after a ticket is closed": a topic's own active trigger wins over the all-topics one;
    reopening a ticket before its delayed start runs cancels the start."""

    capability = write_capability = Capability.INTEGRATIONS
    form = TriggerForm
    column_list = ("topic", "flow", "delay_minutes", "active")
    column_labels = {"topic": "When a ticket is closed in", "flow": "Start", "delay_minutes": "After"}
    column_formatters = {
        "topic": _topic,
        "flow": lambda v, c, trigger, n: trigger.flow.name,
        "delay_minutes": _delay,
        "active": _active,
    }
    column_sortable_list = ()
    column_default_sort = [("active", True), ("id", False)]

    def _with_choices(self, form: TriggerForm) -> TriggerForm:
        form.flow_id.choices = [("", "Pick a flow")] + [
            (str(flow.id), flow.name) for flow in db.session.execute(select(Flow).order_by(Flow.name)).scalars()
        ]
        form.topic_id.choices = [("", "All topics")] + [
            (str(topic.id), topic.name) for topic in db.session.execute(select(Topic).order_by(Topic.name)).scalars()
        ]
        return form

    def create_form(self, obj=None):
        return self._with_choices(super().create_form(obj))

    def edit_form(self, obj=None):
        return self._with_choices(super().edit_form(obj))

    def _values(self, form: TriggerForm) -> dict:
        return {
            "flow_id": form.flow_id.data,
            "topic_id": form.topic_id.data,
            "delay_minutes": form.delay_minutes.data or 0,
            "active": form.active.data,
        }

    def create_with_service(self, form):
        return flow_service.create_trigger(**self._values(form), by=current_user)

    def update_with_service(self, form, model) -> None:
        flow_service.update_trigger(model.id, **self._values(form), by=current_user)


def register_flow_views(admin: Admin) -> None:
    admin.add_view(FlowsView(Flow, db, name="Flows", endpoint="flows", url="/admin/flows", category="Flows"))
    admin.add_view(
        TriggersView(Trigger, db, name="Triggers", endpoint="flow_triggers", url="/admin/triggers", category="Flows")
    )
    admin.add_view(StartsView(name="Deliveries", endpoint="flow_deliveries", url="/admin/deliveries", category="Flows"))
    admin.add_view(
        OutgoingMessagesView(
            name="Outgoing messages", endpoint="flow_messages", url="/admin/deliveries/messages", category="Flows"
        )
    )
