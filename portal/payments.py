"""The portal's places for payments, kept for the billing issue: a panel of the home and one
of the profile, by name ("payments"). Billing replaces these providers (registering the same
name) with ones that return what to show, and adds the templates
(templates/portal/panels/payments.html, templates/portal/profile/panels/payments.html).
Until then they have nothing to show, so no panel is drawn: no placeholder content."""
from __future__ import annotations

from portal.home import home_panel
from portal.profile import profile_panel

PANEL = "payments"


@home_panel(PANEL, order=90)
def payments_on_home(account) -> dict | None:
    return None


@profile_panel(PANEL, order=50)
def payments_on_profile(account) -> dict | None:
    return None
