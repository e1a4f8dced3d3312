"""An import shared by every running worker: its rows cut into batches so that one person's
rows share a batch, each batch claimed by one worker at a time (PostgreSQL), the operation
finished once, by whichever worker commits the last batch."""
from __future__ import annotations

import io
import os
import time

import pytest
import sqlalchemy as sa

from core.audit import AuditEvent
from core.db import db
from core.operations import Operation, OperationChunk, work_in_parallel
from core.tenancy import TENANT_CHECKED_SQL, tenant_context
from crm.imports import engine
from crm.models import Contact
from tests.crm.import_files import csv_bytes
from tests.support import staff_member, start_worker


@pytest.fixture
def postgres(app):
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("batches are claimed with row locks on PostgreSQL; SQLite runs one at a time")


def _start(app, world, rows, *, queue=False) -> int:
    with app.app_context(), tenant_context(world.a.id):
        owner = staff_member(world.a, "owner")
        upload = engine.new_import(io.BytesIO(csv_bytes(rows)), "people.csv", actor=owner)
        operation = engine.start_import(upload, {"on_duplicate": "fill"}, actor=owner, queue=queue)
        db.session.commit()
        return operation.id


def _chunks(app, world, operation_id) -> list[list]:
    with app.app_context(), tenant_context(world.a.id):
        return [chunk.refs for chunk in db.session.scalars(
            sa.select(OperationChunk).where(OperationChunk.operation_id == operation_id).order_by(OperationChunk.seq))]


def test_one_persons_rows_share_a_batch_whatever_their_spelling(app, world, monkeypatch):
    monkeypatch.setattr(engine, "CHUNK", 4)
    people = [[f"Person {i}", f"person{i}@example.com", ""] for i in range(20)]
    again = [["P. Three", "PERSON3@Example.com ", ""], ["Phone Only", "", "(415) 555-0107"],
             ["Phone Again", "", "+1 415 555 0107"]]
    rows = [["Name", "Email", "Phone"], *people, *again]
    chunks = _chunks(app, world, _start(app, world, rows))
    lines = [line for chunk in chunks for line, _ in chunk]
    assert sorted(lines) == list(range(2, 2 + len(rows) - 1))  # every row once
    assert len(chunks) >= 4 and all(chunk == sorted(chunk) for chunk in chunks)  # file order within a batch
    batch_of = {line: n for n, chunk in enumerate(chunks) for line, _ in chunk}
    assert batch_of[5] == batch_of[22]  # person3@example.com, twice
    assert batch_of[23] == batch_of[24]  # the same phone, written two ways


def test_a_batch_held_by_another_worker_is_left_to_it_and_its_commit_finishes_the_import(
        app, world, postgres, monkeypatch):
    monkeypatch.setattr(engine, "CHUNK", 5)
    rows = [["Name", "Email"]] + [[f"Person {i}", f"person{i}@example.com"] for i in range(30)]
    operation_id = _start(app, world, rows)
    held = _chunks(app, world, operation_id)[0]

    with app.app_context():
        other = db.engine.connect()  # another worker, in the middle of the first batch
    other_tx = other.begin()
    other.execute(sa.text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(world.a.id)})
    other.execute(sa.text("SELECT id FROM operation_chunk WHERE operation_id = :o ORDER BY seq LIMIT 1 FOR UPDATE"),
                  {"o": operation_id})
    try:
        with app.app_context(), tenant_context(world.a.id):
            work_in_parallel(operation_id, prepare=engine._prepare, finish=engine._finish, retries=5)
            operation = db.session.get(Operation, operation_id)
            assert operation.status == Operation.RUNNING  # not done: one batch is someone else's
            assert operation.processed == 30 - len(held)
            assert db.session.scalar(sa.select(sa.func.count(Contact.id))) == 30 - len(held)
            db.session.commit()
    finally:
        other_tx.rollback()  # that worker died: its batch is free again
        other.close()
    with app.app_context(), tenant_context(world.a.id):
        work_in_parallel(operation_id, prepare=engine._prepare, finish=engine._finish, retries=5)
        operation = db.session.get(Operation, operation_id)
        assert operation.status == Operation.DONE and operation.processed == 30 and operation.changed == 30
        emails = db.session.scalars(sa.select(Contact.email)).all()
        assert len(emails) == len(set(emails)) == 30
        finished = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "contact_import.finished")).all()
        assert len(finished) == 1 and finished[0].details["created"] == 30


