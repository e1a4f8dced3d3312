"""The platform host: a landing page, super-admin sign-in, and the Flask-Admin operator
console at /admin. Nothing here answers on a tenant host."""
from __future__ import annotations

from contextlib import ExitStack

from flask import Blueprint, abort, g, render_template, request

from core.db import db
from core.identity import PlatformAdmin, current_principal
from core.tenancy import cross_tenant

bp = Blueprint("platform", __name__)

CONSOLE_OPEN_ENDPOINTS = {"platform.login", "platform.logout"}


@bp.before_request
def _platform_host_only():
    if g.get("tenant") is not None:
        abort(404)


def platform_landing():
    """`/` on the platform host (routed by the composition root)."""
    return render_template("platform/landing.html")


def _console_request() -> bool:
    return request.path == "/admin" or request.path.startswith("/admin/")


def init_app(app) -> None:
    from admin import console, views  # noqa: F401  (registers the routes)

    app.register_blueprint(bp)
    console.init_console(app)

    @app.before_request
    def _console_guard():
        """The console is for super admins on the platform host; to everyone else it does
        not exist. A super admin's console request crosses tenants, and is audited as such."""
        if not _console_request() or request.endpoint in CONSOLE_OPEN_ENDPOINTS:
            return None
        if g.get("tenant") is not None:
            abort(404)
        if (request.endpoint or "").endswith(".static"):
            return None
        admin = current_principal()
        if not isinstance(admin, PlatformAdmin):
            return None  # the console's views send the visitor to sign in
        stack = ExitStack()
        stack.enter_context(cross_tenant(f"operator console: {request.method} {request.path}", actor=admin))
        db.session.commit()
        g._console_crossing = stack
        return None

    @app.teardown_request
    def _console_done(exc):
        stack = g.pop("_console_crossing", None)
        if stack is not None:
            stack.close()
