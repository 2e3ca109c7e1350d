"""The dispatcher runs every second: on a desk with millions of messages its queries must read an
index of the due rows, never the whole messages or flow_starts table (which, on SQLite, also held
the write lock for a second or more on every run)."""

import pytest
from sqlalchemy import event, text

from tests.flows.conftest import run_dispatcher
from ticketer.extensions import db as _db


def _plans_of_dispatch(db) -> list[tuple[str, list[str]]]:
    """(statement, its query plan) for every statement one dispatcher run sends."""
    seen: list[tuple[str, object]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if "messages" in statement or "flow_starts" in statement:
            seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        run_dispatcher()
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    plans = []
    raw = db.engine.raw_connection()
    try:
        for statement, parameters in seen:
            if statement.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE")):
                rows = raw.driver_connection.execute(f"EXPLAIN QUERY PLAN {statement}", parameters or ()).fetchall()
                plans.append((statement, [row[-1] for row in rows]))
    finally:
        raw.close()
    return plans


def test_a_dispatcher_run_reads_only_the_due_rows_of_a_big_desk(db, builtin_flow):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's query plans (PostgreSQL's planner splits the OR with a bitmap scan)")
    # The planner's statistics of a desk with 6,000,000 messages and 2,000,000 flow starts, nearly
    # all sent or received (what ANALYZE records there).
    with _db.engine.begin() as connection:
        connection.execute(text("ANALYZE"))
        connection.execute(text("DELETE FROM sqlite_stat1 WHERE tbl IN ('messages', 'flow_starts')"))
        connection.execute(
            text(
                "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES "
                "('messages', 'ix_messages_status_next', '6000000 3000000 1'), "
                "('messages', 'ix_messages_ticket', '6000000 6 1'), "
                "('messages', 'ix_messages_contact', '6000000 30 1'), "
                "('flow_starts', 'ix_flow_starts_status_next', '2000000 1000000 1')"
            )
        )
    db.session.remove()
    _db.engine.dispose()  # connections read the statistics when they open
    plans = _plans_of_dispatch(db)
    assert plans, "the dispatcher ran no statement on messages or flow_starts"
    for statement, plan in plans:
        scans = [step for step in plan if step.startswith(("SCAN messages", "SCAN flow_starts"))]
        assert not scans, f"{' '.join(statement.split())[:200]}\n{plan}"
