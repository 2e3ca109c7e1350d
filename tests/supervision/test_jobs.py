"""The scheduler runs the supervisor jobs; the default business hours follow WORKSPACE_TIMEZONE."""

from apscheduler.schedulers.background import BackgroundScheduler

from ticketer import jobs
from ticketer.scheduler import build_scheduler
from ticketer.services import sla


def test_scheduler_has_the_supervision_jobs(app):
    app.config["SUPERVISION_INTERVAL_SECONDS"] = 30
    try:
        scheduler = build_scheduler(app, BackgroundScheduler)
        by_id = {job.id: job for job in scheduler.get_jobs()}
    finally:
        app.config["SUPERVISION_INTERVAL_SECONDS"] = 60
    assert by_id["hand-out-backlog"].func is jobs.hand_out_backlog
    assert by_id["mark-sla-breaches"].func is jobs.mark_sla_breaches
    assert by_id["mark-sla-breaches"].trigger.interval.total_seconds() == 30


def test_jobs_run_without_an_app_context_on_the_bound_app(app):
    from flask import has_app_context

    assert not has_app_context()
    build_scheduler(app, BackgroundScheduler)  # binds the app, as the scheduler process does
    assert jobs.hand_out_backlog() == 0
    assert jobs.mark_sla_breaches() == 0


def test_default_business_hours_use_the_workspace_time_zone(app, db):
    app.config["WORKSPACE_TIMEZONE"] = "America/Guayaquil"
    try:
        hours = sla.business_hours()
    finally:
        app.config["WORKSPACE_TIMEZONE"] = "UTC"
    assert (hours.time_zone, hours.weekdays, hours.start_minute, hours.end_minute) == (
        "America/Guayaquil",
        [1, 2, 3, 4, 5],
        540,
        1020,
    )
