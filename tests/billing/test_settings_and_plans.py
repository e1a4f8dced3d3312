"""The Owner's Stripe keys (encrypted, shown by their last four characters, checked with
Stripe), the portal's payment rule, and access plans with their Products and Prices in Stripe:
through the staff pages and the CLI."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
import stripe
from cryptography.fernet import Fernet

from core.db import db
from tests.billing.conftest import KEYS, configure
from tests.support import post_form, tenant_session


def cli(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def stored_settings(app, tenant):
    from billing.models import BillingSettings

    with tenant_session(app, tenant):
        row = db.session.scalar(sa.select(BillingSettings))
        if row is not None:
            db.session.expunge(row)
        return row


def stripe_client(server):
    return stripe.StripeClient(KEYS["a"][0], base_addresses={"api": server.api_base})


# --- keys ------------------------------------------------------------------------------------------

def test_the_owner_saves_keys_on_the_settings_page_encrypted_and_never_shown_again(app, world, staff_client,
                                                                                    stripe_app):
    owner = staff_client("owner")
    page = owner.get("/staff/settings/payments").get_data(as_text=True)
    assert "No keys yet" in page and f"http://{world.a.host}/billing/webhook" in page
    response = post_form(owner, "/staff/settings/payments", {
        "form": "keys", "keys-secret_key": "sk_test_51Hacmeverysecret9xyz", "keys-webhook_secret": "whsec_acme_k3y_abcd"})
    assert response.status_code == 302
    page = owner.get("/staff/settings/payments").get_data(as_text=True)
    assert "Stripe keys saved and checked with Stripe." in page
    assert "sk_test_…9xyz" in page and "whsec_…abcd" in page and "test mode" in page
    assert "sk_test_51Hacmeverysecret9xyz" not in page and "whsec_acme_k3y_abcd" not in page
    row = stored_settings(app, world.a)
    assert "sk_test_51Hacmeverysecret9xyz" not in row.secret_key_encrypted
    with app.app_context():
        from billing.keys import decrypt

        assert decrypt(row.secret_key_encrypted) == "sk_test_51Hacmeverysecret9xyz"
    # Saving again with empty fields keeps the stored keys.
    post_form(owner, "/staff/settings/payments", {"form": "keys", "keys-secret_key": "", "keys-webhook_secret": ""})
    assert stored_settings(app, world.a).secret_key_encrypted == row.secret_key_encrypted


@pytest.mark.parametrize("secret_key, webhook_secret, error", [
    ("pk_test_publishable_key", "whsec_fine_secret", "A Stripe secret key starts with sk_test_"),
    ("sk_test_fine_secret_key", "not-a-secret-value", "A webhook signing secret starts with whsec_"),
    ("", "whsec_fine_secret", "Enter the Stripe secret key"),
])
def test_bad_keys_re_render_with_the_reason_and_store_nothing(app, world, staff_client, stripe_app, secret_key,
                                                              webhook_secret, error):
    owner = staff_client("owner")
    response = post_form(owner, "/staff/settings/payments", {
        "form": "keys", "keys-secret_key": secret_key, "keys-webhook_secret": webhook_secret})
    assert response.status_code == 200 and error in response.get_data(as_text=True)
    assert stored_settings(app, world.a) is None


def test_with_stripe_unreachable_saving_keys_says_payments_are_unavailable_and_stores_nothing(
        app, world, staff_client):
    app.config["STRIPE_API_BASE"] = "http://127.0.0.1:9"  # nothing listens there
    try:
        response = post_form(staff_client("owner"), "/staff/settings/payments", {
            "form": "keys", "keys-secret_key": "sk_test_fine_secret_key", "keys-webhook_secret": "whsec_fine_secret"})
    finally:
        app.config["STRIPE_API_BASE"] = None
    assert "Payments are unavailable right now" in response.get_data(as_text=True)
    assert stored_settings(app, world.a) is None


def test_only_owners_enter_keys_admins_set_plans_staff_neither(app, world, staff_client, stripe_app):
    admin = staff_client("admin")
    page = admin.get("/staff/settings/payments").get_data(as_text=True)
    assert "Only an Owner enters the keys." in page and "Who must pay" in page
    response = post_form(admin, "/staff/settings/payments", {
        "form": "keys", "keys-secret_key": "sk_test_fine_secret_key", "keys-webhook_secret": "whsec_fine_secret"})
    assert response.status_code == 403
    assert admin.get("/staff/plans").status_code == 200
    staff = staff_client("staff")
    assert staff.get("/staff/settings/payments").status_code == 403
    assert staff.get("/staff/plans").status_code == 403
    nav = staff.get("/staff/").get_data(as_text=True)
    assert "Access plans" not in nav
    assert "Access plans" in admin.get("/staff/").get_data(as_text=True)


def test_cli_configure_and_key_rotation(app, world, stripe_app):
    result = cli(app, "billing", "configure", "--tenant", world.a.slug, "--secret-key", "sk_test_cli_secret_7777",
                 "--webhook-secret", "whsec_cli_secret_8888")
    assert result.exit_code == 0, result.output
    assert "sk_test_…7777" in result.output and "whsec_…8888" in result.output
    assert "sk_test_cli_secret_7777" not in result.output
    bad = cli(app, "billing", "configure", "--tenant", world.a.slug, "--secret-key", "oops",
              "--webhook-secret", "whsec_cli_secret_8888")
    assert bad.exit_code != 0 and "starts with sk_test_" in bad.output
    assert cli(app, "billing", "configure", "--tenant", "nope", "--secret-key", "sk_test_x_secret_key",
               "--webhook-secret", "whsec_whatever_1").exit_code != 0

    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    try:
        app.config["BILLING_ENCRYPTION_KEYS"] = old_key
        assert cli(app, "billing", "configure", "--tenant", world.a.slug, "--secret-key",
                   "sk_test_rotated_secret_1", "--webhook-secret", "whsec_rotated_secret_2").exit_code == 0
        app.config["BILLING_ENCRYPTION_KEYS"] = f"{new_key},{old_key}"
        result = cli(app, "billing", "rotate-keys")
        assert result.exit_code == 0 and "Re-encrypted 2 stored secrets." in result.output
        app.config["BILLING_ENCRYPTION_KEYS"] = new_key  # the old key is gone
        with tenant_session(app, world.a):
            from billing.keys import tenant_keys
            from billing.settings import current_settings

            keys = tenant_keys(current_settings())
        assert (keys.secret_key, keys.webhook_secret) == ("sk_test_rotated_secret_1", "whsec_rotated_secret_2")
    finally:
        app.config["BILLING_ENCRYPTION_KEYS"] = None


def test_platform_default_keys_serve_a_tenant_without_its_own(app, world, stripe_app):
    from billing.keys import tenant_keys
    from billing.settings import current_settings

    app.config.update(STRIPE_SECRET_KEY="sk_test_platform_default", STRIPE_WEBHOOK_SECRET="whsec_platform_default")
    try:
        with tenant_session(app, world.a):
            keys = tenant_keys(current_settings())
        assert (keys.secret_key, keys.webhook_secret, keys.own) == (
            "sk_test_platform_default", "whsec_platform_default", False)
        configure(app, world.a, "a")
        with tenant_session(app, world.a):
            assert tenant_keys(current_settings()).secret_key == KEYS["a"][0]
    finally:
        app.config.update(STRIPE_SECRET_KEY=None, STRIPE_WEBHOOK_SECRET=None)


# --- plans -----------------------------------------------------------------------------------------

def test_staff_pages_create_and_edit_a_plan_with_its_stripe_product_and_prices(app, world, staff_client,
                                                                              stripe_app):
    from billing.models import AccessPlan
    from tests.factories import make_circle

    configure(app, world.a, "a")
    with tenant_session(app, world.a):
        circle_id = make_circle("Paying members").id
    admin = staff_client("admin")
    form = admin.get("/staff/plans/new").get_data(as_text=True)
    assert "Paying members" in form
    response = post_form(admin, "/staff/plans/new", {
        "name": "Coaching", "description": "Weekly calls", "kind": "both", "amount": "49.00", "currency": "EUR",
        "interval": "month", "interval_count": "1", "initial_fee": "20", "trial_days": "0",
        "circle_ids": str(circle_id), "active": "y"})
    assert response.status_code == 302, response.get_data(as_text=True)
    listing = admin.get("/staff/plans").get_data(as_text=True)
    assert "Coaching" in listing and "20.00 EUR, then 49.00 EUR every month" in listing
    with tenant_session(app, world.a):
        plan = db.session.scalar(sa.select(AccessPlan))
        plan_id, price_id, fee_id, product_id = plan.id, plan.stripe_price_id, plan.stripe_fee_price_id, \
            plan.stripe_product_id
    s = stripe_client(stripe_app)
    price = s.v1.prices.retrieve(price_id)
    assert (price.unit_amount, price.currency, price.recurring.interval, price.product) == (4900, "eur", "month",
                                                                                             product_id)
    assert s.v1.prices.retrieve(fee_id).unit_amount == 2000
    assert s.v1.products.retrieve(product_id).name == "Coaching"

    # A customer on the old price...
    customer = s.v1.customers.create(params={"email": "old@subscriber.example"})
    stripe_app.set_card(customer.id, "4242424242424242")
    subscription = s.v1.subscriptions.create(params={"customer": customer.id, "items": [{"plan": price_id}]})

    edit = admin.get(f"/staff/plans/{plan_id}/edit").get_data(as_text=True)
    assert 'value="Coaching"' in edit and 'value="49.00"' in edit
    response = post_form(admin, f"/staff/plans/{plan_id}/edit", {
        "name": "Coaching", "description": "Weekly calls", "kind": "both", "amount": "59.00", "currency": "eur",
        "interval": "month", "interval_count": "1", "initial_fee": "20", "trial_days": "0",
        "circle_ids": str(circle_id), "active": "y"})
    assert response.status_code == 302
    with tenant_session(app, world.a):
        plan = db.session.get(AccessPlan, plan_id)
        new_price_id, version = plan.stripe_price_id, plan.price_version
    assert new_price_id != price_id and version == 1
    assert s.v1.prices.retrieve(new_price_id).unit_amount == 5900
    assert s.v1.prices.retrieve(price_id).active is False
    # ...stays on it.
    assert s.v1.subscriptions.retrieve(subscription.id).plan.id == price_id
    assert "59.00 EUR every month" in admin.get("/staff/plans").get_data(as_text=True)


def test_bad_plan_input_re_renders_with_field_errors_and_makes_nothing(app, world, staff_client, stripe_app):
    from billing.models import AccessPlan

    configure(app, world.a, "a")
    admin = staff_client("admin")
    response = post_form(admin, "/staff/plans/new", {
        "name": "Broken", "kind": "both", "amount": "49", "currency": "euro", "interval": "month",
        "interval_count": "1", "trial_days": "0"})
    text = response.get_data(as_text=True)
    assert response.status_code == 200 and "Field must be exactly 3 characters long." in text
    response = post_form(admin, "/staff/plans/new", {
        "name": "Broken", "kind": "both", "amount": "49", "currency": "eur", "interval": "month",
        "interval_count": "1", "trial_days": "0"})
    assert "Enter the initial fee" in response.get_data(as_text=True)
    with tenant_session(app, world.a):
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AccessPlan)) == 0


def test_without_keys_a_plan_cannot_be_made(app, world, staff_client, stripe_app):
    response = post_form(staff_client("owner"), "/staff/plans/new", {
        "name": "Early", "kind": "one_time", "amount": "150", "currency": "eur", "interval": "month",
        "interval_count": "1", "trial_days": "0"})
    assert "Payments are not set up yet" in response.get_data(as_text=True)


def test_plan_cli_create_list_and_require(app, world, stripe_app):
    configure(app, world.a, "a")
    result = cli(app, "billing", "plan", "create", "--tenant", world.a.slug, "--name", "Membership",
                 "--amount", "4900", "--currency", "eur", "--interval", "month", "--trial-days", "14")
    assert result.exit_code == 0, result.output
    assert "49.00 EUR every month, 14-day free trial" in result.output
    price_id = re.search(r"price_\w+", result.output).group(0)
    assert stripe_client(stripe_app).v1.prices.retrieve(price_id).recurring.interval == "month"
    result = cli(app, "billing", "plan", "create", "--tenant", world.a.slug, "--name", "Workshop",
                 "--amount", "15000", "--currency", "eur")
    assert result.exit_code == 0 and "150.00 EUR once" in result.output
    duplicate = cli(app, "billing", "plan", "create", "--tenant", world.a.slug, "--name", "workshop",
                    "--amount", "100", "--currency", "eur")
    assert duplicate.exit_code != 0 and "Another plan has this name." in duplicate.output

    assert cli(app, "billing", "require", "--tenant", world.a.slug, "--plan", "Membership").exit_code == 0
    listing = cli(app, "billing", "plan", "list").output
    assert "acme\t" in listing and "Membership" in listing and "required for the portal" in listing
    assert "Workshop" in cli(app, "billing", "plan", "list", "--tenant", world.a.slug).output
    result = cli(app, "billing", "require", "--tenant", world.a.slug, "--none")
    assert result.exit_code == 0 and "requires no payment" in result.output
    assert "required for the portal" not in cli(app, "billing", "plan", "list").output
    assert cli(app, "billing", "require", "--tenant", world.a.slug, "--plan", "Nope").exit_code != 0
    assert cli(app, "billing", "require", "--tenant", world.a.slug).exit_code != 0


def test_the_rule_form_sets_the_required_plan_and_grace(app, world, staff_client, stripe_app):
    from billing.plans import create_plan
    from billing.settings import cached_rules

    configure(app, world.a, "a")
    with tenant_session(app, world.a):
        plan_id = create_plan(name="Membership", kind="recurring", amount=4900, currency="eur", interval="month",
                              actor=None).id
    owner = staff_client("owner")
    response = post_form(owner, "/staff/settings/payments", {
        "form": "rules", "rules-required_plan_id": str(plan_id), "rules-grace_days": "0"})
    assert response.status_code == 302
    with tenant_session(app, world.a):
        assert cached_rules() == (plan_id, 0)
    response = post_form(owner, "/staff/settings/payments", {
        "form": "rules", "rules-required_plan_id": str(plan_id), "rules-grace_days": "99"})
    assert "Between 0 and 60 days." in response.get_data(as_text=True)
    assert "Required for the portal" in owner.get("/staff/plans").get_data(as_text=True)
