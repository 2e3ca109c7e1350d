"""Follow-up flows (admins): flows, triggers, and the deliveries panel (flow starts, outgoing messages).

Importing this module imports ticketer.services.flows, which hooks flow starts onto ticket closes.
"""

from flask import abort, flash, redirect, request, url_for
from flask_admin import Admin, expose
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload
from wtforms import BooleanField, IntegerField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import NumberRange, Optional

from admin_views.base import SecuredView
from ticketer.errors import TicketerError
from ticketer.extensions import db
from ticketer.models import Contact, Message, Ticket, Topic
from ticketer.models.flows import DeliveryStatus, Flow, FlowEngine, FlowStart, Trigger
from ticketer.roles import Capability
from ticketer.services import flows as flow_service

ENGINE_CHOICES = [
    (FlowEngine.BUILTIN.value, "Built-in messages (no external system)"),
    (FlowEngine.RAPIDPRO.value, "RapidPro-compatible server"),
    (FlowEngine.WEBHOOK.value, "Signed webhook"),
]
ENGINE_LABELS = dict(ENGINE_CHOICES)
PANEL_PAGE_SIZE = 50


class FlowForm(FlaskForm):
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


class TriggerForm(FlaskForm):
    flow = SelectField("Flow", coerce=str)
    topic = SelectField("Topic", coerce=str)
    delay_minutes = IntegerField("Delay (minutes)", default=0, validators=[Optional(), NumberRange(min=0)])
    active = BooleanField("Active", default=True)


class ActionForm(FlaskForm):
    """Retry: nothing to fill in, but CSRF-protected."""


def _show_error(form: FlaskForm, error: TicketerError) -> None:
    shown = False
    for name, message in error.fields.items():
        field = getattr(form, name, None)
        if field is not None and hasattr(field, "errors"):
            field.errors = [*field.errors, message]
            shown = True
    if not shown:
        flash(error.message, "error")


class FlowsView(SecuredView):
    capability = Capability.INTEGRATIONS

    @expose("/")
    def index(self):
        flows = db.session.execute(select(Flow).order_by(Flow.name)).scalars().all()
        return self.render("admin/flows/flows.html", flows=flows, engine_labels=ENGINE_LABELS)

    def _form_page(self, form: FlowForm, flow: Flow | None, status: int = 200):
        return self.render("admin/flows/flow_form.html", form=form, flow=flow), status

    def _save(self, form: FlowForm, flow_id: int | None):
        values = {
            "name": form.name.data,
            "engine": form.engine.data,
            "uuid": form.uuid.data,
            "base_url": form.base_url.data,
            "api_token": form.api_token.data,
            "webhook_url": form.webhook_url.data,
            "webhook_secret": form.webhook_secret.data,
            "templates": form.templates.data,
            "sends_replies": form.sends_replies.data,
        }
        if flow_id is None:
            return flow_service.create_flow(**values, by=current_user)
        return flow_service.update_flow(flow_id, **values, by=current_user)

    @expose("/new", methods=["GET", "POST"])
    def create(self):
        form = FlowForm()
        if form.validate_on_submit():
            try:
                flow = self._save(form, None)
                db.session.commit()
            except TicketerError as error:
                db.session.rollback()
                _show_error(form, error)
                return self._form_page(form, None, 400)
            flash(f"Flow “{flow.name}” added.", "success")
            return redirect(url_for(".index"))
        return self._form_page(form, None, 400 if form.is_submitted() else 200)

    @expose("/<int:flow_id>/edit", methods=["GET", "POST"])
    def edit(self, flow_id: int):
        flow = db.session.get(Flow, flow_id)
        if flow is None:
            abort(404)
        form = FlowForm(obj=flow) if request.method == "GET" else FlowForm()
        if request.method == "GET":
            form.templates.data = "\n".join(flow.templates or [])
        if form.validate_on_submit():
            try:
                flow = self._save(form, flow_id)
                db.session.commit()
            except TicketerError as error:
                db.session.rollback()
                _show_error(form, error)
                return self._form_page(form, db.session.get(Flow, flow_id), 400)
            flash(f"Flow “{flow.name}” saved.", "success")
            return redirect(url_for(".index"))
        return self._form_page(form, flow, 400 if form.is_submitted() else 200)


