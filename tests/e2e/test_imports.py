"""Importing a CSV in a real browser: upload, map the columns, preview with its problems, run,
watch the progress bar finish without reloading, download the failed rows."""
from __future__ import annotations

import csv
import io
import re

from playwright.sync_api import Page, expect

from tests.crm.import_files import csv_bytes
from tests.e2e.test_staff_login import sign_in_with_keyboard
from tests.support import PASSWORD

ROWS = [["Given Name", "Family Name", "Email Address", "Mobile Phone", "Company Name", "Shoe"],
        ["Ada", "Lovelace", "ada@example.com", "+44 20 7946 0958", "Analytical Engines", "38"],
        ["Grace", "Hopper", "grace@", "", "Navy", "40"],
        ["Alan", "Turing", "alan@example.com", "12", "", "43"],
        ["Katherine", "Johnson", "katherine@example.com", "", "NASA", "37"]]


def test_import_a_csv_from_upload_to_failed_rows(page: Page, live_server, app, world, screenshot, monkeypatch):
    from core.jobs import run_pending_jobs
    from crm.imports import engine

    monkeypatch.setattr(engine, "CHUNK", 2)  # test-only: batches of 2 rows, so the bar moves in steps
    blocked = []
    page.on("console", lambda message: blocked.append(message.text) if "Content Security Policy" in message.text
            else None)
    page.goto(live_server.url("acme", "/staff/"))
    sign_in_with_keyboard(page, "olivia@acme.example", PASSWORD)
    page.get_by_role("link", name="Import", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Import contacts")
    page.get_by_label("Spreadsheet").set_input_files(
        files=[{"name": "conference.csv", "mimeType": "text/csv", "buffer": csv_bytes(ROWS, delimiter=";")}])
    page.get_by_role("button", name="Upload").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("What each column holds")
    expect(page.get_by_label("Email Address")).to_have_value("email")
    expect(page.get_by_label("Given Name")).to_have_value("first_name")
    expect(page.get_by_label("Shoe")).to_have_value("")
    page.get_by_label("Shoe").select_option(label="New custom field (named after the column)")
    page.get_by_label("Save this mapping for next time (optional)").fill("Conference list")
    screenshot(page, "import-mapping")
    page.get_by_role("button", name="Preview").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Preview and options")
    expect(page.locator("p", has_text="2 of them have problems")).to_be_visible()
    expect(page.locator("td.cell-problem", has_text="grace@")).to_contain_text("That e-mail address is not valid")
    expect(page.locator("td.cell-problem", has_text="12")).to_contain_text("is not a valid phone number")
    page.get_by_label("Role of new contacts").select_option(label="Prospect")
    page.get_by_label("Tag every imported contact").fill("conference")
    screenshot(page, "import-preview")
    page.get_by_role("button", name="Import 4 rows").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Import conference.csv")
    expect(page.locator("[data-operation-progress]")).to_contain_text("0 of 4 rows processed")
    with app.app_context():
        assert run_pending_jobs() >= 1  # on PostgreSQL one job per batch, up to PARALLEL_JOBS
    # No reload by the test: the page's script follows the job and shows the result.
    expect(page.locator(".operation-summary")).to_have_text("2 created, 0 updated, 0 skipped, 2 failed.",
                                                            timeout=15_000)
    expect(page.locator("progress")).to_have_attribute("value", "4")
    screenshot(page, "import-done")

    page.get_by_role("link", name="The import's page").click()
    expect(page.locator("#import-counts")).to_contain_text("Created")
    with page.expect_download() as info:
        page.get_by_role("button", name="Download the failed rows (CSV)").click()
    download = info.value
    assert download.suggested_filename == "conference-failed-rows.csv"
    text = open(download.path(), encoding="utf-8-sig").read()
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0] == ROWS[0] + ["Row", "Why it was not imported"]
    assert [line[2] for line in lines[1:]] == ["grace@", "alan@example.com"]
    assert re.search(r"Mobile Phone: .*12", lines[2][7])

    page.get_by_role("link", name="Contacts", exact=True).click()
    page.get_by_label("Search").first.fill("lovelace")
    page.keyboard.press("Enter")
    expect(page.get_by_role("link", name="Ada Lovelace")).to_be_visible()
    assert not blocked, f"the CSP blocked something: {blocked}"
