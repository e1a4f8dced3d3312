"""The job worker as operators run it: `flask --app wsgi worker`, a separate process, on the
embedded SQLite queue and on Redis."""
from __future__ import annotations

import os
import time


from core.db import db
from core.jobs import on_commit
from core.mail import deliver_mail
from tests.support import start_worker

def test_worker_process_delivers_queued_mail(app, mailbox, queue_env, database_url):
    env = {**os.environ, **queue_env, "DATABASE_URL": database_url, "SECRET_KEY": "test-secret-key",
           "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(mailbox.port), "JOBS_WORKERS": "1"}
    worker = start_worker(env)
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
