"""Scheduler entry points (APScheduler 3): module-level functions with primitive arguments.

They run in the scheduler process (`flask --app app scheduler`, see ticketer/scheduler.py), each in
its own app context, and commit their own work.
"""

import logging
import threading

from flask import Flask

log = logging.getLogger(__name__)

_app: Flask | None = None
_stopping = threading.Event()


def bind_app(app: Flask) -> None:
    """The app whose database and settings the jobs use (the scheduler process binds its own)."""
    global _app
    _app = app
    _stopping.clear()


def request_stop() -> None:
    """Make running jobs stop after the send in progress (graceful shutdown)."""
    _stopping.set()


def _current_app() -> Flask:
    global _app
    if _app is None:
        from app import create_app

        _app = create_app()
    return _app


def dispatch_due() -> dict:
    """Send the flow starts and outgoing messages that are due; returns counts for the log."""
    from ticketer.services import dispatch

    app = _current_app()
    with app.app_context():
        report = dispatch.dispatch_due(dispatch.Settings.from_config(app.config), should_stop=_stopping.is_set)
    summary = {"sent": report.sent, "retrying": report.retrying, "failed": report.failed, "lost": report.lost_claims}
    if report.sent or report.retrying or report.failed or report.lost_claims:
        log.info("dispatch: %s", summary)
    for error in report.errors[:20]:
        log.warning("dispatch error: %s", error)
    return summary