def test_two_worker_processes_share_one_import_and_finish_it_once(app, world, postgres, queue_env, database_url):
    if not queue_env["REDIS_URL"]:
        pytest.skip("several worker processes share a queue in Redis")
    rows = [["Name", "Email", "Phone"]] + [[f"Person {i}", f"person{i}@example.com", f"+1 415 555 {i % 10_000:04d}"]
                                           for i in range(6_000)]
    rows += [[f"Again {i}", f"PERSON{i}@example.com", ""] for i in range(0, 6_000, 100)]  # 60 repeats
    operation_id = _start(app, world, rows, queue=True)
    env = {**os.environ, **queue_env, "DATABASE_URL": database_url, "SECRET_KEY": "test-secret-key",
           "JOBS_WORKERS": "1"}
    workers = [start_worker(env), start_worker(env)]
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            with app.app_context(), tenant_context(world.a.id):
                status = db.session.scalar(sa.select(Operation.status).where(Operation.id == operation_id))
                db.session.commit()
            if status in Operation.FINISHED:
                break
            time.sleep(0.2)
    finally:
        for worker in workers:
            worker.terminate()
        outputs = [worker.communicate(timeout=30)[0] for worker in workers]
    with app.app_context(), tenant_context(world.a.id):
        operation = db.session.get(Operation, operation_id)
        assert operation.status == Operation.DONE, outputs
        assert operation.processed == 6_060 and operation.changed == 6_000
        assert operation.result["merged"] == 60
        emails = db.session.scalars(sa.select(Contact.email)).all()
        assert len(emails) == len(set(emails)) == 6_000
        assert db.session.scalar(sa.select(sa.func.count(AuditEvent.id)).where(
            AuditEvent.action == "contact_import.finished")) == 1
    assert all("run_import" in output for output in outputs), "both workers took batches of the import"


def _file_with_companies():
    """240 people, every third one again further down (the e-mail in capitals, then in the
    other-e-mail column), and eight new companies named all over the file."""
    rows = [["First Name", "Email", "Other email", "Phone", "Company"]]
    for i in range(240):
        rows.append([f"P{i}", f"person{i}@example.com", "", f"+1 415 555 {i:04d}", f"Newco {i % 8}"])
    for i in range(0, 240, 3):
        rows.append([f"P{i}", f"PERSON{i}@EXAMPLE.COM", "", "", ""])
        rows.append(["", "", f" Person{i}@example.com", f"+1 212 555 {i:04d}", ""])
    return rows


