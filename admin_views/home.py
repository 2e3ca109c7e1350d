"""The panel's home: agents land on their ticket folders; supervisors, admins and viewers on the dashboard."""

from flask import redirect, url_for
from flask_admin import expose
from flask_login import current_user

from admin_views.base import SecuredIndexView
from ticketer.roles import Capability


class HomeView(SecuredIndexView):
    @expose("/")
    def index(self):
        if current_user.can(Capability.DASHBOARD):
            return redirect(url_for("dashboard.index"))
        return redirect(url_for("tickets.index"))
