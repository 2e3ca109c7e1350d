"""Soak: gunicorn under mixed traffic from a second process, then prove nothing acknowledged was lost.

    .venv/bin/python -m bench.soak                         # SQLite, 8 client threads x 400 operations
    .venv/bin/python -m bench.soak --kill                  # kill -9 a web worker and the dispatcher, 10 rounds
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python -m bench.soak

A fresh database (bench/data/soak.db, or a throw-away database on DATABASE_URL's server) gets an
admin, agents, an API token, and a webhook flow started on every close, pointing at a test engine
(an HTTP server in this process on 127.0.0.1 that counts every delivery by its X-Ticketer-Delivery
id). gunicorn (2 workers) and the scheduler (`flask --app app scheduler`) serve it. A second process
runs the client: `--concurrency` threads, each signed in as an agent, each doing exactly
`--operations` operations (a fixed amount of work, not a time: the same run on a busy machine is
slower, never smaller): opening tickets and posting incoming messages through the API, reading folder
pages and ticket pages, adding notes through the panel's forms (with their CSRF token) and closing
and reopening through the API. Every write the server acknowledged goes to the client's log.
Afterwards the log is counted against the database: every acknowledged ticket, message, note, close
and reopen must be there (nothing lost) and none of them twice (nothing doubled), every close must
have sent its flow start to the test engine, and none twice outside the at-least-once window
(a start claimed by a dispatcher that was killed, sent again after DISPATCH_RECLAIM_AFTER_SECONDS).

With --kill, `--rounds` times a gunicorn worker and then the dispatcher get SIGKILL (the dispatcher
is restarted at once, as a process supervisor would), at fixed counts of operations done, spread over
the run. API writes cut off by a dead worker are retried with the same Idempotency-Key; a write that
never got an answer is "unknown" (not acknowledged, not an error; a note form has no key to retry).
Only 127.0.0.1 is ever contacted. Waits give up only when nothing moves for a long while (a hang),
never because a busy machine is slow.
"""

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.run import free_port, wait_for_port

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
PASSWORD = "soak-password-123"
AGENTS = 8
DEFAULT_OPERATIONS = 400  # per client thread: about a minute with 8 threads on the 2-core machine
# A wait gives up after this long without progress: far above any pause a busy machine causes.
STALL_SECONDS = 120
# Only for the throw-away processes of the soak (never a real deployment's key).
SOAK_SECRET_KEY = os.environ.get("SECRET_KEY") or "soak-not-secret"


# --- the database -----------------------------------------------------------------------------