def test_two_workers_at_once_make_each_new_company_once_and_end_as_one_would(app, world, postgres, monkeypatch):
    """Two worker threads of one process, each holding a batch at the same moment: the eight
    companies the file names in every batch are made once each (not once per batch, and no
    batch uses a company another has not committed yet), the counts, the result and undo as
    with one worker."""
    import threading

    from crm.models import Company, TimelineEntry
    from tests.factories import make_company

    monkeypatch.setattr(engine, "CHUNK", 10)
    operation_id = _start(app, world, _file_with_companies())
    with app.app_context(), tenant_context(world.a.id):
        make_company("Newco 3 Inc.")  # an existing company: matched, not made again
        db.session.commit()
    together = threading.Barrier(2, timeout=30)
    taken: dict[int, int] = {}
    real_run = engine.Batch.run

    def run(self, rows):
        me = threading.get_ident()
        if me not in taken:
            together.wait()  # both workers hold a batch of the import at the same moment
        taken[me] = taken.get(me, 0) + 1
        return real_run(self, rows)

    monkeypatch.setattr(engine.Batch, "run", run)
    failures = []

    def worker():
        try:
            with app.app_context():
                engine.run_import.call_local(operation_id, tenant_id=world.a.id)
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures and len(taken) == 2
    with app.app_context(), tenant_context(world.a.id):
        operation = db.session.get(Operation, operation_id)
        assert (operation.status, operation.processed, operation.errors, operation.attempts) == ("done", 400, 0, 0)
        assert (operation.result["created"], operation.result["merged"]) == (240, 160)
        contacts = db.session.scalars(sa.select(Contact)).all()
        assert sorted(c.email for c in contacts) == sorted(f"person{i}@example.com" for i in range(240))
        assert sorted(db.session.scalars(sa.select(Company.name))) == [
            "Newco 0", "Newco 1", "Newco 2", "Newco 3 Inc.", "Newco 4", "Newco 5", "Newco 6", "Newco 7"]
        assert {c.company.name for c in contacts if c.first_name == "P3"} == {"Newco 3 Inc."}
        assert db.session.scalar(sa.select(sa.func.count(TimelineEntry.id)).where(
            TimelineEntry.kind == "imported")) == 240
        assert db.session.scalar(sa.select(sa.func.count(AuditEvent.id)).where(
            AuditEvent.action == "contact_import.finished")) == 1
        upload = db.session.get(engine.ContactImport, operation.params["import_id"])
        undo_id = engine.undo_import(upload, actor=None).id
        db.session.commit()
    monkeypatch.setattr(engine.Batch, "run", real_run)
    from core.jobs import run_pending_jobs

    with app.app_context():
        run_pending_jobs()
    with app.app_context(), tenant_context(world.a.id):
        assert db.session.get(Operation, undo_id).summary == (
            "240 contacts removed, 0 restored, 7 companies the import had added removed.")
        assert list(db.session.scalars(sa.select(Company.name))) == ["Newco 3 Inc."]
        db.session.commit()


def test_cancelling_while_a_worker_holds_a_batch_neither_waits_nor_keeps_half_of_it(app, world, postgres,
                                                                                   monkeypatch):
    """The member presses Cancel (another connection) while a worker is in the middle of a
    batch: the cancellation does not wait for that batch (the worker, needing the operation's
    row last, would deadlock with it), and the worker then drops its batch and the rest."""
    from core.operations import cancel_operation
    from crm.imports.models import ContactImportBatch

    monkeypatch.setattr(engine, "CHUNK", 10)
    operation_id = _start(app, world, _file_with_companies())
    real_run = engine.Batch.run
    calls = {"n": 0}

    def run(self, rows):
        calls["n"] += 1
        if calls["n"] == 3:
            with app.app_context(), tenant_context(world.a.id):
                db.session.execute(sa.text("SET LOCAL lock_timeout = '5s'")  # a wait fails the test
                                   .execution_options(**{TENANT_CHECKED_SQL: True}))
                cancel_operation(db.session.get(Operation, operation_id), actor=None)
                db.session.commit()
        return real_run(self, rows)

    monkeypatch.setattr(engine.Batch, "run", run)
    with app.app_context():
        engine.run_import.call_local(operation_id, tenant_id=world.a.id)
    with app.app_context(), tenant_context(world.a.id):
        operation = db.session.get(Operation, operation_id)
        written = db.session.scalars(sa.select(ContactImportBatch)).all()
        assert operation.status == "cancelled" and len(written) == 2
        assert db.session.scalar(sa.select(sa.func.count(Contact.id))) == sum(len(b.created) for b in written)
        assert db.session.scalar(sa.select(sa.func.count(OperationChunk.id))) == 0
        db.session.commit()


# --- rows the identity rule links, wherever they sit in the file ---------------------------------

