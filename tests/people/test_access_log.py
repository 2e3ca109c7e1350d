"""Invitation and reset tokens never reach gunicorn's access log (gunicorn.conf.py's logger_class).

A real gunicorn, started with the project's gunicorn.conf.py, serves the links; the log it writes is read.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from ticketer.extensions import db as _db
from ticketer.models import User
from ticketer.services import invitations as invitation_service
from ticketer.services import password_resets as password_reset_service

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).parent / "gunicorn"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, "gunicorn exited"
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"gunicorn did not listen on {port}")


def get(url: str, **headers) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_tokens_in_links_are_redacted_from_the_access_log(app, make_user, tmp_path):
    admin_id = make_user("admin")
    agent_id = make_user("agent")
    with app.app_context():
        admin = _db.session.get(User, admin_id)
        invitation = invitation_service.invite("ana@example.com", "agent", by=admin)
        reset = password_reset_service.send_password_reset(agent_id, by=admin)
        _db.session.commit()
    access_log = tmp_path / "access.log"
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "SECRET_KEY": "access-log-test",
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    server = subprocess.Popen(
        [str(GUNICORN), "--workers", "1", "--bind", f"127.0.0.1:{port}", "--access-logfile", str(access_log)]
        + ["app:create_app()"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port, server)
        assert get(f"{base}/invitations/{invitation.token}") == 200
        assert get(f"{base}/password-reset/{reset.token}?from=mail") == 200
        # The page's own assets are asked for with the link as Referer; a made-up token is hidden too.
        assert get(f"{base}/static/ticketer.css", Referer=f"{base}/invitations/{invitation.token}") == 200
        assert get(f"{base}/invitations%2Fguessed-token-123") in (404, 410)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    log = access_log.read_text()
    assert log.count("\n") >= 4, log
    for secret in (invitation.token, reset.token, "guessed-token-123"):
        assert secret not in log, log
    assert "GET /invitations/[redacted]" in log and "GET /password-reset/[redacted]?from=mail" in log
    assert "GET /static/ticketer.css" in log  # other paths are logged as they are
    assert f"{base}/invitations/[redacted]" in log  # the Referer, redacted
