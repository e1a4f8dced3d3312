"""Importing contacts: rows frozen at upload, worked through a batch per transaction, matched
against existing contacts and the file itself, with a failed-rows file and undo."""
from __future__ import annotations

import csv
import io
from contextlib import contextmanager
from datetime import timedelta

import pytest
import sqlalchemy as sa

from core.audit import AuditEvent
from core.db import db, utcnow
from core.errors import ServiceError
from core.identity import StaffUser
from core.jobs import run_pending_jobs
from core.operations import Operation, OperationChunk
from core.tenancy import tenant_context
from crm.imports import engine
from crm.imports.models import ContactImport, ContactImportBatch, ContactImportChunk
from crm.imports.reading import ImportFileError
from crm.models import CircleMember, Company, Contact, ContactSearchToken, ContactTag, Note, TimelineEntry
from crm.search import _tokens_of
from tests.crm.import_files import csv_bytes, xlsx_bytes
from tests.factories import make_circle, make_company, make_contact, make_custom_field
from tests.support import start_worker

HEADER = ["First Name", "Last Name", "Email Address", "Mobile Phone", "Company Name", "Favourite colour"]


@pytest.fixture
def in_a(app, world):
    @contextmanager
    def run():
        with app.app_context(), tenant_context(world.a.id):
            yield db.session.get(StaffUser, world.a.members["owner"].id)
            db.session.commit()
    return run


def _upload(actor, rows, filename="people.csv", data=None):
    return engine.new_import(io.BytesIO(data or csv_bytes(rows)), filename, actor=actor)


def _run(app, upload_id, options=None, actor_id=None):
    upload = db.session.get(ContactImport, upload_id)
    actor = db.session.get(StaffUser, actor_id) if actor_id else None
    operation = engine.start_import(upload, options or {}, actor=actor)
    db.session.commit()
    return operation.id


def _import_to_end(app, in_a, upload_id, options=None, actor_id=None):
    """Start the import as the member would, and let the worker run it through; the operation's id."""
    with in_a():
        operation_id = _run(app, upload_id, options, actor_id)
    with app.app_context():
        run_pending_jobs()
    return operation_id


def _contacts():
    return {c.email or c.phone: c for c in db.session.scalars(sa.select(Contact).where(Contact.merged_into_id.is_(None)))}


def test_a_csv_becomes_contacts_with_their_search_words_timeline_and_company(app, world, in_a):
    with in_a() as owner:
        existing = make_company("Initech LLC")
        circle = make_circle("Newsletter")
        upload = _upload(owner, [HEADER, ["Ada", "Lovelace", "ada@example.com", "+44 20 7946 0958", "Initech", "red"],
                                 ["Bob", "Stone", "bob@example.com", "", "Brand New Co", ""]])
        assert upload.row_count == 2 and upload.mapping[:5] == ["first_name", "last_name", "email", "phone",
                                                               "company_name"]
        upload.mapping = upload.mapping[:5] + ["new"]
        ids = (upload.id, existing.id, circle.id, owner.id)
    with in_a():
        operation = engine.start_import(db.session.get(ContactImport, ids[0]),
                                        {"role": "prospect", "circle_ids": [ids[2]], "tags": ["imported", "2024"]},
                                        actor=db.session.get(StaffUser, ids[3]))
        operation_id = operation.id
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ContactImportChunk)) == 0
    with app.app_context():
        assert run_pending_jobs() >= 1
    with in_a():
        operation = db.session.get(Operation, operation_id)
        assert (operation.status, operation.processed, operation.changed, operation.errors) == ("done", 2, 2, 0)
        assert operation.summary == "2 created, 0 updated, 0 skipped, 0 failed."
        people = _contacts()
        ada, bob = people["ada@example.com"], people["bob@example.com"]
        assert (ada.first_name, ada.phone, ada.role, ada.company_id, ada.owner_id) == \
            ("Ada", "+442079460958", "prospect", ids[1], ids[3])
        assert ada.custom_fields == {"favourite_colour": "red"}
        assert db.session.get(Company, bob.company_id).name == "Brand New Co"
        for person in (ada, bob):  # the same words index_contacts would write
            company = db.session.get(Company, person.company_id).name
            words = set(db.session.scalars(sa.select(ContactSearchToken.token)
                                           .where(ContactSearchToken.contact_id == person.id)))
            assert words == _tokens_of(person, company)
            entry = db.session.scalars(sa.select(TimelineEntry).where(TimelineEntry.contact_id == person.id)).one()
            assert entry.summary == "Imported from people.csv"
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CircleMember)
                                 .where(CircleMember.circle_id == ids[2])) == 2
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ContactTag)) == 4
        upload = db.session.get(ContactImport, ids[0])
        assert upload.status == "done" and upload.counts["created"] == 2
        assert db.session.scalar(sa.select(sa.func.count()).select_from(OperationChunk)) == 0


