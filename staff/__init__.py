"""The staff area (/staff on a tenant host): sign-in, dashboard, team, audit log, settings."""
from flask import Blueprint, abort, g

bp = Blueprint("staff", __name__, url_prefix="/staff")


@bp.before_request
def _tenant_hosts_only():
    if g.get("tenant") is None:
        abort(404)


def init_app(app) -> None:
    from staff import views  # noqa: F401  (registers the routes)

    app.register_blueprint(bp)
