"""Click commands on app.cli: create-user, seed-demo."""

import click
from flask import Flask
from flask.cli import AppGroup

from ticketer import scheduler
from ticketer.errors import TicketerError
from ticketer.extensions import db
from ticketer.roles import Role


def register(app: Flask) -> None:
    scheduler.register(app)  # `flask --app app scheduler`

    @app.cli.command("create-user")
    @click.argument("email")
    @click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.AGENT.value, show_default=True)
    @click.option("--name", default="", help="Display name.")
    @click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True, help="At least 10 characters.")
    def create_user_command(email: str, role: str, name: str, password: str) -> None:
        """Create an active user with a password."""
        from ticketer.services import users

        try:
            user = users.create_user(email, role=role, password=password, name=name)
            db.session.commit()
        except TicketerError as error:
            db.session.rollback()
            raise click.ClickException(error.message) from None
        click.echo(f"Created {user.email} ({user.role}).")

    @app.cli.command("seed-demo")
    @click.option("--contacts", default=40, show_default=True)
    @click.option("--tickets", default=200, show_default=True)
    @click.option("--if-empty", is_flag=True, help="Do nothing when the database already has users.")
    def seed_demo_command(contacts: int, tickets: int, if_empty: bool) -> None:
        """Fill the database with demo people, topics, contacts and tickets."""
        from ticketer import demo

        if if_empty and not demo.is_empty():
            click.echo("Database already has data; demo seeding skipped.")
        else:
            demo.seed(n_contacts=contacts, n_tickets=tickets)
            db.session.commit()
            click.echo(f"Seeded {contacts} contacts and {tickets} tickets.")
        click.echo(demo.sign_in_banner())

    # --- workspace connections (ticketer/services/connections.py, services/conversation.py) ---
    connections_group = AppGroup("connections", help="Chatbot workspaces Ticketer talks to.")
    app.cli.add_command(connections_group)

    @connections_group.command("add-rapidpro")
    @click.option("--name", required=True, help="What to call this workspace in Ticketer.")
    @click.option("--url", "base_url", required=True, help="The server, e.g. https://app.rapidpro.io")
    @click.option("--token", "api_token", required=True, help="The workspace's API token (never shown again).")
    @click.option("--silence-bot/--no-silence-bot", default=True, show_default=True)
    def add_rapidpro_command(name: str, base_url: str, api_token: str, silence_bot: bool) -> None:
        """Add a RapidPro-compatible workspace (RapidPro, TextIt ...)."""
        from ticketer.services import connections

        try:
            connection = connections.add_rapidpro(
                name=name, base_url=base_url, api_token=api_token, silence_bot=silence_bot
            )
            db.session.commit()
        except TicketerError as error:
            db.session.rollback()
            raise click.ClickException(error.message) from None
        click.echo(f"Added {connection.name} ({connection.base_url}). Test it: flask connections test {name!r}")

    @connections_group.command("list")
    def list_connections_command() -> None:
        """List the connections (tokens are never shown)."""
        from ticketer.services import connections

        rows = connections.list_connections()
        if not rows:
            click.echo("No connections. Add one with: flask connections add-rapidpro --name ... --url ... --token ...")
        for connection in rows:
            state = connection.sync
            pulled = state.after.isoformat(timespec="seconds") if state else "never"
            problem = f"; last error: {state.last_error}" if state and state.last_error else ""
            silence = "on" if connection.silence_bot else "off"
            click.echo(
                f"{connection.name}\t{connection.kind}\t{connection.base_url}\ttoken: set\t"
                f"silence bot: {silence}\tpulled up to {pulled}{problem}"
            )

    @connections_group.command("remove")
    @click.argument("name")
    def remove_connection_command(name: str) -> None:
        """Remove a connection (its contacts and messages stay in Ticketer)."""
        from ticketer.services import connections

        try:
            connections.remove(connections.find(name).id)
            db.session.commit()
        except TicketerError as error:
            db.session.rollback()
            raise click.ClickException(error.message) from None
        click.echo(f"Removed {name}.")

    @connections_group.command("test")
    @click.argument("name")
    def test_connection_command(name: str) -> None:
        """Call the workspace endpoint: prints the workspace's name or the exact error."""
        from ticketer.services import connections

        try:
            workspace = connections.check_connection(connections.find(name).id)
        except TicketerError as error:
            raise click.ClickException(error.message) from None
        finally:
            db.session.rollback()
        click.echo(f"Connected: workspace {workspace!r}.")

    @connections_group.command("sync")
    @click.argument("name", required=False)
    def sync_connection_command(name: str | None) -> None:
        """Pull new messages now from one connection (or every one), until caught up."""
        from ticketer.services import connections, conversation

        try:
            ids = [connections.find(name).id] if name else [c.id for c in connections.list_connections()]
        except TicketerError as error:
            raise click.ClickException(error.message) from None
        for connection_id in ids:
            while True:
                report = conversation.pull(connection_id, commit=db.session.commit)
                if report.error or report.skipped or report.finished:
                    break
            outcome = report.error or ("throttled: try later" if report.skipped else "caught up")
            click.echo(f"connection {connection_id}: {report.stored} messages stored in the last pass; {outcome}")
