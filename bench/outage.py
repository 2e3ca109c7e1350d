"""Engine outage: the flow engine is down for 2 minutes, then back; every flow start and every reply
queued meanwhile is delivered, with the dispatcher's backoff visible in the attempts.

    .venv/bin/python -m bench.outage                       # SQLite, engine down 120 s
    .venv/bin/python -m bench.outage --down 60 --items 10  # quicker
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python -m bench.outage

A fresh database gets a webhook flow (started on every close, and sending agents' replies) whose URL
is a port on 127.0.0.1 where nothing listens yet: connections are refused, as when an engine is down.
The scheduler process (`flask --app app scheduler`) runs throughout. During the first part of the
outage, tickets are opened, replied to and closed one by one. The database is sampled every second,
so each attempt is seen when the row's `attempts` goes up. After `--down` seconds the test engine
starts listening on that port and counts each delivery by its X-Ticketer-Delivery id. The run ends
when everything is sent (or after --wait seconds) and prints, per row, the attempts and the gaps
between them (the backoff: 30 s, 60 s, 120 s, ...). Only 127.0.0.1 is contacted; loops are bounded.
"""

import argparse
import json
import os
import statistics
import threading
import time
from collections import Counter
from http.server import ThreadingHTTPServer
from pathlib import Path

from bench import soak

BENCH_DIR = Path(__file__).resolve().parent


def sample(app) -> dict[tuple[str, str], tuple[int, str]]:
    """(kind, delivery id) -> (attempts, status) of every flow start and outgoing message."""
    from sqlalchemy import select

    from ticketer.extensions import db
    from ticketer.models import Message
    from ticketer.models.flows import FlowStart

    with app.app_context():
        rows = {
            ("start", d): (a, s)
            for d, a, s in db.session.execute(select(FlowStart.delivery_id, FlowStart.attempts, FlowStart.status))
        }
        rows |= {
            ("reply", u): (a, s)
            for u, a, s in db.session.execute(
                select(Message.uuid, Message.attempts, Message.status).where(Message.direction == "out")
            )
        }
        db.session.remove()
    return rows


def outage(down: float, items: int, wait: float, echo, *, server_url: str | None = None, sqlite_path=None) -> dict:
    database_url, drop = soak.fresh_database(server_url, sqlite_path or BENCH_DIR / "data" / "outage.db")
    soak.Engine.deliveries, soak.Engine.events, soak.Engine.down = Counter(), Counter(), False
    port = soak.free_port()
    engine_url = f"http://127.0.0.1:{port}/hook"
    soak.prepare(database_url, engine_url, sends_replies=True)
    app = soak.make_app(database_url)
    scheduler = soak.start_scheduler(database_url)
    engine = None
    attempt_times: dict[tuple, list[float]] = {}
    created: dict[tuple, float] = {}
    delivered: dict[tuple, float] = {}
    started = time.monotonic()
    echo(f"outage: engine down for {down:.0f} s; {items} tickets replied to and closed meanwhile")
    try:
        from ticketer.extensions import db
        from ticketer.models import User
        from ticketer.services import contacts as contact_service
        from ticketer.services import tickets as ticket_service

        def work() -> None:
            """Open, reply, close, one ticket every few seconds during the first half of the outage."""
            with app.app_context():
                agent = db.session.execute(db.select(User).where(User.role == "agent")).scalars().first()
                for i in range(items):
                    contact = contact_service.upsert_contact(urns=[f"tel:+1555000{i:04d}"], name=f"Outage {i}")
                    ticket, _ = ticket_service.open_ticket(contact_id=contact.id, body="during the outage")
                    ticket_service.reply(ticket.id, f"reply {i}", by=agent)
                    ticket_service.close(ticket.id, by=agent)
                    db.session.commit()
                    time.sleep(max(0.0, down / 2 / items))
                db.session.remove()

        worker = threading.Thread(target=work)
        worker.start()
        seen: dict[tuple, int] = {}
        deadline = started + down + wait
        while time.monotonic() < deadline:
            now = time.monotonic() - started
            if engine is None and now >= down:
                engine = ThreadingHTTPServer(("127.0.0.1", port), soak.Engine)
                threading.Thread(target=engine.serve_forever, daemon=True).start()
                echo(f"  {now:5.0f} s: the engine is back")
            rows = sample(app)
            for key, (attempts, status) in rows.items():
                created.setdefault(key, now)
                if attempts > seen.get(key, 0):
                    attempt_times.setdefault(key, []).extend([now] * (attempts - seen.get(key, 0)))
                    seen[key] = attempts
                if status == "sent":
                    delivered.setdefault(key, now)
            if not worker.is_alive() and len(rows) == 2 * items and all(s == "sent" for _, s in rows.values()):
                break
            time.sleep(1)
        worker.join(timeout=60)
    finally:
        soak.stop(scheduler)
        if engine is not None:
            engine.shutdown()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        drop()

    keys = sorted(created)
    attempts = [len(attempt_times.get(k, [])) for k in keys]
    gaps = [
        round(b - a) for k in keys for a, b in zip(attempt_times.get(k, []), attempt_times.get(k, [])[1:], strict=False)
    ]
    undelivered = [k for k in keys if k not in delivered or soak.Engine.deliveries[k[1]] == 0]
    figures = {
        "down_seconds": down,
        "items": {
            "starts": sum(1 for k in keys if k[0] == "start"),
            "replies": sum(1 for k in keys if k[0] == "reply"),
        },
        "delivered": len(keys) - len(undelivered),
        "undelivered": len(undelivered),
        "sent_twice": sum(1 for k in keys if soak.Engine.deliveries[k[1]] > 1),
        "attempts": dict(sorted(Counter(attempts).items())),
        "gaps_between_attempts_s": dict(sorted(Counter(gaps).items())),
        "delivered_after_engine_back_s": round(max(delivered.values(), default=0) - down, 1),
        "median_time_to_delivery_s": round(statistics.median(delivered[k] - created[k] for k in delivered), 1)
        if delivered
        else None,
    }
    figures["ok"] = (
        figures["undelivered"] == 0
        and figures["sent_twice"] == 0
        and figures["items"] == {"starts": items, "replies": items}
        and min(attempts, default=0) >= 2  # every row was tried while the engine was down, then again
    )
    echo(
        f"  delivered {figures['delivered']}/{len(keys)} ({figures['items']}), sent twice {figures['sent_twice']}; "
        f"attempts per row {figures['attempts']}; gaps between attempts (s) {figures['gaps_between_attempts_s']}; "
        f"all delivered {figures['delivered_after_engine_back_s']} s after the engine came back"
    )
    echo("  OK" if figures["ok"] else "  FAILED")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--down", type=float, default=120, help="seconds the engine is down")
    parser.add_argument("--items", type=int, default=20, help="tickets replied to and closed during the outage")
    parser.add_argument("--wait", type=float, default=600, help="at most this long after the outage for delivery")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    figures = outage(args.down, args.items, args.wait, print, server_url=os.environ.get("DATABASE_URL"))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    raise SystemExit(0 if figures["ok"] else 1)


if __name__ == "__main__":
    main()