@pytest.mark.parametrize("mode, expected_city, expected_job, updated, skipped", [
    ("skip", None, "Engineer", 0, 1), ("fill", "Paris", "Engineer", 1, 0), ("overwrite", "Paris", "CTO", 1, 0),
])
def test_a_row_matching_a_contact_follows_the_chosen_option(app, world, in_a, mode, expected_city, expected_job,
                                                             updated, skipped):
    with in_a() as owner:
        make_contact("Ada", "Lovelace", email="ada@example.com", job_title="Engineer")
        upload = _upload(owner, [["Email", "City", "Job Title"], ["ADA@example.com", "Paris", "CTO"]])
        upload_id, owner_id = upload.id, owner.id
    operation_id = _import_to_end(app, in_a, upload_id, {"on_duplicate": mode}, owner_id)
    with in_a():
        operation = db.session.get(Operation, operation_id)
        assert operation.result["updated"] == updated and operation.result["skipped_rows"] == skipped
        people = list(db.session.scalars(sa.select(Contact)))
        assert len(people) == 1
        assert (people[0].city, people[0].job_title) == (expected_city, expected_job)


def test_create_anyway_adds_the_duplicate_inactive_for_the_duplicates_page(app, world, in_a):
    with in_a() as owner:
        make_contact("Ada", "Lovelace", email="ada@example.com")
        make_contact("Tel", "Only", email=None, phone="+14155550123")
        upload = _upload(owner, [["Email", "Phone", "First Name"], ["ada@example.com", "", "Ada"],
                                 ["", "415 555 0123", "Tel"]])
        upload_id, owner_id = upload.id, owner.id
    _import_to_end(app, in_a, upload_id, {"on_duplicate": "create"}, owner_id)
    with in_a():
        adas = db.session.scalars(sa.select(Contact).where(Contact.email == "ada@example.com")
                                  .order_by(Contact.id)).all()
        assert [a.is_active for a in adas] == [True, False]
        assert db.session.scalar(sa.select(sa.func.count(Contact.id)).where(Contact.phone == "+14155550123")) == 2


def test_duplicates_inside_the_file_are_merged_across_batches_too(app, world, in_a, monkeypatch):
    monkeypatch.setattr(engine, "CHUNK", 2)
    rows = [["Email", "First Name", "Last Name", "Phone"],
            ["ann@example.com", "Ann", "", ""], ["ANN@example.com", "", "Lee", "+14155550123"],
            ["bob@example.com", "Bob", "", ""], ["carl@example.com", "Carl", "", ""],
            ["ann@example.com", "", "", "+14155550199"]]
    with in_a() as owner:
        upload = _upload(owner, rows)
        upload_id, owner_id = upload.id, owner.id
    operation_id = _import_to_end(app, in_a, upload_id, {"on_duplicate": "skip"}, owner_id)
    with in_a():
        operation = db.session.get(Operation, operation_id)
        people = _contacts()
        assert sorted(people) == ["ann@example.com", "bob@example.com", "carl@example.com"]
        ann = people["ann@example.com"]
        assert (ann.first_name, ann.last_name, ann.phone, ann.extra_phones) == \
            ("Ann", "Lee", "+14155550123", [])
        assert operation.result["created"] == 3 and operation.result["merged"] == 2


