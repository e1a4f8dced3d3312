"""Everything that happens to a kickoff form's submission, from receipt to its outcome.

1. `receive_submission()` stores the answers exactly as sent and commits, before anything
   else happens: whatever fails afterwards, the lead is kept. The same idempotency key (one
   per rendered form) stores one submission however often the page is sent.
2. On commit it queues `process_submission`, the job that turns the lead into a contact
   (forms.processing): matching or creating the person, circles, tags, owner, company,
   portal login, e-mails. The outcome is recorded on the submission (state, contact,
   error), so staff see what became of every lead.
3. `requeue_stalled()` (run every minute by the worker) queues again the submissions a dead
   worker left waiting; `reprocess()` (the `flask --app wsgi forms reprocess` command) does
   the same on an operator's word, failed ones included.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from huey import crontab

from core import tenant_cache
from core.audit import record, register_actions
from core.db import db, utcnow
from core.errors import ServiceError
from core.identity import hash_password
from core.jobs import job, on_commit, periodic_job
from core.tenancy import cross_tenant, current_tenant
from crm.merge import MERGE_HOOKS
from crm.models import Contact
from forms import processing
from forms.models import Form, FormSubmission, PortalLogin, SubmissionState

logger = logging.getLogger(__name__)

register_actions({
    "form_submission.processed": "Form submission processed",
    "form_submission.failed": "Form submission could not be processed",
    "form_submission.requeued": "Form submission queued again",
})

# A submission still waiting this long after it was received (or last queued again) is taken
# for one whose worker died; each further try waits twice as long as the one before.
STALLED_AFTER = timedelta(minutes=5)
# The sweep's wait stops doubling after this many tries (5 minutes * 2**12: about 14 days), so
# a submission retried for ever cannot overflow timedelta and break the sweep of every tenant.
MAX_BACKOFF_DOUBLINGS = 12


# --- receipt ---------------------------------------------------------------------------------------

_IDEMPOTENCY_KEY = ("tenant_id", "form_id", "idempotency_key")


def _cacheable_insert(dml):
    """`dml`'s INSERT … ON CONFLICT (the submission's idempotency key) DO NOTHING, in forms
    SQLAlchemy can cache compiled: 2.0's dialect INSERTs opt out of its statement cache and
    would compile on every submission. The conflict target is fixed in the class, so the
    class alone is the clause's cache key."""

    class RepeatIgnored(dml.OnConflictDoNothing):
        _traverse_internals = []

        def __init__(self):
            super().__init__(index_elements=list(_IDEMPOTENCY_KEY))

    class Insert(dml.Insert):
        inherit_cache = True

    def insert(model, values: dict):
        statement = Insert(model).values(**values)
        statement._post_values_clause = RepeatIgnored()
        return statement
    return insert


_INSERTS = {}


def _insert_ignoring_repeats(values: dict):
    """INSERT … ON CONFLICT DO NOTHING of a submission, as the database speaks it (PostgreSQL
    and SQLite both do), returning it unless it was a repeat."""
    dialect = db.session.get_bind().dialect.name
    if dialect not in _INSERTS:
        from sqlalchemy.dialects.postgresql import dml as postgresql_dml
        from sqlalchemy.dialects.sqlite import dml as sqlite_dml

        _INSERTS[dialect] = _cacheable_insert(postgresql_dml if dialect == "postgresql" else sqlite_dml)
    return _INSERTS[dialect](FormSubmission, values).returning(FormSubmission)


def _existing(form: Form, idempotency_key: str) -> FormSubmission | None:
    return db.session.scalar(sa.select(FormSubmission).where(
        FormSubmission.form_id == form.id, FormSubmission.idempotency_key == idempotency_key))


