"""Supervisor tools: auto-assignment and SLA targets per topic, business hours (supervisors and
admins), and everyone's own "available" toggle."""

from flask import abort, flash, redirect, request, url_for
from flask_admin import expose
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, IntegerField, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, NumberRange, Optional, Regexp
from wtforms.widgets import CheckboxInput, ListWidget

from admin_views.base import SecuredView, local_path, show_error
from ticketer import ticket_lists
from ticketer.errors import TicketerError
from ticketer.extensions import db
from ticketer.models import Topic, User
from ticketer.models.supervision import AssignmentStrategy, AutoAssignment, PoolMember, SLATarget
from ticketer.roles import Capability
from ticketer.services import assignment
from ticketer.services import sla as sla_service

DAYS = [("1", "Mon"), ("2", "Tue"), ("3", "Wed"), ("4", "Thu"), ("5", "Fri"), ("6", "Sat"), ("7", "Sun")]
_HHMM = Regexp(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$", message="Use HH:MM, e.g. 09:00.")


class CheckboxesField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class TopicSettingsForm(FlaskForm):
    enabled = BooleanField("Assign new tickets automatically")
    strategy = SelectField(
        "Strategy", choices=[(s.value, s.label.capitalize()) for s in AssignmentStrategy], default="round_robin"
    )
    capacity = IntegerField(
        "Capacity (most open tickets per agent)",
        default=10,
        validators=[DataRequired("Enter a number."), NumberRange(1, assignment.CAPACITY_MAX)],
    )
    pool = CheckboxesField("Pool", coerce=int)
    first_reply_minutes = IntegerField(
        "First reply within (minutes)", validators=[Optional(), NumberRange(1, sla_service.MINUTES_MAX)]
    )
    resolution_minutes = IntegerField(
        "Resolution within (minutes)", validators=[Optional(), NumberRange(1, sla_service.MINUTES_MAX)]
    )
    business_hours_only = BooleanField("Count business hours only")


class BusinessHoursForm(FlaskForm):
    days = CheckboxesField("Business days", choices=DAYS)
    start = StringField("Opens", validators=[DataRequired(), _HHMM])
    end = StringField("Closes", validators=[DataRequired(), _HHMM])
    time_zone = StringField("Time zone", validators=[DataRequired()])


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


class SupervisionView(SecuredView):
    capability = Capability.MANAGE_TOPICS

    def _hours_form(self, formdata=None) -> BusinessHoursForm:
        hours = sla_service.business_hours()
        if formdata is not None:
            return BusinessHoursForm(formdata=formdata)
        return BusinessHoursForm(
            formdata=None,
            days=[str(d) for d in hours.weekdays],
            start=_hhmm(hours.start_minute),
            end=_hhmm(hours.end_minute),
            time_zone=hours.time_zone,
        )

    def _render_index(self, hours_form: BusinessHoursForm, status: int = 200):
        topics = db.session.execute(select(Topic).order_by(Topic.name)).scalars().all()
        autos = {a.topic_id: a for a in db.session.execute(select(AutoAssignment)).scalars()}
        targets = {t.topic_id: t for t in db.session.execute(select(SLATarget)).scalars()}
        pools: dict[int, list[str]] = {}
        for topic_id, user in db.session.execute(
            select(PoolMember.topic_id, User).join(User, User.id == PoolMember.user_id).order_by(User.name, User.email)
        ):
            pools.setdefault(topic_id, []).append(user.display_name)
        return (
            self.render(
                "admin/supervision/index.html",
                topics=topics,
                autos=autos,
                targets=targets,
                pools=pools,
                hours_form=hours_form,
                days=DAYS,
            ),
            status,
        )

    @expose("/")
    def index(self):
        return self._render_index(self._hours_form())

    @expose("/hours", methods=["POST"])
    def hours(self):
        form = self._hours_form(request.form)
        if form.validate_on_submit():
            try:
                sla_service.set_business_hours(
                    days=[int(d) for d in form.days.data or []],
                    start_minute=_minutes(form.start.data),
                    end_minute=_minutes(form.end.data),
                    time_zone=form.time_zone.data.strip(),
                    by=current_user,
                )
                db.session.commit()
                flash("Business hours saved.", "success")
                return redirect(url_for(".index"))
            except TicketerError as error:
                db.session.rollback()
                show_error(error, form)
        return self._render_index(form, 400)

    def _topic_form(self, topic: Topic, formdata=None) -> TopicSettingsForm:
        people = ticket_lists.assignable_users()
        if formdata is not None:
            form = TopicSettingsForm(formdata=formdata)
        else:
            auto = assignment.get_settings(topic.id)
            target = sla_service.get_target(topic.id)
            form = TopicSettingsForm(
                formdata=None,
                enabled=bool(auto and auto.enabled),
                strategy=auto.strategy if auto else AssignmentStrategy.ROUND_ROBIN.value,
                capacity=auto.capacity if auto else 10,
                pool=assignment.pool_user_ids(topic.id),
                first_reply_minutes=target.first_reply_minutes if target else None,
                resolution_minutes=target.resolution_minutes if target else None,
                business_hours_only=bool(target and target.business_hours_only),
            )
        form.pool.choices = [(u.id, f"{u.display_name} ({u.role})") for u in people]
        return form

    @expose("/topics/<int:topic_id>", methods=["GET", "POST"])
    def topic(self, topic_id: int):
        topic = db.session.get(Topic, topic_id)
        if topic is None:
            abort(404)
        form = self._topic_form(topic, request.form if request.method == "POST" else None)
        status = 200
        if request.method == "POST":
            status = 400
            if form.validate_on_submit():
                try:
                    assignment.configure(
                        topic.id,
                        enabled=form.enabled.data,
                        strategy=form.strategy.data,
                        capacity=form.capacity.data,
                        pool=form.pool.data or [],
                        by=current_user,
                    )
                    sla_service.configure_target(
                        topic.id,
                        first_reply_minutes=form.first_reply_minutes.data,
                        resolution_minutes=form.resolution_minutes.data,
                        business_hours_only=form.business_hours_only.data,
                        by=current_user,
                    )
                    db.session.commit()
                    flash(f"Settings of {topic.name} saved.", "success")
                    return redirect(url_for(".index"))
                except TicketerError as error:
                    db.session.rollback()
                    topic = db.session.get(Topic, topic_id)
                    show_error(error, form)
        settings = assignment.get_settings(topic.id)
        return (
            self.render(
                "admin/supervision/topic.html",
                topic=topic,
                form=form,
                members=assignment.pool_status(topic.id),
                capacity=settings.capacity if settings else None,
            ),
            status,
        )


class AvailabilityView(SecuredView):
    """POST only: switch your own "available" toggle (auto-assignment skips people who are away)."""

    capability = Capability.WORK_TICKETS

    def is_visible(self) -> bool:
        return False

    @expose("/", methods=["POST"])
    def index(self):
        form = FlaskForm()
        if not form.validate_on_submit():
            abort(400)
        try:
            changed = assignment.set_available(current_user.id, request.form.get("available") == "1", by=current_user)
            db.session.commit()
        except TicketerError as error:
            db.session.rollback()
            flash(error.message, "error")
            changed = False
        if changed:
            flash(
                "You're available for auto-assigned tickets."
                if assignment.is_available(current_user.id)
                else "You're away: auto-assignment passes you by.",
                "success",
            )
        return redirect(local_path(request.form.get("next")) or url_for("tickets.index"))
