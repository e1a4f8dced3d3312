"""In a real browser: an Owner adds a task about a contact, ticks it off, creates an event,
invites a contact by e-mail and a whole Circle, and marks who accepted. Screenshots at desktop
and phone width land in test-artifacts/screenshots/."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
from playwright.sync_api import Page, expect

from tests.support import PASSWORD
from tests.e2e.viewports import PHONE

pytestmark = pytest.mark.e2e



@dataclass
class Harbour:
    slug: str = "harbour"
    name: str = "Harbour Physio"
    owner_email: str = "hana@harbour.example"
    owner_name: str = "Hana Owner"
    owner_id: int = 0


@pytest.fixture
def harbour(app, world) -> Harbour:
    """A tenant with a contact and a two-person Circle, beside the world's two tenants (so a
    leak of tenant B's canary would show)."""
    from core.db import db
    from core.tenancy import tenant_context
    from core.tenants import create_tenant
    from tests.factories import add_to_circle, make_circle, make_contact

    h = Harbour()
    with app.app_context():
        tenant, owner = create_tenant(h.slug, h.name, h.owner_email, PASSWORD, h.owner_name)
        h.owner_id = owner.id
        with tenant_context(tenant):
            make_contact("Casey", "Client", email="casey@client.example", owner_id=owner.id, role="client")
            circle = make_circle("Book club")
            for first in ("Robin", "Sasha"):
                add_to_circle(circle, contact=make_contact(first, "Reader", owner_id=owner.id))
        db.session.commit()
        db.session.remove()
    return h


def sign_in(page: Page, live_server, h: Harbour) -> None:
    page.goto(live_server.url(h.slug, "/staff/login"))
    page.get_by_label("E-mail").fill(h.owner_email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password", exact=True).press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text(h.name)


def no_sideways_scroll(page: Page) -> None:
    page.wait_for_load_state("load")
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px"


def test_owner_adds_and_completes_a_task(page: Page, live_server, harbour, screenshot):
    sign_in(page, live_server, harbour)
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Tasks").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My tasks")
    expect(page.get_by_text("No open tasks for you.")).to_be_visible()
    screenshot(page, "empty-task-list")

    page.get_by_role("button", name="New task").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New task")
    page.get_by_label("Title").fill("Call Casey about the treatment plan")
    page.get_by_label("Kind").select_option(label="Call")
    page.get_by_label("Due").fill("2030-05-06T14:30")
    expect(page.get_by_label("Assigned to")).to_have_value(str(harbour.owner_id))  # "you", by default
    page.get_by_label("Contact (optional)").fill("casey@client.example")
    page.get_by_label("Details").fill("Ask whether Tuesdays still suit.\nPlan: https://harbour.example/plan")
    screenshot(page, "new-task-form")
    page.get_by_role("button", name="Add task").click()

    expect(page.get_by_role("status")).to_have_text("Task “Call Casey about the treatment plan” added.")
    table = page.get_by_role("table")
    row = table.get_by_role("row").filter(has_text="Call Casey about the treatment plan")
    expect(row).to_contain_text("2030-05-06 14:30 UTC")
    expect(row.get_by_role("link", name="Casey Client")).to_be_visible()
    expect(row).to_contain_text("Call")
    expect(page.locator("body")).not_to_contain_text("CANARY-B")
    screenshot(page, "task-list")

    row.get_by_role("button", name="Mark “Call Casey about the treatment plan” done").click()
    expect(page.get_by_role("status")).to_have_text("Done: “Call Casey about the treatment plan”.")
    expect(page.get_by_text("No open tasks for you.")).to_be_visible()
    page.get_by_label("Status").select_option(label="Done")
    page.get_by_role("button", name="Show").click()
    done_row = page.get_by_role("table").get_by_role("row").filter(has_text="Call Casey about the treatment plan")
    expect(done_row.get_by_role("button", name="Reopen “Call Casey about the treatment plan”")).to_be_visible()
    screenshot(page, "done-tasks")

    done_row.get_by_role("link", name="Call Casey about the treatment plan").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Edit task")
    expect(page.get_by_label("Due")).to_have_value("2030-05-06T14:30")
    screenshot(page, "edit-task")


