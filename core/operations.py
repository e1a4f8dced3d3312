"""Background operations: long work a staff member starts (a bulk change of 150,000 contacts,
an import) that runs as a job and reports its progress on a page of its own.

An Operation is the record people see: what it does, how far it got, what came of it. What
it works through is frozen when it is created, cut into numbered chunks (for a bulk change,
the ids of the contacts the member had selected when they pressed the button, 500 a chunk):
the selection may change afterwards, the operation acts on what they saw. A chunk is one row
holding its ids, so freezing a million ids writes two thousand rows, not a million.

`work_through()` is the job's loop: each chunk in a transaction of its own that also moves
the operation's resume point and counts, with the operation's row locked, so a crash or a
retry resumes after the last committed chunk and nothing is applied twice. The domain
(crm.bulk, imports) says what one chunk does.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

import sqlalchemy as sa
from huey import crontab
from sqlalchemy.orm import Mapped, mapped_column, relationship, selectinload

from core.audit import record, register_actions
from core.db import TenantScoped, UTCDateTime, db, tenant_fk, utcnow
from core.errors import ServiceError
from core.jobs import periodic_job
from core.permissions import can
from core.tenancy import cross_tenant

logger = logging.getLogger(__name__)

CHUNK = 500
PROBLEMS_KEPT = 20  # plain-words problems kept in the summary; the counts say how many in all

register_actions({"operation.cancelled": "Background task cancelled"})


# --- kinds of operation ------------------------------------------------------------------------

@dataclass(frozen=True)
class Kind:
    unit: str  # what its items are, in the plural: "contacts", "rows"
    summary: Callable[["Operation"], str]  # its result in a sentence
    job: Callable  # the core.jobs job that works it through: job(operation_id, tenant_id=…)
    parallel: int | Callable[[], int] = 1  # jobs that may share one operation (work_in_parallel), on PostgreSQL


_KINDS: dict[str, Kind] = {}


def register_kind(kind: str, *, unit: str, summary: Callable[["Operation"], str], job: Callable,
                  parallel: int | Callable[[], int] = 1) -> None:
    """Say how the pages speak of an operation of this kind, and which job runs it (its
    package calls this): the sweep below queues that job again when a worker died on it.
    `parallel`: the job runs work_in_parallel, and up to that many of it may share one
    operation (or a function saying how many, read each time jobs are queued)."""
    _KINDS[kind] = Kind(unit, summary, job, parallel)


def jobs_to_queue(kind: str, chunks_left: int) -> int:
    """How many jobs to queue for an operation of this kind with this many chunks left, when
    it starts and when it is resumed alike: one per chunk up to the kind's `parallel` on
    PostgreSQL; one elsewhere (SQLite writes one at a time) and for a kind worked in order.
    Jobs beyond the running workers wait, and find nothing left when their turn comes."""
    if db.session.get_bind().dialect.name != "postgresql":
        return 1
    parallel = _KINDS[kind].parallel
    return max(1, min(chunks_left, parallel() if callable(parallel) else parallel))


class Operation(TenantScoped, db.Model):
    __tablename__ = "operation"
    QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
    STATUSES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED)
    FINISHED = (DONE, FAILED, CANCELLED)
    LABELS = {QUEUED: "Waiting to start", RUNNING: "Running", DONE: "Done", FAILED: "Stopped by an error",
              CANCELLED: "Cancelled"}
    __tenant_table_args__ = (
        tenant_fk("started_by_id", "staff_user"),
        sa.CheckConstraint("status in ('queued', 'running', 'done', 'failed', 'cancelled')", name="status"),
        # The list page: a member's own, newest first (and all of the tenant's by id).
        sa.Index("ix_operation_tenant_id_started_by_id_id", "tenant_id", "started_by_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(40))  # "contacts.bulk", "contacts.import", …
    title: Mapped[str] = mapped_column(sa.String(300))  # what people read: "Add to a circle: Newsletter"
    status: Mapped[str] = mapped_column(sa.String(20), default=QUEUED)
    params: Mapped[dict] = mapped_column(sa.JSON, default=dict)  # what to do, for the job
    total: Mapped[int] = mapped_column(default=0)
    processed: Mapped[int] = mapped_column(default=0)
    changed: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    errors: Mapped[int] = mapped_column(default=0)
    # Other counts and the plain-words problems, by the kind's own names.
    result: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    last_error: Mapped[str | None] = mapped_column(sa.String(1000))
    resume_after: Mapped[int | None]  # the last chunk done (its seq): a retry starts after it
    attempts: Mapped[int] = mapped_column(default=0)
    started_by_id: Mapped[int | None]
    created_at: Mapped[object] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[object | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[object | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[object | None] = mapped_column(UTCDateTime)

    started_by = relationship(
        "StaffUser", foreign_keys="[Operation.started_by_id]",
        primaryjoin="and_(Operation.started_by_id == StaffUser.id, Operation.tenant_id == StaffUser.tenant_id)",
        viewonly=True)

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def status_label(self) -> str:
        return self.LABELS[self.status]

    @property
    def percent(self) -> int:
        return 100 if not self.total else min(100, self.processed * 100 // self.total)

    @property
    def unit(self) -> str:
        kind = _KINDS.get(self.kind)
        return kind.unit if kind else "items"

    @property
    def summary(self) -> str | None:
        """The result in a sentence, once there is one."""
        kind = _KINDS.get(self.kind)
        return kind.summary(self) if kind and self.processed else None

    @property
    def problems(self) -> list[str]:
        return list((self.result or {}).get("problems", []))

    def progress(self) -> dict:
        """What the progress page shows, as data (its JSON endpoint)."""
        return {
            "id": self.id, "status": self.status, "status_label": self.status_label, "finished": self.is_finished,
            "total": self.total, "processed": self.processed, "percent": self.percent, "unit": self.unit,
            "changed": self.changed, "skipped": self.skipped, "errors": self.errors,
            "last_error": self.last_error, "summary": self.summary,
            # The kind's own counts ("created", "updated" of an import), live.
            "counts": {k: v for k, v in (self.result or {}).items() if isinstance(v, int)},
        }

    def __str__(self) -> str:
        return self.title


class OperationChunk(TenantScoped, db.Model):
    """A part of what an operation works through, frozen when it was created: for a bulk
    change, the ids of up to CHUNK contacts. Worked through in seq order, one transaction
    each; removed when the operation finishes."""

    __tablename__ = "operation_chunk"
    __tenant_table_args__ = (
        tenant_fk("operation_id", "operation", ondelete="CASCADE"),
        sa.UniqueConstraint("tenant_id", "operation_id", "seq"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    operation_id: Mapped[int]
    seq: Mapped[int]
    refs: Mapped[list] = mapped_column(sa.JSON)


# --- starting, seeing and cancelling ----------------------------------------------------------

def create_operation(kind: str, title: str, params: dict, refs: list[int], *, started_by,
                     chunk: int = CHUNK) -> Operation:
    """A queued operation over `refs`, frozen now (in this transaction) in chunks of `chunk`.
    The caller queues its job with core.jobs.on_commit, so it starts only once this is
    committed."""
    ordered = sorted(set(refs))
    operation = Operation(kind=kind, title=title[:300], params=params, total=len(ordered),
                          started_by_id=getattr(started_by, "id", None))
    db.session.add(operation)
    db.session.flush()
    chunks = [{"operation_id": operation.id, "seq": seq, "refs": ordered[start:start + chunk]}
              for seq, start in enumerate(range(0, len(ordered), chunk))]
    if chunks:
        db.session.execute(sa.insert(OperationChunk), chunks)
    return operation


def may_see(staff, operation: Operation) -> bool:
    """Staff see the operations they started; Owners and Admins see all of the tenant's."""
    return operation.started_by_id == staff.id or can(staff, "operations.view_all")


