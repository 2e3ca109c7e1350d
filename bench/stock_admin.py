"""Stock Flask-Admin over the same tables, for the side-by-side: a plain ModelView of tickets.

Default settings except what it takes to show the same pages as Ticketer's folders: filters on
status and assignee (the folders), newest activity first, and 50 rows a page. Everything else is
Flask-Admin's default: a COUNT(*) of the filtered rows on every page, OFFSET paging, no auth.
"""

import os

from flask import Flask
from flask_admin import Admin
from flask_admin.contrib.sqla import ModelView
from flask_admin.theme import Bootstrap4Theme

from ticketer.config import database_url_from_env
from ticketer.extensions import db
from ticketer.models import Ticket

URL = "/stock"


class StockTicketView(ModelView):
    column_filters = ["status", "assignee_id"]
    column_default_sort = ("last_activity_on", True)
    page_size = 50


def create_stock_app(database_url: str) -> Flask:
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url_from_env(database_url)
    app.config["SECRET_KEY"] = os.environ.get("SECRET_KEY", "bench-not-secret")
    db.init_app(app)
    admin = Admin(app, name="Stock", url=URL, theme=Bootstrap4Theme())
    admin.add_view(StockTicketView(Ticket, db, endpoint="stock_tickets"))
    return app


def folder_args(view: StockTicketView, folder: str, status: str, user_id: int) -> dict[str, str]:
    """The list-view URL arguments that show one of Ticketer's folders (status + assignee filters)."""
    args: dict[str, str] = {}
    position = 0
    for index, flt in enumerate(view._filters):
        column = getattr(flt, "column", None)
        name = getattr(column, "key", None) or getattr(column, "name", None)
        operation = str(flt.operation())
        wanted = None
        if name == "status" and operation == "equals":
            wanted = status
        elif name == "assignee_id" and folder == "mine" and operation == "equals":
            wanted = str(user_id)
        elif name == "assignee_id" and folder == "unassigned" and operation == "empty":
            wanted = "1"
        if wanted is not None:
            args[f"flt{position}_{index}"] = wanted
            position += 1
    return args
