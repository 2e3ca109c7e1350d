"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

import json
import warnings
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import JSON, Column, bindparam, func, inspect, select, text
from sqlalchemy.exc import SAWarning

from app import create_app
from tests.conftest import throwaway_database
from ticketer.config import TestConfig
from ticketer.extensions import db
from ticketer.models import Contact, Ticket, User, UTCDateTime
from ticketer.models.reports import TicketDailyCount
from ticketer.services import tickets as ticket_service
from ticketer.ticket_lists import folder_counts


@pytest.fixture
def empty_database_url(tmp_path):
    with throwaway_database(tmp_path / "migrated.db", prefix="ticketer_migrate") as url:
        yield url


# The catalogue, not the inspector: SQLAlchemy can't reflect expression indexes on SQLite.
INDEX_NAMES = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'index'",
    "postgresql": "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()",
}


def expression_indexes(dialect: str) -> set[str]:
    """Indexes on expressions (autogenerate can't compare them), that this dialect gets."""
    names = set()
    for table in db.metadata.sorted_tables:
        for index in table.indexes:
            ddl_if = index._ddl_if
            if ddl_if is not None and ddl_if.dialect not in (None, dialect):
                continue
            if any(not isinstance(expression, Column) for expression in index.expressions):
                names.add(index.name)
    return names


def schema_differences(connection) -> list:
    """What autogenerate finds between the database and the models, expression indexes aside
    (checked by name here, as autogenerate cannot compare them)."""
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection", SAWarning)
        warnings.filterwarnings("ignore", "autogenerate skipping", UserWarning)
        warnings.filterwarnings("ignore", "Expression #1 .* operator clause", UserWarning)
        differences = compare_metadata(context, db.metadata)
    wanted = expression_indexes(connection.dialect.name)
    indexes = set(connection.execute(text(INDEX_NAMES[connection.dialect.name])).scalars())
    assert wanted <= indexes
    return [d for d in differences if not (d[0].endswith("_index") and d[1].name in wanted)]


def test_upgrade_matches_the_models_and_downgrade_empties(empty_database_url):
    app = create_app(TestConfig(empty_database_url))
    with app.app_context():
        upgrade()
        with db.engine.connect() as connection:
            assert schema_differences(connection) == []
            wanted = expression_indexes(connection.dialect.name)
        assert {"uq_topics_name_lower", "ix_contacts_name_lower"} <= wanted
        downgrade(revision="base")
        with db.engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) <= {"alembic_version"}
        db.engine.dispose()


# --- Upgrading a release-1 database that has data -------------------------------------------------

RELEASE_1 = "c26d73d4d947"
# The release-1 tables, and the columns later releases added to them.
RELEASE_1_TABLES = ["users", "topics", "contacts", "contact_urns", "tickets", "ticket_events", "messages"]
RELEASE_2_COLUMNS = {"messages": ("attempts", "next_attempt_on", "claimed_on", "claimed_by", "last_error")}
# Columns of later releases are not in release 1 either: the conversation's (b3c41d5e7f20).
for _table, _columns in {
    "contacts": ("connection_id",),
    "messages": ("connection_id", "external_uuid", "external_status", "attachments"),
    "tickets": ("waiting_since",),
}.items():
    RELEASE_2_COLUMNS[_table] = RELEASE_2_COLUMNS.get(_table, ()) + _columns
JSON_COLUMNS = {("contacts", "fields"), ("tickets", "results")}


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# Opened late in the evening UTC and closed just after midnight: the day a ticket counts on depends on the time zone.
TICKETS = [
    # id, contact, topic, assignee, status, opened_on, closed_on, results
    (1, 1, 1, 1, "open", utc(2026, 3, 1, 9, 15), None, {"order": "A-17", "items": [1, 2], "vip": True}),
    (2, 2, 2, None, "open", utc(2026, 3, 1, 23, 40), None, {}),
    (3, 3, 2, 2, "closed", utc(2026, 3, 2, 4, 30), utc(2026, 3, 3, 0, 20), {"nested": {"a": None, "ñ": "ü"}}),
    (4, 1, 1, 1, "closed", utc(2026, 2, 27, 12, 0), utc(2026, 2, 28, 23, 59, 59, 500000), {"score": 4.5}),
    (5, 4, 3, None, "closed", utc(2026, 2, 28, 2, 0), utc(2026, 3, 1, 3, 0), {"list": ["x", "y"]}),
    (6, 4, 3, 2, "open", utc(2026, 3, 2, 15, 0), None, {"count": 3}),
]


