"""Who must pay for the portal, per kickoff form: the rule as a table (the tenant's rule, the
form's own, what the contact holds), staff setting it on the form's builder page, and the
checkout offering only the plans the rule allows."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from core.db import db
from tests.support import csrf_token, login_portal, tenant_session

# --- the rule, as a table --------------------------------------------------------------------------
# Plans: T (the tenant-wide one, when the tenant requires one), X and Y (named by forms).
# Columns: what the contact holds open access to: nothing, T, X, Y.
HOLDINGS = (None, "T", "X", "Y")
RULE_TABLE = [
    # tenant rule, form rule        → open when holding: nothing,  T,     X,     Y
    (None,         "default",          (True,  True,  True,  True)),
    (None,         "free",             (True,  True,  True,  True)),
    (None,         "plan X",           (False, False, True,  False)),
    (None,         "choice X Y",       (False, False, True,  True)),
    ("T",          "default",          (False, True,  False, False)),
    ("T",          "free",             (True,  True,  True,  True)),
    ("T",          "plan X",           (False, False, True,  False)),
    ("T",          "choice X Y",       (False, False, True,  True)),
]
CASES = [(tenant, form, holding, row[i]) for tenant, form, row in RULE_TABLE for i, holding in enumerate(HOLDINGS)]


def _plan(name: str):
    from billing.models import AccessPlan

    plan = AccessPlan(name=name, kind="recurring", amount=1000, currency="eur", interval="month",
                      stripe_product_id=f"prod_{name}", stripe_price_id=f"price_{name}")
    db.session.add(plan)
    db.session.flush()
    return plan


def _set_form_rule(form, rule: str, plans: dict, actor) -> None:
    from billing.settings import FormPayment, set_form_rule

    mode, *names = rule.split()
    ids = [plans[n].id for n in names]
    set_form_rule(form, {"default": FormPayment.DEFAULT, "free": FormPayment.FREE, "plan": FormPayment.PLAN,
                         "choice": FormPayment.CHOICE}[mode],
                  plan_id=ids[0] if mode == "plan" else None, plan_ids=ids if mode == "choice" else (),
                  gives_portal_login=True, actor=actor)


@pytest.mark.parametrize("tenant_rule, form_rule, holding, expected", CASES)
def test_who_must_pay_for_the_portal(app, world, tenant_rule, form_rule, holding, expected):
    from billing.entitlements import portal_access_open, required_plans
    from billing.models import Entitlement
    from billing.settings import set_access_rules
    from core.identity import StaffUser
    from forms.models import PortalLogin
    from portal.accounts import may_sign_in, sign_in_blockers
    from tests.factories import make_contact, make_portal_login
    from tests.forms.factories import make_form

    with tenant_session(app, world.a):
        plans = {name: _plan(name) for name in ("T", "X", "Y")}
        owner = db.session.get(StaffUser, world.a.members["owner"].id)
        set_access_rules(plans[tenant_rule] if tenant_rule else None, 3, actor=owner)
        form = make_form("Members sign-up", role="prospect", portal_login=PortalLogin.PASSWORD)
        _set_form_rule(form, form_rule, plans, owner)
        contact = make_contact("Rita", "Rule", email="rita@rule.example", role="prospect")
        account = make_portal_login(contact, form_id=form.id)
        if holding:
            db.session.add(Entitlement(contact_id=contact.id, plan_id=plans[holding].id, source="subscription",
                                       status="active", is_open=True))
        # A lapsed hold of every other plan opens nothing.
        for name, plan in plans.items():
            if name != holding:
                db.session.add(Entitlement(contact_id=contact.id, plan_id=plan.id, source="subscription",
                                           status="canceled", is_open=False))
        ids = contact.id, form.id, account.id, {name: plan.id for name, plan in plans.items()}
    contact_id, form_id, account_id, plan_ids = ids
    with tenant_session(app, world.a):
        from portal.models import PortalAccount

        account = db.session.get(PortalAccount, account_id)
        assert portal_access_open(contact_id, form_id) is expected
        assert may_sign_in(account) is expected
        assert ("payment" in [key for key, _ in sign_in_blockers(account)]) is not expected
        mode, *names = form_rule.split()
        expected_plans = ({plan_ids[n] for n in names} if mode in ("plan", "choice")
                          else set() if mode == "free" else {plan_ids[tenant_rule]} if tenant_rule else set())
        assert required_plans(form_id) == expected_plans


@pytest.mark.parametrize("tenant_rule, holding, expected", [(None, None, True), ("T", None, False),
                                                            ("T", "T", True), ("T", "X", False)])
def test_a_login_staff_invited_follows_the_tenant_rule(app, world, tenant_rule, holding, expected):
    from billing.entitlements import portal_access_open
    from billing.models import Entitlement
    from billing.settings import set_access_rules
    from tests.factories import make_contact

    with tenant_session(app, world.a):
        plans = {name: _plan(name) for name in ("T", "X")}
        set_access_rules(plans[tenant_rule] if tenant_rule else None, 3, actor=None)
        contact = make_contact("Ivy", "Invited", email="ivy@invited.example", role="client")
        if holding:
            db.session.add(Entitlement(contact_id=contact.id, plan_id=plans[holding].id, source="subscription",
                                       status="active", is_open=True))
        contact_id = contact.id
    with tenant_session(app, world.a):
        assert portal_access_open(contact_id, None) is expected


def test_has_access_takes_a_set_of_plans_in_one_indexed_query(app, world):
    from billing.entitlements import has_access
    from billing.models import Entitlement
    from tests.factories import make_contact
    from tests.test_query_counts import counted_queries

    with tenant_session(app, world.a):
        x, y, z = _plan("X"), _plan("Y"), _plan("Z")
        contact = make_contact("Sam", "Set", email="sam@set.example", role="client")
        db.session.add(Entitlement(contact_id=contact.id, plan_id=y.id, source="subscription", status="active",
                                   is_open=True))
        db.session.flush()
        with counted_queries(app) as queries:
            assert has_access(contact.id, {x.id, y.id})
        assert len(queries) == 1
        assert not has_access(contact.id, {x.id, z.id})
        assert has_access(contact.id, y.id) and has_access(contact.id)


# --- setting it: the service's refusals ----------------------------------------------------------------

def test_setting_a_form_rule_refuses_what_makes_no_sense(app, world):
    from billing.settings import FormPayment, form_rule, set_form_rule
    from core.errors import ServiceError
    from core.identity import StaffUser
    from forms.models import PortalLogin
    from tests.forms.factories import make_form

    with tenant_session(app, world.a):
        owner = db.session.get(StaffUser, world.a.members["owner"].id)
        staff = db.session.get(StaffUser, world.a.members["staff"].id)
        x, y = _plan("X"), _plan("Y")
        archived = _plan("Old")
        archived.active = False
        form = make_form("Sign-up", portal_login=PortalLogin.PASSWORD)

        def refused(field, *args, actor=owner, login=True):
            with pytest.raises(ServiceError) as caught:
                set_form_rule(form, *args, gives_portal_login=login, actor=actor)
            assert caught.value.field == field
            return caught.value.message

        assert "Choose who pays" in refused("portal_payment", "everyone")
        assert "Choose the plan" in refused("portal_plan_id", FormPayment.PLAN, "")
        assert "at least two plans" in refused("portal_plan_ids", FormPayment.CHOICE, None, [str(x.id)])
        assert "archived plans" in refused("portal_plan_id", FormPayment.PLAN, str(archived.id))
        assert "nothing to pay for" in refused("portal_payment", FormPayment.PLAN, str(x.id), login=False)
        assert "Your role may not" in refused("portal_payment", FormPayment.FREE, actor=staff)
        assert form_rule(form.id) == (FormPayment.DEFAULT, [])
        assert set_form_rule(form, FormPayment.CHOICE, None, [str(y.id), str(x.id)], gives_portal_login=True,
                             actor=owner)
        assert form_rule(form.id) == (FormPayment.CHOICE, sorted([x.id, y.id]))
        assert not set_form_rule(form, FormPayment.CHOICE, None, [str(x.id), str(y.id)], gives_portal_login=True,
                                 actor=owner), "the same rule again changes nothing"
        assert set_form_rule(form, FormPayment.DEFAULT, gives_portal_login=True, actor=owner)
        assert form_rule(form.id) == (FormPayment.DEFAULT, [])


def test_another_tenants_plan_cannot_be_named_by_a_form(app, world):
    from billing.settings import FormPayment, form_rule, set_form_rule
    from core.errors import ServiceError
    from core.identity import StaffUser
    from forms.models import PortalLogin
    from tests.forms.factories import make_form

    with tenant_session(app, world.b):
        theirs = _plan("Globex gold").id
    with tenant_session(app, world.a):
        ours = _plan("Acme gold")
        form = make_form("Sign-up", portal_login=PortalLogin.PASSWORD)
        owner = db.session.get(StaffUser, world.a.members["owner"].id)
        for mode, args in ((FormPayment.PLAN, (str(theirs),)), (FormPayment.CHOICE, (None, [str(ours.id), str(theirs)]))):
            with pytest.raises(ServiceError, match="Choose plans from the list"):
                set_form_rule(form, mode, *args, gives_portal_login=True, actor=owner)
        assert form_rule(form.id) == (FormPayment.DEFAULT, [])


# --- the builder page --------------------------------------------------------------------------------

def _actions_data(page: str, **changes) -> dict:
    """The actions page's inputs as the browser would send them, with `changes`."""
    data = {"csrf_token": re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1),
            "role": "prospect", "owner_mode": "none", "portal_login": "password", "portal_payment": "default",
            "confirmation_subject": "We received your details"}
    data.update(changes)
    return data


