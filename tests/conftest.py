"""The test world: one app per session, on SQLite or (TEST_DATABASE_URL) a real PostgreSQL,
a real SMTP sink, and two tenants with the same shape of data in every test.

On PostgreSQL the schema is created and used by a role that owns the tables but is neither
superuser nor BYPASSRLS, as in production: row-level security binds every test.

Each test starts from empty tables (truncated after the previous one) rather than rolling
back a transaction, because tests cross real commits: a live server thread for the browser
tests, and background jobs running in their own transactions.
"""
from __future__ import annotations

import os
import shutil
import socket

import pytest
from aiosmtpd.controller import Controller
from flask.testing import FlaskClient

from core import jobs
from core.db import Base, db
from core.dbtools import isolated_schema
from core.extensions import limiter
from core.jobs import huey, run_pending_jobs
from core.tenancy import tenant_context
from tests.support import PASSWORD, PLATFORM, Mailbox, Member, TenantWorld, host_of

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'portico-test.sqlite'}"
        return
    with isolated_schema(url) as app_url:
        yield app_url


@pytest.fixture(scope="session")
def mailbox():
    box = Mailbox()

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            box.receive(envelope.original_content or envelope.content)
            return "250 Message accepted for delivery"

    controller = Controller(Handler(), hostname="127.0.0.1", port=_free_port())
    controller.start()
    box.port = controller.port
    yield box
    controller.stop()


@pytest.fixture(scope="session")
def app(database_url, mailbox, tmp_path_factory):
    from flask_migrate import upgrade

    from wsgi import create_app

    application = create_app({
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "PLATFORM_DOMAIN": PLATFORM,
        "SECRET_KEY": "test-secret-key",
        "JOBS_SQLITE_PATH": str(tmp_path_factory.mktemp("jobs") / "jobs.sqlite"),
        "FILE_STORAGE_PATH": str(tmp_path_factory.mktemp("files")),
        "S3_BUCKET": None,
        "REDIS_URL": None,
        "RATELIMIT_STORAGE_URI": "memory://",
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": mailbox.port,
        # Cheap hashing keeps the suite fast; production keeps argon2's defaults.
        "ARGON2_TIME_COST": 1,
        "ARGON2_MEMORY_COST": 1024,
        "ARGON2_PARALLELISM": 1,
    })
    with application.app_context():
        upgrade()
        db.session.remove()
    yield application
    with application.app_context():
        db.engine.dispose()


def _empty_all_tables() -> None:
    """On a raw connection: the test harness, not the app, so tenancy does not apply."""
    tables = Base.metadata.sorted_tables
    with db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"TRUNCATE {', '.join(t.name for t in tables)} CASCADE")
        else:
            for table in reversed(tables):
                connection.execute(table.delete())


@pytest.fixture(autouse=True)
def _clean_slate(app, mailbox):
    yield
    with app.app_context():
        db.session.remove()
        _empty_all_tables()
    shutil.rmtree(app.config["FILE_STORAGE_PATH"], ignore_errors=True)  # stored uploads go with their rows
    huey.flush()
    limiter.reset()
    mailbox.messages.clear()


@pytest.fixture
def app_ctx(app):
    with app.app_context():
        yield
        db.session.remove()


@pytest.fixture
def deliver(app, mailbox):
    """Run the queued background jobs (e-mail delivery included); returns the mailbox."""

    def run() -> Mailbox:
        with app.app_context():
            run_pending_jobs()
        return mailbox

    return run


ROLES = ("owner", "admin", "staff")


class HostClient(FlaskClient):
    """A test client that talks to one host, as a browser on that site would."""

    host: str | None = None

    def open(self, *args, **kwargs):
        if self.host and "base_url" not in kwargs and args and isinstance(args[0], str):
            kwargs["base_url"] = f"http://{self.host}"
        return super().open(*args, **kwargs)


