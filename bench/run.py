"""Time Ticketer at 10k, 100k and 1M tickets, next to stock Flask-Admin over the same tables.

    .venv/bin/python -m bench.run                                  # SQLite: 10k, 100k, 1M
    .venv/bin/python -m bench.run --sizes 10000,100000 --repeat 20
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python -m bench.run --sizes 10000

For each size it seeds a fresh desk (bench/seed.py; on PostgreSQL one database per size, named
ticketer_bench_<N>), then measures, warm and through the real WSGI app: every folder page (Mine /
Unassigned / All, open and closed, page 1 and page 200 by keyset cursor), the folder counts,
search by URN and by name, a ticket page with 200 messages, the same folder pages served by a stock
Flask-Admin ModelView (bench/stock_admin.py), bulk reassign of 10,000 tickets, open-ticket API
throughput against gunicorn (2 workers, load from a second process) and close-to-engine dispatch
latency (the scheduler process posting to a local webhook). Prints a table and writes
bench/results/<db>-<date>.json.
"""

import argparse
import gc
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench import seed as seeding

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
PAGE_SIZE = 50
DEEP_PAGE = 200
AGENT_ID = 3  # "Agent 01": the person whose Mine folder is timed
BULK_TICKETS = 10_000

os.environ.setdefault("SECRET_KEY", "bench-not-secret")


def percentiles(samples: list[float]) -> dict:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median_ms": round(statistics.median(ordered) * 1000, 2), "p95_ms": round(p95 * 1000, 2), "n": len(ordered)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- databases ----------------------------------------------------------------------------------


def database_for(size: int, server_url: str | None) -> str:
    """SQLite: a file under bench/data; PostgreSQL: a database per size on DATABASE_URL's server."""
    if not server_url or not server_url.startswith("postgres"):
        return seeding.default_database_url(size)
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from ticketer.config import database_url_from_env

    url = make_url(database_url_from_env(server_url))
    name = f"ticketer_bench_{size}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        if not connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first():
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def make_app(database_url: str):
    from app import create_app
    from ticketer.config import Config, database_url_from_env

    config = Config()
    config.SQLALCHEMY_DATABASE_URI = database_url_from_env(database_url)
    config.WTF_CSRF_ENABLED = False
    config.ENGINE_ALLOWED_HOSTS = "127.0.0.1"  # the benchmark's engine
    return create_app(config)


def signed_in_client(app, user_id: int):
    from ticketer.extensions import db
    from ticketer.models import User
    from ticketer.services import users as user_service

    client = app.test_client()
    with app.app_context():
        cookie_id = user_service.start_sign_in(db.session.get(User, user_id)).get_id()
        db.session.commit()
        db.session.remove()
    with client.session_transaction() as session:
        session["_user_id"] = cookie_id
        session["_fresh"] = True
    return client


# --- pages --------------------------------------------------------------------------------------


def _deep_cursor(app, folder: str, status: str) -> str | None:
    """The `after` cursor of page 200 (found here once with OFFSET; the page request itself seeks)."""
    from sqlalchemy import select

    from ticketer import ticket_lists
    from ticketer.extensions import db
    from ticketer.models import Ticket, User

    with app.app_context():
        user = db.session.get(User, AGENT_ID)
        conditions = ticket_lists.filter_conditions(ticket_lists.TicketFilter(folder=folder, status=status), user)
        row = db.session.execute(
            select(Ticket)
            .where(*conditions)
            .order_by(Ticket.last_activity_on.desc(), Ticket.id.desc())
            .offset((DEEP_PAGE - 1) * PAGE_SIZE - 1)
            .limit(1)
        ).scalar_one_or_none()
        cursor = ticket_lists.Cursor.of(row).encode() if row is not None else None
        db.session.remove()
    return cursor


