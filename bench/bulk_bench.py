"""Bulk actions on 10,000 tickets with their events, on SQLite: how long each takes, end to end.

    .venv/bin/python -m bench.bulk_bench              # 10,000 tickets in a fresh temporary SQLite file
    .venv/bin/python -m bench.bulk_bench --tickets 50000
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bench .venv/bin/python -m bench.bulk_bench

Each action runs the way the bulk view runs it: one SELECT of the ids matching the list's filters
("all N matching"), the set-based service call (UPDATE ... RETURNING + INSERT ... SELECT of the
events, in chunks, plus every after-change hook), and the commit. The target is under 2 s for
reassigning 10,000 tickets with a note.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, insert, select

from app import create_app
from ticketer.config import Config, database_url_from_env
from ticketer.extensions import db
from ticketer.models import Contact, Ticket, TicketEvent, TicketStatus, Topic, User
from ticketer.services import sla
from ticketer.services import tickets as ticket_service
from ticketer.services import users as user_service
from ticketer.ticket_lists import TicketFilter, filter_conditions


def build(tickets: int) -> tuple[int, int, int, int, int]:
    """Tickets (open, unassigned), one contact each, with their "opened" events; returns ids to act with."""
    db.drop_all()
    db.create_all()
    supervisor = user_service.create_user("bench-sup@example.com", role="supervisor", password="bench-password-1")
    agent = user_service.create_user("bench-agent@example.com", role="agent", password="bench-password-1")
    general = Topic(name="General", is_default=True)
    billing = Topic(name="Billing")
    db.session.add_all([general, billing])
    db.session.flush()
    sla.configure_target(billing.id, first_reply_minutes=30, resolution_minutes=240, by=None)
    db.session.execute(insert(Contact), [{"uuid": f"c-{n}", "name": f"Contact {n}"} for n in range(tickets)])
    contact_ids = db.session.execute(select(Contact.id).order_by(Contact.id)).scalars().all()
    db.session.execute(
        insert(Ticket),
        [
            {"uuid": f"t-{n}", "contact_id": cid, "topic_id": general.id, "status": "open", "body": "refund please"}
            for n, cid in enumerate(contact_ids)
        ],
    )
    db.session.execute(
        insert(TicketEvent).from_select(
            ["ticket_id", "kind", "created_on"],
            select(Ticket.id, func.cast("opened", TicketEvent.kind.type), Ticket.opened_on),
        )
    )
    db.session.commit()
    return supervisor.id, agent.id, general.id, billing.id, len(contact_ids)


def timed(label: str, action) -> float:
    started = time.perf_counter()
    result = action()
    db.session.commit()
    elapsed = time.perf_counter() - started
    print(f"{label:<48} {elapsed:6.2f} s   {result.message if hasattr(result, 'message') else result}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = Config()
        config.SECRET_KEY = "bench"
        url = os.environ.get("DATABASE_URL")
        config.SQLALCHEMY_DATABASE_URI = database_url_from_env(url) if url else f"sqlite:///{Path(tmp) / 'bulk.db'}"
        app = create_app(config)
        with app.app_context():
            print(f"database: {db.engine.url.render_as_string(hide_password=True)}")
            supervisor_id, agent_id, general_id, billing_id, n = build(args.tickets)
            supervisor = db.session.get(User, supervisor_id)
            everything = TicketFilter(folder="all", status=TicketStatus.OPEN.value, query="refund")

            def matching() -> list[int]:
                conditions = filter_conditions(everything, supervisor)
                return list(db.session.execute(select(Ticket.id).where(*conditions)).scalars())

            print(f"{n:,} open tickets, each with its events\n")
            reassign = timed(
                f"reassign all {n:,} matching with a note",
                lambda: ticket_service.assign_tickets(
                    matching(), agent_id, by=supervisor, note="Bench: reassigned in bulk"
                ),
            )
            timed("unassign all matching", lambda: ticket_service.assign_tickets(matching(), None, by=supervisor))
            timed(
                "change topic of all matching (topic with an SLA)",
                lambda: ticket_service.change_topic_tickets(matching(), billing_id, by=supervisor),
            )
            timed("close all matching", lambda: ticket_service.close_tickets(matching(), by=supervisor))
            closed = TicketFilter(folder="all", status=TicketStatus.CLOSED.value)
            timed(
                "reopen all closed",
                lambda: ticket_service.reopen_tickets(
                    list(db.session.execute(select(Ticket.id).where(*filter_conditions(closed, supervisor))).scalars()),
                    by=supervisor,
                ),
            )
            events = db.session.scalar(select(func.count()).select_from(TicketEvent))
            print(f"\n{events:,} ticket events in all; reassigning took {reassign:.2f} s (target: under 2 s)")
            del general_id


if __name__ == "__main__":
    main()
