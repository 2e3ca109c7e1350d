"""Scheduler entry points for supervisor tools: module-level, no arguments, each in its own app
context and transactions.

    hand_out_backlog   every minute: unassigned tickets of auto-assigned topics go to agents with room
    mark_sla_breaches  every minute: record missed SLA deadlines once and mail the assignee (or the
                       supervisors when nobody has the ticket), never twice for one breach
"""

from collections.abc import Callable
from contextlib import contextmanager
from typing import TypeVar

from flask import current_app, has_app_context

from ticketer import jobs
from ticketer.extensions import db

T = TypeVar("T")


@contextmanager
def _context():
    """The running app's context (tests, CLI), else the scheduler's app (ticketer.jobs.bind_app)."""
    if has_app_context():
        yield
        return
    with jobs._current_app().app_context():
        yield
        db.session.remove()


def _in_transaction(work: Callable[[], T]) -> T:
    try:
        result = work()
        db.session.commit()
        return result
    except Exception:
        db.session.rollback()
        raise


def hand_out_backlog() -> int:
    """Assign waiting tickets, oldest first, topic by topic (one transaction per topic)."""
    from ticketer.services import assignment

    with _context():
        total = 0
        for topic_id in _in_transaction(assignment.enabled_topic_ids):
            total += _in_transaction(lambda topic_id=topic_id: assignment.assign_backlog(topic_id))
        return total


def mark_sla_breaches() -> int:
    """Mark new breaches, then mail each unnotified one: claimed and committed first, so a crash or a
    concurrent run never mails it twice; a failed send is released for the next run."""
    from ticketer import mail
    from ticketer.services import sla

    with _context():
        _in_transaction(sla.mark_breaches)
        sent = 0
        public_url = current_app.config.get("PUBLIC_URL", "")
        for breach_id in _in_transaction(sla.pending_notifications):
            message = _in_transaction(lambda b=breach_id: sla.claim_notification(b, public_url=public_url))
            if message is None:
                continue
            try:
                mail.send_mail(", ".join(message.to), message.subject, message.body)
                sent += 1
            except mail.MailDeliveryError:
                _in_transaction(lambda b=breach_id: sla.release_notification(b))
        return sent
