"""The tenant's public face and client portal, on the tenant's host.

For everyone building portal pages (the API, in one paragraph): protect a view with
`portal.auth.portal_login_required` and get its signed-in account with
`portal.auth.current_account()` (a PortalAccount with `.contact` loaded, or None; it costs one
query per request, whoever asks, and is None as soon as `portal.accounts.may_sign_in` stops
holding). Extend `templates/portal/_layout.html` (blocks `title` and `content`; the tenant's
name, colour and logo come with it) and use `_macros.html`. Add a link to the navigation with
`portal.navigation.nav_item(label, endpoint, order, visible=lambda account: ...)` and a panel
to the home page with `@portal.home.home_panel(name, order)` on `provider(account) -> dict |
None`, rendered by `templates/portal/panels/<name>.html`. Put your routes in a module of this
package listed in VIEW_MODULES, on `bp`, under `/portal/...` (the portal cookie's path). Record
what a contact does with `actor=current_account()`: the same browser may also hold a staff
session, which `record()` would otherwise name. Staff sessions never count here and portal
sessions never count on /staff. In tests: the `portal_client(role)` fixture (signed in through
the real page), tests.support.login_portal, tests.factories.make_portal_login.

Modules: portal.models (PortalAccount, PortalSession), portal.accounts (registration, links,
approval, `may_sign_in`, staff actions on a login), portal.auth (sessions, cookie, passwords),
portal.views (the registrants' link pages), portal.signin, portal.home, portal.profile (with
portal.details, the contact's own details), portal.activities (events and shared tasks on the
home), portal.company (a primary contact's company), portal.payments (the places kept for billing).
"""
from importlib import import_module

from flask import Blueprint, Response, abort, g, render_template

from core.tenancy import require_tenant_host
from portal import accounts, demo, impersonation, models  # noqa: F401  (the table, audit actions, merge and impersonation hooks; the demo client)

bp = Blueprint("portal", __name__)

# Each module registers its routes on `bp` when imported.
VIEW_MODULES = ("views", "signin", "home", "profile", "activities", "company", "payments", "circles")


bp.before_request(require_tenant_host)


@bp.context_processor
def _portal_globals():
    from portal.auth import current_account
    from portal.navigation import nav_for

    return {"current_account": current_account, "portal_nav": lambda: nav_for(current_account())}


def tenant_home():
    """`/` on a tenant host (routed by the composition root)."""
    if g.get("tenant") is None:
        abort(404)
    return render_template("portal/tenant_home.html")


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
    from portal import auth

    for name in VIEW_MODULES:
        import_module(f"portal.{name}")
    auth.init_app(app)
    app.register_blueprint(bp)