def test_staff_choose_a_forms_portal_payment_on_its_actions_page(app, world, staff_client):
    from billing.settings import FormPayment, form_rule
    from forms.models import PortalLogin
    from tests.forms.factories import make_form

    with tenant_session(app, world.a):
        x, y = _plan("Gold"), _plan("Silver")
        form = make_form("Members sign-up", role="prospect", portal_login=PortalLogin.PASSWORD)
        form_id, x_id, y_id = form.id, x.id, y.id
    client = staff_client("owner")
    url = f"/staff/forms/{form_id}/actions"
    page = client.get(url).get_data(as_text=True)
    assert "Portal access" in page and "The tenant&#39;s rule: the portal is free." in page
    assert "Gold (10.00 EUR every month)" in page and "Silver (10.00 EUR every month)" in page

    # Errors come back beside their inputs, with what was typed kept.
    response = client.post(url, data=_actions_data(page, portal_payment="choice", portal_plan_ids=[str(x_id)]))
    text = response.get_data(as_text=True)
    assert response.status_code == 400
    assert re.search(r'id="portal_plan_ids-error" class="field-error">Choose at least two plans', text)
    assert 'value="choice" checked' in text or 'checked value="choice"' in text or re.search(
        r'<input[^>]*checked[^>]*value="choice"|<input[^>]*value="choice"[^>]*checked', text)
    response = client.post(url, data=_actions_data(page, portal_payment="plan", portal_plan_id=""))
    assert response.status_code == 400
    assert re.search(r'id="portal_plan_id-error" class="field-error">Choose the plan',
                     response.get_data(as_text=True))
    with tenant_session(app, world.a):
        assert form_rule(form_id) == (FormPayment.DEFAULT, [])

    response = client.post(url, data=_actions_data(page, portal_payment="choice",
                                                   portal_plan_ids=[str(x_id), str(y_id)]))
    assert response.status_code == 302
    page = client.get(url).get_data(as_text=True)
    assert "On-submit actions saved." in page
    with tenant_session(app, world.a):
        assert form_rule(form_id) == (FormPayment.CHOICE, sorted([x_id, y_id]))