def test_failed_rows_come_back_as_a_csv_ready_to_fix_and_reupload(app, world, in_a):
    with in_a() as owner:
        make_custom_field("Plan", "choice", choices=["Basic", "Pro"])
        upload = _upload(owner, [["Name", "Email", "Phone", "Plan"], ["Ann Lee", "ann@example", "", "Pro"],
                                 ["Bob", "bob@example.com", "12", "Gold"], ["=cmd()", "eve@example.com", "", ""],
                                 ["", "", "", "Basic"]])
        upload_id, owner_id = upload.id, owner.id
    operation_id = _import_to_end(app, in_a, upload_id, {}, owner_id)
    with in_a():
        operation = db.session.get(Operation, operation_id)
        assert (operation.changed, operation.errors) == (1, 3)
        assert operation.problems[0].startswith("Row 2: Email: That e-mail address is not valid")
        text = "".join(engine.failed_rows_csv(db.session.get(ContactImport, upload_id)))
    assert text.startswith("\ufeff")
    lines = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert lines[0] == ["Name", "Email", "Phone", "Plan", "Row", "Why it was not imported"]
    assert [line[:5] for line in lines[1:]] == [["Ann Lee", "ann@example", "", "Pro", "2"],
                                                ["Bob", "bob@example.com", "12", "Gold", "3"],
                                                ["", "", "", "Basic", "5"]]
    assert "“Gold” is not one of the choices" in lines[2][5] and "phone number" in lines[2][5]
    assert lines[3][5].startswith("no name, e-mail or phone")
    # Fixed and uploaded again, the file imports: the quote that kept "+1…" from being a
    # formula in a spreadsheet is read back as the number it guards.
    fixed = [lines[0][:4], ["Ann Lee", "ann@example.com", "'+1 415 555 0123", "Pro"]]
    with in_a() as owner:
        upload = _upload(owner, fixed, filename="people-failed-rows.csv")
        assert engine.preview(upload)[0].values["phone"] == "+14155550123"


def test_a_cell_holding_a_nul_character_fails_its_row_alone(app, world, in_a):
    """PostgreSQL text cannot hold NUL. The upload check reads only the start of a file, so a
    NUL further down reaches the rows: it must fail that row in words, not its whole batch
    in the database (which the job would retry, and fail, again and again)."""
    with in_a() as owner:
        make_custom_field("Memo", "long_text")
        padding = "x" * 70_000  # past the part of the file the upload check reads
        upload = _upload(owner, [["Name", "Email", "Notes", "Memo", "Padding"],
                                 ["Ann Lee", "ann@example.com", "", "", padding],
                                 ["Bob Stone", "bob@example.com", "Met at\x00the fair", "", ""],
                                 ["Cat Ray", "cat@example.com", "", "a\x00b", ""]])
        upload_id, owner_id = upload.id, owner.id
    operation_id = _import_to_end(app, in_a, upload_id, {}, owner_id)
    with in_a():
        operation = db.session.get(Operation, operation_id)
        assert (operation.status, operation.changed, operation.errors) == (Operation.DONE, 1, 2)
        why = "holds a NUL character, which text cannot contain (a damaged export?)"
        assert operation.problems == [f"Row 3: Notes: {why}", f"Row 4: Memo: {why}"]
        assert set(_contacts()) == {"ann@example.com"}


def test_bad_files_change_nothing(app, world, in_a):
    with in_a() as owner:
        for data, message in [(b"", "empty"), (b"Email,Name\r\n", "header row but no contacts"),
                              (b"\x00\x01\x02binary\x00", "not a spreadsheet")]:
            with pytest.raises(ImportFileError, match=message):
                engine.new_import(io.BytesIO(data), "x.csv", actor=owner)
            db.session.rollback()
    with in_a():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ContactImport)) == 0


def test_a_workbook_of_several_sheets_waits_for_its_sheet(app, world, in_a):
    data = xlsx_bytes({"Read me": [["Exported by Foo"]], "People": [["Email", "Given Name"], ["z@example.com", "Zoe"]]})
    with in_a() as owner:
        upload = engine.new_import(io.BytesIO(data), "book.xlsx", actor=owner)
        assert upload.needs_sheet and upload.sheets == ["Read me", "People"]
        with pytest.raises(ServiceError, match="Choose the sheet"):
            engine.start_import(upload, {}, actor=owner)
        engine.choose_sheet(upload, "People")
        assert upload.header == ["Email", "Given Name"] and upload.file is None and upload.row_count == 1
        assert engine.preview(upload)[0].values == {"email": "z@example.com", "first_name": "Zoe"}


