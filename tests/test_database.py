"""SQLite writers queue on a file lock beside the database: taken with the write transaction,
always given back (commit, rollback, a failed BEGIN), and never waited on by the thread that holds it.
Prebuilt statements give the same answers as SQLAlchemy's own execution."""

import fcntl
import os
import threading
import uuid

import pytest
from sqlalchemy import bindparam, insert, select, text
from sqlalchemy.exc import IntegrityError, NoResultFound

from tests.factories import make_ticket
from ticketer import database
from ticketer.clock import utcnow
from ticketer.database import WriterQueueConnection, read_only_transactions
from ticketer.models import Contact, ContactURN, Ticket


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


# --- prebuilt statements: the same answers as SQLAlchemy's own execution ------------------------


def test_a_prebuilt_select_returns_what_sqlalchemy_returns_typed_alike(db):
    ticket_ids = [make_ticket(body=f"Ticket {n}", results={"n": n}).id for n in range(3)]
    tickets = Ticket.__table__
    statement = (
        select(tickets.c.id, tickets.c.opened_on, tickets.c.results, tickets.c.status)
        .where(tickets.c.id.in_(bindparam("ids", expanding=True)), tickets.c.status == "open")
        .order_by(tickets.c.id)
    )
    expected = db.session.connection().execute(statement, {"ids": ticket_ids}).all()
    rows = database.execute(statement, {"ids": ticket_ids}).all()
    assert [tuple(row) for row in rows] == [tuple(row) for row in expected]
    assert rows[0].opened_on.tzinfo is not None  # UTCDateTime's processing applied
    assert database.execute(statement, {"ids": ticket_ids[:1]}).scalar() == ticket_ids[0]
    assert database.execute(statement, {"ids": [0]}).first() is None
    with pytest.raises(NoResultFound):
        database.execute(statement, {"ids": [0]}).one()


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
    contact_id = database.execute(insert_contact, values).scalar()
    assert database.execute(insert_contact, values).first() is None  # same uuid: skipped, no error
    contact = db.session.get(Contact, contact_id)
    assert contact.fields == {"city": "Quito"} and contact.created_on == now


def test_a_prebuilt_statement_that_breaks_a_constraint_raises_sqlalchemys_error(db):
    urns = ContactURN.__table__
    statement = insert(urns).values(**database.bound(urns, "contact_id", "identity", "scheme", "path"))
    with pytest.raises(IntegrityError):
        database.execute(statement, {"contact_id": 999999, "identity": "tel:+1", "scheme": "tel", "path": "+1"})
    db.session.rollback()


def test_statement_listeners_see_prebuilt_statements(db, count_queries):
    statement = select(Contact.__table__.c.id).where(Contact.__table__.c.uuid == bindparam("uuid"))
    with count_queries() as queries:
        database.execute(statement, {"uuid": "nobody"})
    assert len(queries) == 1 and "FROM contacts" in queries[0]


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
