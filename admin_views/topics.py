"""Topics: list, create and rename (supervisors and admins)."""

from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField

from admin_views.base import ServiceModelView
from ticketer.roles import Capability
from ticketer.services import topics as topic_service


class TopicForm(FlaskForm):
    """The name only; the topics service checks it (empty, too long, taken ignoring case)."""

    name = StringField("Name")


class TopicsView(ServiceModelView):
    capability = Capability.MANAGE_TOPICS
    write_capability = Capability.MANAGE_TOPICS
    column_list = ("name", "is_default", "created_on")
    column_labels = {"is_default": "Default", "created_on": "Created"}
    column_default_sort = "name"
    column_searchable_list = ("name",)
    form = TopicForm

    def create_with_service(self, form):
        return topic_service.create_topic(form.name.data, by=current_user)

    def update_with_service(self, form, model) -> None:
        topic_service.rename_topic(model.id, form.name.data, by=current_user)