def test_a_member_who_may_not_define_plans_sees_the_rule_and_cannot_change_it(app, world, staff_client):
    from billing.settings import FormPayment, form_rule, set_form_rule
    from core.identity import StaffUser
    from core.permissions import RolePermission
    from forms.models import PortalLogin
    from tests.forms.factories import make_form

    with tenant_session(app, world.a):
        db.session.add(RolePermission(role="staff", permission="forms.manage", granted=True))
        x = _plan("Gold")
        form = make_form("Members sign-up", role="prospect", portal_login=PortalLogin.PASSWORD)
        set_form_rule(form, FormPayment.PLAN, str(x.id), gives_portal_login=True,
                      actor=db.session.get(StaffUser, world.a.members["owner"].id))
        form_id, x_id = form.id, x.id
    client = staff_client("staff")
    url = f"/staff/forms/{form_id}/actions"
    page = client.get(url).get_data(as_text=True)
    assert "Only staff who manage access plans change this." in page
    assert re.search(r'<input[^>]*disabled[^>]*value="free"|<input[^>]*value="free"[^>]*disabled', page)
    # A forged post of the read-only inputs changes nothing.
    response = client.post(url, data=_actions_data(page, portal_payment="free"))
    assert response.status_code == 302
    with tenant_session(app, world.a):
        assert form_rule(form_id) == (FormPayment.PLAN, [x_id])