def fresh_database(server_url: str | None, sqlite_path: Path | None = None) -> tuple[str, callable]:
    """(SQLAlchemy URL of an empty database, a function that removes it)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from ticketer.config import database_url_from_env

    if not server_url or not server_url.startswith("postgres"):
        path = sqlite_path or BENCH_DIR / "data" / "soak.db"
        path.parent.mkdir(exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}", lambda: None
    url = make_url(database_url_from_env(server_url))
    name = f"ticketer_soak_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop


def make_app(database_url: str):
    from app import create_app
    from ticketer.config import Config

    config = Config()
    config.SQLALCHEMY_DATABASE_URI = database_url
    config.SECRET_KEY = SOAK_SECRET_KEY
    config.ENGINE_ALLOWED_HOSTS = "127.0.0.1"  # the test engine
    return create_app(config)


def prepare(database_url: str, engine_url: str, *, sends_replies: bool = False) -> dict:
    """Tables, people, an API token, and a webhook flow started on every close (and sending agents'
    replies too, with `sends_replies`)."""
    from ticketer.extensions import db
    from ticketer.services import api_tokens
    from ticketer.services import flows as flow_service
    from ticketer.services import users as user_service

    app = make_app(database_url)
    with app.app_context():
        db.create_all()
        admin = user_service.create_user("soak-admin@example.com", role="admin", password=PASSWORD, name="Soak Admin")
        agents = [
            user_service.create_user(f"soak-agent{i}@example.com", role="agent", password=PASSWORD, name=f"Agent {i}")
            for i in range(AGENTS)
        ]
        _, key = api_tokens.create_token("Soak", by=admin)
        flow = flow_service.create_flow(
            flow_service.FlowSettings(
                name="Survey (soak)",
                engine="webhook",
                webhook_url=engine_url,
                webhook_secret="soak-secret-0123456789",
                sends_replies=sends_replies,
            ),
            by=admin,
        )
        flow_service.create_trigger(flow_id=flow.id, topic_id=None, delay_minutes=0, by=admin)
        emails = [a.email for a in agents]
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return {"key": key, "agents": emails}


# --- the test engine --------------------------------------------------------------------------


class Engine(BaseHTTPRequestHandler):
    """Counts every delivery by its id; answers 200. `down` makes it refuse (503) for an outage."""

    deliveries: Counter = Counter()
    events: Counter = Counter()
    down = False
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if Engine.down:
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        with Engine.lock:
            Engine.deliveries[self.headers.get("X-Ticketer-Delivery", "?")] += 1
            Engine.events[self.headers.get("X-Ticketer-Event", "?")] += 1
        body = json.dumps({"uuid": str(uuid.uuid4())}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def start_engine() -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Engine)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}/hook"


# --- the processes under test -----------------------------------------------------------------


def server_env(database_url: str) -> dict:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": SOAK_SECRET_KEY,
        "DISPATCH_INTERVAL_SECONDS": "0.5",
        # The at-least-once window: a start claimed by a dispatcher that died is sent again after this.
        "DISPATCH_RECLAIM_AFTER_SECONDS": "3",
        "ENGINE_ALLOWED_HOSTS": "127.0.0.1",  # the test engine
    }


def start_gunicorn(database_url: str, port: int, workers: int) -> subprocess.Popen:
    # This Python's gunicorn and flask (`-m`), wherever its environment is: not a path in the checkout.
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"127.0.0.1:{port}"]
        + ["--log-level", "warning", "--graceful-timeout", "5", "app:create_app()"],
        cwd=ROOT,
        env=server_env(database_url),
        start_new_session=True,
    )


def start_scheduler(database_url: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "scheduler"],
        cwd=ROOT,
        env=server_env(database_url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=10)


def worker_pids(master_pid: int) -> list[int]:
    """gunicorn's worker processes: the master's children."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children")
    return [int(p) for p in children.read_text().split()] if children.exists() else []


# --- the client (its own process) -------------------------------------------------------------

WEIGHTS = {"open": 25, "message": 20, "list": 15, "ticket": 15, "note": 10, "close": 8, "reopen": 7}