def receive_submission(form: Form, answers: dict, *, idempotency_key: str, source_url: str = "",
                       utm: dict | None = None, ip_address: str = "", user_agent: str = "",
                       password: str | None = None) -> tuple[FormSubmission, bool]:
    """Store a submission of `form` (a Form, or what the public page keeps of one: its id,
    tenant and portal login are all this reads) and commit it; returns (submission, created).

    `answers` maps field keys to the text sent (a list of texts for multiple choice); they are
    stored as given: checking them is the public form's job, done before this is called.
    `password` (a portal login chosen on the form) is kept only as its hash, and only when
    the form's portal login is the password chosen on the form. The same
    (form, idempotency_key) again returns the submission stored the first time and False,
    also when two requests race (the database's unique key decides, by INSERT … ON CONFLICT DO
    NOTHING; the loser reads the winner's row). Processing is queued once the submission is
    committed.
    """
    if not idempotency_key:
        raise ServiceError("This form has expired. Reload the page and send it again.", field="idempotency_key")
    key = idempotency_key[:64]
    values = dict(
        form_id=form.id, idempotency_key=key, answers=dict(answers), source_url=(source_url or "")[:2000],
        utm=dict(utm or {}), ip_address=(ip_address or "")[:45], user_agent=(user_agent or "")[:500],
        state=SubmissionState.RECEIVED, attempts=1,  # how often processing was queued
        submitted_at=utcnow(),
        # Only a form that lets the registrant choose their password keeps one, as a hash.
        portal_password_hash=hash_password(password) if password and form.portal_login == PortalLogin.PASSWORD
        else None,
    )
    # One statement: stored, or (the same page sent again, or twice at once) refused by the
    # unique key, and then the first one is read.
    submission = db.session.scalars(_insert_ignoring_repeats(values)).first()
    if submission is None:
        existing = _existing(form, key)
        if existing is None:
            raise RuntimeError("a submission refused as a repeat could not be read")
        db.session.commit()
        return existing, False
    on_commit(process_submission, submission.id, tenant_id=submission.tenant_id)
    db.session.commit()
    return submission, True


# --- processing (the job) --------------------------------------------------------------------------

def _lock(submission_id: int) -> FormSubmission | None:
    """The submission's row, locked for this transaction and read fresh (with its form and the
    form's fields, which processing reads next), so two runs of its job (a retry and a requeue,
    two workers) never process it together: the second waits and then finds it processed.
    PostgreSQL: one SELECT … FOR UPDATE OF the submission. SQLite has no FOR UPDATE: a write
    takes its database lock first."""
    query = (sa.select(FormSubmission).where(FormSubmission.id == submission_id)
             .options(sa.orm.joinedload(FormSubmission.form).joinedload(Form.fields))
             .execution_options(populate_existing=True))
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=FormSubmission)
    else:
        db.session.execute(sa.update(FormSubmission).where(FormSubmission.id == submission_id)
                           .values(state=FormSubmission.state))
    return db.session.scalars(query).unique().first()


@job(retries=6, retry_delay=30)
def process_submission(submission_id: int) -> None:
    """Turn a stored submission into (or onto) a contact; see forms.processing. Runs again
    harmlessly: a processed submission is left as it is. A refusal of the CRM's rules
    (ServiceError) is recorded as the failure and not retried (it would fail the same way);
    anything else is recorded and retried."""
    # A job of moments: the tenant's configuration comes from the process's caches at the
    # version its row had as this transaction began (core.tenant_cache).
    tenant_cache.read_at(current_tenant())
    submission = _lock(submission_id)
    if submission is None or submission.state == SubmissionState.PROCESSED:
        return
    try:
        # No savepoint around it: on any error _record_failure rolls the whole transaction back.
        processing.process(submission)
    except ServiceError as exc:
        _record_failure(submission_id, exc.message)
        return
    except Exception as exc:
        _record_failure(submission_id, f"{type(exc).__name__}: {exc}"[:2000])
        raise


def _record_failure(submission_id: int, message: str) -> None:
    """Say on the submission why it failed, in a transaction of its own (committed whatever
    the job does next), so staff see it at once."""
    db.session.rollback()
    submission = _lock(submission_id)
    if submission is None or submission.state == SubmissionState.PROCESSED:
        return
    submission.state = SubmissionState.FAILED
    submission.error = message
    record("form_submission.failed", submission, actor=processing.FormActor(submission.form),
           details={"error": message})
    db.session.commit()