def operations_for(staff, *, limit: int = 50) -> list[Operation]:
    """The newest operations the member may see."""
    query = sa.select(Operation).options(selectinload(Operation.started_by)).order_by(Operation.id.desc()).limit(limit)
    if not can(staff, "operations.view_all"):
        query = query.where(Operation.started_by_id == staff.id)
    return list(db.session.scalars(query))


def cancel_operation(operation: Operation, *, actor) -> None:
    """Stop it before the next chunk: what is done stays done (each chunk is complete)."""
    operation = _lock(operation.id)
    if operation.is_finished:
        raise ServiceError(f"This task has already finished ({operation.status_label.lower()}).")
    _close(operation, Operation.CANCELLED)
    record("operation.cancelled", operation, actor=actor,
           details={"kind": operation.kind, "processed": operation.processed, "total": operation.total})


# --- the job's loop ----------------------------------------------------------------------------

Counts = dict  # "changed", "skipped", "errors" go to columns; other ints add up in result; "problems" is a list
Step = Callable[[list[int]], Counts]


def work_through(operation_id: int, *, prepare: Callable[[Operation], Step],
                 finish: Callable[[Operation], None] | None = None, retries: int) -> None:
    """Run an operation to its end, a chunk per transaction; call it from a job running as
    the operation's tenant.

    `prepare(operation)` is called again for every chunk (so who may do what, and what the
    change needs, is checked afresh) and returns the step that applies one chunk of refs.
    A ServiceError from either means the operation cannot go on (its circle was archived,
    its starter deactivated): it stops as failed, with that message, and is not retried.
    Any other exception is recorded in plain words and re-raised, for the job to be retried
    (`retries` times, as the job is declared); the retry resumes after the last committed
    chunk. `finish(operation)` runs in the last transaction, when the operation is done or
    has failed for good."""
    operation = _lock(operation_id)
    if operation is None or operation.is_finished:
        db.session.commit()
        return
    operation.attempts += 1
    db.session.commit()
    try:
        while True:
            operation = _lock(operation_id)
            if operation.is_finished:  # cancelled meanwhile
                db.session.commit()
                return
            if operation.status == Operation.QUEUED:
                operation.status, operation.started_at = Operation.RUNNING, utcnow()
            part = db.session.scalar(
                sa.select(OperationChunk)
                .where(OperationChunk.operation_id == operation.id,
                       OperationChunk.seq > (-1 if operation.resume_after is None else operation.resume_after))
                .order_by(OperationChunk.seq).limit(1))
            if part is None:
                _close(operation, Operation.DONE)
                if finish is not None:
                    finish(operation)
                db.session.commit()
                return
            step = prepare(operation)
            _add_counts(operation, step(list(part.refs)), done=len(part.refs))
            operation.resume_after = part.seq
            operation.last_error = None
            db.session.commit()
    except ServiceError as exc:
        db.session.rollback()
        _fail(operation_id, exc.message, finish)
    except Exception:
        db.session.rollback()
        operation = _lock(operation_id)
        final = operation.attempts > retries
        logger.exception("operation %s (%s) failed on attempt %s%s", operation_id, operation.kind,
                         operation.attempts, "; giving up" if final else "; it will be retried")
        where = f"after {operation.processed:,} of {operation.total:,} {operation.unit}"
        if final:
            _fail(operation_id, f"Stopped {where}: something went wrong on our side, several times. "
                                "What was done before stays done.", finish)
            return
        operation.last_error = (f"Something went wrong on our side {where}; it is tried again automatically "
                                "in a moment, from where it stopped.")
        operation.updated_at = utcnow()
        db.session.commit()
        raise


