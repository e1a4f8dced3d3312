"""`flask --app wsgi contacts import|export`: the same import as the pages, from a shell."""
from __future__ import annotations

import csv
import io
import json

import sqlalchemy as sa
from openpyxl import load_workbook

from core.db import db
from core.tenancy import tenant_context
from crm.models import CircleMember, Contact
from tests.crm.import_files import csv_bytes, xls_bytes
from tests.factories import make_circle, make_contact


def _run(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def test_import_prints_the_counts_and_writes_the_failed_rows_beside_the_file(app, world, tmp_path):
    with app.app_context(), tenant_context(world.a.id):
        make_circle("Fair 2024")
        make_contact("Old", "Friend", email="old@example.com", city=None)
        db.session.commit()
    source = tmp_path / "fair.csv"
    source.write_bytes(csv_bytes([["Name", "Email", "City"], ["Ann Lee", "ann@example.com", "Oslo"],
                                  ["Old Friend", "old@example.com", "Rome"], ["Broken", "broken@", ""],
                                  ["Ann Lee", "ann@example.com", ""]], delimiter=";"))
    result = _run(app, "contacts", "import", str(source), "--tenant", "acme", "--on-duplicate", "fill",
                  "--role", "client", "--circle", "Fair 2024")
    assert result.exit_code == 0, result.output
    assert "Rows: 4\nCreated: 1\nUpdated: 1\nSkipped: 0\nMerged with another row: 1\nFailed: 1\n" in result.output
    failed = tmp_path / "fair-failed-rows.csv"
    assert f"Failed rows, with why: {failed}" in result.output
    rows = list(csv.reader(io.StringIO(failed.read_text(encoding="utf-8").lstrip("\ufeff"))))
    assert rows[1][:4] == ["Broken", "broken@", "", "4"]
    with app.app_context(), tenant_context(world.a.id):
        ann = db.session.scalars(sa.select(Contact).where(Contact.email == "ann@example.com")).one()
        assert (ann.role, ann.city, ann.owner_id) == ("client", "Oslo", None)
        assert db.session.scalars(sa.select(Contact.city).where(Contact.email == "old@example.com")).one() == "Rome"
        assert db.session.scalar(sa.select(sa.func.count(CircleMember.id))) == 2


def test_import_with_a_mapping_file_and_an_xls(app, world, tmp_path):
    source = tmp_path / "legacy.xls"
    source.write_bytes(xls_bytes({"Sheet1": [["Kontakt", "Mail"], ["Zoë Ünal", "zoe@example.com"]]}))
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"Kontakt": "full_name", "Mail": "email"}))
    result = _run(app, "contacts", "import", str(source), "--tenant", "acme", "--mapping", str(mapping))
    assert result.exit_code == 0, result.output
    assert "Created: 1" in result.output
    with app.app_context(), tenant_context(world.a.id):
        zoe = db.session.scalars(sa.select(Contact)).one()
        assert (zoe.first_name, zoe.last_name, zoe.email) == ("Zoë", "Ünal", "zoe@example.com")


def test_nothing_imported_exits_non_zero(app, world, tmp_path):
    source = tmp_path / "bad.csv"
    source.write_bytes(csv_bytes([["Email"], ["nope"], ["also nope"]]))
    result = _run(app, "contacts", "import", str(source), "--tenant", "acme")
    assert result.exit_code == 1 and "Created: 0" in result.output and "Failed: 2" in result.output
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"Email\r\n")
    result = _run(app, "contacts", "import", str(empty), "--tenant", "acme")
    assert result.exit_code == 1 and "header row but no contacts" in result.output
    result = _run(app, "contacts", "import", str(source), "--tenant", "nosuch")
    assert result.exit_code == 1 and "No tenant 'nosuch'" in result.output


def test_export_csv_and_xlsx(app, world, tmp_path):
    with app.app_context(), tenant_context(world.a.id):
        make_contact("Ada", "Lovelace", email="ada@example.com")
        db.session.commit()
    with app.app_context(), tenant_context(world.b.id):
        make_contact("CANARY-B", "Secret", email="canary@globex.example")
        db.session.commit()
    out = tmp_path / "a.csv"
    result = _run(app, "contacts", "export", "--tenant", "acme", "--output", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert "ada@example.com" in text and "CANARY" not in text
    xlsx = tmp_path / "a.xlsx"
    result = _run(app, "contacts", "export", "--tenant", "acme", "--format", "xlsx", "--output", str(xlsx))
    assert result.exit_code == 0, result.output
    rows = list(load_workbook(xlsx, read_only=True).active.iter_rows(values_only=True))
    assert rows[1][3] == "ada@example.com" and len(rows) == 2