# --- paying: only the plans the rule allows ------------------------------------------------------------

@pytest.fixture
def choice_form(app, pay):
    """Tenant A requires Membership of everyone; its form "VIP sign-up" lets registrants choose
    Gold or Silver instead. Pat registered through it."""
    from billing.models import AccessPlan
    from billing.plans import create_plan
    from billing.settings import FormPayment, set_access_rules, set_form_rule
    from core.identity import StaffUser
    from crm.models import Contact
    from forms.models import PortalLogin
    from tests.factories import make_portal_login
    from tests.forms.factories import make_form

    with tenant_session(app, pay.tenant):
        owner = db.session.get(StaffUser, pay.tenant.members["owner"].id)
        set_access_rules(db.session.get(AccessPlan, pay.plan_id), 3, actor=owner)
        gold = create_plan(name="Gold", kind="recurring", amount=9900, currency="eur", interval="month", actor=None)
        silver = create_plan(name="Silver", kind="one_time", amount=2500, currency="eur", actor=None)
        form = make_form("VIP sign-up", role="prospect", portal_login=PortalLogin.PASSWORD)
        set_form_rule(form, FormPayment.CHOICE, None, [str(gold.id), str(silver.id)], gives_portal_login=True,
                      actor=owner)
        make_portal_login(db.session.get(Contact, pay.contact_id), form_id=form.id)
        return {"gold": gold.id, "silver": silver.id, "membership": pay.plan_id, "form": form.id}


def _refusal(client) -> tuple[str, str]:
    refused = login_portal(client, "pat@payer.example")
    text = refused.get_data(as_text=True)
    assert refused.status_code == 403 and 'data-reason="payment"' in text
    return text, re.search(r'name="token" value="([^"]+)"', text).group(1)


def test_the_refusal_page_offers_exactly_the_forms_plans_and_refuses_another(app, pay, choice_form, client_for):
    client = client_for(pay.tenant.slug)
    text, token = _refusal(client)
    assert "Choose one of these plans:" in text
    assert "Pay for Gold" in text and "99.00 EUR every month" in text
    assert "Pay for Silver" in text and "25.00 EUR once" in text
    assert "Pay for Membership" not in text, "the tenant's plan is not this form's"
    csrf = csrf_token(client, "/portal/login")

    # A tampered plan number (the tenant's other plan) is refused in plain words, with the real choices.
    response = client.post("/portal/billing/checkout", data={"csrf_token": csrf, "token": token,
                                                             "plan_id": str(choice_form["membership"])})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "That plan is not one you can pay for here. Choose one of the plans below." in page
    assert "Pay for Gold" in page and "Pay for Silver" in page and "Pay for Membership" not in page

    # No plan named, among several: asked to choose.
    response = client.post("/portal/billing/checkout", data={"csrf_token": csrf, "token": token})
    assert response.status_code == 400 and "Choose the plan you want to pay for." in response.get_data(as_text=True)

    # The chosen one goes to Stripe Checkout, for that plan.
    response = client.post("/portal/billing/checkout", data={"csrf_token": csrf, "token": token,
                                                             "plan_id": str(choice_form["silver"])})
    text = response.get_data(as_text=True)
    assert response.status_code == 200 and "Continue to Stripe" in text


def test_paying_for_one_of_the_choices_opens_the_portal(app, pay, choice_form, client_for, deliver):
    from tests.billing.test_portal_payments import stripe_url
    from tests.billing.test_webhooks import deliver_all

    client = client_for(pay.tenant.slug)
    _, token = _refusal(client)
    response = client.post("/portal/billing/checkout", data={"csrf_token": csrf_token(client, "/portal/login"),
                                                             "token": token, "plan_id": str(choice_form["gold"])})
    session_id = stripe_url(response, pay).rsplit("/", 1)[-1]
    pay.server.pay(session_id)
    pay.server.inbox.wait_for("checkout.session.completed")
    deliver_all(client_for(pay.tenant.slug), pay.server.inbox.settle(), deliver)
    response = login_portal(client, "pat@payer.example")
    assert response.status_code == 302, response.get_data(as_text=True)
    page = client.get("/portal/billing").get_data(as_text=True)
    assert "Gold" in page and "access open" in page
    assert "Pay for Membership" not in page and "Pay for Silver" not in page, "held one of the choices: no offers"


