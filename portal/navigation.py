"""The portal's navigation: a small registry every portal area adds its link to, so the layout
(templates/portal/_layout.html) shows them all without knowing who they are.

    from portal.navigation import nav_item
    nav_item("Circles", "portal.circles", order=20)
    nav_item("Company", "portal.company", order=40, visible=lambda account: account.contact.is_primary_contact)

`visible(account) -> bool` runs on every portal page: read what the account and its contact
already hold (both are loaded with the session), never query. An endpoint the app does not
have (its module not installed) is left out.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from flask import current_app, request


@dataclass(frozen=True)
class NavItem:
    label: str
    endpoint: str
    order: int
    visible: Callable | None = None

    def is_current(self) -> bool:
        """This page is the item's, or one under it (the same endpoint prefix)."""
        here = request.endpoint or ""
        return here == self.endpoint or (self.endpoint != "portal.home" and here.startswith(self.endpoint))


NAV_ITEMS: dict[str, NavItem] = {}


def nav_item(label: str, endpoint: str, order: int = 100, visible: Callable | None = None) -> NavItem:
    """Add (or replace, by endpoint) a link of the portal's navigation; lower `order` first."""
    item = NavItem(label, endpoint, order, visible)
    NAV_ITEMS[endpoint] = item
    return item


def nav_for(account) -> list[NavItem]:
    """The links `account` sees, in order."""
    if account is None:
        return []
    views = current_app.view_functions
    return [item for item in sorted(NAV_ITEMS.values(), key=lambda i: (i.order, i.label))
            if item.endpoint in views and (item.visible is None or item.visible(account))]


nav_item("Home", "portal.home", order=0)
nav_item("Profile", "portal.profile", order=90)
