"""Flask extensions that are not the database (core.db) or the login manager (core.identity)."""
import ipaddress
from functools import cached_property

import click
from flask import g, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect


class _MigrateConfig:
    """What Flask-Migrate keeps in app.extensions["migrate"] (its commands and migrations/env.py
    read it), with its Migrate made the first time a migration asks for it."""

    def __init__(self, db, directory: str, configure_args: dict):
        self.db, self.directory, self.configure_args = db, directory, configure_args

    @property
    def metadata(self):
        return self.db.metadata

    @cached_property
    def migrate(self):
        from flask_migrate import Migrate

        return Migrate(db=self.db, directory=self.directory, **self.configure_args)


class LazyMigrate:
    """Flask-Migrate set up as its Migrate.init_app does, without importing it: it imports
    Alembic, Mako and Pygments (~12 MB in every web worker, which never migrates). `flask db …`
    loads it when run; flask_migrate's functions (upgrade(), …) find their configuration as usual."""

    def __init__(self, **configure_args):
        self.configure_args = configure_args

    def init_app(self, app, db, directory: str) -> None:
        app.extensions["migrate"] = _MigrateConfig(db, directory, self.configure_args)
        app.cli.add_command(_db_command)


class _DbGroup(click.Group):
    """`flask db`, which is Flask-Migrate's own group once it is run."""

    def make_context(self, info_name, args, parent=None, **extra):
        from flask_migrate.cli import db

        return db.make_context(info_name, args, parent=parent, **extra)


_db_command = _DbGroup("db", help="Perform database migrations.")


migrate = LazyMigrate(compare_type=True, render_as_batch=True)
csrf = CSRFProtect()


def client_network(address: str | None) -> str:
    """Whom a rate limit counts: an IPv4 address as it is, an IPv6 address by its /64 network
    (one subscriber or host is handed a whole /64, and could take a fresh address for every
    request); an IPv4-mapped IPv6 address as its IPv4 address. Anything else as given."""
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return address or ""
    if ip.version == 6:
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _client_key() -> str:
    # Limits are per client address (an IPv6 client's /64) and per tenant (not per Host header,
    # which a client can vary with ports and spellings), so one tenant's abuse does not lock
    # another's users out.
    tenant = g.get("tenant")
    return f"{client_network(get_remote_address())}|{tenant.id if tenant else 'platform'}"


limiter = Limiter(key_func=_client_key, default_limits=[], strategy="moving-window")


def login_email_key() -> str:
    """A second limit on sign-in, per target account, against distributed guessing."""
    from core.identity import normalize_email

    tenant = g.get("tenant")
    raw = request.form.get("email") or ""
    try:
        email = normalize_email(raw)  # the same account, however its address is spelled
    except ValueError:
        email = raw.strip().lower()
    return f"login-email|{tenant.id if tenant else 'platform'}|{email}"
