"""PostgreSQL row-level security: the third wall between tenants.

Each tenant table gets one policy, `tenant_isolation`: a row is visible and writable only
when its tenant_id is the transaction's `app.tenant_id` (core.tenancy sets it with
set_config(..., true) at every BEGIN), or inside core.tenancy.cross_tenant(). A missing
setting matches nothing, so forgetting to set the tenant shows no rows at all. FORCE makes
the policy bind the tables' owner too; only a superuser or BYPASSRLS role escapes it, and
the app must connect as neither (core.rls.connection_bypasses_rls warns at start-up).
Migrations call enable_rls() for every table that has tenant_id.
"""
from __future__ import annotations

POLICY = "tenant_isolation"
_TENANT = "NULLIF(current_setting('app.tenant_id', true), '')::integer"
_CROSSING = "current_setting('app.cross_tenant', true) = 'on'"


def policy_sql(table: str, *, platform_rows: bool = False) -> list[str]:
    """`platform_rows`: the table also holds rows of no tenant (tenant_id NULL), written
    outside any tenant, e.g. platform audit events."""
    rule = f"tenant_id = {_TENANT} OR {_CROSSING}"
    if platform_rows:
        # Outside any tenant, platform rows are in reach (INSERT … RETURNING needs to see
        # what it wrote); inside a tenant they stay hidden.
        rule += f" OR (tenant_id IS NULL AND {_TENANT} IS NULL)"
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY {POLICY} ON {table} USING ({rule}) WITH CHECK ({rule})",
    ]


def enable_rls(op, table: str, *, platform_rows: bool = False) -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in policy_sql(table, platform_rows=platform_rows):
            op.execute(statement)


def disable_rls(op, table: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP POLICY IF EXISTS {POLICY} ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")


def connection_bypasses_rls(connection) -> bool:
    """True when the database role would ignore the policies (superuser or BYPASSRLS)."""
    if connection.dialect.name != "postgresql":
        return False
    return bool(connection.exec_driver_sql(
        "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user").scalar())