# --- stalled and failed submissions ----------------------------------------------------------------

def _requeue(rows, states: list[str], *, queue: bool = True) -> list[int]:
    """Count another try on each submission (waiting again) and, with `queue`, queue its job
    once this commits. One processed meanwhile is left as it is (the state is checked again
    in the UPDATE, which on PostgreSQL waits for a worker still holding the row); its job
    finds it processed and does nothing."""
    ids = [row.id for row in rows]
    if ids:
        db.session.execute(sa.update(FormSubmission)
                           .where(FormSubmission.id.in_(ids), FormSubmission.state.in_(states))
                           .values(attempts=FormSubmission.attempts + 1, state=SubmissionState.RECEIVED)
                           .execution_options(synchronize_session=False))
    for row in rows if queue else ():
        on_commit(process_submission, row.id, tenant_id=row.tenant_id)
    return ids


def requeue_stalled(now: datetime | None = None, *, stalled_after: timedelta = STALLED_AFTER) -> list[int]:
    """Queue again every submission, of any tenant, still waiting to be processed long after
    it was received: its worker died, or its job was lost. The wait doubles with each try
    (`attempts`, up to MAX_BACKOFF_DOUBLINGS times), so a submission that keeps stalling is not
    queued every minute (one queued again by hand long after it was sent may be queued once
    more sooner). Safe to overdo: a
    second run of a submission being processed waits for its row lock, then finds it
    processed."""
    now = now or utcnow()
    with cross_tenant("queue again form submissions whose worker died", audit=False):
        candidates = db.session.execute(
            sa.select(FormSubmission.id, FormSubmission.tenant_id, FormSubmission.submitted_at,
                      FormSubmission.attempts)
            .where(FormSubmission.state == SubmissionState.RECEIVED,
                   FormSubmission.submitted_at < now - stalled_after)
            .order_by(FormSubmission.id)).all()
        stalled = [row for row in candidates
                   if row.submitted_at < now - stalled_after * 2 ** _doublings(row.attempts)]
        ids = _requeue(stalled, [SubmissionState.RECEIVED])
        db.session.commit()
    for row in stalled:
        logger.warning("form submission %s waited since %s: queued again", row.id, row.submitted_at)
    return ids


def _doublings(attempts: int | None) -> int:
    return min(max(0, (attempts or 1) - 1), MAX_BACKOFF_DOUBLINGS)


@periodic_job(crontab(minute="*"))
def requeue_stalled_submissions() -> None:
    requeue_stalled()


def reprocess(*, include_failed: bool = False, queue: bool = True) -> list[int]:
    """Queue again the current tenant's submissions waiting to be processed, and with
    `include_failed` those that failed; returns their ids. For operators (the CLI, which
    with `queue=False` processes them itself)."""
    states = [SubmissionState.RECEIVED] + ([SubmissionState.FAILED] if include_failed else [])
    rows = db.session.execute(sa.select(FormSubmission.id, FormSubmission.tenant_id)
                              .where(FormSubmission.state.in_(states)).order_by(FormSubmission.id)).all()
    ids = _requeue(rows, states, queue=queue)
    if ids:
        record("form_submission.requeued", details={"count": len(ids), "ids": ids[:100],
                                                    "failed_included": include_failed})
    return ids


# --- merging contacts ------------------------------------------------------------------------------

def move_submissions(survivor: Contact, merged: Contact, actor) -> None:
    """MERGE_HOOKS: the merged contact's submissions are the survivor's now (their timeline
    entries move with the merge itself)."""
    db.session.execute(sa.update(FormSubmission).where(FormSubmission.contact_id == merged.id)
                       .values(contact_id=survivor.id).execution_options(synchronize_session="fetch"))


MERGE_HOOKS.append(move_submissions)
