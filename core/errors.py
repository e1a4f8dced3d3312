"""Service errors (plain-words reasons a change was refused) and the HTTP error pages."""
from __future__ import annotations

from flask import jsonify, render_template, request
from werkzeug.exceptions import HTTPException


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
