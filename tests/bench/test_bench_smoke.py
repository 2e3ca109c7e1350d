"""The benchmark code on a 1,000-ticket desk, so that it can't rot: seed, pages, bulk, API, dispatch.
Figures are printed, never asserted; the servers it starts are this Python's (`sys.executable -m`)."""

import pytest

from bench import run as bench
from bench import seed as seeding
from tests.conftest import throwaway_database


@pytest.fixture
def bench_database(tmp_path):
    """A database of its own (the seed replaces every table): a SQLite file, or a PostgreSQL database."""
    with throwaway_database(tmp_path / "bench.db", prefix="ticketer_bench_smoke") as url:
        yield url


def test_benchmark_runs_on_a_small_desk(bench_database):
    lines: list[str] = []
    facts = seeding.seed(bench_database, 1_000, echo=lines.append)
    assert facts["contacts"] == 200 and facts["big_ticket_id"] == 500
    assert any(line.strip().startswith("tickets") for line in lines)

    pages = bench.measure_pages(bench_database, facts, repeat=2, stock_repeat=1, echo=lines.append, warm=1)
    for folder in ("mine", "unassigned", "all"):
        for status in ("open", "closed"):
            assert pages[f"list {folder} {status} p1"]["median_ms"] > 0
            assert pages[f"stock {folder} {status} p1"]["median_ms"] > 0
    for name in ("folder counts", "search URN", "search name", "ticket page (200 messages)"):
        assert pages[name]["n"] == 2
    assert pages["list all closed p200"] == {"skipped": "fewer than 200 pages"}

    bulk = bench.measure_bulk_reassign(bench_database, echo=lines.append)
    assert bulk["tickets"] > 50 and bulk["counts_exact"] is True

    # A fixed number of requests, not a time: each one must have opened a ticket.
    api = bench.measure_api(bench_database, seconds=None, concurrency=2, echo=lines.append, requests=10)
    assert api["tickets"] == 20 and api["errors"] == 0

    dispatch = bench.measure_dispatch(bench_database, closes=2, echo=lines.append)
    assert dispatch["delivered"] == dispatch["closes"] == 2

    results = [{"tickets": 1_000, "pages": pages, "bulk_reassign": bulk, "api": api, "dispatch": dispatch}]
    table = bench.summary_table(results)
    assert "| list all open p1 |" in table and "| open-ticket API (tickets/s) |" in table
    checks = bench.targets(results)
    assert [c["limit"] for c in checks] == [50, 50, 20, 2, 300, 2]
    assert "| open-ticket API, gunicorn 2 workers (tickets/s) |" in bench.targets_table(checks)
