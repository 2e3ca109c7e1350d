"""Pulling a workspace's messages: 10,000 new messages across 2,000 open tickets, how long the sync takes.

    .venv/bin/python -m bench.pull_bench                      # a fresh temporary SQLite file
    .venv/bin/python -m bench.pull_bench --messages 50000 --tickets 5000
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bench .venv/bin/python -m bench.pull_bench

The workspace is tests/rapidpro_server.py (a real HTTP server on 127.0.0.1, RapidPro's page size of
250), so the figure includes the HTTP pages and temba_client's parsing, not only the database. The
sync runs the way the scheduler's pull-messages job runs it: passes of conversation.pull, a
transaction per page, until caught up. Target: under 10 s on SQLite, a fixed number of statements
per page (asserted in tests/conversation/test_pull.py).
"""

import argparse
import logging
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select

from app import create_app
from tests.rapidpro_server import RapidProServer
from ticketer.config import Config, database_url_from_env
from ticketer.extensions import db
from ticketer.models import Contact, Message, Ticket, Topic
from ticketer.services import connections, conversation


def build(server: RapidProServer, tickets: int, messages: int) -> int:
    """Contacts with an open ticket each, known on both sides; `messages` of theirs in the workspace."""
    db.drop_all()
    db.create_all()
    general = Topic(name="General", is_default=True)
    db.session.add(general)
    db.session.flush()
    connection = connections.add_rapidpro(name="Bench", base_url=server.url, api_token=server.token)
    connection.sync.after = datetime.now(UTC) - timedelta(minutes=5)
    uuids = [server.add_contact(f"Contact {n}") for n in range(tickets)]
    db.session.execute(insert(Contact), [{"uuid": u, "name": f"Contact {n}"} for n, u in enumerate(uuids)])
    contact_ids = db.session.execute(select(Contact.id).order_by(Contact.id)).scalars().all()
    db.session.execute(
        insert(Ticket),
        [
            {"uuid": f"t-{n}", "contact_id": cid, "topic_id": general.id, "status": "open", "body": "help"}
            for n, cid in enumerate(contact_ids)
        ],
    )
    db.session.commit()
    for n in range(messages):
        server.receive(uuids[n % tickets], f"message {n}")
    return connection.id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=2_000)
    parser.add_argument("--messages", type=int, default=10_000)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = RapidProServer().start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = Config()
            config.SECRET_KEY = "bench"
            url = os.environ.get("DATABASE_URL")
            config.SQLALCHEMY_DATABASE_URI = database_url_from_env(url) if url else f"sqlite:///{Path(tmp) / 'pull.db'}"
            app = create_app(config)
            with app.app_context():
                print(f"database: {db.engine.url.render_as_string(hide_password=True)}")
                connection_id = build(server, args.tickets, args.messages)
                print(f"{args.messages:,} new messages in the workspace for {args.tickets:,} open tickets")
                started, cpu_started = time.perf_counter(), time.process_time()
                passes = pages = 0
                while True:
                    report = conversation.pull(connection_id, commit=db.session.commit)
                    passes += 1
                    pages += report.pages
                    if report.finished or report.error:
                        break
                elapsed = time.perf_counter() - started
                cpu = time.process_time() - cpu_started
                stored = db.session.scalar(select(func.count()).select_from(Message))
                waiting = db.session.scalar(
                    select(func.count()).select_from(Ticket).where(Ticket.waiting_since.is_not(None))
                )
                print(
                    f"synced {stored:,} messages in {elapsed:.2f} s ({stored / elapsed:,.0f}/s): "
                    f"{pages} pages in {passes} passes; {waiting:,} tickets waiting for a reply; "
                    f"{len(server.failures)} malformed requests; CPU {cpu:.2f} s, this process and the test "
                    f"workspace together (target: under 10 s)"
                )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