class PageSet:
    """The pages timed on one database: (name -> client, URL, is_stock), with its two apps."""

    def __init__(self, database_url: str, facts: dict) -> None:
        from urllib.parse import urlencode

        from bench.stock_admin import URL as STOCK_URL
        from bench.stock_admin import create_stock_app, folder_args
        from ticketer.extensions import db
        from ticketer.models import Contact, ContactURN

        self.app = make_app(database_url)
        self.stock = create_stock_app(database_url)
        client = signed_in_client(self.app, AGENT_ID)
        stock_client = self.stock.test_client()
        stock_view = next(v for v in self.stock.extensions["admin"][0]._views if hasattr(v, "_filters"))
        self.pages: dict[str, tuple] = {}
        self.skipped: dict[str, dict] = {}
        for folder in ("mine", "unassigned", "all"):
            for status in ("open", "closed"):
                base = {"folder": folder, "status": status}
                stock_args = folder_args(stock_view, folder, status, AGENT_ID)
                self.pages[f"list {folder} {status} p1"] = (client, f"/admin/tickets/?{urlencode(base)}", False)
                self.pages[f"stock {folder} {status} p1"] = (
                    stock_client,
                    f"{STOCK_URL}/stock_tickets/?{urlencode(stock_args)}",
                    True,
                )
                cursor = _deep_cursor(self.app, folder, status)
                if cursor is None:
                    self.skipped[f"list {folder} {status} p{DEEP_PAGE}"] = {"skipped": "fewer than 200 pages"}
                    continue
                self.pages[f"list {folder} {status} p{DEEP_PAGE}"] = (
                    client,
                    f"/admin/tickets/?{urlencode({**base, 'after': cursor})}",
                    False,
                )
                self.pages[f"stock {folder} {status} p{DEEP_PAGE}"] = (
                    stock_client,
                    f"{STOCK_URL}/stock_tickets/?{urlencode({**stock_args, 'page': DEEP_PAGE - 1})}",
                    True,
                )
        self.pages["folder counts"] = (client, "/admin/tickets/counts.json", False)
        with self.app.app_context():
            contact_id = max(1, facts["contacts"] // 3)
            urn = db.session.execute(select_urn(ContactURN, contact_id)).scalar()
            name = db.session.get(Contact, contact_id).name
            db.session.remove()
        closed = {"folder": "all", "status": "closed"}
        phone = "+" + urn.removeprefix("tel:+")[:8]
        broad = " ".join(name.split()[:2])
        self.pages["search URN"] = (client, f"/admin/tickets/?{urlencode({**closed, 'q': urn})}", False)
        self.pages["search phone prefix"] = (client, f"/admin/tickets/?{urlencode({**closed, 'q': phone})}", False)
        self.pages["search name"] = (client, f"/admin/tickets/?{urlencode({**closed, 'q': name.lower()})}", False)
        self.pages["search name prefix (1% of contacts)"] = (
            client,
            f"/admin/tickets/?{urlencode({**closed, 'q': broad})}",
            False,
        )
        big_uuid = f"00000000-0000-4000-8000-{facts['big_ticket_id']:012d}"
        self.pages["ticket page (200 messages)"] = (client, f"/admin/tickets/{big_uuid}", False)

    def close(self) -> None:
        from ticketer.extensions import db

        for app in (self.app, self.stock):
            with app.app_context():
                db.session.remove()
                db.engine.dispose()


def select_urn(model, contact_id: int):
    from sqlalchemy import select

    return select(model.identity).where(model.contact_id == contact_id).order_by(model.id).limit(1)


def measure_page_sets(sets: dict[int, PageSet], repeat: int, stock_repeat: int, echo, warm: int = 3) -> dict[int, dict]:
    """Time every page of every size, interleaved (page A at 10k, 100k, 1M, then page B ...), so that
    a busy moment of the machine falls on all sizes alike rather than on one."""
    names = list(dict.fromkeys(name for page_set in sets.values() for name in page_set.pages))
    samples: dict[int, dict[str, list[float]]] = {size: {} for size in sets}
    for size, page_set in sets.items():
        for client, url, _ in page_set.pages.values():
            for _ in range(warm):
                response = client.get(url)
                if response.status_code != 200:
                    raise RuntimeError(f"{url} answered {response.status_code} at {size:,}")
    # As gunicorn.conf.py does for each web worker: the apps' start-up objects leave the garbage
    # collector's reach, so a full collection (~100 ms here) doesn't land on one page's timing.
    gc.collect()
    gc.freeze()
    for round_ in range(max(repeat, stock_repeat)):
        for name in names:
            for size, page_set in sets.items():
                if name not in page_set.pages:
                    continue
                client, url, is_stock = page_set.pages[name]
                if round_ >= (stock_repeat if is_stock else repeat):
                    continue
                t0 = time.perf_counter()
                response = client.get(url)
                response.get_data()
                samples[size].setdefault(name, []).append(time.perf_counter() - t0)
                assert response.status_code == 200, url
    figures: dict[int, dict] = {}
    for size, page_set in sets.items():
        figures[size] = {**page_set.skipped}
        for name in names:
            if name in page_set.pages:
                figures[size][name] = {"url": page_set.pages[name][1], **percentiles(samples[size][name])}
        figures[size] = {name: figures[size][name] for name in sorted(figures[size], key=_page_order(names))}
    for name in names:
        cells = []
        for size in sets:
            fig = figures[size].get(name, {})
            cells.append(f"{fig['median_ms']:>8.2f} ({fig['p95_ms']:>8.2f})" if "median_ms" in fig else f"{'-':>19}")
        echo(f"    {name:<36} " + "  ".join(cells))
    return figures


def _page_order(names: list[str]):
    def key(name: str):
        base = name.rsplit(" ", 1)[0] + " p1" if name.endswith(f"p{DEEP_PAGE}") else name
        return (names.index(base) if base in names else len(names), name)

    return key


def measure_pages(database_url: str, facts: dict, repeat: int, stock_repeat: int, echo, warm: int = 3) -> dict:
    """Time the pages of one database (see measure_page_sets)."""
    page_set = PageSet(database_url, facts)
    try:
        return measure_page_sets({facts["tickets"]: page_set}, repeat, stock_repeat, echo, warm)[facts["tickets"]]
    finally:
        page_set.close()


# --- writes -------------------------------------------------------------------------------------


def measure_bulk_reassign(database_url: str, echo) -> dict:
    from sqlalchemy import select

    from ticketer.extensions import db
    from ticketer.models import Ticket, TicketStatus, User
    from ticketer.services import folder_counts
    from ticketer.services import tickets as ticket_service

    app = make_app(database_url)
    with app.app_context():
        ids = list(
            db.session.execute(
                select(Ticket.id)
                .where(Ticket.status == TicketStatus.OPEN, Ticket.assignee_id.is_distinct_from(AGENT_ID + 1))
                .order_by(Ticket.id)
                .limit(BULK_TICKETS)
            ).scalars()
        )
        supervisor = db.session.get(User, 2)
        t0 = time.perf_counter()
        result = ticket_service.assign_tickets(ids, AGENT_ID + 1, by=supervisor, note="Covering while Agent 01 is away")
        db.session.commit()
        seconds = time.perf_counter() - t0
        exact = folder_counts.stored_counts() == folder_counts.counted_from_tickets()
        db.session.remove()
        db.engine.dispose()
    echo(f"    bulk reassign {result.changed:,} tickets      {seconds:.3f} s  (counts still exact: {exact})")
    return {"tickets": result.changed, "seconds": round(seconds, 3), "counts_exact": exact}


def make_api_key(database_url: str) -> str:
    from ticketer.extensions import db
    from ticketer.models import User
    from ticketer.services import api_tokens

    app = make_app(database_url)
    with app.app_context():
        _, key = api_tokens.create_token("Benchmark", by=db.session.get(User, 1))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return key


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def load(url: str, key: str, seconds: float, concurrency: int, run_id: str, requests: int | None = None) -> dict:
    """The load generator (run in its own process): POST new tickets for `seconds` from `concurrency` threads,
    or exactly `requests` from each thread when given (a fixed amount of work, as the suite runs it).

    Each request is a new connection, as a flow engine's webhook call is (gunicorn's sync workers
    serve one request per connection). Requests are written and read on plain sockets: the
    generator shares the machine's two cores with the server, so it spends as little as it can.
    """
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    address = (parts.hostname, parts.port)
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Token {key}\r\n"
        "Content-Type: application/json\r\nConnection: close\r\nContent-Length: "
    ).encode()
    body_template = (
        '{"contact": {"urn": "tel:+1555%s%03d%06d", "name": "Load %d-%d"}, "topic": "Load test", '
        '"body": "Opened by the benchmark: @contact.name", '
        '"results": {"reason": {"value": "help", "category": "Other"}}}'
    )
    counts = {"ok": 0, "errors": 0}
    latencies: list[float] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def worker(index: int) -> None:
        n = 0
        while n < requests if requests is not None else time.monotonic() < stop_at:
            n += 1
            body = (body_template % (run_id, index, n, index, n)).encode()
            t0 = time.perf_counter()
            try:
                with socket.create_connection(address, timeout=30) as connection:
                    connection.sendall(head + str(len(body)).encode() + b"\r\n\r\n" + body)
                    chunks = []
                    while chunk := connection.recv(65536):
                        chunks.append(chunk)
                answer = b"".join(chunks)
                # 201 Created with the new ticket in the body
                ok = answer.startswith(b"HTTP/1.1 201") and b'"uuid"' in answer
            except OSError:
                ok = False
            with lock:
                counts["ok" if ok else "errors"] += 1
                latencies.append(time.perf_counter() - t0)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {
        "tickets": counts["ok"],
        "errors": counts["errors"],
        "seconds": round(elapsed, 2),
        "tickets_per_second": round(counts["ok"] / elapsed, 1),
        **{f"request_{k}": v for k, v in percentiles(latencies).items()},
    }


