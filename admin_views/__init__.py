"""Flask-Admin views: thin, they call ticketer.services."""

from flask import Flask, render_template
from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme

from admin_views.api_tokens import ApiDocsView, ApiTokensView
from admin_views.connections import ConnectionsView
from admin_views.dashboard import DashboardView
from admin_views.flows import register_flow_views
from admin_views.home import HomeView
from admin_views.media import MediaView
from admin_views.people import InvitationsView, PeopleView
from admin_views.supervision import AvailabilityView, SupervisionView
from admin_views.tickets import TicketsView, time_tag
from admin_views.topics import TopicsView
from ticketer.extensions import db
from ticketer.models import Topic, User
from ticketer.models.connections import Connection
from ticketer.models.people import Invitation
from ticketer.security_headers import csp_nonce


def init_admin(app: Flask) -> Admin:
    app.add_template_filter(time_tag)
    admin = Admin(
        app,
        name="Ticketer",
        theme=Bootstrap4Theme(base_template="admin/ticketer_base.html", fluid=True),
        csp_nonce_generator=csp_nonce,
        index_view=HomeView(name="Home", url="/admin", menu_class_name="d-none"),
    )
    admin.add_view(DashboardView(name="Dashboard", endpoint="dashboard", url="/admin/dashboard"))
    admin.add_view(TicketsView(name="Tickets", endpoint="tickets", url="/admin/tickets"))
    admin.add_view(MediaView(name="Attachments", endpoint="media", url="/admin/media"))
    admin.add_view(TopicsView(Topic, db, name="Topics", endpoint="topics", url="/admin/topics"))
    admin.add_view(PeopleView(User, db, name="People", endpoint="people", url="/admin/people", category="Logins"))
    admin.add_view(
        InvitationsView(
            Invitation, db, name="Invitations", endpoint="invitations", url="/admin/invitations", category="Logins"
        )
    )
    admin.add_view(SupervisionView(name="Supervision", endpoint="supervision", url="/admin/supervision"))
    admin.add_view(AvailabilityView(name="Availability", endpoint="availability", url="/admin/availability"))
    admin.add_view(ApiTokensView(name="API tokens", endpoint="api_tokens", url="/admin/api-tokens", category="API"))
    admin.add_view(ApiDocsView(name="API reference", endpoint="api_docs", url="/admin/api-docs", category="API"))
    register_flow_views(admin)
    admin.add_view(
        ConnectionsView(Connection, db, name="Connections", endpoint="connections", url="/admin/connections")
    )

    @app.errorhandler(403)
    def forbidden(error):
        return render_template("errors/403.html"), 403

    return admin
