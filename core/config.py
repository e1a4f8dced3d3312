"""Configuration, read from environment variables only (README lists them)."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def _instance_secret_key(instance_path: Path) -> str:
    """Development convenience: a random key kept in instance/ so sessions survive restarts."""
    key_file = instance_path / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key


def load_config(instance_path: Path) -> dict:
    env = os.environ.get("PORTICO_ENV", "development")
    production = env == "production"
    secret_key = os.environ.get("SECRET_KEY")
    if not secret_key:
        if production:
            raise RuntimeError("SECRET_KEY must be set when PORTICO_ENV=production")
        secret_key = _instance_secret_key(instance_path)

    redis_url = os.environ.get("REDIS_URL") or None
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{instance_path / 'portico.sqlite'}"
    if database_url.startswith("postgres://"):
        database_url = "postgresql://" + database_url[len("postgres://"):]
    if database_url.startswith("postgresql://"):
        # psycopg 3 is the driver we ship.
        database_url = "postgresql+psycopg://" + database_url[len("postgresql://"):]

    return {
        "PORTICO_ENV": env,
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO").upper(),
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": database_url,
        # Connections idle for a while are pinged before use (core.db), not every checkout.
        "SQLALCHEMY_ENGINE_OPTIONS": {},
        "PLATFORM_DOMAIN": os.environ.get("PLATFORM_DOMAIN", "localhost:5000"),
        "PREFERRED_URL_SCHEME": "https" if production else "http",
        "REDIS_URL": redis_url,
        # Jobs: Redis when configured, otherwise a SQLite file beside the database.
        "JOBS_SQLITE_PATH": os.environ.get("JOBS_SQLITE_PATH", str(instance_path / "jobs.sqlite")),
        "JOBS_WORKERS": _int("JOBS_WORKERS", 2),
        # Mail: with no MAIL_SERVER, messages are written to the log (development).
        "MAIL_SERVER": os.environ.get("MAIL_SERVER") or None,
        "MAIL_PORT": _int("MAIL_PORT", 25),
        "MAIL_USERNAME": os.environ.get("MAIL_USERNAME") or None,
        "MAIL_PASSWORD": os.environ.get("MAIL_PASSWORD") or None,
        "MAIL_USE_TLS": _bool("MAIL_USE_TLS"),
        "MAIL_USE_SSL": _bool("MAIL_USE_SSL"),
        "MAIL_DEFAULT_SENDER": os.environ.get("MAIL_DEFAULT_SENDER", "Portico <no-reply@localhost>"),
        "MAIL_TIMEOUT": _int("MAIL_TIMEOUT", 10),
        # Rate limits (Flask-Limiter); Redis-backed when REDIS_URL is set.
        "RATELIMIT_STORAGE_URI": redis_url or "memory://",
        "RATELIMIT_HEADERS_ENABLED": True,
        "RATELIMIT_LOGIN": os.environ.get("RATELIMIT_LOGIN", "10 per minute; 50 per hour"),
        "RATELIMIT_LOGIN_PER_EMAIL": os.environ.get("RATELIMIT_LOGIN_PER_EMAIL", "20 per hour"),
        # Public kickoff forms: submissions per client address, and per form from everyone.
        "RATELIMIT_FORM_PER_IP": os.environ.get("RATELIMIT_FORM_PER_IP", "10 per minute; 60 per hour"),
        "RATELIMIT_FORM_PER_FORM": os.environ.get("RATELIMIT_FORM_PER_FORM", "300 per minute"),
        # How long a rendered kickoff form may stay open before it must be reloaded.
        "FORM_TOKEN_MAX_AGE": _int("FORM_TOKEN_MAX_AGE", 24 * 60 * 60),
        # Tokens
        "PASSWORD_RESET_MAX_AGE": _int("PASSWORD_RESET_MAX_AGE", 60 * 60),
        "INVITATION_MAX_AGE": _int("INVITATION_MAX_AGE", 7 * 24 * 60 * 60),
        # Portal logins: the confirm-your-e-mail and choose-your-password links.
        "PORTAL_VERIFY_MAX_AGE": _int("PORTAL_VERIFY_MAX_AGE", 7 * 24 * 60 * 60),
        "PORTAL_SET_PASSWORD_MAX_AGE": _int("PORTAL_SET_PASSWORD_MAX_AGE", 3 * 24 * 60 * 60),
        # A portal session without "keep me signed in" ends on the server after this long
        # (its cookie ends with the browser); with it, after REMEMBER_COOKIE_DAYS.
        "PORTAL_SESSION_MAX_AGE": _int("PORTAL_SESSION_MAX_AGE", 12 * 60 * 60),
        # Password hashing cost (argon2id); the defaults are argon2-cffi's RFC 9106 low-memory profile.
        "ARGON2_TIME_COST": _int("ARGON2_TIME_COST", 3),
        "ARGON2_MEMORY_COST": _int("ARGON2_MEMORY_COST", 65536),
        "ARGON2_PARALLELISM": _int("ARGON2_PARALLELISM", 4),
        "PASSWORD_MIN_LENGTH": _int("PASSWORD_MIN_LENGTH", 10),
        # Cookies
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_DURATION": _int("REMEMBER_COOKIE_DAYS", 30) * 24 * 60 * 60,
        "MAX_CONTENT_LENGTH": _int("MAX_CONTENT_LENGTH", 16 * 1024 * 1024),
        # A contact import's upload has its own, larger limit (staff/imports.py).
        "IMPORT_MAX_BYTES": _int("IMPORT_MAX_BYTES", 50 * 1024 * 1024),
        # Files staff upload for the portal (core.storage): local disk by default, an
        # S3-compatible bucket when S3_BUCKET is set. CIRCLE_FILE_MAX_BYTES caps what a
        # tenant's own limit (CRM settings) may allow.
        "FILE_STORAGE_PATH": os.environ.get("FILE_STORAGE_PATH", str(instance_path / "files")),
        "S3_BUCKET": os.environ.get("S3_BUCKET") or None,
        "S3_ENDPOINT_URL": os.environ.get("S3_ENDPOINT_URL") or None,
        "S3_REGION": os.environ.get("S3_REGION") or None,
        "S3_ACCESS_KEY_ID": os.environ.get("S3_ACCESS_KEY_ID") or None,
        "S3_SECRET_ACCESS_KEY": os.environ.get("S3_SECRET_ACCESS_KEY") or None,
        "S3_PREFIX": os.environ.get("S3_PREFIX", ""),
        "CIRCLE_FILE_MAX_BYTES": _int("CIRCLE_FILE_MAX_BYTES", 100 * 1024 * 1024),
        # Number of proxies in front of the app whose X-Forwarded-* headers are trusted.
        "PROXY_FIX_X_FOR": _int("PROXY_FIX_X_FOR", 0),
        # Payments (billing/): Stripe's API address (unset: Stripe itself), the platform-wide
        # default keys for a single-business install, the keys that encrypt tenants' Stripe
        # keys (comma-separated Fernet keys, the first encrypts, all decrypt: rotation), the
        # webhook signature's tolerance in seconds and the largest webhook body in bytes.
        "STRIPE_API_BASE": os.environ.get("STRIPE_API_BASE") or None,
        "STRIPE_SECRET_KEY": os.environ.get("STRIPE_SECRET_KEY") or None,
        "STRIPE_WEBHOOK_SECRET": os.environ.get("STRIPE_WEBHOOK_SECRET") or None,
        "BILLING_ENCRYPTION_KEYS": os.environ.get("BILLING_ENCRYPTION_KEYS") or None,
        "STRIPE_WEBHOOK_TOLERANCE": _int("STRIPE_WEBHOOK_TOLERANCE", 300),
        "BILLING_WEBHOOK_MAX_BYTES": _int("BILLING_WEBHOOK_MAX_BYTES", 256 * 1024),
        "WTF_CSRF_TIME_LIMIT": None,
        "FLASK_ADMIN_SWATCH": "cerulean",
    }
