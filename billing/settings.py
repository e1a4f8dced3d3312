"""A tenant's payment settings: its Stripe keys (checked against Stripe when saved), the plan
portal access requires, and the grace period after a failed renewal."""
from __future__ import annotations

import sqlalchemy as sa

from billing import keys
from billing.models import AccessPlan, BillingSettings, FormAccessPlan, FormAccessRule
from billing.stripe_api import calling_stripe, client
from core import tenant_cache
from core.audit import record, register_actions
from core.db import db
from core.errors import ServiceError
from core.identity import StaffUser
from core.permissions import can
from core.tenancy import current_tenant_id
from core.impersonation import refuse_while_impersonating

register_actions({
    "billing.keys_saved": "Stripe keys saved",
    "billing.access_rules_changed": "Portal payment rule changed",
    "billing.plan_created": "Access plan created",
    "billing.plan_changed": "Access plan changed",
    "billing.form_rule_changed": "Portal payment rule of a kickoff form changed",
})


class FormPayment:
    """What a kickoff form says about paying for the portal (the builder's choice)."""
    DEFAULT, FREE, PLAN, CHOICE = "default", "free", "plan", "choice"
    LABELS = {DEFAULT: "The tenant's rule (Payments settings)", FREE: "Free: its registrants never pay",
              PLAN: "Its registrants must pay for one plan", CHOICE: "Its registrants choose among plans"}
    ALL = tuple(LABELS)

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


def cached_form_rules() -> dict[int, frozenset[int]]:
    """{form id: the plans its registrants must hold one of} for the kickoff forms with a payment
    rule of their own (an empty set: free), cached like cached_rules()."""
    def load():
        rules = {form_id: set() for form_id, mode in db.session.execute(
            sa.select(FormAccessRule.form_id, FormAccessRule.mode))}
        for form_id, plan_id in db.session.execute(sa.select(FormAccessPlan.form_id, FormAccessPlan.plan_id)):
            rules.setdefault(form_id, set()).add(plan_id)
        return {form_id: frozenset(plans) for form_id, plans in rules.items()}

    return tenant_cache.cached("billing_form_rules", load)


def form_rule(form_id: int) -> tuple[str, list[int]]:
    """(FormPayment mode, the plan ids it names) of a kickoff form, for its builder page."""
    rule = db.session.get(FormAccessRule, (current_tenant_id(), form_id))
    if rule is None:
        return FormPayment.DEFAULT, []
    if rule.mode == "free":
        return FormPayment.FREE, []
    plan_ids = sorted(db.session.scalars(sa.select(FormAccessPlan.plan_id).where(FormAccessPlan.form_id == form_id)))
    return (FormPayment.PLAN if len(plan_ids) == 1 else FormPayment.CHOICE), plan_ids


def set_form_rule(form, mode: str, plan_id=None, plan_ids=(), *, gives_portal_login: bool, actor) -> bool:
    """Set who pays for the portal among those who register through `form` (a kickoff form):
    the tenant's rule, nobody, one plan, or one of several the registrant chooses. Only staff
    who may define access plans change it. True when it changed."""
    if mode not in FormPayment.ALL:
        raise ServiceError("Choose who pays for portal access.", "portal_payment")
    wanted: list[int] = []
    if mode == FormPayment.PLAN:
        wanted = _plan_ids([plan_id])
        if len(wanted) != 1:
            raise ServiceError("Choose the plan this form's registrants pay for.", "portal_plan_id")
    elif mode == FormPayment.CHOICE:
        wanted = _plan_ids(plan_ids)
        if len(wanted) < 2:
            raise ServiceError("Choose at least two plans to choose among (for one plan, choose “must pay for "
                               "one plan”).", "portal_plan_ids")
    before = form_rule(form.id)
    if mode == FormPayment.CHOICE and len(wanted) == 1:
        mode = FormPayment.PLAN
    if before == (mode, wanted):
        return False
    if not can(actor, "billing.plans"):
        raise ServiceError("Your role may not change who pays for the portal: ask someone who manages access "
                           "plans.", "portal_payment")
    if mode != FormPayment.DEFAULT and not gives_portal_login:
        raise ServiceError("This form gives no portal login, so there is nothing to pay for: choose a portal "
                           "login above, or leave this at the tenant's rule.", "portal_payment")
    active = set(db.session.scalars(sa.select(AccessPlan.id).where(AccessPlan.id.in_(wanted),
                                                                    AccessPlan.active.is_(True)))) if wanted else set()
    if set(wanted) - active:
        raise ServiceError("Choose plans from the list (archived plans are not offered).",
                           "portal_plan_id" if mode == FormPayment.PLAN else "portal_plan_ids")
    db.session.execute(sa.delete(FormAccessPlan).where(FormAccessPlan.form_id == form.id))
    db.session.execute(sa.delete(FormAccessRule).where(FormAccessRule.form_id == form.id))
    if mode != FormPayment.DEFAULT:
        db.session.add(FormAccessRule(form_id=form.id, mode="free" if mode == FormPayment.FREE else "plans"))
        db.session.flush()
        db.session.add_all([FormAccessPlan(form_id=form.id, plan_id=p) for p in wanted])
    db.session.flush()
    names = list(db.session.scalars(sa.select(AccessPlan.name).where(AccessPlan.id.in_(wanted)))) if wanted else []
    record("billing.form_rule_changed", form, actor=actor, details={"rule": mode, "plans": sorted(names)})
    return True


def _plan_ids(values) -> list[int]:
    ids = set()
    for value in values or ():
        try:
            ids.add(int(value))
        except (TypeError, ValueError):
            continue
    return sorted(i for i in ids if i > 0)


def forms_requiring(plan_id: int) -> int:
    """How many kickoff forms name this plan in their payment rule."""
    return db.session.scalar(sa.select(sa.func.count()).select_from(FormAccessPlan)
                             .where(FormAccessPlan.plan_id == plan_id))


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