def insert_release_1_data(connection) -> None:
    """What a release-1 desk holds, written with plain SQL as release 1 stored it."""
    postgres = connection.dialect.name == "postgresql"

    def insert(table: str, rows: list[dict]) -> None:
        names = list(rows[0])
        values = [f"CAST(:{n} AS JSON)" if postgres and (table, n) in JSON_COLUMNS else f":{n}" for n in names]
        statement = text(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(values)})").bindparams(
            *(bindparam(n, type_=UTCDateTime()) for n in names if n.endswith("_on")),
            *(bindparam(n, type_=JSON()) for n in names if (table, n) in JSON_COLUMNS and not postgres),
        )
        for row in rows:
            if postgres:
                row = {n: json.dumps(v) if (table, n) in JSON_COLUMNS else v for n, v in row.items()}
            connection.execute(statement, row)

    created = utc(2026, 1, 5, 8, 0)
    insert(
        "users",
        [
            dict(id=1, email="ana@example.com", name="Ana", role="agent", password_hash="scrypt:x$y$z", active=True,
                 session_token="tok-ana", created_on=created, last_login_on=utc(2026, 3, 2, 7, 0)),
            dict(id=2, email="ben@example.com", name="Ben", role="supervisor", password_hash=None, active=True,
                 session_token="tok-ben", created_on=created, last_login_on=None),
            dict(id=3, email="root@example.com", name="Root", role="admin", password_hash="scrypt:a$b$c", active=True,
                 session_token="tok-root", created_on=created, last_login_on=None),
        ],
    )  # fmt: skip
    insert(
        "topics",
        [
            dict(id=n, uuid=f"00000000-0000-4000-8000-00000000000{n}", name=name, is_default=n == 1, created_on=created)
            # release 1 checked names ignoring case in the service only: "billing" slipped through
            for n, name in [(1, "General"), (2, "Billing"), (3, "Delivery"), (4, "billing")]
        ],
    )  # fmt: skip
    insert(
        "contacts",
        [
            dict(id=n, uuid=f"00000000-0000-4000-9000-00000000000{n}", name=name, language=language, fields=fields,
                 created_on=created, modified_on=utc(2026, 2, n, 10, 0))
            for n, name, language, fields in [
                (1, "María José", "spa", {"age": 34, "city": "Quito", "tags": ["vip"]}),
                (2, "Bob", None, {}),
                (3, "Chloé", "fra", {"deep": {"x": [1, {"y": None}]}}),
                (4, "Dan", "eng", {"unicode": "✓ – 漢字"}),
            ]
        ],
    )  # fmt: skip
    insert(
        "contact_urns",
        [
            dict(id=1, contact_id=1, identity="tel:+593991234567", scheme="tel", path="+593991234567"),
            dict(id=2, contact_id=1, identity="whatsapp:593991234567", scheme="whatsapp", path="593991234567"),
            dict(id=3, contact_id=2, identity="telegram:12345", scheme="telegram", path="12345"),
            dict(id=4, contact_id=3, identity="mailto:chloe@example.com", scheme="mailto", path="chloe@example.com"),
            dict(id=5, contact_id=4, identity="tel:+15550001", scheme="tel", path="+15550001"),
        ],
    )
    insert(
        "tickets",
        [
            dict(id=i, uuid=f"00000000-0000-4000-a000-00000000000{i}", contact_id=contact, topic_id=topic,
                 assignee_id=assignee, status=status, body=f"Help with ticket {i}", results=results,
                 opened_on=opened, opened_by_id=None, opened_in_flow_uuid="00000000-0000-4000-b000-000000000001",
                 opened_in_flow_name="Support", closed_on=closed, last_activity_on=closed or opened,
                 first_reply_on=opened + timedelta(minutes=5) if assignee else None)
            for i, contact, topic, assignee, status, opened, closed, results in TICKETS
        ],
    )  # fmt: skip
    events = []
    for i, _contact, topic, assignee, _status, opened, closed, _results in TICKETS:
        events.append(dict(ticket_id=i, kind="opened", created_by_id=None, created_on=opened, note=None,
                           assignee_id=None, topic_id=topic))  # fmt: skip
        if assignee:
            events.append(dict(ticket_id=i, kind="assigned", created_by_id=3, created_on=opened + timedelta(minutes=1),
                               note="yours", assignee_id=assignee, topic_id=None))  # fmt: skip
        if closed:
            events.append(dict(ticket_id=i, kind="closed", created_by_id=assignee, created_on=closed, note=None,
                               assignee_id=None, topic_id=None))  # fmt: skip
    insert("ticket_events", [dict(id=n, **event) for n, event in enumerate(events, 1)])
    insert(
        "messages",
        [
            dict(id=1, uuid="00000000-0000-4000-c000-000000000001", contact_id=1, ticket_id=1, direction="in",
                 text="My order is late", status="received", created_by_id=None, created_on=utc(2026, 3, 1, 9, 15)),
            dict(id=2, uuid="00000000-0000-4000-c000-000000000002", contact_id=1, ticket_id=1, direction="out",
                 text="On it!", status="sent", created_by_id=1, created_on=utc(2026, 3, 1, 9, 20)),
            dict(id=3, uuid="00000000-0000-4000-c000-000000000003", contact_id=3, ticket_id=3, direction="out",
                 text="Done — anything else?", status="queued", created_by_id=2, created_on=utc(2026, 3, 2, 4, 35)),
            dict(id=4, uuid="00000000-0000-4000-c000-000000000004", contact_id=2, ticket_id=None, direction="in",
                 text="hello?", status="received", created_by_id=None, created_on=utc(2026, 2, 1, 0, 0)),
        ],
    )  # fmt: skip
    if postgres:  # the ids were given: move the sequences past them, as release 1's own inserts would have
        for table in RELEASE_1_TABLES:
            connection.execute(
                text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
            )


