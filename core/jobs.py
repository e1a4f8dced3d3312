"""Background jobs: durable and retried, with huey.

Embedded default: a SQLite file in instance/ holds the queue, and `flask --app wsgi worker`
(started by `make run` beside the web server) runs it; no other server needed. With
REDIS_URL set the queue lives in Redis and any number of workers run anywhere.

Side effects are queued with `on_commit(...)`: they are enqueued only once the transaction
that caused them has committed (the outermost one: releasing a savepoint commits nothing), and
dropped if it rolls back (a savepoint's rollback drops the jobs queued inside it only), so a
job never sees data that was not saved, and a failing job never undoes the data it follows.
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path

from flask import Flask, current_app, has_app_context
from huey import Huey
from huey.storage import MemoryStorage, RedisStorage, SqliteStorage
from sqlalchemy import event
from sqlalchemy.orm import Session

from core.db import db
from core.tenancy import tenant_context

logger = logging.getLogger(__name__)
huey = Huey("portico", results=False, storage_class=MemoryStorage)
_app: Flask | None = None


def init_app(app: Flask) -> None:
    global _app
    _app = app
    configure_queue(redis_url=app.config.get("REDIS_URL"), sqlite_path=app.config["JOBS_SQLITE_PATH"])


def configure_queue(*, redis_url: str | None, sqlite_path: str) -> None:
    """Where the queue lives: Redis when given, else the SQLite file."""
    if redis_url:
        huey.storage_class = RedisStorage
        huey.storage_kwargs = {"url": redis_url}
    else:
        # The file's folder (instance/ by default) may not exist yet on a fresh checkout.
        Path(sqlite_path).parent.mkdir(parents=True, exist_ok=True)
        huey.storage_class = SqliteStorage
        huey.storage_kwargs = {"filename": sqlite_path}
    huey.storage = huey.create_storage()


def job(*, retries: int = 8, retry_delay: int = 30, retry_backoff: float = 2.0, database: bool = True):
    """Declare a background job. It runs inside the app, as the tenant given by its
    `tenant_id` keyword (when given), and commits its own transaction. Failures retry with
    exponential backoff: 30 s, 1 min, 2 min, … about 2 hours in all with the defaults.
    `database=False`: the job never touches the database (it carries all it needs, as an
    e-mail does), so no tenant is looked up and no transaction is opened for it."""

    def decorator(fn):
        return huey.task(
            retries=retries, retry_delay=retry_delay, retry_backoff=retry_backoff,
            name=f"{fn.__module__}.{fn.__name__}",
        )(_in_app(fn, database=database))

    return decorator


def periodic_job(schedule):
    """Declare a job the worker runs on a schedule (`huey.crontab(minute="*")`), across
    tenants: it says itself which tenants it works in. Not retried: the next run is soon."""

    def decorator(fn):
        return huey.periodic_task(schedule, name=f"{fn.__module__}.{fn.__name__}")(_in_app(fn))

    return decorator


def _in_app(fn, *, database: bool = True):
    """`fn` run inside the app, as the tenant given by its `tenant_id` keyword (when given),
    committing at the end and rolling back on any error."""

    @functools.wraps(fn)
    def run_in_app(*args, tenant_id: int | None = None, **kwargs):
        # Worker threads have no app context of their own; the app that queued the job
        # in this process (tests, run-pending) does.
        app = current_app._get_current_object() if has_app_context() else _app
        with app.app_context():
            if not database:
                return fn(*args, **kwargs)
            try:
                if tenant_id is None:
                    result = fn(*args, **kwargs)
                else:
                    with tenant_context(tenant_id):
                        result = fn(*args, **kwargs)
                        # Committed as the tenant: leaving it first would tell the database so, for nothing.
                        db.session.commit()
                        return result
                db.session.commit()
                return result
            except BaseException:
                db.session.rollback()
                raise

    return run_in_app


_PENDING = "portico_jobs_on_commit"


def on_commit(task, *args, **kwargs) -> None:
    """Enqueue `task(*args, **kwargs)` once the current transaction commits: the outermost
    one. Queued inside a savepoint (`begin_nested()`), the job follows the savepoint's fate:
    released, it waits for the enclosing transaction; rolled back, it is dropped (and only
    it: jobs queued outside that savepoint stay)."""
    session = db.session()
    if session.get_transaction() is None:
        session.begin()  # the job belongs to the transaction the next commit or rollback ends
    level = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_PENDING, {}).setdefault(level, []).append((task, args, kwargs))


def on_commit_batched(task, item, **kwargs) -> None:
    """on_commit(task, [item], **kwargs), except that the items queued for the same task and
    keywords in the same transaction (or savepoint) go in one job, `task([item, …], **kwargs)`:
    one enqueue and one dequeue for the e-mails a change sends, however many."""
    session = db.session()
    if session.get_transaction() is None:
        session.begin()
    level = session.get_nested_transaction() or session.get_transaction()
    for queued, args, queued_kwargs in session.info.get(_PENDING, {}).get(level, ()):
        if queued is task and queued_kwargs == kwargs and len(args) == 1 and isinstance(args[0], list):
            args[0].append(item)  # serialised when the commit enqueues it
            return
    on_commit(task, [item], **kwargs)


def _level_above(transaction):
    """The savepoint or root transaction enclosing `transaction` (skipping the ORM's internal
    subtransactions, which are no level of their own)."""
    parent = transaction.parent
    while parent is not None and not parent.nested and parent.parent is not None:
        parent = parent.parent
    return parent


@event.listens_for(Session, "after_commit")
def _on_commit(session):
    # Fired for the outermost COMMIT and, in SQLAlchemy 2.0, for each RELEASE SAVEPOINT too;
    # the transaction committing is still the session's current one.
    nested = session.in_nested_transaction()
    transaction = session.get_nested_transaction() if nested else session.get_transaction()
    levels = session.info.get(_PENDING)
    if transaction is None or not levels:
        return
    jobs = levels.pop(transaction, [])
    if transaction.nested:
        # A savepoint released: nothing is committed yet. Its jobs wait for the level above.
        if jobs:
            levels.setdefault(_level_above(transaction), []).extend(jobs)
        return
    for task, args, kwargs in jobs:
        try:
            task(*args, **kwargs)
        except Exception:
            # The data is committed; failing the request now would only hide that. Say loudly
            # which side effect did not get queued, so an operator can act on it.
            logger.exception("could not queue job %s (args=%r, kwargs=%r)", task.name, args, kwargs)


@event.listens_for(Session, "after_transaction_end")
def _drop_pending(session, transaction):
    # Whatever is still held for a transaction that has ended was not committed with it: a
    # savepoint or transaction rolled back, or a session closed. (Committed ones were handed
    # on or enqueued above.) An outer rollback ends every savepoint inside it first.
    levels = session.info.get(_PENDING)
    if levels:
        levels.pop(transaction, None)


def pending_count() -> int:
    return huey.pending_count() + huey.scheduled_count()


def run_worker(workers: int | None = None) -> None:
    """The worker process: `flask --app wsgi worker`."""
    consumer = huey.create_consumer(
        workers=workers or current_app.config["JOBS_WORKERS"], worker_type="thread",
        periodic=True, check_worker_health=True,
    )
    consumer.run()


def run_pending_jobs(now=None) -> int:
    """Run every job that is due, in this process, until none is left; returns how many ran.
    For tests and the operator's `flask --app wsgi jobs run-pending`."""
    ran = 0
    while True:
        for task in huey.read_schedule(now):
            huey.enqueue(task)
        task = huey.dequeue()
        if task is None:
            return ran
        huey.execute(task, timestamp=now)  # the same clock decides what is due
        ran += 1
