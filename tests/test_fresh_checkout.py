"""Every operator command works on a fresh checkout: the tracked files only, no instance/
folder, no queue file, no database yet. Run as an operator would, in a separate process."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.support import ROOT


@pytest.fixture
def checkout(tmp_path):
    """The tracked files as `git clone` would lay them out (with today's edits in them)."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    target = tmp_path / "portico"
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    assert not (target / "instance").exists()
    return target


def _flask(checkout, env, *args):
    base = {k: v for k, v in os.environ.items()
            if k not in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "JOBS_SQLITE_PATH", "PORTICO_ENV")}
    return subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=checkout,
                          env={**base, "PLATFORM_DOMAIN": "localhost", **env}, capture_output=True, text=True,
                          timeout=180)


def test_a_production_like_start_without_redis_migrates_and_serves_commands(checkout, tmp_path):
    """SECRET_KEY and DATABASE_URL set, no REDIS_URL: the embedded queue's file goes under
    instance/, which nothing else has created."""
    env = {"SECRET_KEY": "a-fixed-secret-for-this-test", "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.sqlite'}"}
    upgraded = _flask(checkout, env, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert (checkout / "instance" / "jobs.sqlite").exists()
    created = _flask(checkout, env, "tenant", "create", "--slug", "fresh", "--name", "Fresh Co",
                     "--owner-email", "owner@fresh.example", "--owner-password", "quiet-maple-lantern-8")
    assert created.returncode == 0, created.stderr
    assert "Created tenant fresh" in created.stdout
    listed = _flask(checkout, env, "tenant", "list")
    assert listed.returncode == 0 and "fresh" in listed.stdout, listed.stderr
    pending = _flask(checkout, env, "jobs", "--help")
    assert pending.returncode == 0, pending.stderr


def test_a_bare_start_keeps_everything_under_instance(checkout):
    """Nothing set at all (`make run`'s first step): database, queue and key under instance/."""
    upgraded = _flask(checkout, {}, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert {p.name for p in (checkout / "instance").iterdir()} >= {"portico.sqlite", "secret_key", "jobs.sqlite"}


def test_a_database_in_a_folder_not_made_yet(checkout, tmp_path):
    env = {"SECRET_KEY": "a-fixed-secret-for-this-test",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'not' / 'yet' / 'there.sqlite'}",
           "JOBS_SQLITE_PATH": str(tmp_path / "queue" / "jobs.sqlite")}
    upgraded = _flask(checkout, env, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert (tmp_path / "not" / "yet" / "there.sqlite").exists() and (tmp_path / "queue" / "jobs.sqlite").exists()
