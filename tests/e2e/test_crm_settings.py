"""CRM settings in a real browser: an Admin opens them from the account menu, adds a status to
the pipeline and a custom field for contacts, and finds both on the contact form and in the
contact list's filters; then the same page at phone size."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.support import PASSWORD
from tests.e2e.viewports import PHONE

pytestmark = pytest.mark.e2e



def sign_in(page: Page, live_server, slug: str, email: str) -> None:
    page.goto(live_server.url(slug, "/staff/login"))
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password", exact=True).press("Enter")
    expect(page.get_by_role("heading", level=1)).to_be_visible()


def open_crm_settings(page: Page, name: str) -> None:
    nav = page.get_by_role("navigation", name="Main")
    nav.locator("details.account-menu > summary", has_text=name).click()
    nav.get_by_role("link", name="CRM settings").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("CRM settings")


def no_sideways_scroll(page: Page) -> None:
    page.wait_for_load_state("load")
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px"


def within_viewport(page: Page, locator) -> None:
    box = locator.bounding_box()
    assert box is not None, f"{locator} is not laid out"
    width = page.viewport_size["width"]
    assert box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, f"{locator} is off-screen: {box}"


def test_admin_adds_a_status_and_a_custom_field(page: Page, live_server, world, screenshot):
    admin = world.a.members["admin"]
    sign_in(page, live_server, world.a.slug, admin.email)
    open_crm_settings(page, admin.name)
    expect(page.locator("nav a[href=\"/staff/settings/crm\"]")).to_have_attribute("aria-current", "page")
    for section in ("Pipeline", "Custom fields", "Who sees which contacts", "Phone numbers"):
        expect(page.get_by_role("heading", level=2, name=section)).to_be_visible()
    screenshot(page, "settings")

    # A status that is already there: the error sits beside the field, the text stays.
    add = page.get_by_label("Add a status")
    add.fill("contacted")
    add.press("Enter")
    expect(page.locator("#name-error")).to_have_text("There is already a status called “Contacted”.")
    expect(page.get_by_label("Add a status")).to_have_value("contacted")
    screenshot(page, "duplicate-status")

    # With the keyboard: type, Enter.
    page.get_by_label("Add a status").fill("Proposal sent")
    page.get_by_label("Add a status").press("Enter")
    expect(page.get_by_role("status")).to_have_text("Status “Proposal sent” added at the end of the pipeline.")
    pipeline = page.locator("#pipeline table").first
    expect(pipeline.get_by_role("row").last).to_contain_text("Proposal sent")

    # Move it up one place, and rename another status in its row.
    page.get_by_role("button", name="Move “Proposal sent” up").click()
    expect(page.get_by_role("status")).to_have_text("Moved “Proposal sent” up.")
    expect(pipeline.get_by_role("row").nth(5)).to_contain_text("Proposal sent")
    page.get_by_role("button", name="Rename “Qualified”").click()
    rename = page.get_by_label("New name for “Qualified”")
    expect(rename).to_be_visible()
    rename.fill("Qualified lead")
    rename.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("“Qualified” is now called “Qualified lead”")

    # A custom field for contacts.
    page.get_by_role("button", name="Add a field for contacts").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Add a custom field")
    expect(page.get_by_label("For")).to_have_value("contact")
    page.get_by_label("Name").fill("Budget band")
    page.get_by_label("Type").select_option(label="Single choice")
    page.get_by_label("Choices").fill("Small\nMedium\nLarge")
    page.get_by_label("Help text").fill("Rough yearly budget")
    screenshot(page, "new-field")
    page.get_by_role("button", name="Add field").click()
    expect(page.get_by_role("status")).to_have_text(
        "Field “Budget band” added: it is on the contact form and in the filters now.")
    fields = page.locator("#custom-fields")
    expect(fields.get_by_role("link", name="Budget band")).to_be_visible()
    expect(fields).to_contain_text("Small, Medium, Large")
    screenshot(page, "settings-after")

    # On the contact form: the field, and the new status among the statuses.
    page.goto(live_server.url(world.a.slug, "/staff/contacts/new"))
    expect(page.get_by_label("Budget band")).to_be_visible()
    expect(page.get_by_text("Rough yearly budget")).to_be_visible()
    expect(page.get_by_label("Status", exact=True).locator("option", has_text="Proposal sent")).to_have_count(1)
    expect(page.get_by_label("Status", exact=True).locator("option", has_text="Qualified lead")).to_have_count(1)
    page.get_by_label("First name").fill("Ada")
    page.get_by_label("E-mail", exact=True).fill("ada@example.com")
    page.get_by_label("Budget band").select_option("Medium")
    page.get_by_label("Status", exact=True).select_option(label="Proposal sent")
    page.get_by_role("button", name="Add contact").click()
    expect(page.get_by_role("status")).to_have_text("Ada is added.")
    expect(page.locator("main")).to_contain_text("Medium")
    expect(page.locator("main")).to_contain_text("Proposal sent")

    # In the list's filters.
    page.goto(live_server.url(world.a.slug, "/staff/contacts"))
    page.get_by_text("Filters", exact=True).click()
    page.locator("select[name=cf_budget_band]").select_option("Medium")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.get_by_role("table")).to_contain_text("Ada")
    expect(page.locator("body")).not_to_contain_text("CANARY-B")


def test_settings_page_at_phone_size(new_context, live_server, world, app, screenshot):
    from core.db import db
    from core.tenancy import tenant_context
    import sqlalchemy as sa

    from crm.models import PipelineStatus
    from tests.factories import make_contact, make_custom_field

    with app.app_context(), tenant_context(world.a.id):
        make_custom_field("Shoe size", "number", help_text="EU sizes")
        make_custom_field("Tier", "choice", choices=["Gold", "Silver", "Bronze"], required=True, position=1)
        make_custom_field("Industry", "text", entity="company")
        make_contact("Ada", status_id=db.session.scalar(
            sa.select(PipelineStatus.id).where(PipelineStatus.name == "Contacted")))
        db.session.commit()

    context = new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    page = context.new_page()
    owner = world.a.members["owner"]
    sign_in(page, live_server, world.a.slug, owner.email)
    page.goto(live_server.url(world.a.slug, "/staff/settings/crm"))
    expect(page.get_by_role("heading", level=1)).to_have_text("CRM settings")
    no_sideways_scroll(page)
    for cell in page.locator("#pipeline table").first.get_by_role("cell").all():
        within_viewport(page, cell)
    for button in page.locator("#pipeline .row-actions button, #pipeline .row-actions [role=button]").all():
        if button.is_visible():
            within_viewport(page, button)
    within_viewport(page, page.get_by_role("button", name="Add status"))
    within_viewport(page, page.get_by_role("button", name="Save phone region"))
    screenshot(page, "settings", sizes=("phone",))

    page.get_by_role("button", name="Rename “Contacted”").tap()
    within_viewport(page, page.get_by_label("New name for “Contacted”"))
    screenshot(page, "rename-open", sizes=("phone",))

    page.get_by_role("button", name="Archive “Contacted”…").tap()
    expect(page.get_by_role("heading", level=1)).to_have_text("Archive “Contacted”?")
    no_sideways_scroll(page)
    expect(page.get_by_text("1 contact has this status.")).to_be_visible()
    page.get_by_label("What happens to its contacts").select_option(label="Move to “Qualified”")
    screenshot(page, "archive-status", sizes=("phone",))
    page.get_by_role("button", name="Archive status").tap()
    expect(page.get_by_role("status")).to_have_text("“Contacted” is archived; 1 contact moved to “Qualified”.")
    archived = page.get_by_text("Archived statuses (1)")
    archived.tap()
    within_viewport(page, page.get_by_role("button", name="Restore “Contacted”"))
    no_sideways_scroll(page)

    page.get_by_role("link", name="Tier").tap()
    expect(page.get_by_role("heading", level=1)).to_have_text("Edit “Tier”")
    no_sideways_scroll(page)
    within_viewport(page, page.get_by_role("button", name="Rename choice"))
    screenshot(page, "edit-field", sizes=("phone",))
