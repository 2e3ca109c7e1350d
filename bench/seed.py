"""Fill a database with a busy desk: N tickets (default 1,000,000), their contacts, events and messages.

    .venv/bin/python -m bench.seed --tickets 1000000                 # bench/data/ticketer-1000000.db
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bench .venv/bin/python -m bench.seed --tickets 100000

Set-based: every table is filled by a handful of INSERT ... SELECT statements over a recursive
number sequence (the same SQL on SQLite and PostgreSQL), with secondary indexes dropped during the
load and built afterwards. The tables are created from the models (db.create_all()); an existing
desk in the target database is replaced. Shape: 200,000 contacts (one per five tickets when fewer
tickets), 20 topics, 50 agents (+ a supervisor and an admin to sign in as), ~5 events and ~6
messages per ticket, about 12% of tickets open, 80% assigned; one ticket has a 200-message
conversation for the ticket-page benchmark.
"""

import argparse
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import inspect, text
from werkzeug.security import generate_password_hash

BENCH_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCH_DIR / "data"
AGENTS = 50
TOPICS = 20
MAX_CONTACTS = 200_000
BIG_CONVERSATION = 200
PASSWORD = "bench-password-1"
ADMIN_EMAIL = "bench-admin@example.com"
SUPERVISOR_EMAIL = "bench-supervisor@example.com"
# The desk's history ends a minute before the seed runs and reaches back one year.
SPAN_SECONDS = 365 * 24 * 3600


def default_database_url(tickets: int) -> str:
    return f"sqlite:///{DATA_DIR / f'ticketer-{tickets}.db'}"


