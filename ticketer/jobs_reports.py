"""Scheduler entry point for the reports: module-level, no arguments, its own app context.

squash_daily_counts  hourly: fold the day's delta rows of ticket_daily_counts into one per
                     (day, topic, assignee), for the last few local days
"""

from datetime import timedelta

from flask import has_app_context

from ticketer import jobs
from ticketer.extensions import db

SQUASH_DAYS_BACK = 3


def squash_daily_counts() -> int:
    """Squash the recent days' counts (the hook only ever adds rows for today); returns rows removed."""
    from ticketer import reports
    from ticketer.services import reports as report_service

    def work() -> int:
        try:
            removed = report_service.squash_daily_counts(since=reports.today() - timedelta(days=SQUASH_DAYS_BACK))
            db.session.commit()
            return removed
        except Exception:
            db.session.rollback()
            raise

    if has_app_context():
        return work()
    with jobs._current_app().app_context():
        try:
            return work()
        finally:
            db.session.remove()