HEADER = ["First Name", "Email", "Other email", "Phone", "Other phone"]


def _linked_file(groups: int) -> list[list]:
    """Groups of four rows, one of each group in every quarter of the file: A (e-mail X, phone
    P); B, P written another way with an extension, and another phone R, no e-mail; C, another
    e-mail and R; D, another e-mail with X among its other e-mails."""
    quarters = [[], [], [], []]
    for g in range(groups):
        x, p, r = f"x{g}@example.com", f"+1 415 555 {g:04d}", f"+1 212 555 {g:04d}"
        quarters[0].append([f"A{g}", x, "", p, ""])
        quarters[1].append([f"B{g}", "", "", f"(415) 555-{g:04d} ext. 12", r])
        quarters[2].append([f"C{g}", f"c{g}@example.com", "", f"212.555.{g:04d}", ""])
        quarters[3].append([f"D{g}", f"d{g}@example.com", f"{x.upper()}; other{g}@example.com", "", ""])
    return [HEADER, *[row for quarter in quarters for row in quarter]]


def _start_in(app, tenant, rows, on_duplicate="fill") -> int:
    with app.app_context(), tenant_context(tenant.id):
        owner = staff_member(tenant, "owner")
        upload = engine.new_import(io.BytesIO(csv_bytes(rows)), "linked.csv", actor=owner)
        operation = engine.start_import(upload, {"on_duplicate": on_duplicate}, actor=owner, queue=False)
        db.session.commit()
        return operation.id


def _people(app, tenant) -> list[tuple]:
    with app.app_context(), tenant_context(tenant.id):
        return sorted((c.first_name, c.email, tuple(c.extra_emails or ()), c.phone, tuple(c.extra_phones or ()))
                      for c in db.session.scalars(sa.select(Contact)))


def test_rows_linked_through_any_e_mail_or_phone_share_a_batch(app, world, monkeypatch):
    monkeypatch.setattr(engine, "CHUNK", 4)
    rows = _linked_file(6)
    chunks = _chunks(app, world, _start_in(app, world.a, rows))
    batch_of = {line: n for n, chunk in enumerate(chunks) for line, _ in chunk}
    assert sorted(batch_of) == list(range(2, len(rows) + 1)) and len(chunks) == 6
    for g in range(6):  # A, B, C and D of a group: lines 2 + g, 8 + g, 14 + g, 20 + g
        assert {batch_of[2 + g + 6 * q] for q in range(4)} == {batch_of[2 + g]}
    assert len({batch_of[2 + g] for g in range(6)}) == 6  # the groups spread over the batches


def test_one_persons_rows_fold_by_the_identity_rule_inside_a_batch(app, world):
    operation_id = _start_in(app, world.b, _linked_file(2))
    with app.app_context(), tenant_context(world.b.id):
        engine.run_inline(operation_id)
        db.session.commit()
        operation = db.session.get(Operation, operation_id)
        assert (operation.result["created"], operation.result["merged"]) == (4, 4)
    # B has no e-mail: A's phone makes it A. C's e-mail differs from A's: the phone it shares
    # with B (now A) does not make it A. D answers to A's e-mail among its other ones: A.
    assert _people(app, world.b) == sorted([
        ("A0", "x0@example.com", ("other0@example.com",), "+14155550000", ("+12125550000",)),
        ("A1", "x1@example.com", ("other1@example.com",), "+14155550001", ("+12125550001",)),
        ("C0", "c0@example.com", (), "+12125550000", ()),
        ("C1", "c1@example.com", (), "+12125550001", ()),
    ])


