"""The agent's workspace: ticket folders, a ticket's conversation, and the actions on it."""

from datetime import datetime

from flask import abort, flash, jsonify, redirect, request, url_for
from flask_admin import expose
from flask_login import current_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from wtforms import HiddenField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from admin_views.base import SecuredView, local_path, user_can
from ticketer import ticket_deadlines, ticket_lists
from ticketer.errors import TicketerError
from ticketer.extensions import db
from ticketer.models import Contact, Message, Ticket, TicketEvent, Topic
from ticketer.models.supervision import AgentStatus
from ticketer.roles import Capability, home_folder
from ticketer.services import conversation, media
from ticketer.services import tickets as ticket_service
from ticketer.services.validation import MESSAGE_MAX_LENGTH, NOTE_MAX_LENGTH


class ReplyForm(FlaskForm):
    text = TextAreaField("Reply", validators=[DataRequired("Write a reply first."), Length(max=MESSAGE_MAX_LENGTH)])


class NoteForm(FlaskForm):
    note = TextAreaField("Note", validators=[DataRequired("Write a note first."), Length(max=NOTE_MAX_LENGTH)])


class AssignForm(FlaskForm):
    assignee = SelectField("Assign to", coerce=str, validators=[Optional()])
    note = TextAreaField("Note (optional)", validators=[Length(max=NOTE_MAX_LENGTH)])


class TopicForm(FlaskForm):
    topic = SelectField("Topic", coerce=str, validators=[DataRequired()])


class ActionForm(FlaskForm):
    """Close and reopen: nothing to fill in, but CSRF-protected."""


def time_tag(moment: datetime | None) -> Markup:
    """A UTC moment as <time> (the `when` macro and `|time_tag`); a function, as a list page shows 100."""
    if not moment:
        return Markup("")
    # Digits, letters and punctuation of a date only: nothing to escape (and Markup.format costs 10x).
    stamp, title, shown = moment.isoformat(), f"{moment:%Y-%m-%d %H:%M UTC}", f"{moment:%b %d, %H:%M}"
    return Markup(f'<time datetime="{stamp}" title="{title}">{shown}</time>')


# Any uuid: the rows' links to their tickets differ only by it (see `_detail_urls`).
_SAMPLE_UUID = "00000000-0000-0000-0000-000000000000"


BULK_ACTIONS = [
    ("assign", "Assign to…"),
    ("unassign", "Unassign"),
    ("topic", "Change topic to…"),
    ("close", "Close"),
    ("reopen", "Reopen"),
]


# The bulk bar's choices as ticket_service.apply_action names them.
_SERVICE_ACTIONS = {"unassign": "assign", "topic": "change_topic"}


class BulkForm(FlaskForm):
    """A bulk action on the checked rows or on every ticket matching the list's filters."""

    action = SelectField("Action", choices=BULK_ACTIONS, validators=[DataRequired()])
    scope = RadioField("Apply to", choices=[("selected", "Selected"), ("all", "All matching")], default="selected")
    assignee_id = SelectField("Assign to", coerce=str, validators=[Optional()])
    new_topic = SelectField("Topic", coerce=str, validators=[Optional()])
    note = StringField("Note (optional)", validators=[Length(max=NOTE_MAX_LENGTH)])
    confirmed = HiddenField()


def _one(action: str, ticket: Ticket, **values) -> bool:
    """An action on this one ticket, as the bulk bar and the API do it: whether it changed anything."""
    return ticket_service.apply_action(action, [ticket.id], by=current_user, **values).changed > 0


