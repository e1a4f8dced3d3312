"""The tenant's public face and client portal. Today: the tenant home page and its logo, and
the pages registrants use to confirm their e-mail and choose a password (portal.views); the
portal sign-in for prospects and clients comes with the portal issue. Portal logins
themselves: portal.models, portal.accounts."""
from flask import Blueprint, Response, abort, g, render_template

from core.tenancy import require_tenant_host
from portal import accounts, models  # noqa: F401  (the table, audit actions and merge hook)

bp = Blueprint("portal", __name__)


bp.before_request(require_tenant_host)


def tenant_home():
    """`/` on a tenant host (routed by the composition root)."""
    if g.get("tenant") is None:
        abort(404)
    return render_template("portal/home.html")


@bp.get("/branding/logo")
def logo():
    tenant = g.tenant
    if not tenant.logo_mimetype:
        abort(404)
    response = Response(tenant.logo, mimetype=tenant.logo_mimetype)
    response.cache_control.public = True
    response.cache_control.max_age = 86400  # the URL carries ?v=<logo_version>
    return response


def init_app(app) -> None:
    import portal.views  # noqa: F401  (registers its routes on bp)

    app.register_blueprint(bp)