def test_a_batch_that_fails_leaves_nothing_and_the_retry_resumes_after_the_last_committed_one(
        app, world, in_a, monkeypatch):
    """One worker on the import (others would carry on meanwhile: test_import_parallel)."""
    monkeypatch.setattr(engine, "CHUNK", 3)
    monkeypatch.setattr(engine, "PARALLEL_JOBS", 1)
    rows = [["Email"]] + [[f"p{i}@example.com"] for i in range(9)]
    with in_a() as owner:
        upload = _upload(owner, rows)
        upload_id, owner_id = upload.id, owner.id
    with in_a():
        operation_id = _run(app, upload_id, {}, owner_id)
    real_create = engine.Batch._create
    calls = {"n": 0}

    def crash_on_the_second_batch(self, entries):
        calls["n"] += 1
        ids = real_create(self, entries)
        if calls["n"] == 2:
            raise RuntimeError("worker lost its connection")
        return ids

    monkeypatch.setattr(engine.Batch, "_create", crash_on_the_second_batch)
    with app.app_context():
        run_pending_jobs()
    with in_a():
        operation = db.session.get(Operation, operation_id)
        first_batch = db.session.scalar(sa.select(sa.func.count()).select_from(Contact))
        assert 0 < first_batch < 9  # the second batch left nothing
        assert operation.status == "running" and operation.processed == first_batch
        assert "tried again" in operation.last_error
    from datetime import datetime, timezone
    with app.app_context():
        run_pending_jobs(now=datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(seconds=60))
    with in_a():
        operation = db.session.get(Operation, operation_id)
        assert operation.status == "done" and operation.processed == 9 and operation.changed == 9
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Contact)) == 9
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ContactImportBatch)) == 3


def test_undo_removes_created_contacts_and_restores_changed_fields_within_seven_days(app, world, in_a):
    with in_a() as owner:
        kept = make_contact("Ada", "Lovelace", email="ada@example.com", city=None, job_title="Engineer")
        circle = make_circle("Imported")
        upload = _upload(owner, [["Email", "City", "First Name"], ["ada@example.com", "Paris", "Ada"],
                                 ["new@example.com", "Rome", "Neu"]])
        ids = upload.id, owner.id, kept.id, circle.id
    _import_to_end(app, in_a, ids[0], {"on_duplicate": "fill", "circle_ids": [ids[3]]}, ids[1])
    with in_a() as owner:
        assert db.session.get(Contact, ids[2]).city == "Paris"
        upload = db.session.get(ContactImport, ids[0])
        assert upload.can_undo
        undo_id = engine.undo_import(upload, actor=owner).id
        with pytest.raises(ServiceError, match="undone already"):
            engine.undo_import(upload, actor=owner)
    with app.app_context():
        run_pending_jobs()
    with in_a():
        assert [c.email for c in db.session.scalars(sa.select(Contact))] == ["ada@example.com"]
        ada = db.session.get(Contact, ids[2])
        assert ada.city is None and ada.job_title == "Engineer"
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CircleMember)) == 0
        assert db.session.get(Operation, undo_id).summary == "1 contacts removed, 1 restored."
        event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "contact_import.undone")).one()
        assert event.details["removed"] == 1
        assert db.session.get(ContactImport, ids[0]).status == "undone"