def test_signed_in_the_payment_page_refuses_a_plan_the_rule_does_not_offer(app, pay, choice_form, client_for):
    from billing.models import Entitlement
    from billing.plans import create_plan

    with tenant_session(app, pay.tenant):
        db.session.add(Entitlement(contact_id=pay.contact_id, plan_id=choice_form["silver"], source="payment",
                                   status="paid", is_open=True))
        other = create_plan(name="Platinum", kind="one_time", amount=50000, currency="eur", actor=None).id
    client = client_for(pay.tenant.slug)
    assert login_portal(client, "pat@payer.example").status_code == 302
    page = client.get("/portal/billing").get_data(as_text=True)
    assert "Silver" in page and "access open" in page
    assert "Plans you can take" not in page, "they hold one of their form's choices: nothing else is offered"
    response = client.post("/portal/billing/checkout", data={"csrf_token": csrf_token(client, "/portal/billing"),
                                                             "plan_id": str(other)})
    assert response.status_code == 302 and response.headers["Location"].endswith("/portal/billing")
    page = client.get("/portal/billing").get_data(as_text=True)
    assert "That plan is not one you can pay for here." in page


def test_a_plan_a_form_offers_cannot_be_archived(app, pay, choice_form):
    from billing.models import AccessPlan
    from billing.plans import update_plan
    from core.errors import ServiceError

    with tenant_session(app, pay.tenant):
        gold = db.session.get(AccessPlan, choice_form["gold"])
        with pytest.raises(ServiceError, match="1 kickoff form let registrants pay for this plan"):
            update_plan(gold, name=gold.name, kind=gold.kind, amount=gold.amount, currency=gold.currency,
                        interval=gold.interval, active=False, actor=None)
    with tenant_session(app, pay.tenant):
        assert db.session.scalar(sa.select(AccessPlan.active).where(AccessPlan.id == choice_form["gold"]))


# --- the thank-you page says what comes next ------------------------------------------------------------

@pytest.mark.parametrize("rule, expected", [
    ("plan X", "The portal is open to members with a paid plan: X (10.00 EUR every month)."),
    ("choice X Y", "The portal is open to members with a paid plan: X (10.00 EUR every month) or "
                   "Y (10.00 EUR every month), as you choose."),
    ("free", None),
])
def test_the_thank_you_page_of_a_paid_form_leads_to_paying(app, world, client_for, rule, expected):
    import html

    from core.identity import StaffUser
    from forms.models import PortalLogin
    from tests.forms.factories import make_form
    from tests.forms.test_public import PERSON, submit

    with tenant_session(app, world.a):
        plans = {name: _plan(name) for name in ("X", "Y")}
        form = make_form("Members sign-up", role="prospect", portal_login=PortalLogin.PASSWORD, min_fill_seconds=0)
        _set_form_rule(form, rule, plans, db.session.get(StaffUser, world.a.members["owner"].id))
        slug = form.slug
    strong = "Quiet-harbour-lantern-1987"
    response = submit(client_for(world.a.slug), f"/f/{slug}",
                      {**PERSON, "kf_password": strong, "kf_password_confirm": strong})
    page = " ".join(html.unescape(response.get_data(as_text=True)).split())
    assert response.status_code == 200 and "kf-thanks" in page, page[-3000:]
    words = " ".join(re.sub(r"<[^>]+>", " ", page).split()).replace(" ,", ",").replace(" .", ".").replace(" :", ":")
    if expected is None:
        assert "Next: pay for portal access" not in page
        return
    assert "Next: pay for portal access" in words and expected in words, words
    assert ("Once you have confirmed your e-mail address with the link we e-mailed you, sign in to the portal: you "
            "will be asked to pay there, and the portal opens as soon as the payment is confirmed.") in words
    assert 'href="/portal/login"' in page
