"""A short, bounded run of bench/soak.py inside the suite: gunicorn and the scheduler under mixed traffic
from a second process, a web worker and the dispatcher killed with SIGKILL twice each; no error, no
acknowledged write lost, every flow start sent and none twice outside the at-least-once window.
The full 60 s runs and their figures are in bench/README.md."""

import os

from bench import soak
from tests.conftest import on_postgres


def test_short_soak_with_kills_loses_nothing(tmp_path):
    lines: list[str] = []
    figures = soak.soak(
        seconds=10,
        concurrency=4,
        workers=2,
        kill=True,
        rounds=2,
        drain_seconds=30,
        echo=lines.append,
        server_url=os.environ["TEST_DATABASE_URL"] if on_postgres() else None,
        sqlite_path=tmp_path / "soak.db",
    )
    report = "\n".join(lines)
    assert figures["ok"], report
    assert figures["errors"] == 0 and figures["missing"] == [], report
    # It did real work: writes of every kind were acknowledged and counted.
    assert set(figures["acknowledged"]) >= {"open", "message", "note", "close"}, report
    assert figures["acknowledged"]["open"] >= 20, report
    assert figures["flow_starts"] == figures["closes"] > 0, report
    assert figures["engine_deliveries"] >= figures["flow_starts"] - figures["flow_starts_cancelled_by_reopen"]
    assert figures["kills"] == {"web_worker": 2, "dispatcher": 2}, report
