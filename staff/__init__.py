"""The staff area (/staff on a tenant host): sign-in, dashboard, team, audit log, settings,
and the CRM's pages, one module per area."""
from importlib import import_module

from flask import Blueprint, url_for

from core.tenancy import require_tenant_host

bp = Blueprint("staff", __name__, url_prefix="/staff")

# Each module registers its routes on `bp` when imported.
VIEW_MODULES = ("views", "roles", "contacts", "companies", "circles", "circle_items", "tags", "tasks", "events", "crm_settings",
                "duplicates", "segments", "bulk", "operations", "portal_accounts", "imports",
                "impersonation", "nav")


bp.before_request(require_tenant_host)


def contact_page_url(contact_id: int) -> str:
    """The contact's staff page, where the forms about one contact send people back to."""
    return url_for("staff.contact", contact_id=contact_id)


def init_app(app) -> None:
    for name in VIEW_MODULES:
        try:
            import_module(f"staff.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"staff.{name}":
                raise
    app.register_blueprint(bp)
