"""The composition root: create_app() wires core and every blueprint together.

`app` is built on first use, so `gunicorn wsgi:app` and `flask --app wsgi` get it while tests
import create_app without building a second app from the environment.
"""
from __future__ import annotations

from pathlib import Path

from flask import Flask, g
from werkzeug.middleware.proxy_fix import ProxyFix

from core import cli, jobs, tenancy, web
from core.config import ROOT, load_config
from core.db import db
from core.errors import register_error_handlers
from core.extensions import csrf, limiter, migrate
from core.identity import login_manager


def create_app(overrides: dict | None = None) -> Flask:
    app = Flask(__name__, instance_path=str(ROOT / "instance"), instance_relative_config=False,
                template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static"))
    app.config.update(load_config(Path(app.instance_path)))
    if overrides:
        app.config.update(overrides)
    if app.config["PROXY_FIX_X_FOR"]:
        hops = app.config["PROXY_FIX_X_FOR"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    app.jinja_env.add_extension("jinja2.ext.do")
    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    tenancy.init_app(app)  # first before_request: everything after it knows the tenant
    jobs.init_app(app)
    web.init_app(app)
    register_error_handlers(app)
    cli.init_app(app)

    import admin
    import portal
    import staff

    staff.init_app(app)
    portal.init_app(app)
    admin.init_app(app)

    @app.get("/")
    def root():
        """One address, two sites: the platform landing page, or the tenant's home."""
        if g.get("tenant") is None:
            return admin.platform_landing()
        return portal.tenant_home()

    return app


def __getattr__(name: str):
    if name == "app":
        globals()["app"] = application = create_app()
        return application
    raise AttributeError(name)