def work_in_parallel(operation_id: int, *, prepare: Callable[[Operation], Step],
                     finish: Callable[[Operation], None] | None = None, retries: int) -> None:
    """`work_through` for an operation whose chunks are independent of each other (an import
    whose rows are split so that one person's rows share a chunk): every job running this
    takes the next chunk nobody holds, so as many workers as run share the operation.

    On PostgreSQL a chunk is claimed with its row lock (FOR UPDATE SKIP LOCKED) for the
    transaction that applies it, and deleted in that transaction: a worker that dies leaves its
    chunk unclaimed for the next one, and nothing is applied twice. The operation's row is
    locked only at the end of a chunk's transaction, to add its counts: the last chunk to
    commit finds none left and finishes the operation, exactly once. A cancellation is seen
    there too, and the chunk's work is rolled back. Failures count on the operation (not
    runs, which are many at once): after `retries` of them it stops for good. Elsewhere
    (SQLite: one writer at a time) it is `work_through`."""
    if db.session.get_bind().dialect.name != "postgresql":
        return work_through(operation_id, prepare=prepare, finish=finish, retries=retries)
    now = utcnow()
    db.session.execute(sa.update(Operation).where(Operation.id == operation_id, Operation.status == Operation.QUEUED)
                       .values(status=Operation.RUNNING, started_at=now, updated_at=now))
    db.session.commit()
    try:
        while True:
            operation = db.session.scalar(sa.select(Operation).where(Operation.id == operation_id)
                                          .execution_options(populate_existing=True))
            if operation is None or operation.is_finished:
                db.session.commit()
                return
            part = db.session.scalar(
                sa.select(OperationChunk).where(OperationChunk.operation_id == operation_id)
                .order_by(OperationChunk.seq).limit(1).with_for_update(skip_locked=True))
            counts = prepare(operation)(list(part.refs)) if part is not None else None
            operation = _lock(operation_id)
            if operation.is_finished:  # cancelled (or failed) meanwhile: this chunk's work is not kept
                db.session.rollback()
                _drop_chunks(operation_id)  # the one this job held, which the cancellation skipped
                db.session.commit()
                return
            if part is not None:
                _add_counts(operation, counts, done=len(part.refs))
                operation.last_error = None
                db.session.delete(part)
                db.session.flush()
            left = db.session.scalar(sa.select(sa.func.count(OperationChunk.id))
                                     .where(OperationChunk.operation_id == operation_id))
            if not left:
                _close(operation, Operation.DONE)
                if finish is not None:
                    finish(operation)
            db.session.commit()
            if part is None or not left:
                return  # the chunks left are being applied by other workers; the last of them finishes
    except ServiceError as exc:
        db.session.rollback()
        _fail(operation_id, exc.message, finish)
    except Exception:
        db.session.rollback()
        operation = _lock(operation_id)
        operation.attempts += 1
        final = operation.attempts > retries
        logger.exception("operation %s (%s) failed (%s failures)%s", operation_id, operation.kind,
                         operation.attempts, "; giving up" if final else "; it will be retried")
        where = f"after {operation.processed:,} of {operation.total:,} {operation.unit}"
        if final:
            _fail(operation_id, f"Stopped {where}: something went wrong on our side, several times. "
                                "What was done before stays done.", finish)
            return
        operation.last_error = (f"Something went wrong on our side {where}; it is tried again automatically "
                                "in a moment, from where it stopped.")
        operation.updated_at = utcnow()
        db.session.commit()
        raise


