"""Connections: the chatbot workspaces Ticketer talks to (admins). Add, edit, remove, Test connection.

The API token is write-only: the list never shows it, the edit form starts empty and an empty
field keeps the stored token.
"""

from flask import flash, request
from flask_admin.actions import action
from flask_login import current_user
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from wtforms import BooleanField, PasswordField, StringField

from admin_views.base import ServiceModelView
from ticketer.errors import TicketerError
from ticketer.roles import Capability
from ticketer.services import connections as connection_service


class ConnectionForm(FlaskForm):
    """What an admin types; the connections service checks it (name taken, URL, token)."""

    name = StringField("Name", description="What to call this workspace in Ticketer, e.g. Soporte.")
    base_url = StringField("Server URL", description="e.g. https://app.rapidpro.io (RapidPro, TextIt or your own).")
    api_token = PasswordField(
        "API token",
        description="From the workspace's API settings. Stored to call the workspace; never shown again. "
        "When editing, leave it empty to keep the stored one.",
    )
    silence_bot = BooleanField("Silence the bot while an agent talks", default=True)


class ConnectionsView(ServiceModelView):
    capability = Capability.INTEGRATIONS
    write_capability = Capability.INTEGRATIONS
    allow_delete = True
    column_list = ("name", "kind", "base_url", "silence_bot", "sync", "created_on")
    column_labels = {
        "kind": "Kind",
        "base_url": "Server",
        "silence_bot": "Silence the bot",
        "sync": "Messages pulled",
        "created_on": "Added",
    }
    column_formatters = {"sync": lambda view, context, model, name: _pull_state(model)}
    column_default_sort = "name"
    form = ConnectionForm

    def create_with_service(self, form):
        return connection_service.add_rapidpro(
            name=form.name.data,
            base_url=form.base_url.data,
            api_token=form.api_token.data,
            silence_bot=form.silence_bot.data,
            by=current_user,
        )

    def update_with_service(self, form, model) -> None:
        connection_service.update_connection(
            model.id,
            name=form.name.data,
            base_url=form.base_url.data,
            api_token=form.api_token.data or None,
            silence_bot=form.silence_bot.data,
            by=current_user,
        )

    def delete_with_service(self, model) -> None:
        connection_service.remove(model.id, by=current_user)

    def edit_form(self, obj=None):
        form = super().edit_form(obj)
        if request.method != "POST":
            form.api_token.data = ""  # the stored token is never sent back to the browser
        return form

    @action("test", "Test connection")
    def action_test(self, ids) -> None:
        """Call each selected workspace's endpoint: its name, or the exact error."""
        for connection_id in ids:
            try:
                connection = connection_service.get_connection(int(connection_id))
                name = connection_service.check_connection(connection.id, by=current_user)
                flash(f"{connection.name}: connected to workspace {name!r}.", "success")
            except (TicketerError, ValueError) as error:
                flash(f"Test connection failed: {getattr(error, 'message', error)}", "error")


def _pull_state(connection) -> Markup:
    state = connection.sync
    if state is None:
        return Markup("")
    text = f"up to {state.after:%Y-%m-%d %H:%M:%S} UTC"
    if state.last_error:
        text += f"; last error: {state.last_error}"
    return escape(text)