def test_owner_creates_an_event_and_invites_people(page: Page, live_server, harbour, screenshot):
    sign_in(page, live_server, harbour)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Events").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Events")
    page.get_by_role("button", name="New event").click()

    # A mistake first: the end before the start is explained beside the field, input kept.
    page.get_by_label("Title").fill("Open evening")
    page.get_by_label("Starts").fill("2030-09-10T18:00")
    page.get_by_label("Ends (UTC, optional)").fill("2030-09-10T17:00")
    page.get_by_label("Location").fill("Harbour Physio, 12 Quay Street")
    page.get_by_label("Capacity (optional)").fill("3")
    page.get_by_role("button", name="Create event").click()
    expect(page.get_by_text("The event must end after it starts.")).to_be_visible()
    expect(page.get_by_label("Title")).to_have_value("Open evening")
    expect(page.get_by_label("Ends (UTC, optional)")).to_have_attribute("aria-invalid", "true")
    screenshot(page, "event-form-error")

    page.get_by_label("Ends (UTC, optional)").fill("2030-09-10T20:00")
    page.get_by_label("Link (optional)").fill("https://meet.example/open-evening")
    page.get_by_role("button", name="Create event").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Open evening")
    expect(page.get_by_text("0 of 3 taken")).to_be_visible()

    page.get_by_label("Add a contact by e-mail").fill("casey@client.example")
    page.get_by_label("Add a contact by e-mail").press("Enter")  # keyboard only
    expect(page.get_by_role("status")).to_have_text("Invited Casey Client.")

    page.get_by_label("Invite a Circle").select_option(label="Book club")
    page.get_by_role("button", name="Invite the circle").click()
    expect(page.get_by_role("status")).to_have_text("Book club: Invited 2 contacts.")
    expect(page.get_by_text("3 of 3 taken")).to_be_visible()
    expect(page.get_by_text("Full", exact=True)).to_be_visible()

    attendees = page.get_by_role("table")
    casey = attendees.get_by_role("row").filter(has_text="Casey Client")
    casey.get_by_label("Status of Casey Client").select_option(label="Accepted")
    casey.get_by_role("button", name="Set").click()
    expect(page.get_by_role("status")).to_have_text("Casey Client: accepted.")
    expect(attendees.get_by_role("row").filter(has_text="Robin Reader")).to_contain_text("with Book club")
    expect(page.locator("body")).not_to_contain_text("CANARY-B")
    screenshot(page, "event-page")

    page.get_by_role("link", name="All events").click()
    row = page.get_by_role("table").get_by_role("row").filter(has_text="Open evening")
    expect(row).to_contain_text("3 of 3")
    screenshot(page, "event-list")


def test_task_and_event_pages_fit_a_phone(new_context, live_server, harbour, app, screenshot):
    from datetime import datetime, timezone

    from core.db import db
    from core.identity import StaffUser
    from core.tenancy import Tenant, cross_tenant, tenant_context
    from crm.activities import add_attendee, create_event, create_task
    from crm.models import Contact

    with app.app_context():
        with cross_tenant("e2e: find the harbour tenant", audit=False):
            tenant = db.session.scalar(db.select(Tenant).where(Tenant.slug == harbour.slug))
        with tenant_context(tenant):
            owner = db.session.scalar(db.select(StaffUser))
            casey = db.session.scalar(db.select(Contact).where(Contact.first_name == "Casey"))
            create_task("Send the exercise sheet with a rather long title to see wrapping", kind="email",
                        due_at=datetime(2020, 1, 1, 9, tzinfo=timezone.utc), assignee_id=owner.id, contact=casey,
                        actor=owner)
            event = create_event("Pilates taster", datetime(2030, 10, 1, 9, tzinfo=timezone.utc), capacity=12,
                                 location="Studio 2", actor=owner)
            add_attendee(event, casey, owner)
            event_id = event.id
        db.session.commit()
        db.session.remove()

    context = new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    page = context.new_page()
    sign_in(page, live_server, harbour)
    page.goto(live_server.url(harbour.slug, "/staff/tasks"))
    expect(page.get_by_role("table").get_by_text("Overdue", exact=True)).to_be_visible()
    no_sideways_scroll(page)
    screenshot(page, "phone-tasks", sizes=("phone",))
    page.goto(live_server.url(harbour.slug, f"/staff/events/{event_id}"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Pilates taster")
    no_sideways_scroll(page)
    screenshot(page, "phone-event", sizes=("phone",))
    page.goto(live_server.url(harbour.slug, "/staff/events"))
    no_sideways_scroll(page)
    screenshot(page, "phone-events", sizes=("phone",))
