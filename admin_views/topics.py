"""Topics: list, create and rename (supervisors and admins)."""

from flask import flash, request
from flask_login import current_user
from wtforms.validators import ValidationError as FormValidationError

from admin_views.base import SecuredModelView
from ticketer.errors import TicketerError
from ticketer.extensions import db
from ticketer.roles import Capability
from ticketer.services import topics as topic_service


def _unique_topic_name(form, field) -> None:
    """Show a taken or bad name by the field, before the service is asked."""
    topic_id = request.args.get("id", type=int)
    try:
        field.data = topic_service.check_topic_name(field.data, topic_id=topic_id)
    except TicketerError as error:
        raise FormValidationError(error.message) from None


class TopicsView(SecuredModelView):
    capability = Capability.MANAGE_TOPICS
    write_capability = Capability.MANAGE_TOPICS
    column_list = ("name", "is_default", "created_on")
    column_labels = {"is_default": "Default", "created_on": "Created"}
    column_default_sort = "name"
    column_searchable_list = ("name",)
    form_columns = ("name",)
    form_args = {"name": {"validators": [_unique_topic_name]}}

    def create_model(self, form):
        try:
            topic = topic_service.create_topic(form.name.data, by=current_user)
            db.session.commit()
        except TicketerError as error:
            db.session.rollback()
            flash(error.message, "error")
            return False
        self.after_model_change(form, topic, True)
        return topic

    def update_model(self, form, model) -> bool:
        try:
            topic_service.rename_topic(model.id, form.name.data, by=current_user)
            db.session.commit()
        except TicketerError as error:
            db.session.rollback()
            flash(error.message, "error")
            return False
        self.after_model_change(form, model, False)
        return True