def contacts_for(tickets: int) -> int:
    return max(1, min(MAX_CONTACTS, tickets // 5))


class Dialect:
    """The few SQL spellings that differ between SQLite and PostgreSQL."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pg = name == "postgresql"

    def seq(self, count: int) -> str:
        """A subquery of one column `n` = 1..count."""
        if self.pg:
            return f"(SELECT generate_series(1, {int(count)})::bigint AS n)"
        return (
            f"(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {int(count)}) SELECT n FROM s)"
        )

    def stamp(self, base_epoch: int, seconds_sql: str) -> str:
        """A naive-UTC timestamp `seconds_sql` after the epoch second `base_epoch`, stored as the models store it."""
        if self.pg:
            return f"(TIMESTAMP '1970-01-01 00:00:00' + ({base_epoch} + ({seconds_sql})) * INTERVAL '1 second')"
        # SQLAlchemy's SQLite DateTime text form; the microseconds keep comparisons with bound values exact.
        return f"(datetime({base_epoch} + ({seconds_sql}), 'unixepoch') || '.000000')"

    def digits(self, number_sql: str, width: int) -> str:
        if self.pg:
            return f"lpad(({number_sql})::text, {width}, '0')"
        return f"printf('%0{width}d', {number_sql})"

    def true(self) -> str:
        return "true" if self.pg else "1"

    def false(self) -> str:
        return "false" if self.pg else "0"


_MULTIPLIERS = (2654435761, 2246822519, 3266489917, 668265263, 374761393, 1181783497)


def _mix(expr: str, salt: int) -> str:
    """A cheap deterministic hash of an integer expression, 0 <= value < 1,000,003 (independent per salt)."""
    return f"((({expr}) * {_MULTIPLIERS[salt]} + {salt * 7919}) % 1000003)"


def _drop_secondary_indexes(connection, metadata) -> list:
    """Drop the non-unique and expression indexes for the load; returns them to create afterwards."""
    dropped = []
    for table in metadata.sorted_tables:
        for index in list(table.indexes):
            if index.unique:
                continue  # the open-ticket and uuid rules stay enforced during the load
            index.drop(connection)
            dropped.append(index)
    return dropped


def seed(database_url: str, tickets: int, *, echo=print) -> dict:
    """Replace the desk in `database_url` with `tickets` tickets; returns what was made and how long it took."""
    os.environ.setdefault("SECRET_KEY", "bench-not-secret")
    from app import create_app
    from ticketer.config import Config, database_url_from_env
    from ticketer.extensions import db
    from ticketer.services.folder_counts import rebuild_folder_counts

    if database_url.startswith("sqlite:///"):
        Path(database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    config = Config()
    config.SQLALCHEMY_DATABASE_URI = database_url_from_env(database_url)
    app = create_app(config)
    started = time.perf_counter()
    timings: dict[str, float] = {}
    contacts = contacts_for(tickets)

    def step(name: str, sql: str, **params) -> None:
        t0 = time.perf_counter()
        with db.engine.begin() as connection:
            connection.execute(text(sql), params)
        timings[name] = round(time.perf_counter() - t0, 2)
        echo(f"  {name:<24} {timings[name]:>7.2f} s")

    with app.app_context():
        d = Dialect(db.engine.dialect.name)
        db.session.remove()
        db.drop_all()
        db.create_all()
        with db.engine.begin() as connection:
            dropped = _drop_secondary_indexes(connection, db.metadata)
        now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
        end_epoch = int(now.timestamp())
        base = end_epoch - SPAN_SECONDS
        echo(f"Seeding {tickets:,} tickets, {contacts:,} contacts into {db.engine.url.render_as_string()}")

        pw = generate_password_hash(PASSWORD)
        created = d.stamp(base, "0")
        users = [(1, ADMIN_EMAIL, "Bench Admin", "admin"), (2, SUPERVISOR_EMAIL, "Bench Supervisor", "supervisor")]
        users += [(2 + i, f"agent{i}@example.com", f"Agent {i:02d}", "agent") for i in range(1, AGENTS + 1)]
        step(
            "users",
            "INSERT INTO users (id, email, name, role, password_hash, active, session_token, created_on) VALUES "
            + ", ".join(
                f"({uid}, '{email}', '{name}', '{role}', :pw, {d.true()}, 'bench{uid}', {created})"
                for uid, email, name, role in users
            ),
            pw=pw,
        )
        topic_names = ["General"] + [f"Topic {i:02d}" for i in range(1, TOPICS)]
        step(
            "topics",
            "INSERT INTO topics (id, uuid, name, is_default, created_on) VALUES "
            + ", ".join(
                f"({i + 1}, '30000000-0000-4000-8000-{i + 1:012d}', '{name}', "
                f"{d.true() if i == 0 else d.false()}, {created})"
                for i, name in enumerate(topic_names)
            ),
        )
        first_names = ["María", "José", "Ana", "Luis", "Carmen", "Jorge", "Lucía", "Pedro", "Sofía", "Diego"]
        last_names = ["García", "Torres", "Vega", "Mora", "Paredes", "Castro", "Ríos", "Salazar", "Andrade", "León"]
        first = "CASE " + " ".join(f"WHEN n % 10 = {i} THEN '{v}'" for i, v in enumerate(first_names)) + " END"
        last = "CASE " + " ".join(f"WHEN (n / 10) % 10 = {i} THEN '{v}'" for i, v in enumerate(last_names)) + " END"
        step(
            "contacts",
            f"INSERT INTO contacts (id, uuid, name, language, fields, created_on, modified_on) "
            f"SELECT n, '10000000-0000-4000-8000-' || {d.digits('n', 12)}, "
            f"{first} || ' ' || {last} || ' ' || n, 'spa', '{{}}', {created}, {created} FROM {d.seq(contacts)} AS q",
        )
        # Unique phone numbers: n * 7919 mod 10^8 is a bijection (7919 is prime to 10).
        step(
            "contact_urns",
            f"INSERT INTO contact_urns (id, contact_id, identity, scheme, path) "
            f"SELECT n, n, 'tel:+5939' || {d.digits('(n * 7919) % 100000000', 8)}, 'tel', "
            f"'+5939' || {d.digits('(n * 7919) % 100000000', 8)} FROM {d.seq(contacts)} AS q",
        )
        # Ticket n belongs to contact ((n-1) % C) + 1: each contact's newest ticket is in the last C.
        # About 60% of those newest ones are open (12% of all), the rest closed.
        is_open = f"(n > {tickets - contacts} AND {_mix('n', 1)} % 10 < 6)"
        assignee = f"CASE WHEN {_mix('n', 2)} % 10 < 8 THEN 3 + {_mix('n', 3)} % {AGENTS} END"
        opened_s = f"(n * {SPAN_SECONDS} / {tickets})"
        activity_s = f"({opened_s} + {_mix('n', 4)} % 7200)"
        step(
            "tickets",
            f"INSERT INTO tickets (id, uuid, contact_id, topic_id, assignee_id, status, body, results, opened_on, "
            f"opened_by_id, opened_in_flow_uuid, opened_in_flow_name, closed_on, last_activity_on, first_reply_on) "
            f"SELECT n, '00000000-0000-4000-8000-' || {d.digits('n', 12)}, ((n - 1) % {contacts}) + 1, "
            f"1 + {_mix('n', 5)} % {TOPICS}, {assignee}, "
            f"CASE WHEN {is_open} THEN 'open' ELSE 'closed' END, "
            f"'Customer needs help with order #' || n, '{{}}', {d.stamp(base, opened_s)}, NULL, "
            f"'40000000-0000-4000-8000-000000000001', 'Support bot', "
            f"CASE WHEN {is_open} THEN NULL ELSE {d.stamp(base, activity_s)} END, "
            f"{d.stamp(base, activity_s)}, {d.stamp(base, opened_s + ' + 300')} FROM {d.seq(tickets)} AS q",
        )
        # Events in timeline order: opened (unassigned), assigned (if assigned), two notes, closed (if closed).
        kinds = "(SELECT 1 AS k UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5)"
        step(
            "ticket_events",
            "INSERT INTO ticket_events (ticket_id, kind, created_by_id, created_on, note, assignee_id, topic_id) "
            "SELECT t.id, "
            "CASE k WHEN 1 THEN 'opened' WHEN 2 THEN 'assigned' WHEN 5 THEN 'closed' ELSE 'note_added' END, "
            "CASE WHEN k = 1 THEN NULL ELSE coalesce(t.assignee_id, 2) END, "
            "CASE WHEN k = 5 THEN t.last_activity_on ELSE t.opened_on END, "
            "CASE WHEN k IN (3, 4) THEN 'Checked the order; waiting on the customer.' END, "
            "CASE WHEN k = 2 THEN t.assignee_id END, CASE WHEN k = 1 THEN t.topic_id END "
            f"FROM tickets t CROSS JOIN {kinds} ks "
            "WHERE (k = 2 AND t.assignee_id IS NOT NULL) OR k IN (1, 3, 4) OR (k = 5 AND t.status = 'closed') "
            "ORDER BY t.id, k",
        )
        six = kinds[:-1] + " UNION ALL SELECT 6)"
        step(
            "messages",
            "INSERT INTO messages (uuid, contact_id, ticket_id, direction, text, status, created_by_id, created_on, "
            "attempts) "
            f"SELECT '20000000-0000-4000-' || {d.digits('k', 4)} || '-' || {d.digits('t.id', 12)}, t.contact_id, t.id, "
            "CASE WHEN k % 2 = 1 THEN 'in' ELSE 'out' END, "
            "CASE WHEN k % 2 = 1 THEN 'Hello, my order has not arrived yet.' "
            "ELSE 'Thanks, we are looking into it.' END, "
            "CASE WHEN k % 2 = 1 THEN 'received' ELSE 'sent' END, "
            "CASE WHEN k % 2 = 0 THEN coalesce(t.assignee_id, 2) END, t.opened_on, 0 "
            f"FROM tickets t CROSS JOIN {six} ks ORDER BY t.id, k",
        )
        big_ticket = max(1, tickets // 2)
        step(
            "big conversation",
            "INSERT INTO messages (uuid, contact_id, ticket_id, direction, text, status, created_by_id, created_on, "
            "attempts) "
            f"SELECT '21000000-0000-4000-8000-' || {d.digits('n', 12)}, t.contact_id, t.id, "
            "CASE WHEN n % 2 = 1 THEN 'in' ELSE 'out' END, 'Message number ' || n || ' of a long conversation.', "
            "CASE WHEN n % 2 = 1 THEN 'received' ELSE 'sent' END, CASE WHEN n % 2 = 0 THEN 3 END, t.opened_on, 0 "
            f"FROM tickets t CROSS JOIN {d.seq(BIG_CONVERSATION - 6)} AS q WHERE t.id = {big_ticket}",
        )
        t0 = time.perf_counter()
        with db.engine.begin() as connection:
            for index in dropped:
                index.create(connection)
        timings["indexes"] = round(time.perf_counter() - t0, 2)
        echo(f"  {'indexes':<24} {timings['indexes']:>7.2f} s")
        if d.pg:
            with db.engine.begin() as connection:
                for table in ("users", "topics", "contacts", "contact_urns", "tickets"):
                    connection.exec_driver_sql(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
                    )
        rebuild_folder_counts()
        db.session.commit()
        t0 = time.perf_counter()
        if d.pg:
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.exec_driver_sql("VACUUM ANALYZE")
        else:
            with db.engine.begin() as connection:
                connection.exec_driver_sql("ANALYZE")
        timings["analyze"] = round(time.perf_counter() - t0, 2)
        echo(f"  {'analyze':<24} {timings['analyze']:>7.2f} s")
        assert "ticket_folder_counts" in inspect(db.engine).get_table_names()
        db.session.remove()
        db.engine.dispose()
    total = round(time.perf_counter() - started, 1)
    echo(f"Done in {total} s")
    return {
        "database_url": database_url,
        "tickets": tickets,
        "contacts": contacts,
        "agents": AGENTS,
        "topics": TOPICS,
        "big_ticket_id": big_ticket,
        "seconds": total,
        "steps": timings,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL") or None)
    args = parser.parse_args()
    seed(args.database_url or default_database_url(args.tickets), args.tickets)


if __name__ == "__main__":
    main()
