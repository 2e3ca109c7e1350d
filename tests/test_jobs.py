"""ticketer.jobs: one context helper for every job run, on the app the scheduler binds."""

import subprocess
import sys

import pytest
from flask import has_app_context
from sqlalchemy import func, select

from ticketer import jobs
from ticketer.extensions import db as _db
from ticketer.models import Topic
from ticketer.services import topics as topic_service


def topic_count(app) -> int:
    with app.app_context():
        return _db.session.scalar(select(func.count()).select_from(Topic))


def test_a_job_run_commits_its_work_and_leaves_no_context_behind(app):
    jobs.bind_app(app)
    with jobs.job_run():
        topic_service.get_or_create_topic("Billing")
    assert not has_app_context()
    assert topic_count(app) == 1


def test_a_failed_job_run_is_rolled_back(app):
    jobs.bind_app(app)
    with pytest.raises(RuntimeError, match="engine down"), jobs.job_run():
        topic_service.get_or_create_topic("Billing")
        _db.session.flush()
        raise RuntimeError("engine down")
    assert not has_app_context()
    assert topic_count(app) == 0


def test_a_job_without_a_bound_app_says_so_instead_of_building_one(app, monkeypatch):
    monkeypatch.setattr(jobs, "_app", None)
    with pytest.raises(RuntimeError, match="scheduler binds one"):
        jobs.hand_out_backlog()


def test_importing_the_scheduler_and_its_jobs_does_not_import_the_app_module():
    code = "import sys, ticketer.scheduler, ticketer.jobs; print('app' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "False"
