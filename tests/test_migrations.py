"""Schema changes happen only through migrations: they run from empty on both databases, go
down and up again, and leave exactly the schema the models describe."""
from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from core.db import Base, db, include_for


def test_models_and_migrations_agree(app_ctx):
    """The session database was built by `flask db upgrade`; autogenerate must find nothing."""
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={
            "compare_type": True, "include_object": include_for(connection.dialect.name)})
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], f"models and migrations disagree; run `flask db migrate`: {diff}"


@pytest.fixture
def scratch_database_url(tmp_path):
    """An empty database of the kind under test, dropped afterwards."""
    admin_url = os.environ.get("TEST_DATABASE_URL")
    if not admin_url:
        yield f"sqlite:///{tmp_path / 'scratch.sqlite'}"
        return
    admin_url = admin_url.replace("postgresql://", "postgresql+psycopg://", 1)
    name = f"portico_scratch_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    yield engine.url.set(database=name).render_as_string(hide_password=False)
    with engine.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    engine.dispose()


@pytest.fixture
def keep_job_queue():
    """A second app re-points the process-wide job queue; give it back afterwards."""
    from core import jobs

    saved = jobs.huey.storage, jobs._app
    yield
    jobs.huey.storage, jobs._app = saved


def test_upgrade_downgrade_upgrade_from_empty(scratch_database_url, tmp_path, keep_job_queue):
    from wsgi import create_app

    scratch = create_app({"SQLALCHEMY_DATABASE_URI": scratch_database_url, "SECRET_KEY": "x",
                          "JOBS_SQLITE_PATH": str(tmp_path / "jobs.sqlite")})
    with scratch.app_context():
        upgrade()
        tables = set(sa.inspect(db.engine).get_table_names())
        assert {t.name for t in Base.metadata.sorted_tables} <= tables
        downgrade(revision="base")
        assert set(sa.inspect(db.engine).get_table_names()) <= {"alembic_version"}
        upgrade()
        assert {t.name for t in Base.metadata.sorted_tables} <= set(sa.inspect(db.engine).get_table_names())
        db.session.remove()
        db.engine.dispose()
