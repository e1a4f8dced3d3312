"""Payments on the web: Stripe's webhook endpoint (its own blueprint, the one exempt from
CSRF: Stripe signs instead), and the staff pages for payment settings and access plans."""
from __future__ import annotations

import logging

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from wtforms import SelectChoice

from billing import account_view, events, plans as plan_service, settings as billing_settings
from billing.forms import AccessRulesForm, KeysForm, PlanForm, minor_units
from billing.keys import tenant_keys
from billing.models import AccessPlan, PlanKind
from core.db import db
from core.extensions import csrf
from core.identity import current_principal
from core.permissions import can, require, staff_login_required
from core.tenancy import get_or_404, require_tenant_host
from core.web import service_call
from crm.circles import active_circles

logger = logging.getLogger(__name__)

webhook_bp = Blueprint("billing_webhook", __name__, url_prefix="/billing")
webhook_bp.before_request(require_tenant_host)
csrf.exempt(webhook_bp)

bp = Blueprint("billing", __name__, url_prefix="/staff")
bp.before_request(require_tenant_host)


def _refused(reason: str):
    # Plain words, no trace: whoever sent it learns only that it was refused.
    logger.info("stripe webhook refused: %s", reason)
    return jsonify(error="invalid webhook"), 400


@webhook_bp.post("/webhook")
def webhook():
    """Stripe's events for this tenant: verified, stored, answered; applied by a job."""
    limit = current_app.config["BILLING_WEBHOOK_MAX_BYTES"]
    if request.content_length is not None and request.content_length > limit:
        return _refused("too large")
    payload = request.stream.read(limit + 1)
    if len(payload) > limit:
        return _refused("too large")
    try:
        row = events.receive(payload, request.headers.get("Stripe-Signature"))
    except events.BadWebhook as exc:
        db.session.rollback()
        return _refused(str(exc))
    db.session.commit()
    return jsonify(received=True, duplicate=row is None)


# --- staff: payment settings ------------------------------------------------------------------------

def _may_see_settings() -> bool:
    principal = current_principal()
    return can(principal, "billing.keys") or can(principal, "billing.plans")


@bp.route("/settings/payments", methods=["GET", "POST"])
@staff_login_required
def payment_settings():
    if not _may_see_settings():
        abort(403)
    settings = billing_settings.current_settings()
    keys_form = KeysForm(prefix="keys")
    rules_form = AccessRulesForm(prefix="rules", data={
        "required_plan_id": settings.required_plan_id if settings and settings.required_plan_id else 0,
        "grace_days": settings.grace_days if settings else 3})
    rules_form.required_plan_id.choices = [SelectChoice(0, "Nothing: the portal is free")] + [
        SelectChoice(p.id, p.name) for p in plan_service.plans(include_archived=False)]
    actor = current_principal()
    if request.method == "POST" and request.form.get("form") == "keys":
        require("billing.keys")
        if keys_form.validate():
            with service_call(keys_form) as outcome:
                billing_settings.save_keys(keys_form.secret_key.data, keys_form.webhook_secret.data, actor)
            if outcome:
                flash("Stripe keys saved and checked with Stripe.", "success")
                return redirect(url_for("billing.payment_settings"))
    elif request.method == "POST" and request.form.get("form") == "rules":
        require("billing.plans")
        if rules_form.validate():
            plan = get_or_404(AccessPlan, rules_form.required_plan_id.data) if rules_form.required_plan_id.data else None
            with service_call(rules_form) as outcome:
                billing_settings.set_access_rules(plan, rules_form.grace_days.data, actor)
            if outcome:
                flash("Portal payment rule saved.", "success")
                return redirect(url_for("billing.payment_settings"))
    elif request.method == "POST":
        abort(400)
    return render_template("billing/settings.html", settings=settings, keys_form=keys_form, rules_form=rules_form,
                           platform_keys=not (settings and settings.secret_key_encrypted)
                           and tenant_keys(settings).usable,
                           webhook_url=url_for("billing_webhook.webhook", _external=True))


# --- staff: access plans -----------------------------------------------------------------------------

@bp.get("/plans")
@staff_login_required
def plans():
    require("billing.plans")
    return render_template("billing/plans.html", plans=plan_service.plans(), describe=plan_service.describe_price,
                           required_plan_id=billing_settings.cached_rules()[0])


def _plan_form(plan: AccessPlan | None = None) -> PlanForm:
    data = None
    if plan is not None and request.method == "GET":
        data = {"name": plan.name, "description": plan.description, "kind": plan.kind,
                "amount": plan.amount / 100, "currency": plan.currency, "interval": plan.interval or "month",
                "interval_count": plan.interval_count, "trial_days": plan.trial_days,
                "initial_fee": plan.initial_fee / 100 if plan.initial_fee else None,
                "circle_ids": plan_service.plan_circle_ids(plan), "active": plan.active}
    form = PlanForm(data=data)
    form.circle_ids.choices = [SelectChoice(c.id, c.name) for c in active_circles()]
    return form


def _plan_values(form: PlanForm) -> dict:
    kind = form.kind.data
    return {"name": form.name.data, "description": form.description.data, "kind": kind,
            "amount": minor_units(form.amount.data), "currency": form.currency.data,
            "interval": form.interval.data if kind != PlanKind.ONE_TIME else None,
            "interval_count": form.interval_count.data or 1, "trial_days": form.trial_days.data or 0,
            "initial_fee": minor_units(form.initial_fee.data) if kind == PlanKind.BOTH else None,
            "circle_ids": form.circle_ids.data or []}


@bp.route("/plans/new", methods=["GET", "POST"])
@staff_login_required
def new_plan():
    require("billing.plans")
    form = _plan_form()
    if form.validate_on_submit():
        with service_call(form) as outcome:
            plan = plan_service.create_plan(**_plan_values(form), actor=current_principal())
        if outcome:
            flash(f"Plan “{plan.name}” created, with its price in Stripe.", "success")
            return redirect(url_for("billing.plans"))
    return render_template("billing/plan_form.html", form=form, plan=None)


@bp.route("/plans/<int:plan_id>/edit", methods=["GET", "POST"])
@staff_login_required
def edit_plan(plan_id: int):
    plan = get_or_404(AccessPlan, plan_id)
    require("billing.plans")
    form = _plan_form(plan)
    if form.validate_on_submit():
        with service_call(form) as outcome:
            changed = plan_service.update_plan(plan, **_plan_values(form), active=form.active.data,
                                               actor=current_principal())
        if outcome:
            flash(f"Plan “{plan.name}” saved." if changed else "Nothing to change.", "success")
            return redirect(url_for("billing.plans"))
    return render_template("billing/plan_form.html", form=form, plan=plan)


PAYMENT_FILTERS = [(None, "All"), ("open", "Access open"), ("closed", "Access closed"),
                   ("failed", "Failed payments"), ("refunded", "Refunded or disputed")]


@bp.get("/payments")
@staff_login_required
def payments():
    require("payments.view")
    status = request.args.get("status")
    if status not in {key for key, _ in PAYMENT_FILTERS}:
        status = None
    return render_template("billing/payments.html", rows=account_view.payments_overview(status), status=status,
                           filters=PAYMENT_FILTERS)


def init_app(app) -> None:
    app.register_blueprint(webhook_bp)
    app.register_blueprint(bp)
