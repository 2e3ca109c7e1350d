"""Every scheduler entry point (APScheduler 3): module-level functions with primitive arguments.

    dispatch_due         every DISPATCH_INTERVAL_SECONDS: send the due flow starts and outgoing messages
    hand_out_backlog     every SUPERVISION_INTERVAL_SECONDS: unassigned tickets of auto-assigned topics
                         go to agents with room
    mark_sla_breaches    every SUPERVISION_INTERVAL_SECONDS: record missed SLA deadlines once and mail
                         the assignee (or the supervisors when nobody has the ticket), never twice
    pull_messages        every RAPIDPRO_SYNC_SECONDS: new messages from each workspace connection join
                         their contacts' tickets (a transaction per page, the cursor in it); the
                         statuses of replies sent through it are followed
    squash_daily_counts  hourly: fold the recent days' delta rows of ticket_daily_counts into one per
                         (day, topic, assignee)

They run in the scheduler process (`flask --app app scheduler`), which builds its app once;
ticketer/scheduler.py binds it here (`bind_app`) and is the only module that imports this one (an
import-linter contract). Each run goes through `job_run()`: its own app context, commit or roll
back, the session removed. Nothing here imports app.py.
"""

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from flask import Flask, current_app, has_app_context

from ticketer import mail, reports
from ticketer.extensions import db
from ticketer.services import assignment, conversation, daily_counts, dispatch, sla

log = logging.getLogger(__name__)

SQUASH_DAYS_BACK = 3

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


@contextmanager
def job_run() -> Iterator[None]:
    """One job run: the bound app's context pushed, the work committed at the end or rolled back on
    an error, the session removed. A job may commit earlier steps itself. Called inside an app
    context already (tests, a CLI command), the job runs in that one and leaves its session there:
    a second session beside the caller's open transaction would wait on SQLite's write lock."""
    pushed = None
    if not has_app_context():
        if _app is None:
            raise RuntimeError("No app for the job: the scheduler binds one (ticketer.scheduler.build_scheduler).")
        pushed = _app.app_context()
        pushed.push()
    try:
        yield
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    finally:
        if pushed is not None:
            db.session.remove()
            pushed.pop()


def dispatch_due() -> dict:
    """Send the flow starts and outgoing messages that are due; returns counts for the log."""
    with job_run():
        settings = dispatch.Settings.from_config(current_app.config)
        report = dispatch.dispatch_due(settings, should_stop=_stopping.is_set)
    summary = {"sent": report.sent, "retrying": report.retrying, "failed": report.failed, "lost": report.lost_claims}
    if report.sent or report.retrying or report.failed or report.lost_claims:
        log.info("dispatch: %s", summary)
    for error in report.errors[:20]:
        log.warning("dispatch error: %s", error)
    return summary


def hand_out_backlog() -> int:
    """Assign waiting tickets, oldest first, topic by topic (one transaction per topic)."""
    total = 0
    with job_run():
        topic_ids = assignment.enabled_topic_ids()
        db.session.commit()
        for topic_id in topic_ids:
            total += assignment.assign_backlog(topic_id)
            db.session.commit()
    return total


def mark_sla_breaches() -> int:
    """Mark new breaches, then mail each unnotified one: claimed and committed first, so a crash or a
    concurrent run never mails it twice; a failed send is released for the next run."""
    sent = 0
    with job_run():
        sla.mark_breaches()
        db.session.commit()
        public_url = current_app.config.get("PUBLIC_URL", "")
        breach_ids = sla.pending_notifications()
        db.session.commit()
        for breach_id in breach_ids:
            message = sla.claim_notification(breach_id, public_url=public_url)
            db.session.commit()  # the claim is recorded before the send
            if message is None:
                continue
            try:
                mail.send_mail(", ".join(message.to), message.content)
                sent += 1
            except mail.MailDeliveryError:
                sla.release_notification(breach_id)
                db.session.commit()
    return sent


def pull_messages() -> dict:
    """Pull new messages from every connection that isn't waiting out a 429 or a backoff."""
    summary = {"stored": 0, "without_ticket": 0, "failed": 0, "statuses": 0}
    with job_run():
        connection_ids = conversation.connections_due()
        db.session.commit()
        for connection_id in connection_ids:
            if _stopping.is_set():
                break
            report = conversation.pull(connection_id, commit=db.session.commit, should_stop=_stopping.is_set)
            summary["statuses"] += conversation.follow_statuses(connection_id, commit=db.session.commit)
            summary["stored"] += report.stored
            summary["without_ticket"] += report.without_ticket
            if report.error:
                summary["failed"] += 1
                log.warning("pull from connection %s: %s", connection_id, report.error)
    if summary["stored"]:
        log.info("pull: %s", summary)
    return summary


def squash_daily_counts() -> int:
    """Squash the recent days' counts (the hook only ever adds rows for today); returns rows removed."""
    with job_run():
        return daily_counts.squash_daily_counts(since=reports.today() - timedelta(days=SQUASH_DAYS_BACK))
