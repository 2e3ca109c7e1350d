"""The panel's home: people land on their ticket folders."""

from flask import redirect, url_for
from flask_admin import expose

from admin_views.base import SecuredIndexView


class HomeView(SecuredIndexView):
    @expose("/")
    def index(self):
        return redirect(url_for("tickets.index"))