class TriggersView(SecuredView):
    capability = Capability.INTEGRATIONS

    @expose("/")
    def index(self):
        triggers = (
            db.session.execute(
                select(Trigger)
                .options(joinedload(Trigger.flow), joinedload(Trigger.topic))
                .order_by(Trigger.active.desc(), Trigger.id)
            )
            .scalars()
            .all()
        )
        return self.render("admin/flows/triggers.html", triggers=triggers)

    def _choices(self, form: TriggerForm) -> None:
        form.flow.choices = [("", "Pick a flow")] + [
            (str(f.id), f.name) for f in db.session.execute(select(Flow).order_by(Flow.name)).scalars()
        ]
        form.topic.choices = [("", "All topics")] + [
            (str(t.id), t.name) for t in db.session.execute(select(Topic).order_by(Topic.name)).scalars()
        ]

    def _handle(self, form: TriggerForm, trigger_id: int | None):
        self._choices(form)
        if form.validate_on_submit():
            values = {
                "flow_id": int(form.flow.data) if form.flow.data else None,
                "topic_id": int(form.topic.data) if form.topic.data else None,
                "delay_minutes": form.delay_minutes.data or 0,
                "active": form.active.data,
            }
            try:
                if trigger_id is None:
                    flow_service.create_trigger(**values, by=current_user)
                else:
                    flow_service.update_trigger(trigger_id, **values, by=current_user)
                db.session.commit()
            except TicketerError as error:
                db.session.rollback()
                _show_error(form, error)
                return self.render("admin/flows/trigger_form.html", form=form, trigger_id=trigger_id), 400
            flash("Trigger saved.", "success")
            return redirect(url_for(".index"))
        status = 400 if form.is_submitted() else 200
        return self.render("admin/flows/trigger_form.html", form=form, trigger_id=trigger_id), status

    @expose("/new", methods=["GET", "POST"])
    def create(self):
        return self._handle(TriggerForm(), None)

    @expose("/<int:trigger_id>/edit", methods=["GET", "POST"])
    def edit(self, trigger_id: int):
        trigger = db.session.get(Trigger, trigger_id)
        if trigger is None:
            abort(404)
        form = TriggerForm()
        if request.method == "GET":
            form.flow.data = str(trigger.flow_id)
            form.topic.data = str(trigger.topic_id or "")
            form.delay_minutes.data = trigger.delay_minutes
            form.active.data = trigger.active
        return self._handle(form, trigger_id)


class DeliveriesView(SecuredView):
    """The panel: flow starts and outgoing messages, with status, attempts, next try and last error."""

    capability = Capability.INTEGRATIONS

    def _page(self) -> int:
        value = request.args.get("page", "1")
        return max(int(value), 1) if value.isdigit() and len(value) < 7 else 1

    @expose("/")
    def index(self):
        status = request.args.get("status", "")
        statuses = [s.value for s in DeliveryStatus]
        if status not in statuses:
            status = ""
        page = self._page()
        query = select(FlowStart)
        count = select(func.count()).select_from(FlowStart)
        if status:
            query = query.where(FlowStart.status == status)
            count = count.where(FlowStart.status == status)
        starts = (
            db.session.execute(
                query.options(
                    joinedload(FlowStart.flow),
                    joinedload(FlowStart.contact),
                    joinedload(FlowStart.ticket),
                )
                .order_by(FlowStart.id.desc())
                .limit(PANEL_PAGE_SIZE)
                .offset((page - 1) * PANEL_PAGE_SIZE)
            )
            .scalars()
            .all()
        )
        return self._render_tab("starts", starts, db.session.scalar(count), page, status, statuses)

    @expose("/messages")
    def messages(self):
        status = request.args.get("status", "")
        statuses = [s.value for s in Message.Status if s != Message.Status.RECEIVED]
        if status not in statuses:
            status = ""
        page = self._page()
        conditions = [Message.direction == Message.Direction.OUT]
        if status:
            conditions.append(Message.status == status)
        rows = db.session.execute(
            select(Message, Contact.name, Ticket.uuid)
            .join(Contact, Contact.id == Message.contact_id)
            .outerjoin(Ticket, Ticket.id == Message.ticket_id)
            .where(*conditions)
            .order_by(Message.id.desc())
            .limit(PANEL_PAGE_SIZE)
            .offset((page - 1) * PANEL_PAGE_SIZE)
        ).all()
        total = db.session.scalar(select(func.count()).select_from(Message).where(*conditions))
        return self._render_tab("messages", rows, total, page, status, statuses)

    def _render_tab(self, tab: str, rows, total: int, page: int, status: str, statuses: list[str]):
        return self.render(
            "admin/flows/deliveries.html",
            tab=tab,
            rows=rows,
            total=total,
            page=page,
            page_size=PANEL_PAGE_SIZE,
            status=status,
            statuses=statuses,
            action_form=ActionForm(formdata=None),
        )

    def _retry(self, action, back: str):
        if not ActionForm().validate_on_submit():
            abort(400)
        try:
            action()
            db.session.commit()
            flash("Queued for another try.", "success")
        except TicketerError as error:
            db.session.rollback()
            if error.status == 404:
                abort(404)
            flash(error.message, "error")
        return redirect(url_for(back, status=request.args.get("status") or None))

    @expose("/starts/<int:start_id>/retry", methods=["POST"])
    def retry_start(self, start_id: int):
        return self._retry(lambda: flow_service.retry_start(start_id, by=current_user), ".index")

    @expose("/messages/<int:message_id>/retry", methods=["POST"])
    def retry_message(self, message_id: int):
        return self._retry(lambda: flow_service.retry_message(message_id, by=current_user), ".messages")


def register_flow_views(admin: Admin) -> None:
    admin.add_view(FlowsView(name="Flows", endpoint="flows", url="/admin/flows", category="Flows"))
    admin.add_view(TriggersView(name="Triggers", endpoint="flow_triggers", url="/admin/triggers", category="Flows"))
    admin.add_view(
        DeliveriesView(name="Deliveries", endpoint="flow_deliveries", url="/admin/deliveries", category="Flows")
    )