# --- when a worker dies ------------------------------------------------------------------------

# An operation commits progress every chunk (a second or so); one silent this long has lost its
# worker (killed, out of memory, the machine gone), which the queue does not notice.
STALLED_AFTER = timedelta(minutes=2)


def resume_stalled(now: datetime | None = None, *, stalled_after: timedelta = STALLED_AFTER) -> list[int]:
    """Queue again every unfinished operation, of any tenant, that made no progress for
    `stalled_after`; returns their ids. Safe to overdo: a second run of an operation that
    is in fact still running waits for its row lock and carries on after the last committed
    chunk, so nothing is done twice."""
    now = now or utcnow()
    with cross_tenant("resume background operations whose worker died", audit=False):
        stalled = db.session.execute(
            sa.select(Operation.id, Operation.tenant_id, Operation.kind)
            .where(Operation.status.in_((Operation.QUEUED, Operation.RUNNING)),
                   Operation.updated_at < now - stalled_after)
            .order_by(Operation.id)).all()
        chunks_left: dict[int, int] = {}
        if stalled:
            ids = [row.id for row in stalled]
            # Claimed: the next sweep leaves them alone unless they stall again.
            db.session.execute(sa.update(Operation).where(Operation.id.in_(ids)).values(updated_at=now))
            chunks_left = dict(db.session.execute(
                sa.select(OperationChunk.operation_id, sa.func.count(OperationChunk.id))
                .where(OperationChunk.operation_id.in_(ids)).group_by(OperationChunk.operation_id)).all())
        # As many jobs as when it started: an import shared by several workers is again.
        jobs = {row.id: jobs_to_queue(row.kind, chunks_left.get(row.id, 0)) for row in stalled}
        db.session.commit()
    for operation_id, tenant_id, kind in stalled:
        logger.warning("operation %s (%s) made no progress for %s: queued again (%s jobs)", operation_id, kind,
                       stalled_after, jobs[operation_id])
        for _ in range(jobs[operation_id]):
            _KINDS[kind].job(operation_id, tenant_id=tenant_id)
    return [row.id for row in stalled]


@periodic_job(crontab(minute="*"))
def resume_stalled_operations() -> None:
    resume_stalled()


def _lock(operation_id: int) -> Operation | None:
    """The operation's row, locked for this transaction and read fresh, so two runs of the
    same job never work on one chunk together. The lock is a write (SQLite has no FOR
    UPDATE: a write takes its database lock; PostgreSQL locks the row); the read after it sees
    what the run before committed."""
    db.session.execute(sa.update(Operation).where(Operation.id == operation_id).values(updated_at=utcnow()))
    return db.session.scalar(sa.select(Operation).where(Operation.id == operation_id)
                             .execution_options(populate_existing=True))


def _add_counts(operation: Operation, counts: Counts, *, done: int) -> None:
    operation.processed += done
    result = dict(operation.result or {})
    for key, value in counts.items():
        if key in ("changed", "skipped", "errors"):
            setattr(operation, key, getattr(operation, key) + value)
        elif key == "problems":
            result["problems"] = (result.get("problems", []) + list(value))[:PROBLEMS_KEPT]
        else:
            result[key] = result.get(key, 0) + value
    operation.result = result
    operation.updated_at = utcnow()


def _close(operation: Operation, status: str) -> None:
    operation.status = status
    operation.finished_at = operation.updated_at = utcnow()
    _drop_chunks(operation.id)


def _drop_chunks(operation_id: int) -> None:
    """Delete an ending operation's chunks, but not one a parallel job holds right now (its
    row lock): waiting for it while holding the operation's row, which that job needs last,
    would deadlock. That job sees the operation ended and drops its chunk itself."""
    db.session.execute(sa.delete(OperationChunk).where(OperationChunk.id.in_(
        sa.select(OperationChunk.id).where(OperationChunk.operation_id == operation_id)
        .with_for_update(skip_locked=True).scalar_subquery())))


def _fail(operation_id: int, message: str, finish) -> None:
    operation = _lock(operation_id)
    operation.last_error = message[:1000]
    _close(operation, Operation.FAILED)
    if finish is not None:
        finish(operation)
    db.session.commit()
