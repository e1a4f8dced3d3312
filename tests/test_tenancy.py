"""The tenancy rule, wall by wall: host resolution, the ORM filter, composite foreign keys,
and (on PostgreSQL) row-level security, each shown to hold on its own."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError, ProgrammingError
from sqlalchemy.orm import Session, aliased

from core import tenancy
from core.audit import AuditEvent
from core.db import db, tenant_tables
from core.identity import StaffUser
from core.rls import POLICY, connection_bypasses_rls
from core.tenancy import (CrossTenantWrite, Tenant, TenantNotSet, cross_tenant, tenant_context)
from core.tenants import add_domain



def _is_postgres(app) -> bool:
    return app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")


@pytest.fixture
def postgres(app):
    if not _is_postgres(app):
        pytest.skip("row-level security exists only on PostgreSQL (set TEST_DATABASE_URL)")


# --- hosts ---------------------------------------------------------------------------------

def test_tenant_subdomain_serves_that_tenant(world, client_for):
    page = client_for("acme").get("/").get_data(as_text=True)
    assert "Acme Corp" in page
    assert "CANARY-B" not in page


def test_port_does_not_change_the_tenant(world, app):
    client = app.test_client()
    page = client.get("/", base_url="http://acme.localhost:8123").get_data(as_text=True)
    assert "Acme Corp" in page


def test_platform_host_shows_landing_and_no_tenant_pages(world, client_for):
    platform = client_for(None)
    assert "Operator sign-in" in platform.get("/").get_data(as_text=True)
    response = platform.get("/staff/login")
    assert response.status_code == 404
    assert "Page not found" in response.get_data(as_text=True)


def test_unknown_host_is_a_plain_404(world, client_for):
    response = client_for("nobody").get("/")
    assert response.status_code == 404
    body = response.get_data(as_text=True)
    assert "Page not found" in body and "Acme" not in body


def test_custom_domain_serves_its_tenant(world, app):
    with app.app_context():
        tenant = db.session.get(Tenant, world.a.id)
        add_domain(tenant, "Portal.Acme-Example.com")
        db.session.commit()
    page = app.test_client().get("/", base_url="http://portal.acme-example.com").get_data(as_text=True)
    assert "Acme Corp" in page


# --- wall 2: the ORM -------------------------------------------------------------------------

def test_orm_reads_only_the_current_tenant(world, app_ctx):
    with tenant_context(world.a.id):
        emails = set(db.session.scalars(sa.select(StaffUser.email)))
        assert emails == {m.email for m in world.a.members.values()}
        assert db.session.get(StaffUser, world.b.members["owner"].id) is None


def test_a_statement_built_once_reads_each_tenants_own_rows_whichever_ran_it_before(world, app_ctx):
    """The tenant filter keeps one filtered copy of a statement built once per tenant
    (core.tenancy._filtered): run in turns for two tenants, each still sees only its own."""
    once = sa.select(StaffUser.email).where(StaffUser.email.like(sa.bindparam("pattern"))).order_by(StaffUser.email)
    seen = {}
    for tenant in (world.a, world.b, world.a, world.b):
        with tenant_context(tenant.id):
            seen.setdefault(tenant.slug, []).append(db.session.scalars(once, {"pattern": "%"}).all())
    assert seen["acme"][0] == seen["acme"][1] and seen["acme"][0]
    assert seen["globex"][0] == seen["globex"][1] and seen["globex"][0]
    assert not set(seen["acme"][0]) & set(seen["globex"][0])
    assert all(e.endswith("@acme.example") for e in seen["acme"][0])


def test_query_without_tenant_fails_closed(world, app_ctx):
    with pytest.raises(TenantNotSet):
        db.session.scalars(sa.select(StaffUser)).all()


def test_insert_is_stamped_with_current_tenant(world, app_ctx):
    with tenant_context(world.a.id):
        user = StaffUser(email="new@acme.example", name="New", role="staff")
        db.session.add(user)
        db.session.flush()
        assert user.tenant_id == world.a.id
        db.session.rollback()


def test_writing_another_tenants_row_is_refused(world, app_ctx):
    with tenant_context(world.a.id):
        intruder = StaffUser(tenant_id=world.b.id, email="x@acme.example", name="X", role="staff")
        db.session.add(intruder)
        with pytest.raises(CrossTenantWrite):
            db.session.flush()
        db.session.rollback()


def test_cross_tenant_helper_sees_all_and_is_audited(world, app_ctx):
    with cross_tenant("count staff for a test"):
        total = db.session.scalar(sa.select(sa.func.count()).select_from(StaffUser))
        db.session.commit()
    assert total == 6
    with cross_tenant("read audit", audit=False):
        event = db.session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == "platform.cross_tenant")
            .order_by(AuditEvent.id.desc())).first()
    assert event.details == {"reason": "count staff for a test"}
    assert event.tenant_id is None


# --- wall 1: composite foreign keys ------------------------------------------------------------

def test_database_refuses_a_reference_into_another_tenant(world, app_ctx):
    """Raw SQL, past the ORM and (inside cross_tenant) past RLS: the composite key still holds."""
    with cross_tenant("prove the composite foreign key", audit=False):
        with pytest.raises(IntegrityError):
            db.session.execute(sa.text(
                "INSERT INTO staff_user (tenant_id, email, name, role, active, created_at,"
                " invited_by_id) VALUES (:t, 'spy@acme.example', 'Spy', 'staff', :yes, :now, :b)"),
                {"t": world.a.id, "b": world.b.members["owner"].id, "yes": True,
                 "now": "2026-01-01 00:00:00+00:00"})
            db.session.flush()
        db.session.rollback()


# --- wall 3: row-level security (PostgreSQL) -------------------------------------------------------

@pytest.fixture
def orm_filter_off():
    event.remove(Session, "do_orm_execute", tenancy._filter_to_current_tenant)
    yield
    event.listen(Session, "do_orm_execute", tenancy._filter_to_current_tenant)


def test_rls_hides_other_tenant_with_orm_filter_off(world, app_ctx, postgres, orm_filter_off):
    with tenant_context(world.a.id):
        emails = set(db.session.scalars(sa.select(StaffUser.email)))
        counted = db.session.scalar(sa.text("SELECT count(*) FROM staff_user"),
                                    execution_options={tenancy.TENANT_CHECKED_SQL: True})
    assert emails == {m.email for m in world.a.members.values()}
    assert counted == 3


def test_rls_shows_nothing_when_no_tenant_is_set(world, app_ctx, postgres, orm_filter_off):
    assert db.session.scalar(sa.text("SELECT count(*) FROM staff_user"),
                             execution_options={tenancy.TENANT_CHECKED_SQL: True}) == 0
    db.session.rollback()


def test_rls_refuses_writing_into_another_tenant(world, app_ctx, postgres):
    raw = {tenancy.TENANT_CHECKED_SQL: True}  # the ORM wall is bypassed on purpose
    with tenant_context(world.a.id):
        with pytest.raises(ProgrammingError, match="row-level security"):
            db.session.execute(sa.text(
                "UPDATE staff_user SET name = 'hacked' WHERE tenant_id = :b"), {"b": world.b.id},
                execution_options=raw)
            db.session.execute(sa.text(
                "INSERT INTO staff_user (tenant_id, email, name, role, active, created_at)"
                " VALUES (:b, 'spy@globex.example', 'Spy', 'staff', true, now())"),
                {"b": world.b.id}, execution_options=raw)
        db.session.rollback()
    with cross_tenant("check", audit=False):
        names = set(db.session.scalars(sa.select(StaffUser.name).where(StaffUser.tenant_id == world.b.id)))
    assert "hacked" not in names


def test_every_tenant_table_has_its_rls_policy(app_ctx, postgres):
    for table in tenant_tables():
        row = db.session.execute(sa.text(
            "SELECT c.relrowsecurity, c.relforcerowsecurity,"
            " (SELECT count(*) FROM pg_policies p WHERE p.schemaname = current_schema()"
            "  AND p.tablename = c.relname AND p.policyname = :policy)"
            " FROM pg_class c WHERE c.relname = :table AND c.relnamespace = current_schema()::regnamespace"),
            {"table": table.name, "policy": POLICY}, execution_options={tenancy.TENANT_CHECKED_SQL: True}).one()
        assert tuple(row) == (True, True, 1), f"{table.name} lacks forced row-level security or its policy"


def test_app_role_does_not_bypass_rls(app_ctx, postgres):
    assert connection_bypasses_rls(db.session.connection()) is False


def test_every_table_is_tenant_scoped_or_declared_platform_wide():
    from core.db import Base

    scoped = {t.name for t in tenant_tables()}
    for table in Base.metadata.sorted_tables:
        assert table.name in scoped or table.info.get("platform_wide"), (
            f"{table.name}: add TenantScoped, or platform_wide('why') to its __table_args__")
        if table.name in scoped:
            assert table.c.tenant_id.nullable is False or table.name == "audit_event", table.name


@pytest.mark.parametrize("build", [
    lambda: sa.select(sa.func.count()).select_from(StaffUser),
    lambda: sa.select(sa.func.count()).select_from(sa.select(StaffUser.id).subquery()),
    lambda: sa.select(StaffUser.email).subquery().select(),
    lambda: sa.select(sa.literal(1)).where(sa.select(StaffUser.id).where(StaffUser.email.like("canary%")).exists()),
    lambda: sa.select(sa.func.count()).select_from(StaffUser).join(
        AuditEvent, AuditEvent.target_id == StaffUser.id, isouter=True),
    lambda: sa.select(aliased(StaffUser).email),
    lambda: (lambda inviter: sa.select(StaffUser.email, inviter.email).join(
        inviter, inviter.id == StaffUser.id))(aliased(StaffUser)),
], ids=["count-select-from", "count-of-subquery", "select-from-subquery", "orm-exists", "join", "aliased",
        "join-to-aliased"])
def test_every_orm_shape_is_filtered(world, app_ctx, build):
    """Counts, subqueries and EXISTS see one tenant (the dashboard once counted every tenant)."""
    with tenant_context(world.a.id):
        rows = db.session.execute(build()).all()
        with cross_tenant("compare", audit=False):
            unfiltered = db.session.execute(build()).all()
    assert rows != unfiltered, "the same answer with and without the tenant filter"
    assert "canary" not in str(rows).lower()


@pytest.mark.parametrize("build", [
    lambda: sa.select(sa.literal(1)).where(sa.exists().where(StaffUser.id > 0)),
    lambda: sa.select(sa.text("count(*)")).select_from(StaffUser.__table__),
    lambda: sa.update(StaffUser.__table__).values(name="x"),
    # ORM columns only in its WHERE: SQLAlchemy compiles such a nested SELECT as plain Core
    lambda: (lambda emails: sa.select(emails.c.email, sa.select(sa.literal(1)).where(
        StaffUser.email == emails.c.email, StaffUser.email.like("canary%")).limit(1).scalar_subquery()))(
        sa.select(StaffUser.email).subquery()),
    # An expression run as a statement: SQLAlchemy wraps it in a SELECT of its own
    lambda: sa.func.count(StaffUser.id),
    # Raw SQL read into ORM columns or entities is still raw SQL
    lambda: sa.text("SELECT email FROM staff_user").columns(StaffUser.email),
    lambda: sa.select(StaffUser).from_statement(sa.text("SELECT * FROM staff_user")),
], ids=["core-exists", "bare-table", "core-update", "scalar-literal-subquery", "bare-function", "textual-select",
        "from-statement"])
def test_plain_sql_constructs_on_tenant_tables_are_refused(world, app_ctx, build):
    from core.tenancy import TenantFilterUnreachable

    with tenant_context(world.a.id):
        with pytest.raises(TenantFilterUnreachable):
            db.session.execute(build())
        db.session.rollback()


def test_bulk_insert_is_stamped_and_guarded(world, app_ctx):
    with tenant_context(world.a.id):
        row = {"email": "bulk@acme.example", "name": "Bulk", "role": "staff",
               "active": True, "created_at": tenancy.utcnow()}
        db.session.execute(sa.insert(StaffUser), [row])
        assert row["tenant_id"] == world.a.id
        with pytest.raises(CrossTenantWrite):
            db.session.execute(sa.insert(StaffUser), [{**row, "email": "b2@x.example",
                                                       "tenant_id": world.b.id}])
        db.session.rollback()


def test_function_of_a_model_column_is_filtered(world, app_ctx):
    with tenant_context(world.a.id):
        assert db.session.scalar(sa.select(sa.func.count(StaffUser.id))) == 3
        assert db.session.scalar(sa.select(sa.func.max(StaffUser.email))) == "sam@acme.example"


def test_insert_values_are_stamped_or_refused(world, app_ctx):
    with tenant_context(world.a.id):
        db.session.execute(sa.insert(StaffUser).values(email="v@acme.example", name="V", role="staff",
                                                       active=True, created_at=tenancy.utcnow()))
        assert db.session.scalar(sa.select(StaffUser.tenant_id).where(StaffUser.email == "v@acme.example")) \
            == world.a.id
        with pytest.raises(CrossTenantWrite):
            db.session.execute(sa.insert(StaffUser).values(tenant_id=world.b.id, email="w@x.example", name="W",
                                                           role="staff", active=True, created_at=tenancy.utcnow()))
        db.session.rollback()


def test_update_cannot_move_rows_to_another_tenant(world, app_ctx):
    with tenant_context(world.a.id):
        with pytest.raises(CrossTenantWrite):
            db.session.execute(sa.update(StaffUser).where(StaffUser.role == "staff").values(tenant_id=world.b.id))
        db.session.rollback()


def test_raw_sql_must_declare_it_filters_by_tenant(world, app_ctx):
    from core.tenancy import TenantFilterUnreachable

    with pytest.raises(TenantFilterUnreachable):
        db.session.execute(sa.text("SELECT count(*) FROM staff_user"))
    with tenant_context(world.a.id):
        with pytest.raises(TenantFilterUnreachable):
            db.session.execute(sa.text("SELECT count(*) FROM staff_user"))
    db.session.rollback()


def test_object_of_another_tenant_in_the_identity_map_is_a_404(world, app_ctx):
    from werkzeug.exceptions import NotFound

    from core.tenancy import get_or_404

    with cross_tenant("load B's owner", audit=False):
        b_owner = db.session.get(StaffUser, world.b.members["owner"].id)
        assert b_owner is not None
    with tenant_context(world.a.id):
        with pytest.raises(NotFound):
            get_or_404(StaffUser, world.b.members["owner"].id)
        db.session.expire(b_owner)
        with pytest.raises(Exception):
            b_owner.email  # refreshing it as tenant A finds nothing  # noqa: B018
    db.session.rollback()
