"""The scheduler process: `flask --app app scheduler` runs APScheduler 3 in the foreground.

It binds the app to ticketer.jobs (the only module that imports the jobs) and adds every job there.

Run exactly one beside the web server (several are safe, they just share the work). Its state is
the outbox itself (flow_starts, messages): the jobs live in memory with fixed ids and
replace_existing=True, so a restart picks up everything still due. UTC everywhere.
"""

import logging
import signal
import threading
from datetime import UTC, datetime, timedelta

import click
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask

from ticketer import database, jobs
from ticketer.extensions import db

DISPATCH_JOB_ID = "dispatch-due"
# After a job finds the database's disk full, every job waits 5 s, then twice as long each time
# it is still full, up to 5 minutes: failing every second would only fill the log.
STORAGE_BACKOFF_FIRST_SECONDS = 5.0
STORAGE_BACKOFF_MAX_SECONDS = 300.0

log = logging.getLogger(__name__)


class StorageFullBackoff:
    """A scheduler listener: a job that failed on a full disk postpones every job (backoff above);
    once each job that failed so has run again without error, the backoff starts afresh."""

    def __init__(self, scheduler: BaseScheduler, app: Flask) -> None:
        self.scheduler = scheduler
        self.app = app
        self.delay = 0.0
        self.failing: set[str] = set()

    def __call__(self, event: JobExecutionEvent) -> None:
        if event.exception is None:
            self.failing.discard(event.job_id)
            if self.delay and not self.failing:
                log.info("scheduler: writes work again after a full disk")
                self.delay = 0.0
            return
        with self.app.app_context():
            engine = db.engine
        if not database.is_storage_full(event.exception, database.sqlite_path(engine)):
            return
        self.failing.add(event.job_id)
        self.delay = min(max(self.delay * 2, STORAGE_BACKOFF_FIRST_SECONDS), STORAGE_BACKOFF_MAX_SECONDS)
        resume_at = datetime.now(UTC) + timedelta(seconds=self.delay)
        for job in self.scheduler.get_jobs():
            if job.next_run_time is not None and job.next_run_time < resume_at:
                job.modify(next_run_time=resume_at)
        log.warning("scheduler: the database's disk is full; every job waits %.0f s", self.delay)
        # Give back what the write-ahead log holds beyond the database, when no reader needs it.
        database.give_back_log_space(engine)


def build_scheduler(app: Flask, scheduler_class: type[BaseScheduler] = BlockingScheduler) -> BaseScheduler:
    """A scheduler with Ticketer's jobs added (not started)."""
    jobs.bind_app(app)
    scheduler = scheduler_class(
        timezone=UTC,
        # A thread per job: a slow engine never holds up the other jobs.
        executors={"default": ThreadPoolExecutor(3)},
        # One run of each job at a time; a late run is folded into the next, never piled up.
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
    )
    # Fixed ids and replace_existing=True: a restart or a second build never adds a second copy.
    scheduler.add_job(
        jobs.dispatch_due,
        "interval",
        seconds=float(app.config.get("DISPATCH_INTERVAL_SECONDS", 1)),
        id=DISPATCH_JOB_ID,
        name="Send due flow starts and outgoing messages",
        replace_existing=True,
        next_run_time=datetime.now(UTC),  # at once: a restart sends what came due while it was down
    )
    supervision_seconds = float(app.config.get("SUPERVISION_INTERVAL_SECONDS", 60))
    scheduler.add_job(
        jobs.hand_out_backlog,
        "interval",
        seconds=supervision_seconds,
        id="hand-out-backlog",
        name="Hand out unassigned tickets of auto-assigned topics",
        replace_existing=True,
    )
    scheduler.add_job(
        jobs.mark_sla_breaches,
        "interval",
        seconds=supervision_seconds,
        id="mark-sla-breaches",
        name="Mark missed SLA deadlines and mail them once",
        replace_existing=True,
    )
    scheduler.add_job(
        jobs.pull_messages,
        "interval",
        seconds=float(app.config.get("RAPIDPRO_SYNC_SECONDS", 5)),
        id="pull-messages",
        name="Pull new messages from the workspace connections",
        replace_existing=True,
        next_run_time=datetime.now(UTC),
    )
    scheduler.add_job(
        jobs.squash_daily_counts,
        "interval",
        hours=1,
        id="squash-daily-counts",
        name="Fold the daily ticket counts' delta rows",
        replace_existing=True,
    )
    scheduler.add_listener(StorageFullBackoff(scheduler, app), EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    return scheduler


def run(app: Flask) -> None:
    """Run the scheduler until SIGTERM or SIGINT; the send in progress finishes and is recorded."""
    scheduler = build_scheduler(app)

    def shut_down(signum: int) -> None:
        log.info("scheduler: signal %s, stopping after the sends in progress", signum)
        try:
            scheduler.shutdown(wait=True)
        except SchedulerNotRunningError:
            pass  # a second signal

    def stop(signum, frame) -> None:
        # The handler runs inside whatever the main thread was doing, perhaps writing a log line
        # with the logging lock held; shutdown(wait=True) here would wait for a job that needs that
        # lock to finish (a deadlock, seen under load). So it only hands the stop to a thread.
        jobs.request_stop()
        threading.Thread(target=shut_down, args=(signum,), name="scheduler-stop").start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    click.echo(
        f"Scheduler started (UTC): job {DISPATCH_JOB_ID!r} every {app.config.get('DISPATCH_INTERVAL_SECONDS', 1)} s."
    )
    scheduler.start()
    click.echo("Scheduler stopped.")


def register(app: Flask) -> None:
    @app.cli.command("scheduler")
    def scheduler_command() -> None:
        """Run the scheduler (flow starts, outgoing messages) in the foreground until stopped."""
        if not logging.getLogger().handlers:
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        # Every run of every job would be logged at INFO (one line a second); errors still show.
        logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)
        run(app)
