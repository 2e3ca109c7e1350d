"""CLI commands and configuration."""

import pytest
from sqlalchemy import func, select

from app import create_app
from ticketer.config import Config, database_url_from_env
from ticketer.models import Contact, Message, Ticket, TicketEvent, User


def test_create_user_command(runner, db):
    result = runner.invoke(
        args=[
            "create-user",
            "Lead@Example.com",
            "--role",
            "supervisor",
            "--name",
            "Lee",
            "--password",
            "a-long-password",
        ]
    )
    assert result.exit_code == 0, result.output
    user = db.session.execute(select(User).where(User.email == "lead@example.com")).scalar_one()
    assert (user.role, user.name, user.check_password("a-long-password")) == ("supervisor", "Lee", True)
    again = runner.invoke(args=["create-user", "lead@example.com", "--password", "a-long-password"])
    assert again.exit_code != 0 and "already a member" in again.output
    short = runner.invoke(args=["create-user", "x@example.com", "--password", "short"])
    assert short.exit_code != 0 and "at least 10 characters" in short.output


def test_seed_demo_fills_an_empty_database_once(runner, db):
    result = runner.invoke(args=["seed-demo", "--if-empty"])
    assert result.exit_code == 0, result.output
    assert "admin@example.com" in result.output

    def count(model):
        return db.session.scalar(select(func.count()).select_from(model))

    assert count(Ticket) == 200 and count(Contact) == 40
    assert {u.role for u in db.session.execute(select(User)).scalars()} >= {"admin", "supervisor", "agent", "viewer"}
    statuses = set(db.session.execute(select(Ticket.status).distinct()).scalars())
    assert statuses == {"open", "closed"}
    assert count(Message) > 200 and count(TicketEvent) > 200
    assert all(contact.fields.get("city") for contact in db.session.execute(select(Contact)).scalars())
    again = runner.invoke(args=["seed-demo", "--if-empty"])
    assert "skipped" in again.output and count(Ticket) == 200


def test_missing_secret_key_refuses_to_start(monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    with pytest.raises(RuntimeError, match="SECRET_KEY is not set"):
        create_app(Config())


def test_debug_run_without_secret_key_gets_a_random_one(monkeypatch, tmp_path):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("FLASK_DEBUG", "1")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    app = create_app(Config())
    assert len(app.config["SECRET_KEY"]) == 64


def test_database_url_defaults_to_sqlite_and_uses_psycopg_for_postgres():
    assert database_url_from_env(None).startswith("sqlite:///")
    assert database_url_from_env("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert database_url_from_env("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"


def test_https_public_url_makes_cookies_secure(monkeypatch):
    monkeypatch.setenv("PUBLIC_URL", "https://desk.example.com/")
    config = Config()
    assert config.SESSION_COOKIE_SECURE and config.REMEMBER_COOKIE_SECURE
    assert config.PUBLIC_URL == "https://desk.example.com"
    assert config.SESSION_COOKIE_HTTPONLY and config.SESSION_COOKIE_SAMESITE == "Lax"
