"""Users: the active people of the desk and their roles (to pick an assignee)."""

from sqlalchemy import select

from ticketer.api import bp
from ticketer.api.auth import require
from ticketer.api.errors import documents_errors
from ticketer.api.schemas import UserListSchema
from ticketer.extensions import db
from ticketer.models import User
from ticketer.roles import Capability


@bp.route("/users", methods=["GET"])
@bp.response(200, UserListSchema)
@documents_errors(bp, 401, 403)
def list_users():
    """Active agents, supervisors, admins and viewers, by email"""
    require(Capability.VIEW_TICKETS)
    users = db.session.execute(select(User).where(User.active.is_(True)).order_by(User.email)).scalars()
    return {
        "results": [
            {"email": u.email, "name": u.display_name, "role": u.role, "created_on": u.created_on} for u in users
        ]
    }
