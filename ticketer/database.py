"""Engine set-up that depends on the database: SQLite pragmas and how transactions begin."""

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import event
from sqlalchemy.engine import Engine

# Whether the current SQLite transaction may write. Reads (GET pages, exports) begin DEFERRED and
# never block writers; anything else begins IMMEDIATE: a deferred transaction that reads and then
# writes fails at once with SQLITE_BUSY when another process wrote meanwhile, IMMEDIATE waits.
_may_write: ContextVar[bool] = ContextVar("sqlite_may_write", default=True)


@contextmanager
def read_only_transactions() -> Iterator[None]:
    """Inside this block, SQLite transactions begin DEFERRED (no write lock is taken)."""
    token = _may_write.set(False)
    try:
        yield
    finally:
        _may_write.reset(token)


def begin_read_only():
    """For request hooks: start read-only mode; pass the result to end_read_only()."""
    return _may_write.set(False)


def end_read_only(token) -> None:
    _may_write.reset(token)


@event.listens_for(Engine, "connect")
def _sqlite_on_connect(dbapi_connection, connection_record) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    # Let SQLAlchemy emit BEGIN itself (below) so savepoints and locking behave.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


@event.listens_for(Engine, "begin")
def _sqlite_on_begin(connection) -> None:
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE" if _may_write.get() else "BEGIN")
