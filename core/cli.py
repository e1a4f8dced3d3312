"""Operator commands: `flask --app wsgi tenant|superadmin|demo|worker|jobs …`."""
from __future__ import annotations

from datetime import timedelta

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from core import demo as demo_data
from core.accounts import create_staff_user
from core.db import db
from core.errors import ServiceError
from core.identity import PlatformAdmin, StaffUser, create_platform_admin
from core.jobs import run_pending_jobs, run_worker
from core.operations import STALLED_AFTER, resume_stalled
from core.tenancy import Tenant, cross_tenant, platform_url, tenant_context, tenant_url
from core.tenants import create_tenant

tenant_cli = AppGroup("tenant", help="Create and list tenants.")
superadmin_cli = AppGroup("superadmin", help="Manage platform super admins.")
jobs_cli = AppGroup("jobs", help="Inspect and run background jobs.")


def _fail(exc: Exception):
    message = exc.message if isinstance(exc, ServiceError) else str(exc)
    db.session.rollback()
    raise click.ClickException(message)


@tenant_cli.command("create")
@click.option("--slug", required=True, help="Sub-domain: <slug>.PLATFORM_DOMAIN")
@click.option("--name", required=True, help="Business name")
@click.option("--owner-email", required=True)
@click.option("--owner-password", help="Leave out to e-mail the owner an invitation instead.")
@click.option("--owner-name", default="")
def create_tenant_command(slug, name, owner_email, owner_password, owner_name):
    """Create a tenant with its first Owner."""
    try:
        tenant, owner = create_tenant(slug, name, owner_email, owner_password, owner_name)
        # Read before commit: afterwards no tenant is current, and the owner's row is out of sight.
        report = [f"Created tenant {tenant.slug}: {tenant_url(tenant, '/staff')}",
                  f"Owner: {owner.email}" + ("" if owner_password else " (invitation e-mailed)")]
        db.session.commit()
    except (ServiceError, ValueError) as exc:
        _fail(exc)
    click.echo("\n".join(report))


@tenant_cli.command("list")
def list_tenants_command():
    """List tenants with their status and address."""
    with cross_tenant("list tenants (CLI)"):
        tenants = db.session.scalars(sa.select(Tenant).order_by(Tenant.slug)).all()
        db.session.commit()
    for tenant in tenants:
        click.echo(f"{tenant.slug:<20} {tenant.status:<10} {tenant.name}  {tenant_url(tenant, '/staff')}")


@superadmin_cli.command("create")
@click.option("--email", required=True)
@click.option("--password", required=True)
@click.option("--name", default="")
def create_superadmin_command(email, password, name):
    """Create a platform super admin (operator console at /admin on the platform host)."""
    try:
        admin = create_platform_admin(email, password, name)
        db.session.commit()
    except (ServiceError, ValueError) as exc:
        _fail(exc)
    click.echo(f"Created super admin {admin.email}: {platform_url('/admin')}")


@click.command("demo")
@with_appcontext
def demo_command():
    """Create (or refresh) the demo tenant with sample data, and print how to sign in."""
    if current_app.config["PORTICO_ENV"] == "production":
        raise click.ClickException("The demo creates accounts with published passwords; it does not run "
                                   "with PORTICO_ENV=production.")
    with cross_tenant("demo set-up (CLI)", audit=False):
        tenant = db.session.scalar(sa.select(Tenant).where(Tenant.slug == demo_data.DEMO_SLUG))
        operator = db.session.scalar(sa.select(PlatformAdmin).where(PlatformAdmin.email == demo_data.DEMO_OPERATOR[0]))
    if operator is None:
        create_platform_admin(*demo_data.DEMO_OPERATOR, name="Demo Operator")
    if tenant is None:
        owner_email, owner_name, _ = demo_data.DEMO_STAFF[0]
        tenant, _ = create_tenant(demo_data.DEMO_SLUG, demo_data.DEMO_NAME, owner_email,
                                  demo_data.DEMO_PASSWORD, owner_name)
    with tenant_context(tenant):
        for email, name, role in demo_data.DEMO_STAFF:
            if db.session.scalar(sa.select(StaffUser.id).where(StaffUser.email == email)) is None:
                create_staff_user(email, name, role, password=demo_data.DEMO_PASSWORD)
        for seed in demo_data.seeders():
            seed(tenant)
    db.session.commit()
    click.echo("Portico demo is ready.")
    click.echo(f"  Staff sign-in:    {tenant_url(tenant, '/staff')}")
    for email, _, role in demo_data.DEMO_STAFF:
        click.echo(f"    {role:<6} {email} / {demo_data.DEMO_PASSWORD}")
    for label, path, login in demo_data.links():
        click.echo(f"  {label + ':':<17} {tenant_url(tenant, path)}")
        if login:
            click.echo(f"    {login}")
    click.echo(f"  Operator console: {platform_url('/admin')}")
    click.echo(f"    super admin {demo_data.DEMO_OPERATOR[0]} / {demo_data.DEMO_OPERATOR[1]}")


@click.command("worker")
@with_appcontext
@click.option("--workers", type=int, default=None, help="Worker threads (default JOBS_WORKERS).")
def worker_command(workers):
    """Run background jobs until stopped (Ctrl-C finishes the jobs in hand first)."""
    backend = "Redis" if current_app.config["REDIS_URL"] else current_app.config["JOBS_SQLITE_PATH"]
    click.echo(f"Job worker running on {backend}")
    run_worker(workers)


@jobs_cli.command("run-pending")
def run_pending_command():
    """Run every job that is due now, in this process, then exit."""
    click.echo(f"Ran {run_pending_jobs()} job(s).")


@jobs_cli.command("resume-stalled")
@click.option("--older-than", type=int, default=int(STALLED_AFTER.total_seconds()), show_default=True,
              help="Seconds without progress after which an unfinished background task counts as stalled.")
def resume_stalled_command(older_than):
    """Queue again the background tasks whose worker died (the worker does this every minute)."""
    resumed = resume_stalled(stalled_after=timedelta(seconds=older_than))
    click.echo(f"Queued again {len(resumed)} background task(s){': ' if resumed else '.'}"
               + ", ".join(f"#{i}" for i in resumed))


def init_app(app) -> None:
    for command in (tenant_cli, superadmin_cli, jobs_cli, demo_command, worker_command):
        app.cli.add_command(command)
