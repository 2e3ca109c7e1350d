"""Configuration, read from environment variables only (each one is listed in the README)."""

import os
import tempfile
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def database_url_from_env(value: str | None) -> str:
    """Normalise DATABASE_URL: default to the embedded SQLite file; use psycopg 3 for PostgreSQL."""
    if not value:
        return f"sqlite:///{BASE_DIR / 'instance' / 'ticketer.db'}"
    for prefix in ("postgres://", "postgresql://"):
        if value.startswith(prefix):
            return "postgresql+psycopg://" + value[len(prefix) :]
    return value


def _bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in ("1", "true", "yes", "on")


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


class Config:
    """Settings for a real run, read from the environment when instantiated."""

    def __init__(self) -> None:
        env = os.environ
        self.DEBUG = _bool("FLASK_DEBUG")
        self.SECRET_KEY = env.get("SECRET_KEY")
        self.SQLALCHEMY_DATABASE_URI = database_url_from_env(env.get("DATABASE_URL"))
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
        self.PUBLIC_URL = env.get("PUBLIC_URL", "http://127.0.0.1:5000").rstrip("/")
        self.TICKETS_PER_PAGE = _int("TICKETS_PER_PAGE", 50)
        # Dispatcher of flow starts and outgoing messages (`flask --app app scheduler`).
        self.DISPATCH_INTERVAL_SECONDS = float(env.get("DISPATCH_INTERVAL_SECONDS") or 1)
        # Supervisor jobs (hand out the auto-assignment backlog, mark SLA breaches): every N seconds.
        self.SUPERVISION_INTERVAL_SECONDS = float(env.get("SUPERVISION_INTERVAL_SECONDS") or 60)
        self.DISPATCH_BATCH_SIZE = _int("DISPATCH_BATCH_SIZE", 50)
        self.DISPATCH_MAX_ATTEMPTS = _int("DISPATCH_MAX_ATTEMPTS", 12)
        self.DISPATCH_RECLAIM_AFTER_SECONDS = _int("DISPATCH_RECLAIM_AFTER_SECONDS", 300)
        # The deadline of each whole exchange with an engine (connect, send, answer).
        self.DISPATCH_HTTP_TIMEOUT_SECONDS = float(env.get("DISPATCH_HTTP_TIMEOUT_SECONDS") or 20)
        # How often the scheduler pulls new messages from each workspace connection (RapidPro API v2).
        self.RAPIDPRO_SYNC_SECONDS = float(env.get("RAPIDPRO_SYNC_SECONDS") or 5)
        # Sends in flight at once, and at once to one flow's engine (a slow engine holds only its share).
        self.DISPATCH_CONCURRENCY = _int("DISPATCH_CONCURRENCY", 8)
        self.DISPATCH_CONCURRENCY_PER_ENGINE = _int("DISPATCH_CONCURRENCY_PER_ENGINE", 4)
        # Hosts that engines (and every outbound request) may reach on loopback, link-local or private
        # addresses: names, addresses or networks, comma- or space-separated. Public addresses always.
        self.ENGINE_ALLOWED_HOSTS = env.get("ENGINE_ALLOWED_HOSTS", "")
        self.MAX_CONTENT_LENGTH = 1024 * 1024
        self.WTF_CSRF_TIME_LIMIT = None
        secure = self.PUBLIC_URL.startswith("https://")
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.SESSION_COOKIE_SECURE = secure
        self.REMEMBER_COOKIE_HTTPONLY = True
        self.REMEMBER_COOKIE_SAMESITE = "Lax"
        self.REMEMBER_COOKIE_SECURE = secure
        # Mail: with no MAIL_SERVER, mail is printed to the console instead of sent.
        self.MAIL_SERVER = env.get("MAIL_SERVER", "")
        self.MAIL_PORT = _int("MAIL_PORT", 25)
        self.MAIL_USERNAME = env.get("MAIL_USERNAME", "")
        self.MAIL_PASSWORD = env.get("MAIL_PASSWORD", "")
        self.MAIL_USE_TLS = _bool("MAIL_USE_TLS")
        self.MAIL_FROM = env.get("MAIL_FROM", "Ticketer <ticketer@localhost>")
        self.INVITATION_TTL_DAYS = _int("INVITATION_TTL_DAYS", 7)
        # IANA zone name (e.g. America/Guayaquil): which local day a ticket counts on in reports.
        self.WORKSPACE_TIMEZONE = env.get("WORKSPACE_TIMEZONE", "") or "UTC"
        # Sign-in limits: failed attempts per account and per address within the window, then "try later".
        self.SIGNIN_MAX_FAILURES = _int("SIGNIN_MAX_FAILURES", 10)
        self.SIGNIN_MAX_FAILURES_PER_ADDRESS = _int("SIGNIN_MAX_FAILURES_PER_ADDRESS", 30)
        self.SIGNIN_WINDOW_MINUTES = _int("SIGNIN_WINDOW_MINUTES", 15)
        # Attachments (ticketer/services/media.py): where they live, how large, from where.
        self.MEDIA_ROOT = env.get("MEDIA_ROOT") or str(BASE_DIR / "instance" / "media")
        self.MEDIA_MAX_BYTES = _int("MEDIA_MAX_BYTES", 10 * 1024 * 1024)
        self.MEDIA_ALLOW_HTTP = _bool("MEDIA_ALLOW_HTTP")
        self.MEDIA_DOWNLOAD_SECONDS = float(env.get("MEDIA_DOWNLOAD_SECONDS") or 30)
        self.MEDIA_MAX_ATTEMPTS = _int("MEDIA_MAX_ATTEMPTS", 8)
        self.MEDIA_S3_BUCKET = env.get("MEDIA_S3_BUCKET", "")
        self.MEDIA_S3_ENDPOINT_URL = env.get("MEDIA_S3_ENDPOINT_URL", "")
        self.MEDIA_S3_REGION = env.get("MEDIA_S3_REGION", "")
        self.MEDIA_S3_ACCESS_KEY_ID = env.get("MEDIA_S3_ACCESS_KEY_ID", "")
        self.MEDIA_S3_SECRET_ACCESS_KEY = env.get("MEDIA_S3_SECRET_ACCESS_KEY", "")
        self.MEDIA_S3_PREFIX = env.get("MEDIA_S3_PREFIX", "")


class TestConfig(Config):
    """Settings for the test suite: the database URL comes from the test fixtures."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(self, database_url: str, **overrides) -> None:
        super().__init__()
        self.TESTING = True
        self.DEBUG = False
        self.SECRET_KEY = "test-secret-key"
        self.SQLALCHEMY_DATABASE_URI = database_url
        self.WTF_CSRF_ENABLED = False
        self.PUBLIC_URL = "http://127.0.0.1:5000"
        self.SESSION_COOKIE_SECURE = False
        self.REMEMBER_COOKIE_SECURE = False
        self.MAIL_SERVER = ""
        self.MEDIA_S3_BUCKET = ""
        self.MEDIA_ROOT = tempfile.mkdtemp(prefix="ticketer-media-")  # never the real instance/media
        # The test suite's engines are real servers on 127.0.0.1.
        self.ENGINE_ALLOWED_HOSTS = "127.0.0.1, localhost"
        for key, value in overrides.items():
            setattr(self, key, value)
