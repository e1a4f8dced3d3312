"""A web worker loads only what its pages need. Every worker carries each library the app
imports at start-up, so a library a page never uses (Stripe's, Alembic, S3's, …) is imported
where it is called; this keeps one from coming back with an import at the top of a module."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.support import ROOT

# Each with what it would cost a worker (RSS, measured): Stripe with requests and aiohttp
# ~14 MB, Flask-Migrate with Alembic, Mako and Pygments ~12 MB, Fernet ~7 MB, rapidfuzz ~3 MB,
# phonenumbers' geocoder ~98 MB. The rest belong to uploads and rich text, or to the tests.
NOT_IN_A_WORKER = ("stripe", "aiohttp", "requests", "flask_migrate", "alembic", "mako", "pygments",
                   "cryptography.fernet", "rapidfuzz", "phonenumbers.geocoder", "boto3", "botocore",
                   "s3transfer", "nh3", "filetype", "moto", "playwright", "openpyxl", "xlrd")

_PROBE = """
import json, sys
import wsgi
wsgi.app  # create_app(), as gunicorn's `wsgi:app` does
print(json.dumps(sorted(NAMES.intersection(sys.modules))))
"""


def test_starting_the_app_imports_no_library_a_page_does_not_use(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "PORTICO_ENV")}
    env.update({"SECRET_KEY": "worker-memory", "DATABASE_URL": f"sqlite:///{tmp_path / 'probe.sqlite'}",
                "JOBS_SQLITE_PATH": str(tmp_path / "jobs.sqlite"), "PLATFORM_DOMAIN": "localhost",
                "PYTHONPATH": str(ROOT)})
    probe = f"NAMES = {set(NOT_IN_A_WORKER)!r}\n" + _PROBE
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == [], f"the app imports at start-up what only some calls need (import it there): {loaded}"
