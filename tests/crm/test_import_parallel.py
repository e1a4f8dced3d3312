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
from core.tenancy import tenant_context
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