def measure_api(
    database_url: str, seconds: float | None, concurrency: int, echo, *, requests: int | None = None
) -> dict:
    """The open-ticket API on gunicorn (2 workers): for `seconds`, or `requests` from each client thread."""
    key = make_api_key(database_url)
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url}
    server = subprocess.Popen(
        [
            sys.executable,  # this Python's gunicorn, wherever its environment is (not a path in the checkout)
            "-m",
            "gunicorn",
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "app:create_app()",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        wait_for_port(port)
        run_id = f"{int(time.time()) % 1000:03d}"
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.run",
                "load",
                "--url",
                f"http://127.0.0.1:{port}/api/v1/tickets",
                "--key",
                key,
                *(["--requests", str(requests)] if requests is not None else ["--seconds", str(seconds)]),
                "--concurrency",
                str(concurrency),
                "--run-id",
                run_id,
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        figures = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    echo(
        f"    open-ticket API (gunicorn, 2 workers)  {figures['tickets_per_second']:>7.1f} tickets/s "
        f"({figures['tickets']:,} in {figures['seconds']} s, {figures['errors']} errors, "
        f"request p95 {figures['request_p95_ms']} ms)"
    )
    return figures


class _Hook(BaseHTTPRequestHandler):
    arrivals: dict[str, float] = {}

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            ticket = (json.loads(body).get("ticket") or {}).get("uuid")
        except ValueError:
            ticket = None
        if ticket:
            self.arrivals.setdefault(ticket, time.time())
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def measure_dispatch(database_url: str, closes: int, echo) -> dict:
    """Close tickets one at a time; the time until the scheduler process delivers each flow start."""
    from sqlalchemy import select

    from ticketer.extensions import db
    from ticketer.models import Ticket, TicketStatus, User
    from ticketer.services import flows as flow_service
    from ticketer.services import tickets as ticket_service

    hook_port = free_port()
    _Hook.arrivals = {}
    receiver = ThreadingHTTPServer(("127.0.0.1", hook_port), _Hook)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    app = make_app(database_url)
    with app.app_context():
        admin = db.session.get(User, 1)
        flow = flow_service.create_flow(
            flow_service.FlowSettings(
                name="Satisfaction survey (bench)",
                engine="webhook",
                webhook_url=f"http://127.0.0.1:{hook_port}/hook",
                webhook_secret="bench-webhook-secret-0123456789",
            ),
            by=admin,
        )
        flow_service.create_trigger(flow_id=flow.id, topic_id=None, delay_minutes=0, by=admin)
        db.session.commit()
        targets = list(
            db.session.execute(
                select(Ticket.id, Ticket.uuid)
                .where(Ticket.status == TicketStatus.OPEN)
                .order_by(Ticket.id.desc())
                .limit(closes)
            ).all()
        )
        db.session.remove()
    env = {**os.environ, "DATABASE_URL": database_url, "ENGINE_ALLOWED_HOSTS": "127.0.0.1"}
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "scheduler"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    closed_at: dict[str, float] = {}
    try:
        time.sleep(3)  # the scheduler is up and has run once
        with app.app_context():
            for ticket_id, uuid in targets:
                ticket_service.close(ticket_id, by=None)
                db.session.commit()
                closed_at[uuid] = time.time()
                time.sleep(0.37)  # spread the closes over the dispatch interval
            db.session.remove()
        # Wait for every delivery; give up only after 60 s with no new one (a stuck dispatcher), so a
        # busy machine makes it slower, never short.
        arrived, quiet_since = 0, time.monotonic()
        while len(_Hook.arrivals) < len(closed_at) and time.monotonic() - quiet_since < 60:
            if len(_Hook.arrivals) > arrived:
                arrived, quiet_since = len(_Hook.arrivals), time.monotonic()
            time.sleep(0.1)
    finally:
        os.killpg(scheduler.pid, signal.SIGTERM)
        try:
            scheduler.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(scheduler.pid, signal.SIGKILL)
        receiver.shutdown()
        with app.app_context():
            db.engine.dispose()
    latencies = [_Hook.arrivals[u] - t for u, t in closed_at.items() if u in _Hook.arrivals]
    figures = {"closes": len(closed_at), "delivered": len(latencies)}
    if latencies:
        figures.update(
            {k.replace("_ms", "_s"): round(v / 1000, 3) for k, v in percentiles(latencies).items() if k != "n"}
        )
    echo(
        f"    close-to-engine dispatch               median {figures.get('median_s')} s  p95 {figures.get('p95_s')} s "
        f"({figures['delivered']}/{figures['closes']} delivered)"
    )
    return figures


# --- the run ------------------------------------------------------------------------------------


def run_sizes(sizes: list[int], args, echo) -> list[dict]:
    """Seed every size, time the pages of all sizes interleaved, then the writes size by size."""
    server_url = os.environ.get("DATABASE_URL")
    prepared = []
    for size in sizes:
        database_url = database_for(size, server_url)
        if args.no_seed:
            facts = {"tickets": size, "contacts": seeding.contacts_for(size), "big_ticket_id": max(1, size // 2)}
            facts["seconds"] = None
        else:
            facts = seeding.seed(database_url, size, echo=lambda line: None)
            echo(f"  seeded {size:,} tickets in {facts['seconds']} s")
        prepared.append((size, database_url, facts))
    sets = {size: PageSet(database_url, facts) for size, database_url, facts in prepared}
    echo("  pages, median (p95) ms at " + ", ".join(f"{size:,}" for size in sizes) + " tickets:")
    try:
        pages = measure_page_sets(sets, args.repeat, args.stock_repeat, echo)
    finally:
        for page_set in sets.values():
            page_set.close()
    results = []
    for size, database_url, facts in prepared:
        result = {"tickets": size, "seed_seconds": facts["seconds"], "pages": pages[size]}
        if not args.pages_only:
            echo(f"  writes at {size:,} tickets:")
            result["bulk_reassign"] = measure_bulk_reassign(database_url, echo)
            result["api"] = measure_api(database_url, args.api_seconds, args.concurrency, echo)
            result["dispatch"] = measure_dispatch(database_url, args.closes, echo)
        results.append(result)
    return results


def summary_table(results: list[dict]) -> str:
    sizes = [r["tickets"] for r in results]
    names = list(dict.fromkeys(name for r in results for name in r["pages"] if not name.startswith("stock")))
    head = "| median (p95) ms | " + " | ".join(f"{s:,}" for s in sizes) + " | stock Flask-Admin at largest | ratio |"
    lines = [head, "|" + "---|" * (len(sizes) + 3)]
    for name in names:
        cells = []
        for r in results:
            fig = r["pages"].get(name, {})
            cells.append(f"{fig['median_ms']:.1f} ({fig['p95_ms']:.1f})" if "median_ms" in fig else "-")
        stock = results[-1]["pages"].get(name.replace("list ", "stock "), {}) if name.startswith("list ") else {}
        ours = results[-1]["pages"].get(name, {})
        if "median_ms" in stock and "median_ms" in ours:
            stock_cell = f"{stock['median_ms']:.1f} ({stock['p95_ms']:.1f})"
            ratio = f"{stock['median_ms'] / ours['median_ms']:.1f}x"
        else:
            stock_cell, ratio = "-", "-"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {stock_cell} | {ratio} |")
    if all("bulk_reassign" in r for r in results):
        lines.append(
            "| bulk reassign (s, tickets) | "
            + " | ".join(f"{r['bulk_reassign']['seconds']:.2f} s ({r['bulk_reassign']['tickets']:,})" for r in results)
            + " | - | - |"
        )
        lines.append(
            "| open-ticket API (tickets/s) | "
            + " | ".join(f"{r['api']['tickets_per_second']:.0f}" for r in results)
            + " | - | - |"
        )
        lines.append(
            "| dispatch latency median (p95) s | "
            + " | ".join(f"{r['dispatch'].get('median_s')} ({r['dispatch'].get('p95_s')})" for r in results)
            + " | - | - |"
        )
    return "\n".join(lines)


def targets(results: list[dict]) -> list[dict]:
    """The issue's targets, checked on the smallest and largest sizes of this run."""
    small, large = results[0], results[-1]
    lists = [n for n in large["pages"] if n.startswith("list ") and "median_ms" in large["pages"][n]]
    checks = []

    def check(name: str, value, limit, ok: bool) -> None:
        checks.append({"target": name, "value": value, "limit": limit, "met": ok})

    if len(results) > 1:
        flat = [
            (large["pages"][n]["median_ms"] / small["pages"][n]["median_ms"], n)
            for n in [*lists, "folder counts"]
            if "median_ms" in small["pages"].get(n, {})
        ]
        worst, name = max(flat)
        check(
            f"list pages and counts flat: {large['tickets']:,} / {small['tickets']:,} (worst: {name})",
            round(worst, 2),
            1.5,
            worst <= 1.5,
        )
    worst_list = max(large["pages"][n]["median_ms"] for n in lists)
    check(f"list page median at {large['tickets']:,} (slowest page, ms)", worst_list, 50, worst_list < 50)
    ticket = large["pages"]["ticket page (200 messages)"]["median_ms"]
    check("ticket page median (ms)", ticket, 50, ticket < 50)
    urn = large["pages"]["search URN"]["median_ms"]
    check("search by URN median (ms)", urn, 20, urn < 20)
    if "bulk_reassign" in large:
        bulk = large["bulk_reassign"]
        check(f"bulk reassign of {bulk['tickets']:,} tickets (s)", bulk["seconds"], 2, bulk["seconds"] < 2)
        rate = large["api"]["tickets_per_second"]
        check("open-ticket API, gunicorn 2 workers (tickets/s)", rate, 300, rate >= 300)
        p95 = large["dispatch"].get("p95_s")
        check("close-to-engine dispatch p95 (s)", p95, 2, p95 is not None and p95 < 2)
    return checks


def targets_table(checks: list[dict]) -> str:
    lines = ["| target | measured | limit | met |", "|---|---|---|---|"]
    for c in checks:
        lines.append(f"| {c['target']} | {c['value']} | {c['limit']} | {'yes' if c['met'] else '**no**'} |")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "load":
        parser = argparse.ArgumentParser()
        parser.add_argument("command")
        parser.add_argument("--url", required=True)
        parser.add_argument("--key", required=True)
        parser.add_argument("--seconds", type=float, default=10)
        parser.add_argument("--requests", type=int, help="exactly this many from each thread, instead of --seconds")
        parser.add_argument("--concurrency", type=int, default=8)
        parser.add_argument("--run-id", default="000")
        a = parser.parse_args()
        print(json.dumps(load(a.url, a.key, a.seconds, a.concurrency, a.run_id, a.requests)))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--repeat", type=int, default=30, help="timed requests per page (after 3 warm-ups)")
    parser.add_argument("--stock-repeat", type=int, default=10, help="timed requests per stock Flask-Admin page")
    parser.add_argument("--api-seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=8, help="client threads of the API load")
    parser.add_argument("--closes", type=int, default=20, help="tickets closed for the dispatch latency")
    parser.add_argument("--pages-only", action="store_true", help="skip bulk reassign, API and dispatch")
    parser.add_argument("--no-seed", action="store_true", help="reuse the databases as they are")
    parser.add_argument("--out", default=str(RESULTS_DIR), help="directory for the JSON results ('' for none)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    results = run_sizes(sizes, args, lambda line: print(line, flush=True))
    table = summary_table(results)
    checks = targets(results)
    print()
    print(table)
    print()
    print(targets_table(checks))
    dialect = "postgresql" if (os.environ.get("DATABASE_URL") or "").startswith("postgres") else "sqlite"
    report = {
        "database": dialect,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "results": results,
        "table": table,
        "targets": checks,
    }
    if args.out:
        out_dir = Path(args.out)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{dialect}-{datetime.now(UTC):%Y-%m-%d}.json"
        path.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nWrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


if __name__ == "__main__":
    main()
