"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

import os
import uuid
import warnings

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import Column, create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SAWarning

from app import create_app
from ticketer.config import TestConfig, database_url_from_env
from ticketer.extensions import db


@pytest.fixture
def empty_database_url(tmp_path):
    server = os.environ.get("TEST_DATABASE_URL", "")
    if not server.startswith("postgres"):
        yield f"sqlite:///{tmp_path / 'migrated.db'}"
        return
    server_url = make_url(database_url_from_env(server))
    name = f"ticketer_migrate_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield server_url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


# The catalogue, not the inspector: SQLAlchemy can't reflect expression indexes on SQLite.
INDEX_NAMES = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'index'",
    "postgresql": "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()",
}


def expression_indexes(dialect: str) -> set[str]:
    """Indexes on expressions (autogenerate can't compare them), that this dialect gets."""
    names = set()
    for table in db.metadata.sorted_tables:
        for index in table.indexes:
            ddl_if = index._ddl_if
            if ddl_if is not None and ddl_if.dialect not in (None, dialect):
                continue
            if any(not isinstance(expression, Column) for expression in index.expressions):
                names.add(index.name)
    return names


def test_upgrade_matches_the_models_and_downgrade_empties(empty_database_url):
    app = create_app(TestConfig(empty_database_url))
    with app.app_context():
        upgrade()
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            with warnings.catch_warnings():
                # expression indexes are checked by name below
                warnings.filterwarnings("ignore", "Skipped unsupported reflection", SAWarning)
                warnings.filterwarnings("ignore", "autogenerate skipping", UserWarning)
                differences = compare_metadata(context, db.metadata)
            indexes = set(connection.execute(text(INDEX_NAMES[connection.dialect.name])).scalars())
            wanted = expression_indexes(connection.dialect.name)
        # PostgreSQL reflects expression indexes; their text differs from the models' only in form
        differences = [d for d in differences if not (d[0].endswith("_index") and d[1].name in wanted)]
        assert differences == []
        assert {"uq_topics_name_lower", "ix_contacts_name_lower"} <= wanted
        assert wanted <= indexes
        downgrade(revision="base")
        with db.engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) <= {"alembic_version"}
        db.engine.dispose()
