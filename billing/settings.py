"""A tenant's payment settings: its Stripe keys (checked against Stripe when saved), the plan
portal access requires, and the grace period after a failed renewal."""
from __future__ import annotations

import sqlalchemy as sa

from billing import keys
from billing.models import AccessPlan, BillingSettings
from billing.stripe_api import calling_stripe, client
from core import tenant_cache
from core.audit import record, register_actions
from core.db import db
from core.errors import ServiceError
from core.identity import StaffUser
from core.impersonation import refuse_while_impersonating

register_actions({
    "billing.keys_saved": "Stripe keys saved",
    "billing.access_rules_changed": "Portal payment rule changed",
    "billing.plan_created": "Access plan created",
    "billing.plan_changed": "Access plan changed",
})

SECRET_PREFIXES = ("sk_test_", "sk_live_", "rk_test_", "rk_live_")
MAX_GRACE_DAYS = 60


def current_settings() -> BillingSettings | None:
    return db.session.scalar(sa.select(BillingSettings))


def settings_for_update() -> BillingSettings:
    settings = current_settings()
    if settings is None:
        settings = BillingSettings()
        db.session.add(settings)
    return settings


def cached_rules() -> tuple[int | None, int]:
    """(required plan id, grace days) from this process's cache of the tenant's configuration
    (core.tenant_cache): the portal asks on every request."""
    def load():
        settings = current_settings()
        return (settings.required_plan_id, settings.grace_days) if settings else (None, 3)

    return tenant_cache.cached("billing_rules", load)


def cached_keys() -> keys.StripeKeys:
    """keys.tenant_keys(current_settings()), what is stored (still encrypted) read from this
    process's cache of the tenant's configuration (core.tenant_cache: saving keys bumps its
    version) and decrypted for each use: every webhook delivery and every billing job asks."""
    def load() -> tuple[str | None, str | None]:
        settings = current_settings()
        return (settings.secret_key_encrypted, settings.webhook_secret_encrypted) if settings else (None, None)

    return keys.stored_keys(*tenant_cache.cached("billing_keys", load))


def check_secret_key(secret_key: str, field: str = "secret_key") -> None:
    """A cheap authenticated call (the account's balance): a wrong or revoked key fails here,
    when it is entered, rather than at a customer's checkout."""
    with calling_stripe(field):
        client(secret_key).v1.balance.retrieve()


def save_keys(secret_key: str | None, webhook_secret: str | None, actor) -> BillingSettings:
    """Store the tenant's keys, encrypted. A blank value keeps the stored one (the page never
    shows them again); a new secret key is checked against Stripe first."""
    refuse_while_impersonating()
    secret_key = (secret_key or "").strip()
    webhook_secret = (webhook_secret or "").strip()
    settings = settings_for_update()
    if not secret_key and not settings.secret_key_encrypted:
        raise ServiceError("Enter the Stripe secret key (it starts with sk_test_ or sk_live_).", "secret_key")
    if not webhook_secret and not settings.webhook_secret_encrypted:
        raise ServiceError("Enter the webhook signing secret (it starts with whsec_).", "webhook_secret")
    if secret_key and (not secret_key.startswith(SECRET_PREFIXES) or len(secret_key) < 12 or " " in secret_key):
        raise ServiceError("A Stripe secret key starts with sk_test_ or sk_live_ (or rk_ for a restricted key).",
                           "secret_key")
    if webhook_secret and (not webhook_secret.startswith("whsec_") or len(webhook_secret) < 12 or " " in webhook_secret):
        raise ServiceError("A webhook signing secret starts with whsec_.", "webhook_secret")
    if secret_key:
        check_secret_key(secret_key)
        settings.secret_key_encrypted = keys.encrypt(secret_key)
        settings.secret_key_hint = keys.hint(secret_key)
        settings.livemode = "_live_" in secret_key
    if webhook_secret:
        settings.webhook_secret_encrypted = keys.encrypt(webhook_secret)
        settings.webhook_secret_hint = keys.hint(webhook_secret)
    settings.updated_by_id = actor.id if isinstance(actor, StaffUser) else None
    db.session.flush()
    record("billing.keys_saved", settings, actor=actor, details={
        "secret_key": settings.secret_key_hint, "webhook_secret": settings.webhook_secret_hint,
        "changed": [name for name, value in (("secret_key", secret_key), ("webhook_secret", webhook_secret)) if value]})
    return settings


def set_access_rules(required_plan: AccessPlan | None, grace_days: int, actor) -> BillingSettings:
    """Which plan portal access requires (None: nobody must pay) and how many days a
    subscription whose renewal failed keeps access."""
    from billing.entitlements import redecide_past_due

    if grace_days is None or not 0 <= grace_days <= MAX_GRACE_DAYS:
        raise ServiceError(f"The grace period is between 0 and {MAX_GRACE_DAYS} days.", "grace_days")
    if required_plan is not None and not required_plan.active:
        raise ServiceError("That plan is archived; choose an active one.", "required_plan_id")
    settings = settings_for_update()
    before = (settings.required_plan_id, settings.grace_days)
    settings.required_plan_id = required_plan.id if required_plan else None
    settings.grace_days = grace_days
    settings.updated_by_id = actor.id if isinstance(actor, StaffUser) else None
    db.session.flush()
    if before[1] != grace_days:
        redecide_past_due(grace_days)
    if before != (settings.required_plan_id, grace_days):
        record("billing.access_rules_changed", settings, actor=actor, details={
            "required_plan": required_plan.name if required_plan else None, "grace_days": grace_days})
    return settings
