"""A short run of bench/soak.py inside the suite: gunicorn and the scheduler under mixed traffic from a
second process, a web worker and the dispatcher killed with SIGKILL twice each. A fixed amount of work
(4 threads x 40 operations), not a time: a busy machine makes it slower, never smaller. Asserted:
every operation ran, no error, no acknowledged write lost, none doubled, every flow start sent and
none twice outside the at-least-once window. The longer runs and their figures are in bench/README.md."""

import os

from bench import soak
from tests.conftest import on_postgres

THREADS = 4
OPERATIONS = 40


def test_short_soak_with_kills_loses_nothing_and_doubles_nothing(tmp_path):
    lines: list[str] = []
    figures = soak.soak(
        operations=OPERATIONS,
        concurrency=THREADS,
        workers=2,
        kill=True,
        rounds=2,
        echo=lines.append,
        server_url=os.environ["TEST_DATABASE_URL"] if on_postgres() else None,
        sqlite_path=tmp_path / "soak.db",
    )
    report = "\n".join(lines)
    assert figures["ok"], report
    assert figures["operations_done"] == THREADS * OPERATIONS, report
    assert sum(figures["operations"].values()) == THREADS * OPERATIONS, report
    assert figures["errors"] == 0 and figures["missing"] == [] and figures["doubled"] == [], report
    # Every write was acknowledged, rightly refused, or got no answer at all (cut off by a kill).
    writes = {"open", "message", "note", "close", "reopen"}
    for kind in writes:
        answered = sum(figures[outcome].get(kind, 0) for outcome in ("acknowledged", "refused", "unknown"))
        assert answered == figures["operations"].get(kind, 0), (kind, report)
    # The fixed mix (seeded per thread) has writes of every kind.
    assert all(figures["operations"].get(kind, 0) > 0 for kind in writes), report
    assert figures["flow_starts"] == figures["closes"] > 0, report
    assert figures["kills"] == {"web_worker": 2, "dispatcher": 2}, report
