"""The job worker as operators run it: `flask --app wsgi worker`, a separate process, on the
embedded SQLite queue and on Redis."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core import jobs
from core.db import db
from core.jobs import on_commit
from core.mail import deliver_mail

ROOT = Path(__file__).resolve().parent.parent


def _redis_url() -> str | None:
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        return None
    import redis

    try:
        redis.Redis.from_url(url).ping()
    except redis.ConnectionError:
        pytest.fail(f"TEST_REDIS_URL is set but Redis does not answer at {url}")
    return url


@pytest.fixture(params=["sqlite-queue", "redis-queue"])
def queue_env(request, app, tmp_path):
    """Point this process's queue and the worker's at the same backend."""
    saved = jobs.huey.storage_class, jobs.huey.storage_kwargs, jobs.huey.storage
    env = {"JOBS_SQLITE_PATH": str(tmp_path / "jobs.sqlite"), "REDIS_URL": ""}
    if request.param == "redis-queue":
        url = _redis_url()
        if url is None:
            pytest.skip("set TEST_REDIS_URL (CI does) to test the Redis-backed queue")
        env["REDIS_URL"] = url
    jobs.configure_queue(redis_url=env["REDIS_URL"] or None, sqlite_path=env["JOBS_SQLITE_PATH"])
    jobs.huey.flush()
    yield env
    jobs.huey.flush()
    jobs.huey.storage_class, jobs.huey.storage_kwargs, jobs.huey.storage = saved


def test_worker_process_delivers_queued_mail(app, mailbox, queue_env, database_url):
    env = {**os.environ, **queue_env, "DATABASE_URL": database_url, "SECRET_KEY": "test-secret-key",
           "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(mailbox.port), "JOBS_WORKERS": "1"}
    worker = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "worker"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        with app.test_request_context():
            on_commit(deliver_mail, {"to": "worker@example.com", "subject": "From the worker", "text": "Hello",
                                     "html": None})
            db.session.commit()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not mailbox.to("worker@example.com"):
            time.sleep(0.1)
    finally:
        worker.terminate()
        output = worker.communicate(timeout=20)[0]
    assert [m["Subject"] for m in mailbox.to("worker@example.com")] == ["From the worker"], output
    assert "Job worker running on" in output
