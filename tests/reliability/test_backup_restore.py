"""The README's backup and restore steps, run exactly as written (read from README.md),
on the database the suite runs on: every row is back as it was at backup time."""

import os
import re
import subprocess
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app import create_app
from tests.conftest import PASSWORD, on_postgres
from tests.factories import make_contact
from tests.security.evidence import changed_tables, snapshot
from ticketer import config as ticketer_config
from ticketer.extensions import db as _db
from ticketer.services import tickets as ticket_service
from ticketer.services import users as user_service

DOC = Path(__file__).resolve().parents[2] / "README.md"


def documented(step: str) -> str:
    """The shell block under `<!-- reliability-test: STEP -->` in README.md."""
    match = re.search(rf"<!-- reliability-test: {re.escape(step)} -->\s*```bash\n(.*?)```", DOC.read_text(), re.S)
    assert match, f"README.md has no `{step}` block"
    return match.group(1)


def run_step(step: str, cwd: Path, env: dict | None = None) -> str:
    result = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", documented(step)],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"{step} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def seed(app, label: str) -> None:
    """People, contacts with URNs and fields, tickets with events, notes and messages, open and closed."""
    with app.app_context():
        admin = user_service.create_user(f"admin-{label}@example.com", role="admin", password=PASSWORD, name="Ada")
        for i in range(12):
            contact = make_contact(f"Contact {label} {i}", fields={"city": "Quito", "n": str(i)})
            ticket, _ = ticket_service.open_ticket(
                contact_id=contact.id, topic_name=f"Topic {i % 3}", body=f"Help {i}", results={"q": {"value": i}}
            )
            ticket_service.receive_message(contact.id, f"Hola {i} ñ 😀")
            ticket_service.reply(ticket.id, f"Reply {i}", by=admin)
            ticket_service.add_note(ticket.id, f"Note {i}", by=admin)
            if i % 2:
                ticket_service.close(ticket.id, by=admin)
        _db.session.commit()


@pytest.fixture
def scratch(tmp_path, database_url):
    """(SQLAlchemy URL, environment for the documented steps) of a database of its own."""
    if not on_postgres():
        (tmp_path / "instance").mkdir()
        yield f"sqlite:///{tmp_path / 'instance' / 'ticketer.db'}", {}
        return
    server = make_url(database_url)
    name = f"ticketer_backup_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.set(database=name)
    plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
    yield url.render_as_string(hide_password=False), {"DATABASE_URL": plain}
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_documented_backup_and_restore(tmp_path, scratch):
    url, env = scratch
    kind = "postgresql" if env else "sqlite"
    app = create_app(ticketer_config.TestConfig(url))
    with app.app_context():
        _db.create_all()
    seed(app, "before")
    at_backup = snapshot(app)
    assert len(at_backup["tickets"]) == 12 and len(at_backup["messages"]) == 24

    # Backups are taken while Ticketer runs (the app's engine stays connected).
    if kind == "sqlite":
        assert run_step("sqlite-backup", tmp_path).strip().endswith("ok")
        assert run_step("sqlite-vacuum-into", tmp_path).strip().endswith("ok")
        assert len(list((tmp_path / "backups").glob("ticketer-*.db"))) == 2
    else:
        run_step("postgresql-backup", tmp_path, env)
        assert len(list((tmp_path / "backups").glob("ticketer-*.dump"))) == 1

    # Life goes on after the backup, then something goes wrong.
    seed(app, "after")
    with app.app_context():
        _db.session.execute(text("DELETE FROM ticket_events WHERE kind = 'note_added'"))
        _db.session.execute(text("UPDATE contacts SET name = 'damaged'"))
        _db.session.commit()
    assert set(changed_tables(at_backup, snapshot(app))) >= {"tickets", "messages", "ticket_events", "contacts"}

    # Stop Ticketer, restore, start it again.
    with app.app_context():
        _db.session.remove()
        _db.engine.dispose()
    run_step(f"{kind}-restore", tmp_path, env)
    restarted = create_app(ticketer_config.TestConfig(url))
    assert changed_tables(at_backup, snapshot(restarted)) == []
    with restarted.app_context():
        # The restored database works: the app writes to it again.
        contact = make_contact("After the restore")
        ticket_service.open_ticket(contact_id=contact.id, body="Still here")
        _db.session.commit()
        assert _db.session.execute(text("SELECT count(*) FROM tickets")).scalar() == 13
        _db.session.remove()
        _db.engine.dispose()
    with app.app_context():
        _db.engine.dispose()