def release_1_rows(connection) -> dict[str, list[tuple]]:
    """Every row of the release-1 tables, release-1 columns only, JSON decoded, in id order."""
    rows = {}
    for table in RELEASE_1_TABLES:
        columns = [c.name for c in db.metadata.tables[table].columns if c.name not in RELEASE_2_COLUMNS.get(table, ())]
        result = connection.execute(text(f"SELECT {', '.join(columns)} FROM {table} ORDER BY id"))
        rows[table] = [
            tuple(
                json.loads(v) if (table, c) in JSON_COLUMNS and isinstance(v, str) else v
                for c, v in zip(columns, row, strict=True)
            )
            for row in result
        ]
    return rows


@pytest.mark.parametrize("timezone", ["UTC", "America/Guayaquil"])
def test_upgrade_from_release_1_keeps_the_data_and_counts_it(empty_database_url, timezone):
    app = create_app(TestConfig(empty_database_url, WORKSPACE_TIMEZONE=timezone))
    with app.app_context():
        upgrade(revision=RELEASE_1)
        with db.engine.begin() as connection:
            insert_release_1_data(connection)
        with db.engine.connect() as connection:
            before = release_1_rows(connection)
        assert [len(before[t]) for t in RELEASE_1_TABLES] == [3, 4, 4, 5, 6, 13, 4]

        upgrade()

        with db.engine.connect() as connection:
            after = release_1_rows(connection)
            assert schema_differences(connection) == []
            attempts = connection.execute(text("SELECT attempts FROM messages ORDER BY id")).scalars().all()
        # the duplicate topic name gets its id; everything else is as it was
        renamed = before["topics"][3]
        assert after["topics"][3] == (*renamed[:2], "billing (4)", *renamed[3:])
        after["topics"][3] = renamed
        assert after == before
        assert attempts == [0, 0, 0, 0]

        # through the models too: aware UTC times, JSON as written
        contact = db.session.get(Contact, 3)
        assert contact.fields == {"deep": {"x": [1, {"y": None}]}}
        assert contact.modified_on == utc(2026, 2, 3, 10, 0)
        for i, _contact, _topic, _assignee, status, opened, closed, results in TICKETS:
            ticket = db.session.get(Ticket, i)
            assert (ticket.status, ticket.opened_on, ticket.closed_on, ticket.results) == (
                status,
                opened,
                closed,
                results,
            )
        assert [u.id for u in db.session.get(Contact, 1).urns] == [1, 2]

        # the daily counts hold each ticket once opened, once closed, on its workspace-local day
        tz = ZoneInfo(timezone)
        expected = Counter()
        for _i, _contact, topic, assignee, _status, opened, closed, _results in TICKETS:
            expected[(opened.astimezone(tz).date(), topic, assignee, "opened")] += 1
            if closed:
                expected[(closed.astimezone(tz).date(), topic, assignee, "closed")] += 1
        counted = Counter()
        for row in db.session.execute(select(TicketDailyCount)).scalars():
            assert row.reopened == 0
            counted[(row.day, row.topic_id, row.assignee_id, "opened")] += row.opened
            counted[(row.day, row.topic_id, row.assignee_id, "closed")] += row.closed
        assert +counted == expected

        # the app works on it: open, assign and close tickets; the folders count what is there
        admin = db.session.get(User, 3)
        ticket, created = ticket_service.open_ticket(
            contact_id=3, topic_name="Delivery", body="Where is it?", opened_by=admin
        )
        assert created
        assert ticket_service.assign(ticket.id, 1, by=admin)
        assert ticket_service.close(1, by=admin)
        db.session.commit()
        for user_id in (1, 2, 3):
            user = db.session.get(User, user_id)
            folders = folder_counts(user)
            for status in ("open", "closed"):
                in_status = select(func.count()).select_from(Ticket).where(Ticket.status == status)
                assert folders["all"][status] == db.session.scalar(in_status)
                assert folders["mine"][status] == db.session.scalar(in_status.where(Ticket.assignee_id == user_id))
                assert folders["unassigned"][status] == db.session.scalar(in_status.where(Ticket.assignee_id.is_(None)))
        assert folder_counts(db.session.get(User, 1))["mine"] == {"open": 1, "closed": 2}
        db.session.remove()

        # and back to release 1: its tables keep their rows (the ticket opened since included)
        downgrade(revision=RELEASE_1)
        with db.engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
            back = release_1_rows(connection)
        assert tables == {"alembic_version", *RELEASE_1_TABLES}
        assert len(back["tickets"]) == 7
        assert back["tickets"][1:6] == after["tickets"][1:6]
        assert back["topics"][3][2] == "billing (4)"
        for table in ("users", "contacts", "contact_urns", "messages"):
            assert back[table] == after[table]
        db.engine.dispose()