class TicketsView(SecuredView):
    capability = Capability.VIEW_TICKETS

    # --- folders ------------------------------------------------------------------------------

    def _filter(self, values=None) -> ticket_lists.TicketFilter:
        """The folder + status + search + filters of a list URL (or of a bulk form's fields)."""
        default_folder = home_folder(current_user.role)
        return ticket_lists.TicketFilter.from_args(
            request.args if values is None else values, default_folder=default_folder
        )

    def _summary(self, ticket_filter: ticket_lists.TicketFilter, can_bulk: bool) -> dict:
        """Folder counts, the Overdue count, my "available" toggle and (for bulk actions) the matching
        count: one query."""
        columns = [*ticket_lists.FOLDER_COUNT_COLUMNS, ticket_deadlines.overdue_count_query().label("overdue")]
        if current_user.can_take_tickets:
            available = select(AgentStatus.available).where(AgentStatus.user_id == current_user.id)
            columns.append(available.scalar_subquery().label("available"))
        if can_bulk:
            columns.append(ticket_lists.matching_count_query(ticket_filter, current_user).label("matching"))
        row = ticket_lists.run_select(select(*columns), ticket_lists.folder_count_params(current_user)).one()
        values = row._mapping
        return {
            "counts": ticket_lists.folder_counts_of(row),
            "overdue": int(values["overdue"] or 0),
            "available": values.get("available") is not False if current_user.can_take_tickets else None,
            "matching": int(values.get("matching") or 0),
        }

    def _detail_urls(self, tickets) -> dict[str, str]:
        """{uuid: the row's link to its ticket, with the way back here}: url_for once, not once a row.

        The sample uuid is the first thing after the view's path, so the first match is the one."""
        link = url_for(".detail", ticket_uuid=_SAMPLE_UUID, back=request.full_path)
        return {t.uuid: link.replace(_SAMPLE_UUID, t.uuid, 1) for t in tickets}

    @expose("/")
    def index(self):
        ticket_filter = self._filter()
        after, before = request.args.get("after"), request.args.get("before")
        if any(value and ticket_lists.Cursor.decode(value) is None for value in (after, before)):
            abort(400, "That page link is not one we gave; start again from the folder.")
        page = ticket_lists.list_tickets(
            ticket_filter,
            current_user,
            after=after,
            before=before,
            limit=self.admin.app.config["TICKETS_PER_PAGE"],
        )
        can_bulk = user_can(Capability.BULK_ACTIONS)
        # After the page: a search's matching count reuses how the list found its tickets.
        summary = self._summary(ticket_filter, can_bulk)
        return self.render(
            "admin/tickets/list.html",
            ticket_filter=ticket_filter,
            folder=ticket_filter.folder_name,
            page=page,
            detail_urls=self._detail_urls(page.tickets),
            counts=summary["counts"],
            topics=ticket_lists.topic_choices(),
            agents=ticket_lists.assignee_choices(),
            clocks=ticket_deadlines.clocks_for(page.tickets),
            summary=summary,
            can_bulk=can_bulk,
            can_export=user_can(Capability.DASHBOARD),
            bulk_form=BulkForm(formdata=None) if can_bulk else None,
            action_form=ActionForm(formdata=None),
        )

    @expose("/counts.json")
    def counts(self):
        """The folder badges' figures, refreshed by the page every 20 s: one query."""
        columns = [*ticket_lists.FOLDER_COUNT_COLUMNS, ticket_deadlines.overdue_count_query().label("overdue")]
        row = ticket_lists.run_select(select(*columns), ticket_lists.folder_count_params(current_user)).one()
        counts = ticket_lists.folder_counts_of(row)
        counts["overdue"] = {"open": int(row.overdue or 0)}
        return jsonify(counts)

    # --- bulk actions on many tickets (supervisors and admins) ----------------------------------

    def _bulk_ids(self, form: "BulkForm", ticket_filter: ticket_lists.TicketFilter) -> list[int]:
        """The ids the bulk action applies to: the checked rows, or every ticket matching (one SELECT)."""
        if form.scope.data == "all":
            conditions = ticket_lists.filter_conditions(ticket_filter, current_user)
            return list(db.session.execute(select(Ticket.id).where(*conditions).order_by(Ticket.id)).scalars())
        return sorted({int(i) for i in request.form.getlist("ids") if i.isdigit() and len(i) < 12})

    def _list_url(self, ticket_filter: ticket_lists.TicketFilter) -> str:
        return url_for(".index", **ticket_filter.to_args())

    @expose("/bulk", methods=["POST"])
    def bulk(self):
        """Step 1 shows what will happen to how many tickets; step 2 (confirmed) does it."""
        if not user_can(Capability.BULK_ACTIONS):
            abort(403)
        ticket_filter = self._filter(request.form)
        back = self._list_url(ticket_filter)
        form = BulkForm()
        agents = {u.id: u for u in ticket_lists.assignable_users()}
        topics = {t.id: t for t in db.session.execute(select(Topic).order_by(Topic.name)).scalars()}
        form.assignee_id.choices = [("", "")] + [(str(i), u.display_name) for i, u in agents.items()]
        form.new_topic.choices = [("", "")] + [(str(i), t.name) for i, t in topics.items()]
        if not form.validate_on_submit():
            for field in form:
                for error in field.errors:
                    flash(f"{field.label.text}: {error}", "error")
            return redirect(back)
        action = form.action.data
        if action == "assign" and not form.assignee_id.data:
            flash("Pick who gets the tickets.", "error")
            return redirect(back)
        if action == "topic" and not form.new_topic.data:
            flash("Pick the new topic.", "error")
            return redirect(back)
        ids = self._bulk_ids(form, ticket_filter)
        if not ids:
            flash("Select some tickets first.", "error")
            return redirect(back)
        assignee = agents.get(int(form.assignee_id.data)) if form.assignee_id.data else None
        topic = topics.get(int(form.new_topic.data)) if form.new_topic.data else None
        if not form.confirmed.data:
            return self.render(
                "admin/supervision/bulk_confirm.html",
                form=form,
                count=len(ids),
                ids=ids if form.scope.data != "all" else [],
                action=action,
                assignee=assignee,
                topic=topic,
                ticket_filter=ticket_filter,
                folder=ticket_filter.folder_name,
                back=back,
            )
        try:
            result = ticket_service.apply_action(
                _SERVICE_ACTIONS.get(action, action),
                ids,
                by=current_user,
                assignee_id=assignee.id if action == "assign" and assignee else None,
                topic_id=topic.id if topic else None,
                note=form.note.data if action in ("assign", "unassign") else None,
            )
            db.session.commit()
        except TicketerError as error:
            db.session.rollback()
            flash(error.message, "error")
            return redirect(back)
        flash(result.message, "success" if result.changed else "info")
        return redirect(back)

    # --- one ticket ---------------------------------------------------------------------------

    def _load(self, ticket_uuid: str) -> Ticket:
        ticket = (
            db.session.execute(
                select(Ticket)
                .where(Ticket.uuid == ticket_uuid)
                .options(
                    joinedload(Ticket.contact).selectinload(Contact.urns),
                    joinedload(Ticket.topic),
                    joinedload(Ticket.assignee),
                    joinedload(Ticket.opened_by),
                )
            )
            .unique()
            .scalar_one_or_none()
        )
        if ticket is None:
            abort(404)
        return ticket

    def _timeline(self, ticket: Ticket) -> list[tuple[str, object]]:
        events = (
            db.session.execute(
                select(TicketEvent)
                .where(TicketEvent.ticket_id == ticket.id)
                .options(
                    joinedload(TicketEvent.created_by),
                    joinedload(TicketEvent.assignee),
                    joinedload(TicketEvent.topic),
                )
                .order_by(TicketEvent.id)
            )
            .scalars()
            .all()
        )
        messages = (
            db.session.execute(
                select(Message)
                .where(Message.ticket_id == ticket.id)
                .options(joinedload(Message.created_by))
                .order_by(Message.id)
            )
            .scalars()
            .all()
        )
        items = [("event", e) for e in events] + [("message", m) for m in messages]
        # Events before messages at the same instant: "opened" comes before the first reply.
        items.sort(key=lambda item: (item[1].created_on, item[0] == "message", item[1].id))
        return items

    def _forms(self, ticket: Ticket, **bound) -> dict:
        agents = ticket_lists.assignable_users()
        topics = db.session.execute(select(Topic).order_by(Topic.name)).scalars().all()
        assign_form = bound.get("assign_form") or AssignForm(formdata=None)
        assign_form.assignee.choices = [("", "Nobody (unassigned)")] + [
            (str(u.id), f"{u.display_name} ({u.role})") for u in agents
        ]
        if not bound.get("assign_form"):
            assign_form.assignee.data = str(ticket.assignee_id or "")
        topic_form = bound.get("topic_form") or TopicForm(formdata=None)
        topic_form.topic.choices = [(str(t.id), t.name) for t in topics]
        if not bound.get("topic_form"):
            topic_form.topic.data = str(ticket.topic_id)
        return {
            "reply_form": bound.get("reply_form") or ReplyForm(formdata=None),
            "note_form": bound.get("note_form") or NoteForm(formdata=None),
            "assign_form": assign_form,
            "topic_form": topic_form,
            "action_form": ActionForm(formdata=None),
        }

    def _render_ticket(self, ticket: Ticket, status: int = 200, **bound):
        timeline = self._timeline(ticket)
        # The contact's messages that joined no ticket (sent while none was open).
        outside_tickets = conversation.contact_history(ticket.contact_id, limit=20)
        message_ids = [m.id for kind, m in timeline if kind == "message"] + [m.id for m in outside_tickets]
        return (
            self.render(
                "admin/tickets/detail.html",
                ticket=ticket,
                contact=ticket.contact,
                timeline=timeline,
                outside_tickets=outside_tickets,
                # Attachments (templates/admin/tickets/_attachments.html): one query for the page.
                attachments=media.attachments_for(message_ids),
                media_presentation=media.presentation,
                media_link_label=media.link_label,
                replies_leave=conversation.replies_leave(ticket.contact),
                can_work=user_can(Capability.WORK_TICKETS),
                back_url=local_path(request.args.get("back")) or url_for(".index"),
                **self._forms(ticket, **bound),
            ),
            status,
        )

    @expose("/<uuid:ticket_uuid>")
    def detail(self, ticket_uuid):
        return self._render_ticket(self._load(str(ticket_uuid)))

    def _act(self, ticket_uuid, form_name: str, form, action, success: str):
        """Run `action` when the form validates; show errors by their field, else flash and redirect."""
        if not user_can(Capability.WORK_TICKETS):
            abort(403)
        ticket = self._load(str(ticket_uuid))
        if form.validate_on_submit():
            try:
                changed = action(ticket, form)
                db.session.commit()
            except TicketerError as error:
                db.session.rollback()
                ticket = self._load(str(ticket_uuid))
                field = next(iter(error.fields), None)
                target = getattr(form, field, None) if field else None
                # Reply and assign forms are only on open tickets; elsewhere the error goes on top.
                shown = ticket.is_open or form_name not in ("reply_form", "assign_form")
                if shown and target is not None and hasattr(target, "errors"):
                    target.errors = [*target.errors, error.message]
                else:
                    flash(error.message, "error")
                return self._render_ticket(ticket, 400, **{form_name: form})
            flash(success if changed is not False else "Nothing to change.", "success" if changed else "info")
            # The uuid it came with: the committed (expired) ticket would be read again to give it.
            return redirect(url_for(".detail", ticket_uuid=str(ticket_uuid)))
        return self._render_ticket(ticket, 400, **{form_name: form})

    @expose("/<uuid:ticket_uuid>/reply", methods=["POST"])
    def reply(self, ticket_uuid):
        return self._act(
            ticket_uuid,
            "reply_form",
            ReplyForm(),
            lambda t, f: bool(ticket_service.reply(t.id, f.text.data, by=current_user)),
            "Reply queued for sending.",
        )

    @expose("/<uuid:ticket_uuid>/note", methods=["POST"])
    def note(self, ticket_uuid):
        return self._act(
            ticket_uuid,
            "note_form",
            NoteForm(),
            lambda t, f: bool(ticket_service.add_note(t.id, f.note.data, by=current_user)),
            "Note added.",
        )

    @expose("/<uuid:ticket_uuid>/assign", methods=["POST"])
    def assign(self, ticket_uuid):
        form = AssignForm()
        form.assignee.choices = [("", "")] + [(str(u.id), "") for u in ticket_lists.assignable_users()]
        form.assignee.validators[0].message = "Pick someone who can take tickets."
        return self._act(
            ticket_uuid,
            "assign_form",
            form,
            lambda t, f: _one(
                "assign", t, assignee_id=int(f.assignee.data) if f.assignee.data else None, note=f.note.data
            ),
            "Ticket assigned.",
        )

    @expose("/<uuid:ticket_uuid>/topic", methods=["POST"])
    def topic(self, ticket_uuid):
        form = TopicForm()
        form.topic.choices = [(str(t.id), "") for t in db.session.execute(select(Topic)).scalars()]
        return self._act(
            ticket_uuid,
            "topic_form",
            form,
            lambda t, f: _one("change_topic", t, topic_id=int(f.topic.data)),
            "Topic changed.",
        )

    @expose("/<uuid:ticket_uuid>/close", methods=["POST"])
    def close(self, ticket_uuid):
        return self._act(
            ticket_uuid,
            "action_form",
            ActionForm(),
            lambda t, f: _one("close", t),
            "Ticket closed.",
        )

    @expose("/<uuid:ticket_uuid>/reopen", methods=["POST"])
    def reopen(self, ticket_uuid):
        return self._act(
            ticket_uuid,
            "action_form",
            ActionForm(),
            lambda t, f: _one("reopen", t),
            "Ticket reopened.",
        )
