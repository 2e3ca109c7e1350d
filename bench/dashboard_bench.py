"""Time the dashboard, the per-agent page and the CSV export on a desk of 1,000,000 tickets.

    .venv/bin/python -m bench.dashboard_bench                     # bench/data/dashboard-1000000.db
    .venv/bin/python -m bench.dashboard_bench --tickets 100000 --repeat 10
    .venv/bin/python -m bench.dashboard_bench --reseed            # build the desk again
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/dashboard_bench .venv/bin/python -m bench.dashboard_bench

The desk comes from bench/seed.py (set-based INSERT ... SELECT; one year of tickets, 20 topics, 50
agents), into its own database so other benchmarks keep theirs. On top of it, also set-based:
first replies spread over minutes to hours, an SLA breach for about one ticket in twenty, and the
daily counts rebuilt from the tickets (ticketer.services.daily_counts.rebuild_daily_counts). Then, warm
and through the real WSGI app signed in as the supervisor: the dashboard for 30 and 365 days, the
median-times panel it loads after its first paint, the per-agent page, and a CSV export of every
closed ticket, read chunk by chunk while the process's peak memory is watched. Prints the figures;
the dashboard's target is under 200 ms.
"""

import argparse
import os
import resource
import statistics
import time
from pathlib import Path

from sqlalchemy import text

from bench import seed as seeding

DATA_DIR = Path(__file__).resolve().parent / "data"
TARGET_MS = 200


def default_database_url(tickets: int) -> str:
    return f"sqlite:///{DATA_DIR / f'dashboard-{tickets}.db'}"


def _exists(database_url: str) -> bool:
    if database_url.startswith("sqlite:///"):
        return Path(database_url.removeprefix("sqlite:///")).exists()
    return False


def make_app(database_url: str):
    os.environ.setdefault("SECRET_KEY", "bench-not-secret")
    from app import create_app
    from ticketer.config import Config, database_url_from_env

    config = Config()
    config.SQLALCHEMY_DATABASE_URI = database_url_from_env(database_url)
    return create_app(config)


def add_report_data(app) -> None:
    """First replies over minutes to hours, SLA breaches, and the daily counts, all set-based."""
    from ticketer.extensions import db
    from ticketer.services.daily_counts import rebuild_daily_counts

    with app.app_context():
        pg = db.engine.dialect.name == "postgresql"
        later = (
            "opened_on + ((id * 2654435761) % 14400) * INTERVAL '1 second'"
            if pg
            else "strftime('%Y-%m-%d %H:%M:%S', opened_on, '+' || ((id * 2654435761) % 14400) || ' seconds')"
            " || '.000000'"
        )
        steps = [
            ("first replies", f"UPDATE tickets SET first_reply_on = {later} WHERE id % 10 <> 0"),
            ("no first reply", "UPDATE tickets SET first_reply_on = NULL WHERE id % 10 = 0"),
            ("closed after reply", "UPDATE tickets SET closed_on = first_reply_on WHERE closed_on < first_reply_on"),
            ("sla breaches", "DELETE FROM sla_breaches"),
            (
                "sla breaches",
                "INSERT INTO sla_breaches (ticket_id, kind, due_on, breached_on, attempts) "
                "SELECT id, CASE WHEN id % 40 = 0 THEN 'first_reply' ELSE 'resolution' END, opened_on, opened_on, 0 "
                "FROM tickets WHERE id % 20 = 0",
            ),
        ]
        for name, sql in steps:
            t0 = time.perf_counter()
            with db.engine.begin() as connection:
                connection.execute(text(sql))
            print(f"  {name:<24} {time.perf_counter() - t0:>7.2f} s")
        t0 = time.perf_counter()
        rows = rebuild_daily_counts()
        db.session.commit()
        print(f"  {'daily counts':<24} {time.perf_counter() - t0:>7.2f} s  ({rows:,} rows)")
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE" if pg else "ANALYZE")
        db.session.remove()


def sign_in_client(app, email: str):
    from ticketer.extensions import db
    from ticketer.models import User
    from ticketer.services import users as user_service

    client = app.test_client()
    with app.app_context():
        user = db.session.execute(db.select(User).where(User.email == email)).scalar_one()
        cookie_id = user_service.start_sign_in(user).get_id()
        db.session.commit()
        db.session.remove()
    with client.session_transaction() as session:
        session["_user_id"] = cookie_id
        session["_fresh"] = True
    return client


def time_get(client, url: str, repeat: int) -> dict[str, float]:
    for _ in range(2):  # warm: templates compiled, pages of the indexes cached
        assert client.get(url).status_code == 200, url
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, url
    times.sort()
    return {
        "min": times[0],
        "median": statistics.median(times),
        "p95": times[min(len(times) - 1, int(len(times) * 0.95))],
    }


def time_export(client, url: str) -> dict[str, float]:
    """Stream the export without keeping it: rows, seconds, and how much the peak RSS grew."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    response = client.get(url, buffered=False)
    lines = size = 0
    for chunk in response.response:
        lines += chunk.count(b"\n") if isinstance(chunk, bytes) else chunk.count("\n")
        size += len(chunk)
    response.close()
    seconds = time.perf_counter() - t0
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    return {"rows": lines - 1, "mb": size / 1e6, "seconds": seconds, "peak_rss_growth_mb": grown / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL") or None)
    parser.add_argument("--reseed", action="store_true", help="Build the desk even if the database exists.")
    parser.add_argument("--no-export", action="store_true", help="Skip the CSV export timing.")
    args = parser.parse_args()
    database_url = args.database_url or default_database_url(args.tickets)

    if args.reseed or not _exists(database_url):
        seeding.seed(database_url, args.tickets)
        app = make_app(database_url)
        add_report_data(app)
    else:
        app = make_app(database_url)
        print(f"Using the desk in {database_url} (--reseed to build it again)")

    client = sign_in_client(app, seeding.SUPERVISOR_EMAIL)
    with app.app_context():
        from ticketer.extensions import db

        agent_id = db.session.scalar(text("SELECT min(id) FROM users WHERE role = 'agent'"))
        db.session.remove()
    print(f"\n{'page':<44} {'min':>8} {'median':>8} {'p95':>8}   (ms, {args.repeat} runs, warm)")
    results = {}
    for name, url in (
        ("dashboard, last 30 days", "/admin/dashboard/"),
        ("dashboard, last 365 days", "/admin/dashboard/?days=365"),
        ("median panel (loaded after paint), 30 days", "/admin/dashboard/medians"),
        ("median panel, 365 days", "/admin/dashboard/medians?days=365"),
        ("per-agent page, last 30 days", f"/admin/dashboard/agents/{agent_id}"),
    ):
        results[name] = figures = time_get(client, url, args.repeat)
        print(f"{name:<44} {figures['min']:>8.1f} {figures['median']:>8.1f} {figures['p95']:>8.1f}")
    verdict = "meets" if results["dashboard, last 30 days"]["median"] < TARGET_MS else "MISSES"
    print(f"\nThe dashboard (30 days) {verdict} the {TARGET_MS} ms target at {args.tickets:,} tickets.")
    if not args.no_export:
        export = time_export(client, "/admin/dashboard/export.csv?folder=all&status=closed")
        print(
            f"CSV export of closed tickets: {export['rows']:,} rows, {export['mb']:.0f} MB "
            f"in {export['seconds']:.1f} s "
            f"({export['rows'] / max(export['seconds'], 1e-9):,.0f} rows/s); peak memory grew "
            f"{export['peak_rss_growth_mb']:.1f} MB while streaming"
        )


if __name__ == "__main__":
    main()
