"""The form builder in a real browser: an Owner opens Forms from the navigation, creates a form,
adds a field of every kind with the keyboard while the live preview follows what they type,
reorders and edits fields, changes the settings, copies the embed snippet, and reads the
submissions; screenshots at desktop and phone widths."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from core.db import db
from core.tenancy import tenant_context
from forms.models import FieldKind, Form
from tests.e2e.test_crm_settings import no_sideways_scroll, sign_in
from tests.factories import make_contact
from tests.forms.factories import make_submission

pytestmark = pytest.mark.e2e

# One field of every kind: (kind, label, where the answer goes, what else the kind needs).
FIELDS = [
    (FieldKind.SECTION, "About you", None, {}),
    (FieldKind.SHORT_TEXT, "First name", "contact.first_name", {}),
    (FieldKind.EMAIL, "Your e-mail", "contact.email", {}),
    (FieldKind.PHONE, "Mobile", "contact.phone", {}),
    (FieldKind.LONG_TEXT, "What brings you here?", "contact.notes", {}),
    (FieldKind.NUMBER, "Team size", None, {}),
    (FieldKind.DATE, "Start date", None, {}),
    (FieldKind.SINGLE_CHOICE, "Plan", None, {"Choices": "Starter\nPro", "display": "Radio buttons"}),
    (FieldKind.MULTI_CHOICE, "Interests", None, {"Choices": "Golf\nChess"}),
    (FieldKind.YES_NO, "Newsletter?", None, {}),
    (FieldKind.CONSENT, "I agree to the terms", None, {"Address of the terms": "https://acme.example/terms"}),
    (FieldKind.HIDDEN, "Campaign", None, {"Web address parameter": "utm_campaign"}),
]


def preview(page: Page):
    return page.frame_locator("iframe.preview-frame")


def updates(page: Page) -> int:
    return int(page.locator("iframe.preview-frame").get_attribute("data-updates") or 0)


def add_field(page: Page, kind: str, label: str, target: str | None, extra: dict) -> None:
    add = page.locator("form[data-preview-new-field]")
    add.get_by_label("Type of field").select_option(kind)
    add.get_by_label("Label").fill(label)
    for name, value in extra.items():
        if name == "display":
            add.get_by_label(value).check()
        else:
            add.get_by_label(name).fill(value)
    if target:
        add.get_by_label("Where the answer goes").select_option(target)
    add.get_by_label("Label").press("Enter")  # the keyboard's way to send a form
    expect(page.locator(".flash-success")).to_have_text(f"“{label}” is added.")


def test_owner_builds_a_form_with_every_kind_of_field(page: Page, live_server, world, screenshot, app, context):
    owner = world.a.members["owner"]
    sign_in(page, live_server, world.a.slug, owner.email)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Forms").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Forms")
    expect(page.get_by_text("No forms yet.")).to_be_visible()

    page.get_by_role("button", name="Create your first form").click()
    title = page.get_by_label("Title")
    title.fill("Open Day 2026")
    title.press("Enter")
    expect(page.locator(".flash-success")).to_have_text("“Open Day 2026” is created. Add its fields.")
    expect(page.locator("hgroup a[href$=\"/f/open-day-2026\"]")).to_be_visible()

    # The preview follows what is typed, before anything is saved.
    expect(preview(page).get_by_role("heading", level=1)).to_have_text("Open Day 2026")
    add = page.locator("form[data-preview-new-field]")
    add.get_by_label("Label").press_sequentially("Company name", delay=10)
    expect(preview(page).get_by_label("Company name")).to_be_visible()
    screenshot(page, "typing-a-field")
    add.get_by_label("Label").fill("")

    # Inputs only some kinds use show for those kinds.
    add.get_by_label("Type of field").select_option(FieldKind.HIDDEN)
    expect(add.get_by_label("Web address parameter")).to_be_visible()
    expect(add.get_by_label("Choices")).to_be_hidden()
    add.get_by_label("Type of field").select_option(FieldKind.SINGLE_CHOICE)
    expect(add.get_by_label("Choices")).to_be_visible()
    expect(add.get_by_label("Web address parameter")).to_be_hidden()

    # A mistake is explained beside the input, and what was typed stays.
    add.get_by_label("Label").fill("Size")
    add.get_by_label("Label").press("Enter")
    expect(page.locator("#choices-error")).to_have_text("List the choices, one per line.")
    expect(page.locator("form[data-preview-new-field]").get_by_label("Label")).to_have_value("Size")

    for kind, label, target, extra in FIELDS:
        add_field(page, kind, label, target, extra)
    rows = page.locator(".builder-field-text strong")
    expect(rows).to_have_text([label for _, label, _, _ in FIELDS])

    # The preview shows every kind as the public will see it.
    frame = preview(page)
    expect(frame.get_by_role("heading", name="About you")).to_be_visible()
    expect(frame.get_by_label("Your e-mail")).to_have_attribute("type", "email")
    expect(frame.get_by_role("radio", name="Pro")).to_be_visible()
    expect(frame.get_by_role("checkbox", name="Chess")).to_be_visible()
    expect(frame.get_by_role("link", name=re.compile("read the terms"))).to_have_attribute(
        "href", "https://acme.example/terms")
    expect(frame.get_by_role("button", name="Send")).to_be_disabled()
    screenshot(page, "every-kind")

    # Reorder with the keyboard: focus "Move up", press Enter; the focus target comes back.
    move = page.get_by_role("button", name="Move up “Your e-mail”")
    move.focus()
    page.keyboard.press("Enter")
    expect(page.locator(".flash-success")).to_have_text("“Your e-mail” moved up.")
    expect(rows.nth(1)).to_have_text("Your e-mail")
    expect(rows.nth(2)).to_have_text("First name")
    expect(page.get_by_role("button", name="Move up “Your e-mail”")).to_be_focused()
    page.keyboard.press("Enter")  # again, without reaching for the mouse
    expect(rows.nth(0)).to_have_text("Your e-mail")
    expect(page.get_by_role("button", name="Move down “Your e-mail”")).to_be_focused()  # at the top now
    page.keyboard.press("Enter")
    expect(rows.nth(1)).to_have_text("Your e-mail")

    # Editing a label: the preview shows it before saving; saving keeps the answer's key.
    page.get_by_role("button", name="Edit “First name”").click()
    expect(page.get_by_text("stored as “first_name”")).to_be_visible()
    label = page.locator("form[data-preview-field-id]").get_by_label("Label")
    before = updates(page)
    label.fill("Given name")
    expect(preview(page).get_by_label("Given name")).to_be_visible()
    assert updates(page) > before
    label.press("Enter")
    expect(page.locator(".flash-success")).to_have_text("“Given name” is saved.")

    # Settings: the title in the preview changes as it is typed.
    page.get_by_role("link", name="Settings").click()
    page.get_by_label("Title").fill("Open Day 2026 registration")
    expect(preview(page).get_by_role("heading", level=1)).to_have_text("Open Day 2026 registration")
    page.get_by_label("Colour").fill("#aa3300")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".flash-success")).to_have_text("Settings saved.")
    screenshot(page, "settings")

    # On submit: the role, a round-robin owner, a confirmation e-mail.
    page.get_by_role("link", name="On submit").click()
    page.get_by_label("Prospect").check()
    expect(page.get_by_label("Fixed owner")).to_be_hidden()  # only for a fixed owner
    expect(page.get_by_label("Subject of the confirmation")).to_be_hidden()
    page.get_by_label("A fixed staff member").check()
    expect(page.get_by_label("Fixed owner")).to_be_visible()
    page.get_by_label("Round-robin among chosen staff").check()
    expect(page.get_by_label("Fixed owner")).to_be_hidden()
    page.get_by_role("group", name="Take turns among").get_by_label(world.a.members["admin"].name).check()
    page.get_by_role("button", name="Save on-submit actions").click()
    expect(page.locator("#round_robin_staff_ids-error")).to_contain_text("at least two staff members")
    page.get_by_role("group", name="Take turns among").get_by_label(world.a.members["staff"].name).check()
    page.get_by_label("Send the registrant a confirmation e-mail").check()
    page.get_by_label("Subject of the confirmation").fill("See you at the open day")
    page.get_by_role("button", name="Save on-submit actions").click()
    expect(page.locator(".flash-success")).to_have_text("On-submit actions saved.")
    expect(page.get_by_label("Prospect")).to_be_checked()
    screenshot(page, "on-submit")

    # Share: the public link, and the embed snippet copied with one button.
    page.get_by_role("link", name="Share").click()
    origin = live_server.url(world.a.slug, "").rstrip("/")
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=origin)
    expect(page.get_by_label("The form's address")).to_have_value(f"{origin}/f/open-day-2026")
    page.get_by_role("button", name="Copy embed code").click()
    expect(page.locator("#copy-status")).to_have_text("Copied. Paste it where you need it.")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == page.get_by_label("Embed code").input_value()
    assert f'<iframe src="{origin}/f/open-day-2026/embed"' in copied
    assert f'<script src="{origin}/static/forms/embed.js" async></script>' in copied
    screenshot(page, "share")

    # The list: the form, its address, and what can be done with it.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Forms").click()
    row = page.get_by_role("row", name=re.compile("Open Day 2026 registration"))
    expect(row.get_by_role("link", name="/f/open-day-2026")).to_be_visible()
    expect(row.get_by_role("button", name="Duplicate")).to_be_visible()
    screenshot(page, "forms-list")

    # The saved form is what the public sees.
    with app.app_context(), tenant_context(world.a.id):
        form = db.session.query(Form).one()
        assert [f.kind for f in form.fields] == [FieldKind.SECTION, FieldKind.EMAIL, FieldKind.SHORT_TEXT] + \
            [kind for kind, *_ in FIELDS[3:]]
        assert form.title == "Open Day 2026 registration" and form.primary_colour == "#aa3300"
    page.goto(live_server.url(world.a.slug, "/f/open-day-2026"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Open Day 2026 registration")
    expect(page.get_by_label("Given name")).to_be_visible()


def test_submissions_and_the_builder_on_a_phone(new_context, live_server, world, screenshot, app):
    with app.app_context(), tenant_context(world.a.id):
        from tests.forms.factories import make_form
        form = make_form("Open day", slug="open-day")
        contact = make_contact("Ada", "Lovelace", email="ada@x.test")
        for n in range(3):
            make_submission(form, {"first_name": "Ada", "email": "ada@x.test", "company": f"Analytical {n}"},
                            contact_id=contact.id, source_url="https://acme.example/landing?utm_source=news",
                            utm={"utm_source": "news"}, state="processed")
        db.session.commit()
        form_id = form.id
    phone = new_context(viewport={"width": 390, "height": 844})
    page = phone.new_page()
    sign_in(page, live_server, world.a.slug, world.a.members["admin"].email)

    page.goto(live_server.url(world.a.slug, f"/staff/forms/{form_id}"))
    expect(page.get_by_role("heading", level=2, name="Fields")).to_be_visible()
    page.locator("iframe.preview-frame").scroll_into_view_if_needed()
    expect(preview(page).get_by_label("E-mail")).to_be_visible()  # below the fields on a phone
    no_sideways_scroll(page)
    screenshot(page, "fields-on-a-phone", sizes=("phone",))

    page.get_by_role("link", name="Submissions").click()
    expect(page.get_by_role("link", name="Ada Lovelace").first).to_be_visible()
    expect(page.get_by_text("source: news").first).to_be_visible()
    no_sideways_scroll(page)
    screenshot(page, "submissions-on-a-phone", sizes=("phone",))

    page.get_by_role("link", name=re.compile(r"UTC$")).first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Submission of")
    expect(page.get_by_text("Analytical 2")).to_be_visible()
    no_sideways_scroll(page)
    screenshot(page, "submission-on-a-phone", sizes=("phone",))

    page.get_by_role("link", name="Ada Lovelace").click()
    section = page.locator("article", has=page.get_by_text("Form submissions", exact=True))
    expect(section.get_by_role("link", name="Open day")).to_have_count(3)
    screenshot(page, "contact-submissions", sizes=("phone",))
