"""Request-wide web behaviour: security headers and what every template can use."""
from __future__ import annotations

from markupsafe import Markup

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from flask import abort, current_app, flash, g, request, send_file
from werkzeug.routing import IntegerConverter

from core import rich_text
from core.db import db
from core.errors import ServiceError
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


def set_csp(**directives: str) -> None:
    """Replace directives of this response's Content-Security-Policy, for the few pages that
    need another rule than every page's: `set_csp(frame_ancestors="https://a.example")` lets
    those origins frame it (underscores stand for the directive's hyphens)."""
    overrides = g.setdefault("csp_overrides", {})
    overrides.update({name.replace("_", "-"): value for name, value in directives.items()})


def _with_overrides(policy: str) -> str:
    overrides = g.get("csp_overrides")
    if not overrides:
        return policy
    parts = []
    for part in policy.split("; "):
        name = part.split(" ", 1)[0]
        parts.append(f"{name} {overrides[name]}" if name in overrides else part)
    return "; ".join(parts)


def csp_nonce() -> str:
    """One nonce per request, for the inline scripts of Flask-Admin's pages."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def init_app(app) -> None:
    @app.before_request
    def _refuse_nul_bytes():
        # No text we store may hold NUL (PostgreSQL refuses it): a clear 400, not a 500.
        for values in (request.args, request.form):
            for value in values.values():
                if "\x00" in value:
                    abort(400)

    @app.after_request
    def _security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        is_admin = (request.blueprint or "").startswith("admin") or request.path.startswith("/admin")
        policy = ADMIN_CSP.format(nonce=csp_nonce()) if is_admin else CSP
        response.headers.setdefault("Content-Security-Policy", _with_overrides(policy))
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

    app.jinja_env.filters["datetime"] = time_element
    app.jinja_env.filters["time_span"] = time_span
    app.jinja_env.filters["device"] = describe_device
    app.jinja_env.filters["rich_text"] = rich_text.render
    app.jinja_env.filters["file_size"] = file_size


# (what the User-Agent says, what people call it), the first match wins: Edge and Opera also
# say Chrome, Chrome also says Safari, and phones also name a desktop system.
_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"),
             ("Safari/", "Safari"))
_SYSTEMS = (("iPhone", "iPhone"), ("iPad", "iPad"), ("Android", "Android"), ("Windows", "Windows"),
            ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"), ("Linux", "Linux"))


def describe_device(user_agent: str | None) -> str:
    """A signed-in device as people name it ("Firefox on Windows"), from its User-Agent; the
    templates' `session.user_agent|device`."""
    agent = user_agent or ""
    browser = next((name for mark, name in _BROWSERS if mark in agent), None)
    system = next((name for mark, name in _SYSTEMS if mark in agent), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "An unknown browser"


def file_size(n: int | None) -> str:
    """1,234 bytes as "1.2 KB"; the templates' `|file_size`."""
    if n is None:
        return "—"
    for unit in ("bytes", "KB", "MB"):
        if n < 1024 or unit == "MB":
            return f"{n:,} bytes" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024


def time_element(value) -> Markup:
    """`<time>` of a stored (UTC) moment, or a dash: the templates' `moment|datetime`. A filter,
    not a macro or a global: a list page shows fifty of them, and Jinja calls a filter directly,
    where a global goes through the context's call machinery and a macro costs ten times more."""
    if not value:
        return Markup("—")
    # Both parts are digits and punctuation only: nothing to escape (Markup.format is slow).
    return Markup(f'<time datetime="{value.isoformat()}">{value.strftime("%Y-%m-%d %H:%M")} UTC</time>')


def time_span(start, end=None) -> Markup:
    """An event's span in UTC, the end shown by its time alone when on the same day ("Thu
    2026-12-10 18:00 – 20:00 UTC"): the templates' `starts_at|time_span(ends_at)`."""
    if not start:
        return Markup("—")
    # Digits, weekday names and punctuation only: nothing to escape.
    shown = f'<time datetime="{start.isoformat()}">{start.strftime("%a %Y-%m-%d %H:%M")}</time>'
    if end:
        end_format = "%H:%M" if end.date() == start.date() else "%a %Y-%m-%d %H:%M"
        shown += f' – <time datetime="{end.isoformat()}">{end.strftime(end_format)}</time>'
    return Markup(shown + " UTC")


def apply_service_error(form, exc) -> None:
    """Show a ServiceError beside its field, or above the form when it names none."""
    field = getattr(form, exc.field, None) if exc.field else None
    if field is not None:
        field.errors = [*field.errors, exc.message]
    else:
        form.form_errors.append(exc.message)


class ServiceOutcome:
    """What a `service_call` block came to: true once its work is committed; `error` is the
    ServiceError that refused it (None otherwise)."""

    def __init__(self) -> None:
        self.committed = False
        self.error: ServiceError | None = None

    def __bool__(self) -> bool:
        return self.committed


@contextmanager
def service_call(form=None, *, show_error: bool = True) -> Iterator[ServiceOutcome]:
    """Run a view's call into the services as one unit of work.

    A change a member asks for happens whole or not at all. A service may add or change rows
    before one of its rules says no (ServiceError); without a rollback the page that answers
    would show them, and a later commit in the same request would keep them. So the block
    commits only if it ends normally; a ServiceError rolls everything back and is shown where
    the member looks for it: beside its field of `form` (apply_service_error), or flashed
    when there is no form. Any other exception rolls back too and goes on up: it is a fault,
    not an answer. (The session's removal at teardown would roll back as well, but the error
    page is rendered before that, and a test holding the app context never gets there.)

        with service_call(form) as outcome:
            contact = create_contact(...)
        if outcome:  # committed
            flash(...)
            return redirect(...)

    `show_error=False` is for the views that answer a refusal in their own way (a
    confirmation page, JSON, other words): they read `outcome.error`, which is set either
    way. A ServiceError the view answers otherwise (NotAllowed as a 403) is caught inside
    the block.
    """
    outcome = ServiceOutcome()
    try:
        yield outcome
        db.session.commit()
    except ServiceError as exc:
        db.session.rollback()
        outcome.error = exc
        if show_error:
            if form is not None:
                apply_service_error(form, exc)
            else:
                flash(exc.message, "error")
    except BaseException:
        db.session.rollback()
        raise
    else:
        outcome.committed = True


def send_stored_file(stream, *, name: str, content_type: str, size: int | None, inline: bool):
    """A stored upload as a download: its own type (told by its content when it was stored),
    an attachment unless `inline`, never sniffed by the browser, never kept by a shared cache."""
    response = send_file(stream, mimetype=content_type, as_attachment=not inline, download_name=name,
                         conditional=False, max_age=0)
    if size is not None:
        response.content_length = size
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.cache_control.private = True
    response.cache_control.no_store = True
    return response


def safe_next_url(target: str | None, default: str) -> str:
    """Only a path on this host: an attacker's link cannot send a user elsewhere after sign-in.
    Browsers drop tabs and newlines from URLs ("/\t/evil" becomes "//evil"), so any white
    space or control character disqualifies the target."""
    if not target or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in target) or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target


MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL


class BoundedIntConverter(IntegerConverter):
    """`<int:…>` in URLs: a number too large to be an id is a 404, not a database error."""

    def __init__(self, url_map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ID)
        super().__init__(url_map, *args, **kwargs)


def int_arg(name: str) -> int | None:
    """A query-string id, or None when missing or out of range."""
    value = request.args.get(name, type=int)
    return value if value is not None and 0 < value <= MAX_ID else None
