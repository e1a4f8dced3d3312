"""Service errors (plain-words reasons a change was refused) and the HTTP error pages."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from core.db import db


class ServiceError(Exception):
    """A business rule refused the change. `field` names the form field it belongs beside."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


TITLES = {
    400: ("Bad request", "The request could not be understood. Reload the page and try again."),
    403: ("Not allowed", "Your account does not have permission to do this."),
    404: ("Page not found", "There is nothing at this address. Check the link, or go back."),
    405: ("Not allowed", "This page does not accept that kind of request."),
    413: ("Too large", "The upload is larger than allowed."),
    422: ("That was not done", "The change was refused."),
    429: ("Too many attempts", "You tried this too many times. Wait a minute, then try again."),
    500: ("Something went wrong", "An unexpected error happened on our side. Please try again."),
}


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def register_error_handlers(app) -> None:
    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        title, message = TITLES.get(exc.code, (exc.name, exc.description))
        if exc.code == 400 and "CSRF" in (exc.description or ""):
            message = "This form has expired or was sent from elsewhere. Reload the page and send it again."
        if _wants_json():
            return jsonify(error={"code": exc.code, "title": title, "message": message}), exc.code
        headers = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
        return render_template("errors/error.html", code=exc.code, title=title, message=message), exc.code, headers

    @app.errorhandler(ServiceError)
    def _refused(exc: ServiceError):
        """A business rule said no outside a `service_call` block: nothing of the request is
        kept, and the person reads the rule's own words, not "something went wrong"."""
        db.session.rollback()
        title = TITLES[422][0]
        if _wants_json():
            return jsonify(error={"code": 422, "title": title, "message": exc.message}), 422
        return render_template("errors/error.html", code=422, title=title, message=exc.message,
                               back=_same_site_referrer()), 422


def _same_site_referrer() -> str | None:
    """The page the person came from, when it is a page of this same host."""
    parts = urlsplit(request.referrer or "")
    if parts.netloc != request.host or parts.scheme not in ("http", "https"):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")
