"""Click commands on app.cli: create-user, seed-demo."""

import click
from flask import Flask

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
