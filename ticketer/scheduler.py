"""The scheduler process: `flask --app app scheduler` runs APScheduler 3 in the foreground.

It binds the app to ticketer.jobs (the only module that imports the jobs) and adds every job there.

Run exactly one beside the web server (several are safe, they just share the work). Its state is
the outbox itself (flow_starts, messages): the jobs live in memory with fixed ids and
replace_existing=True, so a restart picks up everything still due. UTC everywhere.
"""

import logging
import signal
from datetime import UTC, datetime

import click
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask

from ticketer import jobs

DISPATCH_JOB_ID = "dispatch-due"

log = logging.getLogger(__name__)


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
    return scheduler


def run(app: Flask) -> None:
    """Run the scheduler until SIGTERM or SIGINT; the send in progress finishes and is recorded."""
    scheduler = build_scheduler(app)

    def stop(signum, frame) -> None:
        log.info("scheduler: signal %s, stopping after the send in progress", signum)
        jobs.request_stop()
        if scheduler.running:
            scheduler.shutdown(wait=True)

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
