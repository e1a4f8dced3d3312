"""Request-wide web behaviour: security headers and what every template can use."""
from __future__ import annotations

import secrets

from flask import current_app, g, request

from core.identity import current_principal, real_principal
from core.permissions import can

# Tenant pages load only their own assets. Flask-Admin's pages (/admin) have inline scripts,
# allowed by a per-request nonce.
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
       "script-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
       "frame-ancestors 'none'")
ADMIN_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
             "script-src 'self' 'nonce-{nonce}'; object-src 'none'; base-uri 'self'; "
             "form-action 'self'; frame-ancestors 'none'")


def csp_nonce() -> str:
    """One nonce per request, for the inline scripts of Flask-Admin's pages."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def init_app(app) -> None:
    @app.after_request
    def _security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        is_admin = (request.blueprint or "").startswith("admin") or request.path.startswith("/admin")
        policy = ADMIN_CSP.format(nonce=csp_nonce()) if is_admin else CSP
        response.headers.setdefault("Content-Security-Policy", policy)
        if app.config["SESSION_COOKIE_SECURE"]:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return response

    @app.context_processor
    def _template_globals():
        return {
            "tenant": g.get("tenant"),
            "principal": current_principal(),
            "real_principal": real_principal(),
            "can": lambda permission, obj=None: can(current_principal(), permission, obj),
            "has_endpoint": lambda endpoint: endpoint in current_app.view_functions,
        }


def apply_service_error(form, exc) -> None:
    """Show a ServiceError beside its field, or above the form when it names none."""
    field = getattr(form, exc.field, None) if exc.field else None
    if field is not None:
        field.errors = [*field.errors, exc.message]
    else:
        form.form_errors.append(exc.message)


def safe_next_url(target: str | None, default: str) -> str:
    """Only a path on this host: an attacker's link cannot send a user elsewhere after sign-in."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default
