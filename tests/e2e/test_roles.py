"""Roles and permissions in a real browser: the Owner opens the page from the account menu and,
with the keyboard only, takes export away from Staff; the Staff member's contact list loses its
export links. Then the same page at phone size: every box on screen, nothing sideways."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_crm_settings import PHONE, no_sideways_scroll, sign_in, within_viewport
from tests.factories import make_contact

pytestmark = pytest.mark.e2e


def _seed_contact(app, world):
    from core.db import db
    from core.tenancy import tenant_context

    with app.app_context(), tenant_context(world.a.id):
        make_contact("Ada", "Lovelace", owner_id=world.a.members["staff"].id)
        db.session.commit()


def test_owner_takes_export_away_from_staff_with_the_keyboard(page: Page, new_context, live_server, world, app,
                                                             screenshot):
    _seed_contact(app, world)
    owner = world.a.members["owner"]
    sign_in(page, live_server, world.a.slug, owner.email)
    nav = page.get_by_role("navigation", name="Main")
    nav.locator("details.account-menu > summary", has_text=owner.name).click()
    nav.get_by_role("link", name="Roles and permissions").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Roles and permissions")
    expect(page.get_by_label("Staff: Export lists of contacts")).to_be_checked()
    expect(page.get_by_label("Owners: Export lists of contacts")).to_be_disabled()
    expect(page.get_by_label("Admins: See the staff dashboard")).to_be_disabled()
    screenshot(page, "matrix")

    # Row by row: Tab goes from the Admin box to the Staff box of the same permission.
    page.get_by_label("Admins: Export lists of contacts").focus()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Staff: Export lists of contacts")).to_be_focused()
    page.keyboard.press("Space")
    expect(page.get_by_label("Staff: Export lists of contacts")).not_to_be_checked()
    page.get_by_role("button", name="Save permissions").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Staff can no longer export lists of contacts.")
    expect(page.get_by_label("Staff: Export lists of contacts")).not_to_be_checked()

    staff_page = new_context().new_page()
    sign_in(staff_page, live_server, world.a.slug, world.a.members["staff"].email)
    staff_page.goto(live_server.url(world.a.slug, "/staff/contacts"))
    expect(staff_page.get_by_role("table")).to_contain_text("Ada")
    expect(staff_page.get_by_role("link", name="CSV")).to_have_count(0)


def test_roles_page_at_phone_size(new_context, live_server, world, screenshot):
    context = new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    page = context.new_page()
    sign_in(page, live_server, world.a.slug, world.a.members["owner"].email)
    page.goto(live_server.url(world.a.slug, "/staff/settings/roles"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Roles and permissions")
    no_sideways_scroll(page)
    for box in page.locator(".roles-table input[type=checkbox]").all():
        within_viewport(page, box)
    within_viewport(page, page.get_by_role("button", name="Save permissions"))
    screenshot(page, "matrix", sizes=("phone",))

    page.get_by_label("Staff: Merge duplicate contacts").tap()
    page.get_by_role("button", name="Save permissions").tap()
    expect(page.get_by_role("status")).to_have_text("Staff can now merge duplicate contacts.")
    no_sideways_scroll(page)
