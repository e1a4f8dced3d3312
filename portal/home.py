"""The portal home (/portal/): a welcome in the tenant's branding, then a panel from each
portal area that has something for this account, like crm.sections does for the staff
contact page.

    from portal.home import home_panel

    @home_panel("events", order=20)              # renders templates/portal/panels/events.html
    def upcoming_events(account) -> dict | None:
        events = ...                             # the account's own, tenant-scoped query
        return {"events": events} if events else None

A provider returns the panel's template context (a dict, seen by the template as `panel`,
beside `account`) or None when it has nothing to show: no panel is ever filled with
placeholders. With no panel to show, the home says so in a friendly line. Keep a provider to
one or two indexed queries: every signed-in visit to the home runs them all.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from flask import render_template

from portal import bp
from portal.auth import current_account, portal_login_required


@dataclass(frozen=True)
class HomePanel:
    name: str
    order: int
    provider: Callable
    template: str


HOME_PANELS: dict[str, HomePanel] = {}


def home_panel(name: str, order: int = 100, template: str | None = None, *, registry: dict | None = None):
    """Register `provider(account) -> dict | None` as the home panel `name` (lower `order`
    first), rendered with `template` (default templates/portal/panels/<name>.html). Another
    page's panels (portal.profile's) live in their own `registry`, by the same rules."""

    def register(provider: Callable) -> Callable:
        panels = HOME_PANELS if registry is None else registry
        panels[name] = HomePanel(name, order, provider, template or f"portal/panels/{name}.html")
        return provider

    return register


def panels_for(account, registry: dict | None = None) -> list[tuple[HomePanel, dict]]:
    """Each panel (of the home, or of `registry`) with something for `account`, in order,
    with what it shows."""
    shown = []
    panels = HOME_PANELS if registry is None else registry
    for panel in sorted(panels.values(), key=lambda p: (p.order, p.name)):
        context = panel.provider(account)
        if context is not None:
            shown.append((panel, context))
    return shown


@bp.get("/portal/", endpoint="home")
@portal_login_required
def home_page():
    account = current_account()
    return render_template("portal/home.html", account=account, panels=panels_for(account))
