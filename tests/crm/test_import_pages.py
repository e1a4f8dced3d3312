"""The import pages as a member uses them: upload, map, preview, run, result, failed rows, undo."""
from __future__ import annotations

import csv
import io
import re

import pytest
import sqlalchemy as sa

from core.db import db
from core.jobs import run_pending_jobs
from core.tenancy import tenant_context
from crm.imports.models import ContactImport, ImportMapping
from crm.models import Contact
from tests.crm.import_files import csv_bytes, encrypted_xlsx_bytes, xlsx_bytes
from tests.support import csrf_token

ROWS = [["Full Name", "E-mail 1 - Value", "Mobile Phone", "Organization 1 - Name", "Notes"],
        ["Ada Lovelace", "ada@example.com", "+1 415 555 0123", "Analytical Engines", "first"],
        ["Bob Stone", "not-an-email", "", "", ""],
        ["Carla Diaz", "carla@example.com", "", "", ""]]


def _upload(client, data: bytes, filename="people.csv"):
    return client.post("/staff/imports", data={"csrf_token": csrf_token(client, "/staff/imports"),
                                               "file": (io.BytesIO(data), filename)},
                       content_type="multipart/form-data")


def _import_id(response) -> int:
    return int(re.search(r"/staff/imports/(\d+)/", response.headers["Location"]).group(1))


def test_upload_map_preview_run_and_download_the_failed_rows(app, world, staff_client):
    client = staff_client("admin")
    response = _upload(client, csv_bytes(ROWS))
    assert response.status_code == 302 and response.headers["Location"].endswith("/mapping")
    import_id = _import_id(response)
    page = client.get(f"/staff/imports/{import_id}/mapping").get_data(as_text=True)
    assert '<option value="full_name" selected>' in page and '<option value="email" selected>' in page
    assert "ada@example.com, not-an-email, carla@example.com" in page
    token = csrf_token(client, f"/staff/imports/{import_id}/mapping")
    mapping = {f"column-{i}": t for i, t in enumerate(["full_name", "email", "phone", "company_name", ""])}
    response = client.post(f"/staff/imports/{import_id}/mapping",
                           data={"csrf_token": token, **mapping, "mapping_name": "Google export"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/preview")
    page = client.get(f"/staff/imports/{import_id}/preview").get_data(as_text=True)
    assert "1 of them has problems" in page
    assert "That e-mail address is not valid" in page
    response = client.post(f"/staff/imports/{import_id}/preview", data={
        "csrf_token": token, "on_duplicate": "skip", "role": "prospect", "status_id": "", "owner_id": "",
        "tags": "from-google"})
    assert response.status_code == 302
    operation_url = response.headers["Location"]
    assert re.search(r"/staff/operations/\d+$", operation_url)
    progress = client.get(operation_url + "/progress").get_json()
    assert progress["total"] == 3 and progress["finished"] is False
    with app.app_context():
        run_pending_jobs()
    progress = client.get(operation_url + "/progress").get_json()
    assert progress["finished"] and progress["counts"]["created"] == 2 and progress["errors"] == 1
    page = client.get(operation_url).get_data(as_text=True)
    assert "2 created, 0 updated, 0 skipped, 1 failed." in page
    assert f"/staff/imports/{import_id}" in page
    page = client.get(f"/staff/imports/{import_id}").get_data(as_text=True)
    assert "Download the failed rows" in page and "Undo this import" in page
    failed = client.get(f"/staff/imports/{import_id}/failed.csv")
    assert failed.headers["Content-Disposition"] == 'attachment; filename="people-failed-rows.csv"'
    lines = list(csv.reader(io.StringIO(failed.get_data(as_text=True).lstrip("\ufeff"))))
    assert lines[0] == ROWS[0] + ["Row", "Why it was not imported"]
    assert lines[1][:6] == ["Bob Stone", "not-an-email", "", "", "", "3"]
    assert lines[1][6].startswith("E-mail 1 - Value: That e-mail address is not valid")
    listing = client.get("/staff/contacts?q=lovelace").get_data(as_text=True)
    assert "Ada Lovelace" in listing
    with app.app_context(), tenant_context(world.a.id):
        assert db.session.scalars(sa.select(ImportMapping.name)).all() == ["Google export"]
        ada = db.session.scalars(sa.select(Contact).where(Contact.email == "ada@example.com")).one()
        assert ada.role == "prospect" and ada.company.name == "Analytical Engines"


def test_bad_input_re_renders_with_the_error_beside_the_field(app, world, staff_client):
    client = staff_client("owner")
    response = _upload(client, b"")
    assert response.status_code == 400 and "The file is empty." in response.get_data(as_text=True)
    response = _upload(client, b"Name,Email\r\n")
    assert "header row but no contacts" in response.get_data(as_text=True)
    response = _upload(client, encrypted_xlsx_bytes(ROWS), "locked.xlsx")
    assert response.status_code == 400 and "protected with a password" in response.get_data(as_text=True)
    import_id = _import_id(_upload(client, csv_bytes(ROWS)))
    token = csrf_token(client, "/staff/imports")
    response = client.post(f"/staff/imports/{import_id}/mapping",
                           data={"csrf_token": token, **{f"column-{i}": "" for i in range(5)}})
    assert response.status_code == 400
    assert "Map at least a name, an e-mail or a phone column" in response.get_data(as_text=True)
    with app.app_context(), tenant_context(world.a.id):
        assert db.session.scalar(sa.select(sa.func.count(ContactImport.id))) == 1
        assert db.session.scalar(sa.select(sa.func.count(Contact.id))) == 0


def test_a_file_over_the_limit_is_refused_with_a_clear_message(app, world, staff_client, monkeypatch):
    monkeypatch.setitem(app.config, "IMPORT_MAX_BYTES", 1024 * 1024)
    client = staff_client("owner")
    response = _upload(client, b"Email\r\n" + b"a@example.com\r\n" * 200_000)
    assert response.status_code == 413
    assert "larger than 1 MB, the most an import takes" in response.get_data(as_text=True)


def test_a_workbook_asks_for_its_sheet(app, world, staff_client):
    client = staff_client("owner")
    data = xlsx_bytes({"Info": [["x"]], "Contacts": [["Email"], ["w@example.com"]]})
    response = _upload(client, data, "book.xlsx")
    assert response.headers["Location"].endswith("/sheet")
    import_id = _import_id(response)
    response = client.post(f"/staff/imports/{import_id}/sheet",
                           data={"csrf_token": csrf_token(client, "/staff/imports"), "sheet": "Contacts"})
    assert response.headers["Location"].endswith("/mapping")


@pytest.mark.parametrize("role, status", [("owner", 200), ("admin", 200), ("staff", 403)])
def test_who_may_import(app, world, staff_client, role, status):
    client = staff_client(role)
    assert client.get("/staff/imports").status_code == status
    nav = client.get("/staff/").get_data(as_text=True)
    assert ('href="/staff/imports"' in nav) is (status == 200)
