"""The staff navigation: which areas a member sees, worked out once per set of permissions and
page, not link by link on every page (sixteen macro calls, each asking has_endpoint, can and
url_for, cost a page more than its own content does)."""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, request, url_for

from core.identity import StaffUser, current_principal
from core.permissions import PERMISSIONS, permissions_of
from staff import bp


@dataclass(frozen=True)
class NavLink:
    endpoint: str
    label: str
    permissions: tuple[str, ...] = ()  # any of them shows the link; none: everyone
    exact: bool = False  # current only on the area's own page, not on pages under it
    badge_label: str = ""  # the approvals badge's words, after its figure (the template counts)


MAIN = (
    NavLink("staff.dashboard", "Dashboard", exact=True),
    NavLink("staff.contacts", "Contacts", ("contacts.view",)),
    NavLink("staff.imports", "Import", ("contacts.import",)),
    NavLink("staff.companies", "Companies", ("contacts.view",)),
    NavLink("staff.circles", "Circles", ("contacts.view",)),
    NavLink("staff.tags", "Tags", ("contacts.view",)),
    NavLink("staff.tasks", "Tasks", ("contacts.view",)),
    NavLink("staff.events", "Events", ("contacts.view",)),
    NavLink("forms_builder.forms", "Forms", ("forms.manage", "forms.submissions.view")),
    NavLink("billing.payments", "Payments", ("payments.view",)),
    NavLink("staff.portal_approvals", "Approvals", ("portal.approve",), badge_label="waiting"),
)
ACCOUNT = (
    NavLink("staff.operations", "Background tasks", ("contacts.view",), exact=True),
    NavLink("staff.team", "Team", ("staff.manage",)),
    NavLink("staff.roles", "Roles and permissions", ("roles.manage",)),
    NavLink("staff.audit_log", "Audit log", ("audit.view",), exact=True),
    NavLink("staff.branding", "Branding", ("settings.manage",), exact=True),
    NavLink("staff.impersonation_settings", "Impersonation", ("settings.manage",), exact=True),
    NavLink("staff.crm_settings", "CRM settings", ("crm.configure",)),
    NavLink("billing.payment_settings", "Payment settings", ("billing.keys", "billing.plans"), exact=True),
    NavLink("billing.plans", "Access plans", ("billing.plans",)),
)

# As can() would, refuse a permission that does not exist (a typo would hide a link for good).
_UNKNOWN = {p for link in MAIN + ACCOUNT for p in link.permissions} - PERMISSIONS.keys()
if _UNKNOWN:
    raise KeyError(f"unknown permission in the staff navigation: {sorted(_UNKNOWN)}")


@dataclass(frozen=True)
class ShownLink:
    href: str
    label: str
    current: bool
    badge_label: str


_SHOWN = "portico_staff_nav"
_SHOWN_MAX = 4096


def _shown(links, permissions: frozenset, here: str) -> tuple[ShownLink, ...]:
    views = current_app.view_functions
    return tuple(
        ShownLink(url_for(link.endpoint), link.label,
                  here == link.endpoint or (not link.exact and here.startswith(link.endpoint)), link.badge_label)
        for link in links
        if link.endpoint in views and (not link.permissions or not permissions.isdisjoint(link.permissions)))


@bp.app_template_global("staff_nav")
def staff_nav() -> tuple[tuple[ShownLink, ...], tuple[ShownLink, ...]]:
    """(the main links, the account menu's links) the signed-in member sees on this page."""
    principal = current_principal()
    permissions = permissions_of(principal) if isinstance(principal, StaffUser) and principal.active else frozenset()
    key = (permissions, request.endpoint or "", request.script_root)
    store = current_app.extensions.setdefault(_SHOWN, {})
    shown = store.get(key)
    if shown is None:
        if len(store) >= _SHOWN_MAX:
            store.clear()
        shown = store[key] = (_shown(MAIN, permissions, key[1]), _shown(ACCOUNT, permissions, key[1]))
    return shown
