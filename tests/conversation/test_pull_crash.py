"""A pull killed in the middle of a pass (kill -9 while the workspace is slow to send page 2), then
run again: every message is stored exactly once."""

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from tests.factories import make_contact, make_ticket
from ticketer.models import Message
from ticketer.models.connections import ConnectionSync
from ticketer.services import connections, conversation

ROOT = Path(__file__).resolve().parents[2]


def test_a_pull_killed_mid_pass_skips_and_doubles_nothing(db, database_url, rapidpro):
    rapidpro.page_size = 5
    connection = connections.add_rapidpro(name="Soporte", base_url=rapidpro.url, api_token=rapidpro.token)
    contact_uuid = rapidpro.add_contact("María")
    contact = make_contact("María", uuid=contact_uuid)
    make_ticket(contact)
    db.session.commit()
    for i in range(12):
        rapidpro.receive(contact_uuid, f"m{i}")
    stall = rapidpro.stall_next_page()

    process = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "connections", "sync"],
        cwd=ROOT,
        env=dict(
            os.environ, DATABASE_URL=database_url, SECRET_KEY="test-sync-secret", ENGINE_ALLOWED_HOSTS="127.0.0.1"
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        reached = stall.reached.wait(timeout=60)
        output = "" if reached else process.communicate(timeout=5)[0]
        assert reached, f"the sync never asked for page 2: {output}"
        process.kill()  # kill -9 while it waits for page 2
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
        stall.release()

    db.session.expire_all()
    texts = db.session.execute(select(Message.text).order_by(Message.created_on)).scalars().all()
    assert texts == [f"m{i}" for i in range(7, 12)]  # page 1 (the newest five) was committed, with the cursor
    state = db.session.get(ConnectionSync, connection.id)
    assert state.resume_before is not None and state.after == connection.created_on
    rapidpro.receive(contact_uuid, "m12 (while the desk was down)")

    for _ in range(2):  # the restarted scheduler's next runs
        while not conversation.pull(connection.id, commit=db.session.commit).finished:
            pass

    texts = db.session.execute(select(Message.text).order_by(Message.created_on)).scalars().all()
    assert texts == [f"m{i}" for i in range(12)] + ["m12 (while the desk was down)"]