def client(
    url: str, key: str, agents: list[str], operations: int, concurrency: int, log_path: str, checkpoints: list[int]
) -> dict:
    """Mixed traffic: exactly `operations` operations from each of `concurrency` threads; acknowledged
    writes go to `log_path`. When the operations done by all threads together reach a count in
    `checkpoints`, the thread that reached it prints "checkpoint" and waits for a line on stdin (the
    parent kills a process meanwhile; the other threads go on)."""
    import requests

    # Cut off by a killed worker: before the answer (refused, reset) or while its body was coming.
    CUT_OFF = (requests.ConnectionError, requests.exceptions.ChunkedEncodingError)  # noqa: N806

    run = uuid.uuid4().hex[:8]
    # Work starts once every thread has signed in (a password hash each, slow on a busy machine).
    ready = threading.Barrier(concurrency + 1)
    lock = threading.Lock()
    log: list[dict] = []
    stats: Counter = Counter()  # operations attempted, by kind
    unknown: Counter = Counter()  # writes that never got an answer, by kind
    refused: Counter = Counter()  # writes rightly refused (a reopen while the contact has another open ticket)
    done = [0]
    retried = [0]
    pending_checkpoints = set(checkpoints)

    def note_retry() -> None:
        with lock:
            retried[0] += 1

    errors: list[str] = []
    latencies: list[float] = []
    api_headers = {"Authorization": f"Token {key}"}

    def timed(session, method, path, **kwargs):
        t0 = time.perf_counter()
        response = session.request(method, url + path, timeout=30, allow_redirects=False, **kwargs)
        with lock:
            latencies.append(time.perf_counter() - t0)
        return response

    def api_write(session, path, body) -> tuple[int, dict] | None:
        """POST with an Idempotency-Key, retried on a cut connection; None when it never got an answer."""
        headers = {**api_headers, "Idempotency-Key": uuid.uuid4().hex}
        for _ in range(6):
            try:
                response = timed(session, "POST", path, json=body, headers=headers)
            except CUT_OFF:
                note_retry()
                time.sleep(0.2)
                continue
            return response.status_code, (response.json() if response.content else {})
        return None

    def get(session, path) -> int | None:
        for _ in range(6):
            try:
                return timed(session, "GET", path).status_code
            except CUT_OFF:
                note_retry()
                time.sleep(0.2)
        return None

    def sign_in(session, email) -> None:
        last = ""
        for _ in range(6):
            try:
                page = session.get(url + "/login", timeout=30).text
                token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
                    r'name="csrf_token" value="([^"]+)"', page
                )
                response = session.post(
                    url + "/login",
                    data={"csrf_token": token.group(1), "email": email, "password": PASSWORD},
                    timeout=30,
                    allow_redirects=False,
                )
                if response.status_code == 302:
                    return
                last = f"{response.status_code} {response.text[:300]}"
                time.sleep(0.5)
            except CUT_OFF as error:
                last = str(error)
                time.sleep(0.2)
        raise RuntimeError(f"could not sign in as {email}: {last}")

    def worker(index: int) -> None:
        rng = random.Random(index)  # the same mix of operations in every run
        session = requests.Session()
        sign_in(session, agents[index % len(agents)])
        ready.wait(timeout=STALL_SECONDS)
        mine: list[dict] = []  # tickets this thread opened: {uuid, urn, open}
        kinds, weights = list(WEIGHTS), list(WEIGHTS.values())
        for n in range(operations):
            kind = rng.choices(kinds, weights)[0] if mine else "open"
            try:
                record = step(session, rng, kind, index, n, mine)
            except Exception as error:  # noqa: BLE001 (a soak counts every failure)
                record = {"error": f"{kind}: {type(error).__name__}: {error}"}
            with lock:
                stats[kind] += 1
                if record is None:
                    unknown[kind] += 1
                elif "error" in record:
                    errors.append(record["error"])
                elif "refused" in record:
                    refused[kind] += 1
                elif record.get("write"):
                    log.append(record)
                done[0] += 1
                checkpoint = done[0] in pending_checkpoints
                pending_checkpoints.discard(done[0])
            if checkpoint:
                sys.stdout.write("checkpoint\n")  # one write: lines of two threads never interleave
                sys.stdout.flush()
                sys.stdin.readline()  # the parent has killed what it kills at this count

    def step(session, rng, kind, index, n, mine) -> dict | None:
        if kind == "open":
            urn = f"tel:+1555{run}{index:02d}{n:05d}" if rng.random() < 0.8 or not mine else rng.choice(mine)["urn"]
            answer = api_write(
                session,
                "/api/v1/tickets",
                {"contact": {"urn": urn, "name": f"Soak {index}-{n}"}, "body": f"soak body {run}-{index}-{n}"},
            )
            if answer is None:
                return None
            status, body = answer
            if status not in (200, 201):
                return {"error": f"open: {status} {body}"}
            known = next((t for t in mine if t["uuid"] == body["uuid"]), None)
            if known is None:
                mine.append({"uuid": body["uuid"], "urn": urn, "open": True})
            return {"write": "open", "ticket": body["uuid"], "created": status == 201}
        target = rng.choice(mine)
        if kind == "message":
            text = f"soak message {run}-{index}-{n}"
            answer = api_write(session, "/api/v1/messages", {"urn": target["urn"], "text": text})
            if answer is None:
                return None
            status, body = answer
            if status != 201:
                return {"error": f"message: {status} {body}"}
            return {"write": "message", "message": body["uuid"], "text": text}
        if kind == "list":
            folder = rng.choice(["mine", "unassigned", "all"])
            status = get(session, f"/admin/tickets/?folder={folder}&status={rng.choice(['open', 'closed'])}")
            return None if status is None else ({} if status == 200 else {"error": f"list: {status}"})
        if kind == "ticket":
            status = get(session, f"/admin/tickets/{target['uuid']}")
            return None if status is None else ({} if status == 200 else {"error": f"ticket page: {status}"})
        if kind == "note":
            page = None
            for _ in range(6):
                try:
                    page = session.get(f"{url}/admin/tickets/{target['uuid']}", timeout=30)
                    break
                except CUT_OFF:
                    note_retry()
                    time.sleep(0.2)
            if page is None:
                return None
            token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)
            if page.status_code != 200 or not token:
                return {"error": f"note: ticket page {page.status_code}"}
            note = f"soak note {run}-{index}-{n}"
            try:
                response = timed(
                    session,
                    "POST",
                    f"/admin/tickets/{target['uuid']}/note",
                    data={"csrf_token": token.group(1), "note": note},
                )
            except CUT_OFF:
                return None  # cut off: maybe written, maybe not; no key to retry it with
            if response.status_code != 302:
                return {"error": f"note: {response.status_code}"}
            return {"write": "note", "ticket": target["uuid"], "note": note}
        action = "close" if kind == "close" else "reopen"
        answer = api_write(session, "/api/v1/ticket_actions", {"tickets": [target["uuid"]], "action": action})
        if answer is None:
            return None
        status, body = answer
        if status == 409 and action == "reopen":
            return {"refused": action}  # the contact has another open ticket: rightly refused, nothing acknowledged
        if status != 200:
            return {"error": f"{action}: {status} {body}"}
        return {"write": action, "ticket": target["uuid"], "changed": body["changed"]}

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    ready.wait(timeout=STALL_SECONDS)
    started = time.perf_counter()
    print("started", flush=True)
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    Path(log_path).write_text("\n".join(json.dumps(r) for r in log))
    ordered = sorted(latencies) or [0.0]
    return {
        "seconds": round(elapsed, 1),
        "requests": len(latencies),
        "requests_per_second": round(len(latencies) / elapsed, 1),
        "median_ms": round(ordered[len(ordered) // 2] * 1000, 1),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 1),
        "operations": dict(stats),
        "operations_done": done[0],
        "unknown": dict(unknown),
        "refused": dict(refused),
        "retried": retried[0],
        "acknowledged_writes": len(log),
        "errors": len(errors),
        "error_samples": errors[:10],
    }


# --- counting the log against the database ----------------------------------------------------


def verify(database_url: str, log: list[dict], unknown: dict) -> dict:
    """Every acknowledged write is in the database (nothing lost) and none is there twice (nothing
    doubled: a retried write happened once); every close sent its flow start, none twice outside the
    at-least-once window. `unknown` counts, by kind, the writes that never got an answer: each may
    or may not be in the database, once at most."""
    from sqlalchemy import func, select

    from ticketer.extensions import db
    from ticketer.models import Message, Ticket, TicketEvent, TicketStatus
    from ticketer.models.flows import FlowStart

    app = make_app(database_url)
    with app.app_context():
        tickets = dict(db.session.execute(select(Ticket.uuid, Ticket.id)).all())
        messages = set(db.session.execute(select(Message.uuid)).scalars())
        message_texts = Counter(
            db.session.execute(select(Message.text).where(Message.text.like("soak message %"))).scalars()
        )
        notes = Counter(
            db.session.execute(
                select(TicketEvent.note).where(TicketEvent.kind == "note_added", TicketEvent.note.like("soak note %"))
            ).scalars()
        )
        events = Counter(
            (ticket_id, kind)
            for ticket_id, kind in db.session.execute(select(TicketEvent.ticket_id, TicketEvent.kind)).all()
        )
        contacts_with_two_open = (
            db.session.execute(
                select(Ticket.contact_id)
                .where(Ticket.status == TicketStatus.OPEN)
                .group_by(Ticket.contact_id)
                .having(func.count() > 1)
            )
            .scalars()
            .all()
        )
        starts = db.session.execute(select(FlowStart.delivery_id, FlowStart.status, FlowStart.attempts)).all()
        unsent_detail = db.session.execute(
            select(FlowStart.status, FlowStart.attempts, FlowStart.last_error, FlowStart.next_attempt_on)
            .where(FlowStart.status.not_in(["sent", "cancelled"]))
            .limit(5)
        ).all()
        db.session.remove()
        db.engine.dispose()
    missing: list[str] = []
    doubled: list[str] = []
    acked = Counter()  # (ticket id, "closed" / "reopened") -> acknowledged changes
    for record in log:
        kind = record["write"]
        if kind == "open" and record["ticket"] not in tickets:
            missing.append(f"ticket {record['ticket']}")
        elif kind == "message":
            if record["message"] not in messages:
                missing.append(f"message {record['message']}")
            if message_texts[record["text"]] > 1:
                doubled.append(f"message {record['text']!r} x{message_texts[record['text']]}")
        elif kind == "note":
            if not notes[record["note"]]:
                missing.append(f"note {record['note']!r}")
            elif notes[record["note"]] > 1:
                doubled.append(f"note {record['note']!r} x{notes[record['note']]}")
        elif kind in ("close", "reopen") and record["changed"]:
            acked[(tickets.get(record["ticket"]), "closed" if kind == "close" else "reopened")] += 1
    for (ticket_id, kind), count in acked.items():
        if events[(ticket_id, kind)] < count:
            missing.append(f"{kind} events of ticket {ticket_id}: {events[(ticket_id, kind)]} < {count} acknowledged")
    # Nothing beyond what was acknowledged, plus at most once each write that got no answer.
    acknowledged = Counter(r["write"] for r in log)
    created = sum(1 for r in log if r["write"] == "open" and r["created"])
    event_totals = Counter(kind for (_, kind) in events.elements())
    acked_totals = Counter(kind for (_, kind) in acked.elements())
    totals = {  # kind: (in the database, acknowledged)
        "open": (len(tickets), created),
        "message": (sum(message_texts.values()), acknowledged["message"]),
        "note": (sum(notes.values()), acknowledged["note"]),
        "close": (event_totals["closed"], acked_totals["closed"]),
        "reopen": (event_totals["reopened"], acked_totals["reopened"]),
    }
    for kind, (in_db, acked_count) in totals.items():
        if in_db > acked_count + unknown.get(kind, 0):
            doubled.append(
                f"{kind}: {in_db} in the database for {acked_count} acknowledged + {unknown.get(kind, 0)} unknown"
            )
    doubled += [f"contact {contact_id} has two open tickets" for contact_id in contacts_with_two_open]
    # A start is due to the engine unless its ticket was reopened before it went out (then cancelled).
    unsent = [d for d, status, _ in starts if status != "cancelled" and (status != "sent" or not Engine.deliveries[d])]
    cancelled = [d for d, status, _ in starts if status == "cancelled"]
    sent_after_cancel = [d for d in cancelled if Engine.deliveries[d]]
    twice = {d: Engine.deliveries[d] for d, _, _ in starts if Engine.deliveries[d] > 1}
    attempts = {d: a for d, _, a in starts}
    outside_window = [d for d in twice if attempts[d] < 2]  # sent twice without being claimed again
    return {
        "acknowledged": dict(acknowledged),
        "missing": missing,
        "doubled": doubled,
        "tickets_created": created,
        "tickets_in_db": len(tickets),
        "closes": totals["close"][0],
        "flow_starts": len(starts),
        "flow_starts_unsent": len(unsent),
        "unsent_samples": [
            f"{status} after {tries} tries: {error} (next {when})" for status, tries, error, when in unsent_detail
        ],
        "flow_starts_cancelled_by_reopen": len(cancelled),
        "flow_starts_sent_after_cancel": len(sent_after_cancel),
        "flow_starts_sent_twice": len(twice),
        "sent_twice_outside_window": len(outside_window),
        "engine_deliveries": sum(Engine.deliveries.values()),
    }


# --- the run ----------------------------------------------------------------------------------


def soak(
    operations: int,
    concurrency: int,
    workers: int,
    kill: bool,
    rounds: int,
    echo,
    *,
    server_url: str | None = None,
    sqlite_path: Path | None = None,
) -> dict:
    """Run the soak: exactly `operations` from each of `concurrency` client threads; with `kill`,
    `rounds` kills of a web worker and as many of the dispatcher, at fixed counts of operations done.
    `server_url` a PostgreSQL server (else SQLite at `sqlite_path`). Returns the figures."""
    database_url, drop = fresh_database(server_url, sqlite_path)
    Engine.deliveries, Engine.events, Engine.down = Counter(), Counter(), False
    engine, engine_url = start_engine()
    setup = prepare(database_url, engine_url)
    port = free_port()
    web = start_gunicorn(database_url, port, workers)
    scheduler = start_scheduler(database_url)
    kills: Counter = Counter()
    victims = ["web_worker", "dispatcher"] * rounds if kill else []
    total = operations * concurrency
    # Spread evenly over the run, never at its very end: every kill has work after it.
    checkpoints = [total * (i + 1) // (len(victims) + 1) for i in range(len(victims))]
    data_dir = sqlite_path.parent if sqlite_path else BENCH_DIR / "data"
    log_path = data_dir / f"soak-log-{os.getpid()}.jsonl"
    stderr_path = data_dir / f"soak-client-{os.getpid()}.stderr"
    rng = random.Random()
    try:
        wait_for_port(port)
        echo(
            f"soak: {concurrency} client threads x {operations} operations, gunicorn {workers} workers, "
            f"kill={kill} ({len(victims)} kills)"
        )
        with stderr_path.open("w") as stderr:
            client_process = subprocess.Popen(
                [sys.executable, "-m", "bench.soak", "client", "--url", f"http://127.0.0.1:{port}"]
                + ["--key", setup["key"], "--agents", ",".join(setup["agents"]), "--log", str(log_path)]
                + ["--operations", str(operations), "--concurrency", str(concurrency)]
                + ["--checkpoints", ",".join(map(str, checkpoints))],
                cwd=ROOT,
                env=server_env(database_url),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        last_line = ""
        for line in client_process.stdout:
            if line.startswith("checkpoint"):
                victim = victims[sum(kills.values())]
                if victim == "web_worker":
                    os.kill(rng.choice(wait_for_workers(web.pid)), signal.SIGKILL)
                else:
                    os.killpg(scheduler.pid, signal.SIGKILL)
                    scheduler.wait(timeout=STALL_SECONDS)
                    scheduler = start_scheduler(database_url)  # at once, as a process supervisor would
                kills[victim] += 1
                client_process.stdin.write("go\n")
                client_process.stdin.flush()
            elif line.strip():
                last_line = line
        client_process.stdin.close()
        if client_process.wait() != 0:
            raise RuntimeError(f"the client failed:\n{stderr_path.read_text()[-3000:]}")
        figures = json.loads(last_line)
        # Let the dispatcher send what the last closes recorded: wait as long as it makes progress.
        log = [json.loads(line) for line in log_path.read_text().splitlines() if line]
        result = verify(database_url, log, figures["unknown"])
        left, quiet_since = result["flow_starts_unsent"], time.monotonic()
        while result["flow_starts_unsent"] and time.monotonic() - quiet_since < STALL_SECONDS:
            time.sleep(1)
            result = verify(database_url, log, figures["unknown"])
            if result["flow_starts_unsent"] < left:
                left, quiet_since = result["flow_starts_unsent"], time.monotonic()
        figures.update(result)
        figures["kills"] = dict(kills)
    finally:
        stop(web)
        stop(scheduler)
        engine.shutdown()
        log_path.unlink(missing_ok=True)
        stderr_path.unlink(missing_ok=True)
        drop()
    figures["ok"] = (
        figures["operations_done"] == total
        and figures["errors"] == 0
        and not figures["missing"]
        and not figures["doubled"]
        and figures["flow_starts_unsent"] == 0
        and figures["flow_starts"] == figures["closes"]
        and figures["sent_twice_outside_window"] == 0
        and figures["flow_starts_sent_after_cancel"] == 0
        and (kill or figures["flow_starts_sent_twice"] == 0)
    )
    echo(
        f"  {figures['operations_done']:,} operations, {figures['requests']:,} requests in {figures['seconds']} s "
        f"({figures['requests_per_second']} req/s, median {figures['median_ms']} ms, p95 {figures['p95_ms']} ms), "
        f"{figures['errors']} errors, {sum(figures['unknown'].values())} unknown, {figures['retried']} retried"
    )
    echo(
        f"  acknowledged {figures['acknowledged']}; missing {len(figures['missing'])}; "
        f"doubled {len(figures['doubled'])}; flow starts {figures['flow_starts']} for {figures['closes']} closes "
        f"({figures['flow_starts_cancelled_by_reopen']} cancelled by a reopen), "
        f"unsent {figures['flow_starts_unsent']}, "
        f"sent twice {figures['flow_starts_sent_twice']} (outside the window {figures['sent_twice_outside_window']}); "
        f"kills {figures['kills']}"
    )
    echo(
        "  OK"
        if figures["ok"]
        else f"  FAILED: {figures['missing'][:5]} {figures['doubled'][:5]} {figures['error_samples'][:5]} "
        f"{figures['unsent_samples']}"
    )
    return figures


def wait_for_workers(master_pid: int) -> list[int]:
    """gunicorn's workers, once it has one again (it respawns a killed worker)."""
    quiet_since = time.monotonic()
    while not (pids := worker_pids(master_pid)):
        if time.monotonic() - quiet_since > STALL_SECONDS:
            raise RuntimeError("gunicorn has no worker")
        time.sleep(0.1)
    return pids


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "client":
        parser = argparse.ArgumentParser(prog="bench.soak client")
        parser.add_argument("client")
        parser.add_argument("--url", required=True)
        parser.add_argument("--key", required=True)
        parser.add_argument("--agents", required=True)
        parser.add_argument("--operations", type=int, required=True)
        parser.add_argument("--concurrency", type=int, required=True)
        parser.add_argument("--checkpoints", default="")
        parser.add_argument("--log", required=True)
        a = parser.parse_args()
        if not a.url.startswith("http://127.0.0.1:"):
            raise SystemExit("the soak client only talks to 127.0.0.1")
        checkpoints = [int(c) for c in a.checkpoints.split(",") if c]
        figures = client(a.url, a.key, a.agents.split(","), a.operations, a.concurrency, a.log, checkpoints)
        print(json.dumps(figures), flush=True)
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--operations", type=int, default=DEFAULT_OPERATIONS, help="operations per client thread")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads (the scale benchmark's load)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--kill", action="store_true", help="kill -9 a web worker and the dispatcher, --rounds times")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    figures = soak(
        args.operations,
        args.concurrency,
        args.workers,
        args.kill,
        args.rounds,
        print,
        server_url=os.environ.get("DATABASE_URL"),
    )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    raise SystemExit(0 if figures["ok"] else 1)


if __name__ == "__main__":
    main()