def _seed_tenant(slug: str, name: str, people: dict[str, tuple[str, str]]) -> TenantWorld:
    from core.accounts import create_staff_user
    from core.identity import StaffRole
    from core.tenants import create_tenant

    owner_email, owner_name = people["owner"]
    tenant, owner = create_tenant(slug, name, owner_email, PASSWORD, owner_name)
    world = TenantWorld(id=tenant.id, slug=slug, name=name)
    world.members["owner"] = Member(owner.id, owner.email, owner.name, StaffRole.OWNER)
    with tenant_context(tenant):
        for role in ("admin", "staff"):
            email, person = people[role]
            user = create_staff_user(email, person, role, password=PASSWORD)
            world.members[role] = Member(user.id, user.email, user.name, role)
    return world


@pytest.fixture
def world(app):
    """Two tenants with the same shape. Everything of B's carries the canary CANARY-B, so a
    leak into A's pages, exports or e-mails is easy to spot."""
    with app.app_context():
        a = _seed_tenant("acme", "Acme Corp", {
            "owner": ("olivia@acme.example", "Olivia Owner"),
            "admin": ("adam@acme.example", "Adam Admin"),
            "staff": ("sam@acme.example", "Sam Staff"),
        })
        b = _seed_tenant("globex", "Globex CANARY-B", {
            "owner": ("canary-b-owner@globex.example", "CANARY-B Owner"),
            "admin": ("canary-b-admin@globex.example", "CANARY-B Admin"),
            "staff": ("canary-b-staff@globex.example", "CANARY-B Staff"),
        })
        db.session.commit()
        db.session.remove()
    # Setting up the world sends nothing worth asserting on.
    huey.flush()

    class World:
        pass

    w = World()
    w.a, w.b = a, b
    return w


@pytest.fixture
def client_for(app):
    """A test client whose requests go to a tenant's host (or the platform's, with None)."""

    app.test_client_class = HostClient

    def make(slug: str | None):
        client = app.test_client()
        client.host = host_of(slug)
        return client

    return make


@pytest.fixture
def staff_client(client_for, world):
    """A client signed in as one of tenant A's members: staff_client("admin")."""
    from tests.support import login_staff

    def make(role: str = "owner", tenant: str = "a"):
        t = getattr(world, tenant)
        client = client_for(t.slug)
        response = login_staff(client, t.members[role].email)
        assert response.status_code == 302, response.get_data(as_text=True)
        return client

    return make


@pytest.fixture
def portal_client(app, client_for, world):
    """A client signed in to tenant A's portal (through the real sign-in page) as a new
    contact of that role with a ready login: portal_client("client"). The client carries
    .contact_id, .account_id and .email."""
    from tests.factories import make_contact, make_portal_login
    from tests.support import login_portal

    def make(role: str = "client", tenant: str = "a", first_name: str = "Cleo", **contact_fields):
        t = getattr(world, tenant)
        with app.app_context(), tenant_context(t.id):
            contact = make_contact(first_name, "Portal", role=role, **contact_fields)
            account = make_portal_login(contact)
            ids = contact.id, account.id, account.email
            db.session.commit()
            db.session.remove()
        client = client_for(t.slug)
        response = login_portal(client, ids[2])
        assert response.status_code == 302, response.get_data(as_text=True)
        client.contact_id, client.account_id, client.email = ids
        return client

    return make


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


@pytest.fixture(scope="session")
def stripe_server(tmp_path_factory):
    """The tests' Stripe (tests/stripe_server.py: localstripe, extended), one per test session
    on ports of its own, its state file private to the session."""
    from tests.stripe_server import StripeServer

    server = StripeServer(str(tmp_path_factory.mktemp("localstripe") / "localstripe.pickle")).start()
    yield server
    server.stop()


@pytest.fixture
def stripe_api(stripe_server):
    """The tests' Stripe, emptied for this test (objects, webhook targets, the inbox)."""
    stripe_server.reset()
    yield stripe_server
    stripe_server.reset()
