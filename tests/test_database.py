"""SQLite writers queue on a file lock beside the database: taken with the write transaction,
always given back (commit, rollback, a failed BEGIN), and never waited on by the thread that holds it.
Prebuilt statements give the same answers as SQLAlchemy's own execution."""

import fcntl
import os
import threading
import uuid

import pytest
from sqlalchemy import insert, text
from sqlalchemy.exc import IntegrityError

from ticketer import database
from ticketer.clock import utcnow
from ticketer.database import WriterQueueConnection, read_only_transactions
from ticketer.models import Contact, ContactURN


@pytest.fixture
def sqlite_engine(db):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite only: PostgreSQL orders its writers itself")
    return db.engine


def _lock_is_free(engine) -> bool:
    """Whether another process could take the writers' lock now."""
    fd = os.open(f"{engine.url.database}-writers.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing gives back a lock this check took
    return True


def test_a_write_transaction_holds_the_lock_until_commit_or_rollback(sqlite_engine):
    with sqlite_engine.connect() as connection:
        assert isinstance(connection.connection.driver_connection, WriterQueueConnection)
        with connection.begin():
            connection.execute(text("UPDATE topics SET name = name"))
            assert not _lock_is_free(sqlite_engine)
        assert _lock_is_free(sqlite_engine)

        transaction = connection.begin()
        connection.execute(text("UPDATE topics SET name = name"))
        assert not _lock_is_free(sqlite_engine)
        transaction.rollback()
        assert _lock_is_free(sqlite_engine)


def test_reads_do_not_take_the_lock(sqlite_engine):
    with read_only_transactions(), sqlite_engine.connect() as connection, connection.begin():
        connection.execute(text("SELECT count(*) FROM tickets"))
        assert _lock_is_free(sqlite_engine)


def test_a_second_writer_waits_for_the_first_and_then_writes(sqlite_engine):
    order: list[str] = []
    first_holds = threading.Event()

    def second_writer():
        first_holds.wait()
        with sqlite_engine.begin() as connection:
            order.append("second")
            connection.execute(text("UPDATE topics SET name = name"))

    thread = threading.Thread(target=second_writer)
    thread.start()
    with sqlite_engine.begin() as connection:
        connection.execute(text("UPDATE topics SET name = name"))
        first_holds.set()
        thread.join(timeout=0.5)  # it can't get in while this transaction is open
        assert thread.is_alive()
        order.append("first")
    thread.join(timeout=30)
    assert order == ["first", "second"]
    assert _lock_is_free(sqlite_engine)


def test_a_thread_writing_on_two_connections_does_not_wait_for_itself(sqlite_engine):
    with sqlite_engine.connect() as outer, outer.begin():
        outer.execute(text("UPDATE topics SET name = name"))
        inner = sqlite_engine.raw_connection()
        try:
            queue = inner.driver_connection
            queue.queue_for_write()  # returns at once instead of waiting on the file lock
            assert not queue._holding
        finally:
            inner.close()
    assert _lock_is_free(sqlite_engine)


# --- prebuilt statements (module constants run through the session) -----------------------------


def test_a_prebuilt_insert_round_trips_json_and_times(db):
    now = utcnow()
    insert_contact = database.insert_skipping_conflicts(
        Contact.__table__, ["uuid", "name", "fields", "created_on", "modified_on"], returning="id"
    )
    values = {
        "uuid": str(uuid.uuid4()),
        "name": "Ana",
        "fields": {"city": "Quito"},
        "created_on": now,
        "modified_on": now,
    }
    contact_id = db.session.execute(insert_contact, values).scalar()
    assert db.session.execute(insert_contact, values).first() is None  # same uuid: skipped, no error
    contact = db.session.get(Contact, contact_id)
    assert contact.fields == {"city": "Quito"} and contact.created_on == now


def test_a_prebuilt_statement_that_breaks_a_constraint_raises_sqlalchemys_error(db):
    urns = ContactURN.__table__
    statement = insert(urns).values(**database.bound(urns, "contact_id", "identity", "scheme", "path"))
    with pytest.raises(IntegrityError):
        db.session.execute(statement, {"contact_id": 999999, "identity": "tel:+1", "scheme": "tel", "path": "+1"})
    db.session.rollback()


def test_the_write_ahead_log_is_copied_back_every_so_many_writes_outside_the_lock(sqlite_engine, monkeypatch):
    monkeypatch.setattr(database, "CHECKPOINT_EVERY", 3)
    checkpoints: list[bool] = []  # for each checkpoint: was the writers' lock free meanwhile?

    def trace(statement: str) -> None:
        if "wal_checkpoint" in statement:
            checkpoints.append(_lock_is_free(sqlite_engine))

    with sqlite_engine.connect() as connection:
        connection.connection.driver_connection._writes = 0  # a pooled connection may have written before
        connection.connection.driver_connection.set_trace_callback(trace)
        for _ in range(2):
            with connection.begin():
                connection.execute(text("UPDATE topics SET name = name"))
        assert checkpoints == []
        with connection.begin():
            connection.execute(text("UPDATE topics SET name = name"))
        assert checkpoints == [True]
        connection.connection.driver_connection.set_trace_callback(None)