def test_undo_removes_the_companies_the_import_added_unless_someone_uses_them(app, world, in_a):
    with in_a() as owner:
        known = make_company("Known Ltd")
        upload = _upload(owner, [["Email", "Company"], ["a@example.com", "Known Ltd"],
                                 ["b@example.com", "Brand New GmbH"], ["c@example.com", "Noted Partners"],
                                 ["d@example.com", "Brand New GmbH"]])
        ids = upload.id, owner.id, known.id
    _import_to_end(app, in_a, ids[0], {}, ids[1])
    with in_a() as owner:
        names = set(db.session.scalars(sa.select(Company.name)))
        assert names == {"Known Ltd", "Brand New GmbH", "Noted Partners"}
        noted = db.session.scalars(sa.select(Company).where(Company.name == "Noted Partners")).one()
        db.session.add(Note(company_id=noted.id, body="Met them at the fair"))  # someone works with it since
        engine.undo_import(db.session.get(ContactImport, ids[0]), actor=owner)
    with app.app_context():
        run_pending_jobs()
    with in_a():
        assert set(db.session.scalars(sa.select(Company.name))) == {"Known Ltd", "Noted Partners"}
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Contact)) == 0
        operation = db.session.scalars(sa.select(Operation).where(Operation.kind == engine.UNDO_KIND)).one()
        assert operation.summary == "4 contacts removed, 0 restored, 1 companies the import had added removed."


def test_company_details_fill_the_companies_the_import_adds(app, world, in_a):
    with in_a() as owner:
        make_company("Known Ltd", domain="known.example")
        upload = _upload(owner, [["Email", "Company", "Website", "Company Phone"],
                                 ["a@example.com", "Known Ltd", "https://www.other.example/about", "+44 20 7946 0958"],
                                 ["b@example.com", "Brand New GmbH", "https://www.brand-new.example/", "+49 30 901820"],
                                 ["c@example.com", "Broken Site Inc", "not a website", ""]])
        assert upload.mapping == ["email", "company_name", "company_domain", "company_phone"]
        problems = [row.problems for row in engine.preview(upload)]
        assert problems[:2] == [{}, {}] and problems[2] == {2: "Enter a domain like example.com."}
        ids = upload.id, owner.id
    _import_to_end(app, in_a, ids[0], {}, ids[1])
    with in_a():
        companies = {c.name: c for c in db.session.scalars(sa.select(Company))}
        assert set(companies) == {"Known Ltd", "Brand New GmbH"}
        assert (companies["Brand New GmbH"].domain, companies["Brand New GmbH"].phone) == \
            ("brand-new.example", "+4930901820")
        assert companies["Known Ltd"].domain == "known.example" and companies["Known Ltd"].phone is None
        failed = list(engine.failed_rows(db.session.get(ContactImport, ids[0])))
        assert failed[1][-1] == "Website: Enter a domain like example.com."


def test_undo_is_refused_after_seven_days(app, world, in_a):
    with in_a() as owner:
        upload = _upload(owner, [["Email"], ["a@example.com"]])
        upload_id, owner_id = upload.id, owner.id
    _import_to_end(app, in_a, upload_id, {}, owner_id)
    with in_a() as owner:
        upload = db.session.get(ContactImport, upload_id)
        upload.finished_at = utcnow() - timedelta(days=8)
        with pytest.raises(ServiceError, match="7 days"):
            engine.undo_import(upload, actor=owner)


