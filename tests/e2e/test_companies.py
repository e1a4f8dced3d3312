"""The company page in a real browser: put the company in a circle and tag it with the keyboard,
follow the circle to its page and back, take a tag off with a click. Desktop and phone
screenshots of the finished page."""
from __future__ import annotations


import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_circles import no_sideways_scroll, sign_in

pytestmark = pytest.mark.e2e


@pytest.fixture
def company(app, world):
    """Tenant A (acme): Initech with two people, owned by Adam Admin, and two circles."""
    from core.db import db
    from core.tenancy import tenant_context
    from tests.factories import make_circle, make_company, make_contact

    with app.app_context(), tenant_context(world.a.id):
        initech = make_company("Initech", domain="initech.example", phone="+14155550188", city="Austin",
                               country="US", owner_id=world.a.members["admin"].id)
        make_contact("Peter", "Gibbons", company_id=initech.id, job_title="Programmer")
        make_contact("Bill", "Lumbergh", company_id=initech.id, job_title="Division VP", is_primary_contact=True)
        make_circle("Partners", color="#16a34a")
        make_circle("Suppliers", color="#d97706")
        db.session.commit()
        company_id = initech.id
        db.session.remove()
    return world.a, company_id


def test_put_a_company_in_a_circle_and_tag_it(page: Page, live_server, company, screenshot):
    tenant, company_id = company
    path = f"/staff/companies/{company_id}"
    sign_in(page, live_server, tenant.slug, tenant.members["admin"].email, path)
    expect(page.get_by_role("heading", level=1)).to_have_text("Initech")
    circles = page.locator("article", has=page.locator("header", has_text="Circles"))
    tags = page.locator("article", has=page.locator("header", has_text="Tags"))
    expect(circles).to_contain_text("In no circle.")
    expect(tags).to_contain_text("No tags.")

    # The circle, by keyboard only: focus the picker, arrow down to "Suppliers", Tab to Add, Enter.
    picker = page.get_by_label("Add to")
    picker.focus()
    page.keyboard.press("ArrowDown")
    expect(picker.locator("option:checked")).to_have_text("Suppliers")
    page.keyboard.press("Tab")
    expect(circles.get_by_role("button", name="Add", exact=True)).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Added to “Suppliers”.")
    expect(circles.get_by_role("link", name="Suppliers")).to_be_visible()
    expect(page.get_by_label("Add to").locator("option")).to_have_text(["Partners"])  # no longer offered

    # Two tags, typed and sent with Enter.
    for name in ("Key account", "vip"):
        field = page.get_by_label("Tag", exact=True)
        field.fill(name)
        field.press("Enter")
        expect(page.get_by_role("status")).to_have_text(f"Tagged “{name}”.")
    expect(tags.get_by_role("link")).to_have_text(["Key account", "vip"])
    timeline = page.get_by_role("complementary")
    expect(timeline).to_contain_text("Added to the circle “Suppliers”")
    expect(timeline).to_contain_text("Tagged “vip”")
    expect(page.locator("body")).not_to_contain_text("CANARY-B")
    screenshot(page, "company-page")
    page.set_viewport_size({"width": 390, "height": 844})
    no_sideways_scroll(page)
    page.set_viewport_size({"width": 1280, "height": 800})

    # The circle's page lists the company and links back to it.
    circles.get_by_role("link", name="Suppliers").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Suppliers")
    screenshot(page, "circle-page")
    page.locator("#companies table").get_by_role("link", name="Initech").click()
    expect(page).to_have_url(live_server.url(tenant.slug, path))

    # A tag's chip leads to the companies carrying it; its × takes it off.
    tags.get_by_role("link", name="Key account").click()
    expect(page.locator("p.list-summary")).to_contain_text("1 company tagged “Key account”.")
    expect(page.get_by_role("link", name="Initech")).to_be_visible()
    screenshot(page, "tagged-companies")
    page.go_back()
    tags.get_by_role("button", name="Remove the tag vip").click()
    expect(page.get_by_role("status")).to_have_text("Tag “vip” removed.")
    expect(tags.get_by_role("link")).to_have_text(["Key account"])
    screenshot(page, "after-untag")
