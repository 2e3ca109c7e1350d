"""The database set-up: attached to the app's engine by create_app (importing changes nothing),
SQLite's pragmas and transaction modes, a private database file, Flask-SQLAlchemy's standard
query recording, and prebuilt statements run through the session."""

import os
import sqlite3
import stat
import uuid

import pytest
from flask_sqlalchemy.record_queries import get_recorded_queries
from sqlalchemy import create_engine, insert, text
from sqlalchemy.exc import IntegrityError

from app import create_app
from tests.conftest import on_postgres
from ticketer import database
from ticketer.clock import utcnow
from ticketer.config import TestConfig
from ticketer.database import read_only_transactions, write_transactions
from ticketer.extensions import db as _db
from ticketer.models import Contact, ContactURN, User
from ticketer.services import api_tokens
from ticketer.services import users as user_service

sqlite_only = pytest.mark.skipif(on_postgres(), reason="SQLite only: the set-up is SQLite's")


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@sqlite_only
def test_importing_the_app_leaves_other_engines_alone(app, tmp_path):
    """The pragmas and BEGIN handling belong to the app's engine, not to every Engine in the process."""
    other = create_engine(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        with other.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "delete"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 0
    finally:
        other.dispose()


@sqlite_only
def test_the_apps_engine_gets_the_pragmas(db):
    with db.engine.connect() as connection:
        pragma = connection.exec_driver_sql
        assert pragma("PRAGMA journal_mode").scalar() == "wal"
        assert pragma("PRAGMA foreign_keys").scalar() == 1
        assert pragma("PRAGMA busy_timeout").scalar() == database.BUSY_TIMEOUT_MS
        assert pragma("PRAGMA journal_size_limit").scalar() == database.JOURNAL_SIZE_LIMIT_BYTES


def _another_process_can_write(path: str) -> bool:
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError as error:
        assert "locked" in str(error)
        return False
    finally:
        other.close()


@sqlite_only
def test_write_transactions_take_the_write_lock_at_begin_and_reads_do_not(db):
    path = database.sqlite_path(db.engine)
    with db.engine.connect() as connection, connection.begin():
        connection.exec_driver_sql("SELECT 1")  # BEGIN IMMEDIATE: nobody else may write meanwhile
        assert not _another_process_can_write(path)
    with read_only_transactions(), db.engine.connect() as connection, connection.begin():
        connection.exec_driver_sql("SELECT count(*) FROM tickets")
        assert _another_process_can_write(path)
        with write_transactions(), db.engine.connect() as writer, writer.begin():
            writer.exec_driver_sql("SELECT 1")
            assert not _another_process_can_write(path)
    assert _another_process_can_write(path)


@sqlite_only
def test_the_database_file_is_created_readable_by_its_owner_only(tmp_path):
    path = tmp_path / "new.db"
    app = create_app(TestConfig(f"sqlite:///{path}"))
    with app.app_context():
        _db.create_all()
        _db.session.execute(text("UPDATE topics SET name = name"))
        _db.session.commit()
        assert _mode(path) == 0o600
        assert _mode(f"{path}-wal") == 0o600  # SQLite copies the database file's permissions
        _db.engine.dispose()


@sqlite_only
def test_an_existing_database_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "existing.db"
    sqlite3.connect(path).close()
    os.chmod(path, 0o640)  # e.g. chosen by the operator for a backup group
    app = create_app(TestConfig(f"sqlite:///{path}"))
    with app.app_context():
        _db.create_all()
        _db.engine.dispose()
    assert _mode(path) == 0o640


def test_the_api_and_the_panel_work_with_flask_sqlalchemys_query_recording(app, database_url, make_user):
    """SQLALCHEMY_RECORD_QUERIES=True (Flask-SQLAlchemy's standard debugging aid) records every
    statement; opening a ticket used to fail with AttributeError `_fsa_start_time`."""
    recording = create_app(TestConfig(database_url, SQLALCHEMY_RECORD_QUERIES=True))
    admin_id = make_user("admin")
    try:
        with recording.app_context():
            _, key = api_tokens.create_token("RapidPro", by=_db.session.get(User, admin_id))
            cookie_id = user_service.start_sign_in(_db.session.get(User, admin_id)).get_id()
            _db.session.commit()
        client = recording.test_client()
        headers = {"Authorization": f"Token {key}"}
        payload = {"contact": {"urn": "tel:+593990001111", "name": "Ana"}, "topic": "Billing", "body": "Help"}

        opened = client.post("/api/v1/tickets", json=payload, headers=headers)
        assert opened.status_code == 201, opened.json
        listed = client.get("/api/v1/tickets", headers=headers)
        assert listed.status_code == 200 and [t["uuid"] for t in listed.json["results"]] == [opened.json["uuid"]]

        with client.session_transaction() as session:
            session["_user_id"] = cookie_id
            session["_fresh"] = True
        ticket_page = client.get(f"/admin/tickets/{opened.json['uuid']}")
        assert ticket_page.status_code == 200 and b"Help" in ticket_page.data
        folder = client.get("/admin/tickets/?folder=all")
        assert folder.status_code == 200 and opened.json["uuid"].encode() in folder.data

        with recording.test_request_context():
            # Recording really is on for this app: a statement run here is in the request's list.
            _db.session.execute(text("SELECT 1"))
            assert any("SELECT 1" in query.statement for query in get_recorded_queries())
            _db.session.rollback()
    finally:
        with recording.app_context():
            _db.session.remove()
            _db.engine.dispose()


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


# --- writes that a read does on the side ----------------------------------------------------------


@sqlite_only
def test_a_get_that_notes_a_tokens_last_use_waits_for_the_writer_before_it(app, client, make_user):
    """Noting a token's last use is a write transaction of its own: a GET arriving while another
    process writes waits its turn and records it (nothing skipped, no error), and answers 200."""
    import threading

    from tests.conftest import app_context

    admin_id = make_user("admin")
    with app_context(app):
        _, key = api_tokens.create_token("RapidPro", by=_db.session.get(User, admin_id))
        _db.session.commit()
        path = database.sqlite_path(_db.engine)
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process is writing
    answers = []
    reader = threading.Thread(
        target=lambda: answers.append(client.get("/api/v1/topics", headers={"Authorization": f"Token {key}"}))
    )
    reader.start()
    reader.join(timeout=0.5)
    waited = reader.is_alive()
    writer.execute("COMMIT")
    writer.close()
    reader.join(timeout=30)
    assert waited and answers[0].status_code == 200
    with app_context(app):
        assert _db.session.execute(text("SELECT last_used_on FROM api_tokens")).scalar() is not None
