"""Engine set-up that depends on the database, attached to the app's engine by create_app
(set_up_engine): SQLite pragmas, how its transactions begin (SQLAlchemy's pysqlite recipe), a
private database file and a bounded write-ahead log. Also: telling a full disk from other errors,
and helpers to build prebuilt statements for hot paths."""

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import BindParameter, Table, TextClause, bindparam, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

# The write-ahead log is cut back to this size whenever a checkpoint empties it: a burst of writes
# (or a full disk) doesn't keep the space it took. SQLite's automatic checkpoint (every 1,000
# pages, ~4 MB) bounds it meanwhile.
JOURNAL_SIZE_LIMIT_BYTES = 4 * 1024 * 1024
BUSY_TIMEOUT_MS = 30_000

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


@contextmanager
def write_transactions() -> Iterator[None]:
    """Inside this block, SQLite transactions begin IMMEDIATE, even during a read-only request."""
    token = _may_write.set(True)
    try:
        yield
    finally:
        _may_write.reset(token)


def begin_read_only():
    """For request hooks: start read-only mode; pass the result to end_read_only()."""
    return _may_write.set(False)


def end_read_only(token) -> None:
    _may_write.reset(token)


def sqlite_path(engine: Engine) -> str | None:
    """The SQLite database file of `engine`, or None (PostgreSQL, in-memory, a `file:` URI)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database


def set_up_engine(engine: Engine) -> None:
    """Attach the SQLite set-up to `engine` (nothing to do for PostgreSQL). Call once per engine."""
    if engine.dialect.name != "sqlite":
        return
    path = sqlite_path(engine)
    if path is not None:
        create_private_file(path)
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)


def create_private_file(path: str) -> None:
    """Create the database file readable by its owner only (0600), as instance/secret_key is.

    SQLite would create it with the process's umask (usually world-readable); it gives its -wal
    and -shm files the database file's permissions. An existing file keeps the ones it has.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except FileNotFoundError:
        return  # no such directory: SQLite's own error says so on first connect
    os.close(fd)


def _sqlite_on_connect(dbapi_connection, connection_record) -> None:
    # Let SQLAlchemy emit BEGIN itself (below) so savepoints and locking behave.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT_BYTES}")
    cursor.close()


def _sqlite_on_begin(connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE" if _may_write.get() else "BEGIN")


# --- a full disk ------------------------------------------------------------------------------

_POSTGRES_DISK_FULL = "53100"  # SQLSTATE disk_full
# What a write refused for a full disk tells the client (503 storage_full, Retry-After).
STORAGE_FULL_RETRY_AFTER_SECONDS = 30
# Less room than this left on the database's volume counts as full.
FULL_BELOW_BYTES = 1024 * 1024


def is_storage_full(error: BaseException, sqlite_file: str | None = None) -> bool:
    """Whether a database error means the disk (the database's volume) is full.

    SQLite says SQLITE_FULL when a write finds no room, but only "disk I/O error" when it can't
    even make its -wal or -shm file (a fresh connection on a full disk): then the volume of
    `sqlite_file` is asked how much room it has left.
    """
    original = error.orig if isinstance(error, DBAPIError) else error
    if isinstance(original, sqlite3.Error):
        code = getattr(original, "sqlite_errorcode", None)
        if code == sqlite3.SQLITE_FULL:
            return True
        return code is not None and code & 0xFF == sqlite3.SQLITE_IOERR and _volume_is_full(sqlite_file)
    return getattr(original, "sqlstate", None) == _POSTGRES_DISK_FULL


def _volume_is_full(path: str | None) -> bool:
    if path is None:
        return False
    try:
        volume = os.statvfs(os.path.dirname(os.path.abspath(path)))
    except OSError:
        return False
    return volume.f_bavail * volume.f_frsize < FULL_BELOW_BYTES


def give_back_log_space(engine: Engine) -> None:
    """After a full disk: copy the write-ahead log into the database and truncate it, if no reader
    holds it (otherwise the next checkpoint does). Nothing to do for PostgreSQL."""
    if sqlite_path(engine) is None:
        return
    connection = engine.raw_connection()  # outside any transaction, as a checkpoint must be
    try:
        connection.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        connection.close()


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
