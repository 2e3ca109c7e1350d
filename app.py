"""Ticketer's application factory: create_app(config) -> Flask."""

import secrets
from pathlib import Path

from flask import Flask, g, redirect, render_template, request, url_for
from sqlalchemy.exc import OperationalError

from ticketer import database
from ticketer.config import Config
from ticketer.extensions import csrf, db, login_manager, migrate
from ticketer.security_headers import init_security_headers
from ticketer.url_converters import init_url_converters

BASE_DIR = Path(__file__).resolve().parent


def create_app(config: object | None = None) -> Flask:
    app = Flask(__name__, instance_path=str(BASE_DIR / "instance"))
    init_url_converters(app)  # before any route exists
    app.config.from_object(config if config is not None else Config())
    if not app.config.get("SECRET_KEY"):
        if not app.debug:
            raise RuntimeError(
                "SECRET_KEY is not set. Set the SECRET_KEY environment variable to a long random "
                "string (e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)."
            )
        app.logger.warning("SECRET_KEY is not set; using a random one for this debug run.")
        app.config["SECRET_KEY"] = secrets.token_hex(32)
    Path(app.instance_path).mkdir(exist_ok=True)

    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # A file database never drops the connection: no "SELECT 1" before every checkout.
        options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
        options["pool_pre_ping"] = False
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    db.init_app(app)
    with app.app_context():
        for engine in db.engines.values():
            database.set_up_engine(engine)
    migrate.init_app(app, db, directory=str(BASE_DIR / "migrations"), render_as_batch=True, compare_type=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    init_security_headers(app)

    from admin_views import init_admin
    from admin_views.auth import bp as auth_bp
    from ticketer import cli
    from ticketer.api import init_api

    app.register_blueprint(auth_bp)
    init_admin(app)
    cli.register(app)
    init_api(app)

    @app.before_request
    def _reads_do_not_lock():
        if request.method in ("GET", "HEAD", "OPTIONS"):
            g.read_only_token = database.begin_read_only()

    @app.teardown_request
    def _end_read_only(exc):
        token = g.pop("read_only_token", None)
        if token is not None:
            database.end_read_only(token)

    @app.errorhandler(OperationalError)
    def _storage_full(error):
        if not database.is_storage_full(error, database.sqlite_path(db.engine)):
            raise error  # any other database failure: Flask's own 500
        db.session.rollback()
        app.logger.error("Write refused: the database's disk is full (%s)", error.orig)
        retry_after = {"Retry-After": str(database.STORAGE_FULL_RETRY_AFTER_SECONDS)}
        return render_template("errors/storage_full.html"), 503, retry_after

    @app.get("/")
    def root():
        return redirect(url_for("admin.index"))

    return app