def test_linked_rows_imported_by_two_workers_at_once_give_the_contacts_one_worker_gives(
        app, world, postgres, monkeypatch):
    """The same file into two tenants holding the same contacts (phone-only ones the file's rows
    match): two worker threads holding a batch each at the same moment in A, one worker in B."""
    import threading

    from tests.factories import make_contact

    monkeypatch.setattr(engine, "CHUNK", 10)
    for tenant in (world.a, world.b):
        with app.app_context(), tenant_context(tenant.id):
            for g in range(0, 40, 5):
                make_contact(f"Known{g}", "", email=None, phone=f"+1415555{g:04d}")
            make_contact("Known", "Mail", email="x7@example.com")
            db.session.commit()
    rows = _linked_file(40)
    parallel, single = _start_in(app, world.a, rows), _start_in(app, world.b, rows)

    together = threading.Barrier(2, timeout=30)
    taken: dict[int, int] = {}
    real_run = engine.Batch.run

    def run(self, batch_rows):
        me = threading.get_ident()
        if me not in taken:
            together.wait()  # both workers hold a batch of the import at the same moment
        taken[me] = taken.get(me, 0) + 1
        return real_run(self, batch_rows)

    monkeypatch.setattr(engine.Batch, "run", run)
    failures = []

    def worker():
        try:
            with app.app_context():
                engine.run_import.call_local(parallel, tenant_id=world.a.id)
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures and len(taken) == 2 and sum(taken.values()) == 16
    monkeypatch.setattr(engine.Batch, "run", real_run)
    with app.app_context():
        engine.run_import.call_local(single, tenant_id=world.b.id)

    def outcome(tenant, operation_id):
        with app.app_context(), tenant_context(tenant.id):
            operation = db.session.get(Operation, operation_id)
            return (operation.status, operation.processed, operation.changed, operation.skipped, operation.errors,
                    {k: v for k, v in operation.result.items() if k != "problems"})
    assert outcome(world.a, parallel) == outcome(world.b, single)
    assert outcome(world.a, parallel)[:2] == ("done", 160)
    assert _people(app, world.a) == _people(app, world.b)
    # The nine known contacts (nine groups' A filled one of them: a phone-only one by A's
    # phone, "Known Mail" by x7), the other 31 groups' A, and every group's C.
    assert len(_people(app, world.a)) == 9 + 31 + 40


def test_a_stalled_import_is_queued_again_as_widely_as_it_started(app, world, monkeypatch):
    """The sweep finds two imports whose workers died (no progress for minutes): each is queued
    again with as many jobs as it would start with, one per batch left up to PARALLEL_JOBS on
    PostgreSQL (one on SQLite), and the jobs finish both, each once."""
    from datetime import timedelta

    from core import jobs
    from core.db import utcnow
    from core.operations import resume_stalled

    monkeypatch.setattr(engine, "CHUNK", 5)
    big = _start(app, world, [["Name", "Email"]] + [[f"Big {i}", f"big{i}@example.com"] for i in range(60)])
    small = _start(app, world, [["Name", "Email"]] + [[f"Small {i}", f"small{i}@example.com"] for i in range(15)])
    with app.app_context(), tenant_context(world.a.id):
        db.session.execute(sa.update(Operation).where(Operation.id.in_([big, small]))
                           .values(status=Operation.RUNNING, updated_at=utcnow() - timedelta(minutes=5)))
        db.session.commit()
        postgres = db.session.get_bind().dialect.name == "postgresql"
    with app.app_context():
        jobs.huey.flush()
        assert resume_stalled() == [big, small]
        assert jobs.pending_count() == (min(12, engine.PARALLEL_JOBS) + 3 if postgres else 2)
        assert resume_stalled() == [], "claimed: the next sweep leaves them to their jobs"
        jobs.run_pending_jobs()
    with app.app_context(), tenant_context(world.a.id):
        for operation_id, rows in ((big, 60), (small, 15)):
            operation = db.session.get(Operation, operation_id)
            assert (operation.status, operation.processed, operation.result["created"]) == ("done", rows, rows)
        assert db.session.scalar(sa.select(sa.func.count(Contact.id))) == 75
        assert db.session.scalar(sa.select(sa.func.count(AuditEvent.id)).where(
            AuditEvent.action == "contact_import.finished")) == 2
        db.session.commit()
