"""The composition root: create_app() wires core and every blueprint together.

`app` is built on first use, so `gunicorn wsgi:app` and `flask --app wsgi` get it while tests
import create_app without building a second app from the environment.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from flask import Flask, g
from werkzeug.middleware.proxy_fix import ProxyFix

import sqlalchemy as sa

from core import audit, cli, impersonation, jobs, rls, statistics, tenancy, tenant_cache, web
from core.config import ROOT, load_config
from core.db import db, make_sqlite_folder
from core.errors import register_error_handlers
from core.extensions import csrf, limiter, migrate
from core.identity import login_manager


def create_app(overrides: dict | None = None) -> Flask:
    app = Flask(__name__, instance_path=str(ROOT / "instance"), instance_relative_config=False,
                template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static"))
    app.config.update(load_config(Path(app.instance_path)))
    if overrides:
        app.config.update(overrides)
    # Our own log lines (jobs, e-mails in development) at LOG_LEVEL, unless the host process
    # (gunicorn, pytest) has configured logging already.
    logging.basicConfig(level=app.config["LOG_LEVEL"], format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app.logger.setLevel(app.config["LOG_LEVEL"])
    if app.config["PROXY_FIX_X_FOR"]:
        hops = app.config["PROXY_FIX_X_FOR"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    app.jinja_env.add_extension("jinja2.ext.do")
    app.url_map.converters["int"] = web.BoundedIntConverter  # before any route is added
    make_sqlite_folder(app.config["SQLALCHEMY_DATABASE_URI"])
    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    tenancy.init_app(app)  # first before_request: everything after it knows the tenant
    tenant_cache.init_app(app)  # notes each request's tenant configuration version
    audit.init_app(app)  # records every crossing of tenants
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    jobs.init_app(app)
    web.init_app(app)
    impersonation.init_app(app)
    register_error_handlers(app)
    cli.init_app(app)

    import admin
    import billing
    import core.operations  # noqa: F401  (background operations' tables)
    import crm  # noqa: F401  (models and tenant set-up)
    import forms
    import portal
    import staff

    from billing.cli import billing_cli
    from crm.cli import contacts_cli
    from forms.cli import forms_cli

    app.cli.add_command(contacts_cli)
    app.cli.add_command(forms_cli)
    app.cli.add_command(billing_cli)
    staff.init_app(app)
    portal.init_app(app)
    forms.init_app(app)
    billing.init_app(app)
    admin.init_app(app)

    _warn_about_the_database(app)

    @app.get("/")
    def root():
        """One address, two sites: the platform landing page, or the tenant's home."""
        if g.get("tenant") is None:
            return admin.platform_landing()
        return portal.tenant_home()

    return app


def _warn_about_the_database(app: Flask) -> None:
    """Row-level security does not bind a superuser or BYPASSRLS role: say so loudly. With
    autovacuum off, only our own ANALYZE runs (core.statistics) keep the planner informed."""
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        return
    try:
        with app.app_context(), db.engine.connect() as connection:
            bypasses = rls.connection_bypasses_rls(connection)
            no_autovacuum = statistics.autovacuum_is_off(connection)
    except sa.exc.OperationalError:
        return  # the database is not up yet; nothing to say about it
    if no_autovacuum:
        app.logger.warning("PostgreSQL runs with autovacuum off: nothing refreshes the planner's statistics or "
                           "reclaims deleted rows except the app's own ANALYZE after bulk jobs. Turn it on "
                           "(autovacuum = on in postgresql.conf).")
    if bypasses:
        message = ("The database role bypasses row-level security (superuser or BYPASSRLS): the third "
                   "wall between tenants is down. Connect the app as an ordinary role (see README).")
        if app.config["PORTICO_ENV"] == "production" and not os.environ.get("PORTICO_ALLOW_RLS_BYPASS"):
            raise RuntimeError(message + " Set PORTICO_ALLOW_RLS_BYPASS=1 to start anyway.")
        app.logger.warning(message)


def __getattr__(name: str):
    if name == "app":
        globals()["app"] = application = create_app()
        return application
    raise AttributeError(name)
