"""The open-ticket API of two checkouts, back to back, alternating: before/after figures from one sitting.

    git worktree add /work/wt/bench-before 59b22b7 && ln -s "$PWD/.venv" /work/wt/bench-before/.venv
    .venv/bin/python -m bench.api_ab before=/work/wt/bench-before after=. --rounds 4

Seeds one small desk (10,000 tickets by default, bench/data/ticketer-api-<N>.db) with this
checkout's seed and makes an API key on it; then, round after round, for each checkout in turn
(the order flips every round), copies that desk to a fresh file, starts the checkout's own gunicorn
(2 sync workers, its gunicorn.conf.py) on it, warms it for 3 s, and runs bench/run.py's load
generator against it (8 threads, new connection per request) for `--seconds`. Prints every figure, the load average
(`uptime`) before each run, and the spread (min / median / max) per checkout. SQLite only.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import seed as seeding
from bench.run import ROOT, free_port, make_api_key, wait_for_port

WARM_SECONDS = 3


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run_once(checkout: Path, template: Path, key: str, seconds: float, concurrency: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="api-ab-") as scratch:
        database = Path(scratch) / "desk.db"
        shutil.copyfile(template, database)
        url = f"sqlite:///{database}"
        port = free_port()
        env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "bench-not-secret"}
        server = subprocess.Popen(
            [str(checkout / ".venv/bin/gunicorn"), "--workers", "2", "--bind", f"127.0.0.1:{port}"]
            + ["--log-level", "warning", "app:create_app()"],
            cwd=checkout,
            env=env,
            start_new_session=True,
        )
        try:
            wait_for_port(port)

            def load(run_seconds: float) -> dict:
                out = subprocess.run(
                    [sys.executable, "-m", "bench.run", "load", "--url", f"http://127.0.0.1:{port}/api/v1/tickets"]
                    + ["--key", key, "--seconds", str(run_seconds), "--concurrency", str(concurrency)]
                    + ["--run-id", f"{int(time.time() * 1000) % 1000:03d}"],
                    cwd=ROOT,
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                return json.loads(out.stdout.strip().splitlines()[-1])

            # Warm: both workers booted (their first requests wait for the app's import) and serving.
            load(WARM_SECONDS)
            loadavg = load_average()
            figures = load(seconds)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        return {**figures, "loadavg": loadavg}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkouts", nargs="+", help="name=path of a checkout with its .venv (e.g. before=../old)")
    parser.add_argument("--tickets", type=int, default=10_000, help="size of the desk")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    checkouts = [(name, Path(path).resolve()) for name, _, path in (c.partition("=") for c in args.checkouts)]

    template = seeding.DATA_DIR / f"ticketer-api-{args.tickets}.db"
    seeding.seed(f"sqlite:///{template}", args.tickets, echo=lambda line: None)
    key = make_api_key(f"sqlite:///{template}")
    for suffix in ("-wal", "-shm", "-writers.lock"):
        Path(f"{template}{suffix}").unlink(missing_ok=True)

    figures: dict[str, list[float]] = {name: [] for name, _ in checkouts}
    for round_no in range(args.rounds):
        order = checkouts if round_no % 2 == 0 else list(reversed(checkouts))
        for name, path in order:
            result = run_once(path, template, key, args.seconds, args.concurrency)
            figures[name].append(result["tickets_per_second"])
            print(
                f"round {round_no + 1} {name:>8}: {result['tickets_per_second']:6.1f} tickets/s "
                f"({result['tickets']} in {result['seconds']} s, {result['errors']} errors, "
                f"p95 {result['request_p95_ms']} ms; load average {result['loadavg']})",
                flush=True,
            )
    print()
    for name, values in figures.items():
        print(
            f"{name:>8}: min {min(values):.0f}, median {statistics.median(values):.0f}, max {max(values):.0f} "
            f"tickets/s over {len(values)} runs of {args.seconds:g} s"
        )


if __name__ == "__main__":
    main()
