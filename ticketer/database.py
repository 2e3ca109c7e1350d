"""Engine set-up that depends on the database: SQLite pragmas, how transactions begin, the SQLite
writers' queue and checkpoints, and helpers to build prebuilt statements for hot paths."""

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import BindParameter, Table, TextClause, bindparam, event, text
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
    if isinstance(dbapi_connection, WriterQueueConnection):
        dbapi_connection.lock_path = connection_record.info.get("sqlite_lock_path")
    # Let SQLAlchemy emit BEGIN itself (below) so savepoints and locking behave.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    if isinstance(dbapi_connection, WriterQueueConnection):
        cursor.execute(f"PRAGMA wal_autocheckpoint={AUTO_CHECKPOINT_PAGES}")
    cursor.close()


# --- writers queue on a file lock --------------------------------------------------------------
# SQLite lets one transaction write at a time; a writer that finds the database locked sleeps and
# retries (1, 2, 5, 10, 15 ms ...), so two web workers writing in turn spend much of their time
# asleep. Before BEGIN IMMEDIATE a connection takes an OS lock (flock) on a file beside the
# database instead: the next writer wakes the moment the previous one commits or rolls back.
# SQLite's own lock still decides; the file lock only orders the waiting.

_writes_in_thread = threading.local()


# Write transactions per connection between checkpoints of the write-ahead log (see below);
# SQLite's automatic checkpoint stays as a backstop for connections that rarely write.
CHECKPOINT_EVERY = 200
AUTO_CHECKPOINT_PAGES = 10_000


class WriterQueueConnection(sqlite3.Connection):
    """A sqlite3 connection whose write transactions queue on `<database>-writers.lock`."""

    lock_path: str | None = None
    _lock_fd: int | None = None
    _holding = False
    _writes = 0  # write transactions since the last checkpoint

    def queue_for_write(self) -> None:
        if self.lock_path is None or self._holding:
            return
        if getattr(_writes_in_thread, "count", 0):
            # This thread already writes through another connection: waiting on the file lock
            # would wait for itself; SQLite's busy timeout handles this rare case as before.
            return
        if self._lock_fd is None:
            self._lock_fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        self._holding = True
        _writes_in_thread.count = 1

    def done_writing(self) -> None:
        if self._holding:
            self._holding = False
            _writes_in_thread.count = 0
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def commit(self) -> None:
        wrote = self._holding
        try:
            super().commit()
        finally:
            self.done_writing()
        if wrote:
            self._checkpoint_now_and_then()

    def _checkpoint_now_and_then(self) -> None:
        # Copy the write-ahead log into the database after the writers' lock is given back, so the
        # next writer doesn't wait for it (SQLite's own automatic checkpoint runs inside commit).
        self._writes += 1
        if self._writes >= CHECKPOINT_EVERY:
            self._writes = 0
            try:
                super().execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:
                pass  # another checkpoint is running: it does the same work

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.done_writing()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.done_writing()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None


@event.listens_for(Engine, "do_connect")
def _sqlite_writer_queue(dialect, connection_record, cargs, cparams) -> None:
    if dialect.name != "sqlite":
        return
    database = cargs[0] if cargs else cparams.get("database")
    if database and database != ":memory:" and not str(database).startswith("file:"):
        cparams["factory"] = WriterQueueConnection
        connection_record.info["sqlite_lock_path"] = f"{database}-writers.lock"


@event.listens_for(Engine, "begin")
def _sqlite_on_begin(connection) -> None:
    if connection.dialect.name == "sqlite":
        if _may_write.get():
            dbapi_connection = connection.connection.driver_connection
            if isinstance(dbapi_connection, WriterQueueConnection):
                dbapi_connection.queue_for_write()
            try:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            except Exception:
                if isinstance(dbapi_connection, WriterQueueConnection):
                    dbapi_connection.done_writing()
                raise
        else:
            connection.exec_driver_sql("BEGIN")


# --- helpers for prebuilt statements ----------------------------------------------------------
# Hot paths build their Core statements once, at import; SQLAlchemy's compiled cache keeps running
# them cheap.


def bound(table: Table, *names: str) -> dict[str, BindParameter]:
    """{column: bindparam(column)} for prebuilt INSERT/UPDATE values, typed like the columns."""
    return {name: bindparam(name, type_=table.c[name].type) for name in names}


def insert_skipping_conflicts(table: Table, names: Sequence[str], returning: str) -> TextClause:
    """INSERT INTO table (names) VALUES (...) ON CONFLICT DO NOTHING RETURNING returning.

    The same SQL on SQLite and PostgreSQL, typed like the columns. A row that breaks a unique
    constraint (a concurrent request made it first) is skipped: no row comes back, and the
    transaction goes on, with no savepoint. (Plain text: SQLAlchemy doesn't cache its dialects'
    ON CONFLICT inserts, and compiling one costs more than running it.)
    """
    quoted = ", ".join(f'"{name}"' for name in names)
    sql = (
        f'INSERT INTO "{table.name}" ({quoted}) VALUES ({", ".join(":" + name for name in names)}) '
        f'ON CONFLICT DO NOTHING RETURNING "{returning}"'
    )
    return text(sql).bindparams(*bound(table, *names).values()).columns(table.c[returning])
