"""Deliveries (admins): flow starts and outgoing messages, with status, attempts, next try and last error.

Read-only Flask-Admin lists on the service-calling base; Retry is an @action (the selected rows) and a
button on each failed row (the same action for that row). Both tables grow without bound (millions of
rows), so the lists never count and never OFFSET: newest first, paged by keyset (`?before=<id>`).
"""

from flask import flash, request, url_for
from flask_admin.actions import action
from flask_admin.contrib.sqla.filters import FilterEqual
from flask_login import current_user
from markupsafe import Markup

from admin_views.base import PostRowAction, ServiceModelView
from ticketer.extensions import db
from ticketer.models import Message
from ticketer.models.flows import DeliveryStatus, FlowStart
from ticketer.roles import Capability
from ticketer.services import flows as flow_service

MAX_ID = 2**63 - 1
BADGES = {"sent": "success", "failed": "danger", "pending": "warning", "queued": "warning", "sending": "info"}


def _when(view, context, row, name):
    value = getattr(row, name)
    return context.environment.filters["time_tag"](value) if value else ""


def _status(view, context, row, name):
    return Markup('<span class="badge badge-{} {}-status">{}</span>').format(
        BADGES.get(row.status, "light"), view.row_kind, row.status
    )


def _ticket(view, context, row, name):
    ticket = row.ticket
    if ticket is None:
        return ""
    return Markup('<a class="small text-monospace" href="{}">{}</a>').format(
        url_for("tickets.detail", ticket_uuid=ticket.uuid), ticket.uuid[:8]
    )


class DeliveriesView(ServiceModelView):
    """The common part of the two delivery lists: read-only, status filter, keyset pages, Retry."""

    capability = Capability.INTEGRATIONS
    allow_create = allow_edit = allow_delete = False
    list_template = "admin/flows/deliveries.html"
    column_sortable_list = ()
    column_default_sort = ("id", True)
    can_set_page_size = False
    named_filter_urls = True
    column_extra_row_actions = [PostRowAction("retry", "Retry", show=lambda row: row.status == "failed")]
    statuses: list[str] = []
    row_kind = ""

    def __init__(self, **kwargs):
        super().__init__(self.model_class, db, **kwargs)

    def before_id(self) -> int | None:
        value = request.args.get("before", type=int)
        return value if value is not None and 0 < value <= MAX_ID else None

    def get_query(self):
        query = super().get_query()
        before = self.before_id()
        return query.filter(self.model.id < before) if before is not None else query

    def get_list(self, page, sort_column, sort_desc, search, filters, execute=True, page_size=None):
        # The page number is ignored: get_query's `before` is the page (no OFFSET), and no COUNT(*).
        return super().get_list(None, None, False, search, filters, execute=execute, page_size=page_size)

    def status_url(self, status: str | None) -> str:
        """The list with only this status (or every status), from the newest row."""
        if not status:
            return self.get_url(".index_view")
        (status_filter,) = self.column_filters  # the one filter: by status
        return self.get_url(".index_view", **{f"flt0_{self.get_filter_arg(0, status_filter)}": status})

    def older_url(self, last_id: int) -> str:
        args = request.args.to_dict()
        args["before"] = last_id
        return self.get_url(".index_view", **args)

    def newest_url(self) -> str:
        args = request.args.to_dict()
        args.pop("before", None)
        return self.get_url(".index_view", **args)

    def retry_one(self, row_id: int):
        raise NotImplementedError

    @action("retry", "Retry selected", "Send the selected failed deliveries again now?")
    def action_retry(self, ids) -> None:
        retried = 0
        for row_id in ids:
            if not str(row_id).isdigit() or int(row_id) > MAX_ID:
                continue
            ok, _ = self.call_service(lambda row_id=int(row_id): self.retry_one(row_id))
            retried += ok
        if retried:
            flash(f"Queued for another try: {retried:,}.", "success")


class StartsView(DeliveriesView):
    """Flow starts recorded by closes: due, sent, failed (after every attempt), cancelled by a reopen."""

    model_class = FlowStart
    row_kind = "start"
    column_list = (
        "ticket",
        "contact",
        "flow",
        "status",
        "attempts",
        "due_on",
        "next_attempt_on",
        "sent_on",
        "last_error",
    )
    column_labels = {"due_on": "Due", "next_attempt_on": "Next try", "sent_on": "Sent", "last_error": "Last error"}
    column_formatters = {
        "ticket": _ticket,
        "contact": lambda view, context, start, name: start.contact.name or start.contact.uuid,
        "flow": lambda view, context, start, name: start.flow.name,
        "status": _status,
        "due_on": _when,
        "next_attempt_on": lambda view, context, start, name: (
            _when(view, context, start, name) if start.status == DeliveryStatus.PENDING else ""
        ),
        "sent_on": _when,
    }
    statuses = [status.value for status in DeliveryStatus]
    column_filters = [FilterEqual(FlowStart.status, "Status", options=[(s, s) for s in statuses])]

    def retry_one(self, row_id: int):
        return flow_service.retry_start(row_id, by=current_user)


class OutgoingMessagesView(DeliveriesView):
    """Agent replies and flow messages on their way to the contact."""

    model_class = Message
    row_kind = "message"
    column_list = ("ticket", "contact", "text", "status", "attempts", "created_on", "next_attempt_on", "last_error")
    column_labels = {"created_on": "Created", "next_attempt_on": "Next try", "last_error": "Last error"}
    column_formatters = {
        "ticket": _ticket,
        "contact": lambda view, context, message, name: message.contact.name,
        "text": lambda view, context, message, name: message.text[:80] + ("…" if len(message.text) > 80 else ""),
        "status": _status,
        "created_on": _when,
        "next_attempt_on": lambda view, context, message, name: (
            _when(view, context, message, name) if message.status == Message.Status.QUEUED else ""
        ),
    }
    statuses = [status.value for status in Message.Status if status != Message.Status.RECEIVED]
    column_filters = [FilterEqual(Message.status, "Status", options=[(s, s) for s in statuses])]

    def get_query(self):
        return super().get_query().filter(Message.direction == Message.Direction.OUT)

    def retry_one(self, row_id: int):
        return flow_service.retry_message(row_id, by=current_user)
