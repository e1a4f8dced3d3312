"""Operator commands for payments: `flask --app wsgi billing configure|plan|require|sync|rotate-keys`."""
from __future__ import annotations

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from billing import keys, plans as plan_service, settings as billing_settings
from billing.models import BillingSettings, PlanKind
from billing.plans import stripe_for_tenant
from billing.sync import reconcile
from core.db import db
from core.errors import ServiceError
from core.tenancy import Tenant, cross_tenant, tenant_context
from crm.cli import _tenant

billing_cli = AppGroup("billing", help="Payments: Stripe keys, access plans, reconciliation.")
plan_cli = AppGroup("plan", help="A tenant's access plans.")
billing_cli.add_command(plan_cli)


def _fail(exc: ServiceError):
    raise click.ClickException(exc.message)


@billing_cli.command("configure")
@click.option("--tenant", "slug", required=True, help="The tenant's slug.")
@click.option("--secret-key", required=True, help="The tenant's Stripe secret key (sk_test_… or sk_live_…).")
@click.option("--webhook-secret", required=True, help="The signing secret of its webhook endpoint (whsec_…).")
def configure(slug, secret_key, webhook_secret):
    """Store the tenant's Stripe keys, encrypted, after checking the secret key with Stripe."""
    tenant = _tenant(slug)
    with tenant_context(tenant):
        try:
            settings = billing_settings.save_keys(secret_key, webhook_secret, actor=None)
        except ServiceError as exc:
            db.session.rollback()
            _fail(exc)
        db.session.commit()
        click.echo(f"Stripe keys of {tenant.slug} saved: {settings.secret_key_hint} "
                   f"({'live' if settings.livemode else 'test'} mode), webhook secret {settings.webhook_secret_hint}.")


@plan_cli.command("create")
@click.option("--tenant", "slug", required=True)
@click.option("--name", required=True)
@click.option("--amount", type=int, required=True, help="In the currency's minor unit: 4900 is 49.00.")
@click.option("--currency", required=True)
@click.option("--interval", type=click.Choice(["week", "month", "year"]), help="Recurring; without it, one-time.")
@click.option("--interval-count", type=int, default=1, show_default=True, help="Renew every N intervals.")
@click.option("--initial-fee", type=int, help="With --interval: a first payment on top (minor unit).")
@click.option("--trial-days", type=int, default=0, show_default=True)
@click.option("--description", default="")
def plan_create(slug, name, amount, currency, interval, interval_count, initial_fee, trial_days, description):
    """Create an access plan, with its Product and Price(s) in Stripe."""
    tenant = _tenant(slug)
    kind = PlanKind.ONE_TIME if not interval else (PlanKind.BOTH if initial_fee else PlanKind.RECURRING)
    with tenant_context(tenant):
        try:
            plan = plan_service.create_plan(name=name, description=description, kind=kind, amount=amount,
                                            currency=currency, interval=interval, interval_count=interval_count,
                                            trial_days=trial_days, initial_fee=initial_fee, actor=None)
        except ServiceError as exc:
            db.session.rollback()
            _fail(exc)
        db.session.commit()
        click.echo(f"Plan {plan.id} “{plan.name}”: {plan_service.describe_price(plan)} "
                   f"(Stripe price {plan.stripe_price_id}).")


@plan_cli.command("list")
@click.option("--tenant", "slug", help="Only this tenant's plans (default: every tenant's).")
def plan_list(slug):
    """The access plans, with their prices and Stripe ids."""
    if slug:
        tenants = [_tenant(slug)]
    else:
        with cross_tenant("list tenants for billing plan list", audit=False):
            tenants = list(db.session.scalars(sa.select(Tenant).order_by(Tenant.slug)))
    for tenant in tenants:
        with tenant_context(tenant):
            required = billing_settings.cached_rules()[0]
            for plan in plan_service.plans():
                flags = ["archived"] if not plan.active else []
                if plan.id == required:
                    flags.append("required for the portal")
                click.echo(f"{tenant.slug}\t{plan.id}\t{plan.name}\t{plan_service.describe_price(plan)}\t"
                           f"{plan.stripe_price_id}" + (f"\t{', '.join(flags)}" if flags else ""))
            db.session.commit()


@billing_cli.command("require")
@click.option("--tenant", "slug", required=True)
@click.option("--plan", "plan_ref", help="The plan's name or id: portal access needs it.")
@click.option("--none", "no_plan", is_flag=True, help="Nobody must pay for portal access.")
@click.option("--grace-days", type=int, help="Days a failed renewal keeps access (default: unchanged).")
def require(slug, plan_ref, no_plan, grace_days):
    """Make portal access require a plan, or (--none) lift the requirement."""
    if bool(plan_ref) == bool(no_plan):
        raise click.UsageError("Give either --plan PLAN or --none.")
    tenant = _tenant(slug)
    with tenant_context(tenant):
        plan = None
        if plan_ref:
            plan = plan_service.find_plan(plan_ref)
            if plan is None:
                raise click.ClickException(f"No plan {plan_ref!r} in {tenant.slug} (billing plan list shows them).")
        current = billing_settings.current_settings()
        try:
            billing_settings.set_access_rules(plan, grace_days if grace_days is not None
                                              else (current.grace_days if current else 3), actor=None)
        except ServiceError as exc:
            db.session.rollback()
            _fail(exc)
        name = plan.name if plan else None
        db.session.commit()
    click.echo(f"Portal access in {tenant.slug} requires “{name}”." if name
               else f"Portal access in {tenant.slug} requires no payment.")


@billing_cli.command("sync")
@click.option("--tenant", "slug", help="Only this tenant (default: every tenant with Stripe keys).")
def sync(slug):
    """Re-read Stripe and repair the local state (after an outage, say); reports each change."""
    if slug:
        tenants = [_tenant(slug)]
    else:
        with cross_tenant("list tenants for billing sync", audit=False):
            tenants = list(db.session.scalars(sa.select(Tenant).order_by(Tenant.slug)))
    failed = False
    for tenant in tenants:
        with tenant_context(tenant):
            if not keys.tenant_keys(billing_settings.current_settings()).usable:
                db.session.rollback()
                if slug:
                    raise click.ClickException(f"{tenant.slug} has no Stripe keys.")
                continue
            try:
                changes = reconcile(stripe_for_tenant())
            except ServiceError as exc:
                db.session.rollback()
                click.echo(f"{tenant.slug}: {exc.message}", err=True)
                failed = True
                continue
            db.session.commit()
        for line in changes.lines:
            click.echo(f"{tenant.slug}: {line}")
        click.echo(f"{tenant.slug}: {len(changes.lines)} change{'s' if len(changes.lines) != 1 else ''}.")
    if failed:
        raise SystemExit(1)


@billing_cli.command("rotate-keys")
def rotate_keys():
    """Encrypt every stored Stripe key again with the first of BILLING_ENCRYPTION_KEYS."""
    count = 0
    with cross_tenant("re-encrypt Stripe keys with the newest key", audit=False):
        for settings in db.session.scalars(sa.select(BillingSettings)):
            for column in ("secret_key_encrypted", "webhook_secret_encrypted"):
                if getattr(settings, column):
                    setattr(settings, column, keys.rotate(getattr(settings, column)))
                    count += 1
        db.session.commit()
    click.echo(f"Re-encrypted {count} stored secret{'s' if count != 1 else ''}.")