def test_a_killed_worker_leaves_no_half_batch_and_the_sweep_resumes_the_import(app, world, in_a, monkeypatch,
                                                                             queue_env, database_url):
    """A real `flask --app wsgi worker` killed with SIGKILL in the middle of an import: the batch
    it was in rolls back whole, the sweep queues the import again, a new worker finishes it from
    the last committed batch, and every row of the file is one contact, imported once."""
    import os
    import signal
    import time

    from core.operations import resume_stalled

    monkeypatch.setattr(engine, "CHUNK", 20)  # the rows are frozen here: batches of 20 for the worker too
    rows = [["Email", "First Name", "Phone"]] + [[f"kill{i:04d}@example.com", f"Kill{i}", ""] for i in range(1500)]
    with in_a() as owner:
        upload = _upload(owner, rows)
        upload_id, owner_id = upload.id, owner.id
    with in_a():
        operation_id = _run(app, upload_id, {"tags": ["fair"]}, owner_id)

    def state():
        with app.app_context(), tenant_context(world.a.id):
            operation = db.session.get(Operation, operation_id)
            result = (operation.status, operation.processed,
                      db.session.scalar(sa.select(sa.func.count(Contact.id))),
                      db.session.scalar(sa.select(sa.func.count(ContactImportBatch.id))))
            db.session.commit()
            return result

    env = {**os.environ, **queue_env, "DATABASE_URL": database_url, "SECRET_KEY": "test-secret-key",
           "JOBS_WORKERS": "1"}

    worker = start_worker(env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and state()[1] < 60:
            time.sleep(0.01)
        worker.send_signal(signal.SIGKILL)  # no clean-up of any kind: as if the machine died
    finally:
        output = worker.communicate(timeout=20)[0]
    time.sleep(0.5)  # the database notices the dead connection and rolls its batch back
    status, processed, contacts, batches = state()
    assert status == "running" and 60 <= processed < 1500, (processed, output)
    assert contacts == processed and batches == processed // 20, "only whole batches are written"

    with app.app_context():
        assert resume_stalled(utcnow() + timedelta(minutes=3)) == [operation_id]
    worker = start_worker(env)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and state()[0] != "done":
            time.sleep(0.1)
    finally:
        worker.terminate()
        output = worker.communicate(timeout=20)[0]
    assert state() == ("done", 1500, 1500, 75), output
    with in_a():
        emails = db.session.scalars(sa.select(Contact.email)).all()
        assert sorted(emails) == sorted(row[0] for row in rows[1:])
        per_contact = db.session.execute(sa.select(TimelineEntry.contact_id, sa.func.count(TimelineEntry.id))
                                         .where(TimelineEntry.kind == "imported")
                                         .group_by(TimelineEntry.contact_id)).all()
        assert len(per_contact) == 1500 and {n for _, n in per_contact} == {1}, "a row imported twice or never"
        assert db.session.scalar(sa.select(sa.func.count(ContactTag.id))) == 1500
        assert db.session.get(ContactImport, upload_id).status == "done"


def test_abandoned_uploads_and_old_undo_data_expire(app, world, in_a):
    with in_a() as owner:
        abandoned = _upload(owner, [["Email"], ["x@example.com"]])
        abandoned.created_at = utcnow() - timedelta(days=2)
        fresh = _upload(owner, [["Email"], ["y@example.com"]])
        done = _upload(owner, [["Email"], ["z@example.com"], ["bad"]])
        ids = abandoned.id, fresh.id, done.id, owner.id
    _import_to_end(app, in_a, ids[2], {}, ids[3])
    with app.app_context():
        assert engine.expire_imports() == (1, 0)
        assert engine.expire_imports(utcnow() + timedelta(days=8)) == (1, 1)
    with in_a():
        assert db.session.scalars(sa.select(ContactImport.id).order_by(ContactImport.id)).all() == [ids[2]]
        assert db.session.scalar(sa.select(sa.func.count(ContactImportChunk.id))) == 0
        assert db.session.scalar(sa.select(sa.func.count(ContactImportBatch.id))) == 0
        assert db.session.get(ContactImport, ids[2]).counts["created"] == 1


def test_an_import_stops_when_its_starter_may_no_longer_import(app, world, in_a):
    with in_a():
        admin = db.session.get(StaffUser, world.a.members["admin"].id)
        upload = _upload(admin, [["Email"], ["a@example.com"]])
        upload_id, admin_id = upload.id, admin.id
    with in_a():
        operation_id = _run(app, upload_id, {}, admin_id)
        db.session.get(StaffUser, admin_id).role = "staff"  # Staff may not import, by default
    with app.app_context():
        run_pending_jobs()
    with in_a():
        operation = db.session.get(Operation, operation_id)
        assert operation.status == "failed" and "may no longer import" in operation.last_error
        assert db.session.scalar(sa.select(sa.func.count(Contact.id))) == 0
        assert db.session.get(ContactImport, upload_id).status == "failed"


def test_a_file_like_one_mapped_before_gets_the_saved_mapping(app, world, in_a):
    with in_a() as owner:
        engine.save_mapping("CRM export", ["Kontakt", "Mail", "Ort"], ["full_name", "email", ""], actor=owner)
        same = _upload(owner, [["Mail", "Kontakt", "Ort"], ["a@example.com", "Ann Lee", "Bonn"]])
        other = _upload(owner, [["Mail", "Kontakt", "City"], ["a@example.com", "Ann Lee", "Bonn"]])
        assert same.mapping == ["email", "full_name", ""]
        assert other.mapping == ["email", "", "city"]  # not every column known: the guess
