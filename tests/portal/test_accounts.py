"""Portal logins for registrants: registering, the confirm-your-e-mail and choose-your-password
links (real e-mails through the SMTP sink, real jobs), approval by staff, who may sign in, and
what a contact merge does to the logins."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from core.audit import AuditEvent
from core.db import db, utcnow
from core.errors import ServiceError
from core.identity import StaffUser
from core.permissions import can
from core.tenancy import tenant_context
from crm.merge import merge_contacts
from crm.models import Contact, TimelineEntry
from portal.accounts import (account_for, approve, may_sign_in, password_problem, register_portal_account, sign_in_blockers)
from portal.models import PortalAccount
from tests.factories import make_contact, make_portal_account
from tests.support import post_form

STRONG = "Quiet-harbour-lantern-1987"
REFUSED = "This link no longer works"
NOT_VERIFIED, WAITING = "E-mail not verified", "Waiting for approval"


def _register(app, world, *, password=None, needs_approval=False, role="prospect", source="Kickoff form",
              email=None, tenant="a"):
    """Register a new contact of the tenant; returns (contact id, account id, e-mail)."""
    with app.app_context(), tenant_context(getattr(world, tenant).id):
        fields = {"role": role}
        if email:
            fields["email"] = email
        contact = make_contact("Robin", "Registrant", **fields)
        account = register_portal_account(contact, password=password, needs_approval=needs_approval, source=source)
        db.session.commit()
        return contact.id, account.id, account.email


def _account(app, world, account_id, tenant="a") -> PortalAccount:
    with app.app_context(), tenant_context(getattr(world, tenant).id):
        account = db.session.get(PortalAccount, account_id)
        db.session.expunge(account)
        return account


def _only_link(deliver, email, path_start) -> str:
    box = deliver()
    messages = box.to(email)
    assert len(messages) == 1, [(m["To"], m["Subject"]) for m in box.messages]
    links = [link for link in box.links(messages[-1]) if f"acme.localhost{path_start}" in link]
    assert links, box.body(messages[-1])
    return links[0].replace("http://acme.localhost", "")


def _text(response) -> str:
    return response.get_data(as_text=True)


def _field_error(page: str, field: str) -> str | None:
    match = re.search(rf'<small id="{field}-error" class="field-error">([^<]*)</small>', page)
    return match.group(1) if match else None


# --- registering with a password: confirm the e-mail ------------------------------------------------

def test_register_with_password_then_verify_once(app, world, client_for, deliver):
    contact_id, account_id, email = _register(app, world, password=STRONG)
    path = _only_link(deliver, email, "/portal/verify/")
    message = deliver().to(email)[0]
    assert message["Subject"] == "Confirm your e-mail address for Acme Corp"
    client = client_for("acme")

    page = client.get(path)  # a link preview or mail scanner fetching it changes nothing
    assert page.status_code == 200 and "Confirm my e-mail address" in _text(page)
    assert _account(app, world, account_id).email_verified_at is None

    done = post_form(client, path)
    assert done.status_code == 302 and done.headers["Location"] == "/portal/login"  # ends on the sign-in page
    landing = _text(client.get("/portal/login"))
    assert "Your e-mail address is confirmed. Sign in below." in landing and "Sign in to Acme Corp" in landing
    account = _account(app, world, account_id)
    assert account.email_verified_at is not None and may_sign_in_in(app, world, account_id)

    for method in ("get", "post"):
        reused = client.get(path) if method == "get" else post_form(client, path)
        assert reused.status_code == 400
        body = _text(reused)
        assert REFUSED in body and "has expired or has already been used" in body
        assert "E-mail me a new link" in body  # a way forward, not a dead end

    with app.app_context(), tenant_context(world.a.id):
        actions = list(db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)))
        timeline = list(db.session.scalars(sa.select(TimelineEntry.summary).where(
            TimelineEntry.contact_id == contact_id).order_by(TimelineEntry.id)))
    assert actions.count("portal.account_registered") == 1 and actions.count("portal.email_verified") == 1
    assert timeline == ["Registered for a portal login via Kickoff form",
                        "Confirmed their e-mail address for the portal"]


def may_sign_in_in(app, world, account_id) -> bool:
    with app.app_context(), tenant_context(world.a.id):
        return may_sign_in(db.session.get(PortalAccount, account_id))


def test_weak_password_is_refused_at_registration(app, world):
    with app.app_context(), tenant_context(world.a.id):
        contact = make_contact("Weak", "Pass", role="prospect")
        with pytest.raises(ServiceError) as refused:
            register_portal_account(contact, password="password1", needs_approval=False)
        assert refused.value.field == "password"
        assert account_for(contact) is None


def test_password_problem_uses_the_staff_rules(app):
    with app.app_context():
        assert password_problem("short") == "Use at least 10 characters."
        assert "too weak" in password_problem("password123")
        assert password_problem(STRONG) is None


# --- registering without a password: choose one ----------------------------------------------------

def test_register_without_password_then_choose_it_once(app, world, client_for, deliver):
    _, account_id, email = _register(app, world)
    path = _only_link(deliver, email, "/portal/set-password/")
    client = client_for("acme")
    form = client.get(path)
    page = _text(form)
    assert form.status_code == 200 and "Choose your password" in page and email in page
    assert "At least 10 characters" in page and "Acme Corp" in page

    weak = post_form(client, path, {"password": "password123", "confirm": "password123"})
    assert weak.status_code == 200
    error = _field_error(_text(weak), "password")
    assert error and "too weak" in error
    assert 'aria-invalid="true"' in _text(weak)
    assert _account(app, world, account_id).password_hash is None

    differ = post_form(client, path, {"password": STRONG, "confirm": STRONG + "x"})
    assert _field_error(_text(differ), "confirm") == "The two passwords differ."

    done = post_form(client, path, {"password": STRONG, "confirm": STRONG})
    assert done.status_code == 302 and done.headers["Location"] == "/portal/login"
    assert "Your password is saved, and your e-mail address is confirmed." in _text(client.get("/portal/login"))
    account = _account(app, world, account_id)
    assert account.password_hash.startswith("$argon2id$")
    assert account.email_verified_at is not None  # the link proved the address
    assert may_sign_in_in(app, world, account_id)

    again = post_form(client, path, {"password": "Another-quiet-lantern-2001", "confirm": "Another-quiet-lantern-2001"})
    assert again.status_code == 400 and REFUSED in _text(again)
    assert _account(app, world, account_id).password_hash == account.password_hash


def test_registering_again_returns_the_same_login_and_keeps_its_password(app, world, deliver):
    contact_id, account_id, email = _register(app, world, password=STRONG)
    deliver()
    with app.app_context(), tenant_context(world.a.id):
        contact = db.session.get(Contact, contact_id)
        before = db.session.get(PortalAccount, account_id).password_hash
        again = register_portal_account(contact, password="Different-lantern-harbour-42", needs_approval=True)
        db.session.commit()
        assert again.id == account_id and again.password_hash == before and again.approval == "approved"
        assert db.session.scalar(sa.select(sa.func.count()).select_from(PortalAccount)) == 1
    assert len(deliver().messages) == 1  # the first registration's e-mail only


# --- expiry (time is controlled, not waited for) ----------------------------------------------------

@pytest.mark.parametrize("password, path_start, lifetime", [
    (STRONG, "/portal/verify/", timedelta(days=7)),
    (None, "/portal/set-password/", timedelta(days=3)),
])
def test_links_expire(app, world, client_for, deliver, password, path_start, lifetime):
    client = client_for("acme")
    with freeze_time(utcnow()) as clock:
        _, _, email = _register(app, world, password=password)
        path = _only_link(deliver, email, path_start)
        clock.tick(lifetime - timedelta(minutes=1))
        assert client.get(path).status_code == 200
        clock.tick(timedelta(minutes=2))
        expired = client.get(path)
    assert expired.status_code == 400
    assert REFUSED in _text(expired) and "has expired or has already been used" in _text(expired)


def test_asking_for_a_new_link_does_not_tell_whether_a_login_exists(app, world, client_for, deliver):
    _, account_id, email = _register(app, world, password=STRONG)
    deliver().messages.clear()
    client = client_for("acme")
    answers = []
    for address in (email, "nobody@acme.example", world.b.members["owner"].email):
        response = post_form(client, "/portal/new-link", {"email": address}, follow_redirects=True)
        answers.append(re.sub(r'(name="csrf[-_]token"[^>]*value|content)="[^"]*"', "", _text(response)))
    assert answers[0] == answers[1] == answers[2]
    assert "If that address has a portal login waiting for a step" in answers[0]
    box = deliver()
    assert [m["To"] for m in box.messages] == [email]
    assert "/portal/verify/" in box.body(box.messages[0])


def test_link_pages_are_rate_limited(app, world, client_for):
    client = client_for("acme")
    for _ in range(10):
        assert post_form(client, "/portal/new-link", {"email": "x@acme.example"}).status_code == 302
    assert post_form(client, "/portal/new-link", {"email": "x@acme.example"}).status_code == 429


def test_link_pages_need_the_csrf_token(app, world, client_for, deliver):
    _, account_id, email = _register(app, world, password=STRONG)
    path = _only_link(deliver, email, "/portal/verify/")
    client = client_for("acme")
    client.get(path)
    assert client.post(path, data={}).status_code == 400
    assert _account(app, world, account_id).email_verified_at is None


# --- approval ------------------------------------------------------------------------------------

def test_needs_approval_queue_approve_and_the_email(app, world, client_for, staff_client, deliver):
    contact_id, account_id, email = _register(app, world, needs_approval=True, source="Spring kickoff")
    assert deliver().to(email) == []  # no choose-your-password link before a decision
    owner = staff_client("owner")

    dashboard = _text(owner.get("/staff/"))
    assert re.search(r'Approvals <span class="badge nav-count"><span aria-hidden="true">1</span>', dashboard)
    queue = owner.get("/staff/portal/approvals")
    page = _text(queue)
    assert queue.status_code == 200
    assert "Robin Registrant" in page and email in page and "Spring kickoff" in page
    assert f'/staff/contacts/{contact_id}"' in page
    contact_page = _text(owner.get(f"/staff/contacts/{contact_id}"))
    assert f"Portal login:\n    <span class=\"badge badge-muted\">{WAITING}</span>" in contact_page

    done = post_form(owner, f"/staff/portal/approvals/{account_id}/approve", follow_redirects=True)
    assert "Robin Registrant is approved" in _text(done)
    assert "Nobody is waiting for approval" in _text(done)
    assert 'class="badge nav-count"' not in _text(done)
    account = _account(app, world, account_id)
    assert account.approval == "approved" and account.decided_by_id == world.a.members["owner"].id

    box = deliver()
    (message,) = box.to(email)
    assert message["Subject"] == "You're approved for Acme Corp"
    path = _only_link(deliver, email, "/portal/set-password/")
    assert not may_sign_in_in(app, world, account_id)  # no password yet
    client = client_for("acme")
    post_form(client, path, {"password": STRONG, "confirm": STRONG})
    assert may_sign_in_in(app, world, account_id)
    assert "Active" in _text(owner.get(f"/staff/contacts/{contact_id}"))

    again = post_form(owner, f"/staff/portal/approvals/{account_id}/approve", follow_redirects=True)
    assert "has already been approved" in _text(again)


def test_reject_with_a_reason(app, world, staff_client, deliver):
    contact_id, account_id, email = _register(app, world, password=STRONG, needs_approval=True)
    deliver().messages.clear()
    admin = staff_client("admin")
    done = post_form(admin, f"/staff/portal/approvals/{account_id}/reject", {"reason": "Not a customer of ours"},
                     follow_redirects=True)
    assert "Robin Registrant is rejected" in _text(done)
    account = _account(app, world, account_id)
    assert account.approval == "rejected" and account.rejection_reason == "Not a customer of ours"
    page = _text(admin.get(f"/staff/contacts/{contact_id}"))
    assert "Rejected" in page and "Not a customer of ours" in page
    assert deliver().messages == []
    assert not may_sign_in_in(app, world, account_id)


def test_staff_without_the_permission_get_403(app, world, staff_client):
    _, account_id, _ = _register(app, world, needs_approval=True)
    staff = staff_client("staff")
    assert staff.get("/staff/portal/approvals").status_code == 403
    assert post_form(staff, f"/staff/portal/approvals/{account_id}/approve").status_code == 403
    assert post_form(staff, f"/staff/portal/approvals/{account_id}/reject").status_code == 403
    assert "Approvals" not in _text(staff.get("/staff/"))
    assert _account(app, world, account_id).approval == "pending"
    with app.app_context(), tenant_context(world.a.id):
        with pytest.raises(ServiceError):
            approve(db.session.get(PortalAccount, account_id), db.session.get(StaffUser, world.a.members["staff"].id))


def test_a_tenant_may_give_staff_the_permission(app, world, staff_client):
    _, account_id, _ = _register(app, world, needs_approval=True)
    with app.app_context(), tenant_context(world.a.id):
        from core.permissions import RolePermission
        db.session.add(RolePermission(role="staff", permission="portal.approve", granted=True))
        db.session.commit()
    staff = staff_client("staff")
    assert staff.get("/staff/portal/approvals").status_code == 200


def test_another_tenants_account_is_404(app, world, staff_client):
    _, b_account, _ = _register(app, world, needs_approval=True, tenant="b")
    owner = staff_client("owner")
    for action in ("approve", "reject"):
        assert post_form(owner, f"/staff/portal/approvals/{b_account}/{action}").status_code == 404
    assert _account(app, world, b_account, tenant="b").approval == "pending"


# --- who may sign in -----------------------------------------------------------------------------

def _ready(app, world, role="prospect"):
    """A login that may sign in: approved, verified, with a password, on an active Prospect."""
    with app.app_context(), tenant_context(world.a.id):
        contact = make_contact("Ready", "Person", role=role)
        account = make_portal_account(contact, approval="approved", email_verified_at=utcnow(),
                                      password_hash="$argon2id$v=19$m=1024,t=1,p=1$x$y")
        db.session.commit()
        return contact.id, account.id


def _break_it(contact: Contact, account: PortalAccount, condition: str) -> None:
    if condition == "pending":
        account.approval = "pending"
    elif condition == "rejected":
        account.approval = "rejected"
    elif condition == "no_password":
        account.password_hash = None
    elif condition == "unverified":
        account.email_verified_at = None
    elif condition == "disabled":
        account.active = False
    elif condition == "role":
        contact.role = "lead"
    elif condition == "contact_inactive":
        contact.is_active = False
    elif condition == "contact_archived":
        contact.archived_at = utcnow()


CONDITIONS = ["pending", "rejected", "no_password", "unverified", "disabled", "role", "contact_inactive",
              "contact_archived"]


@pytest.mark.parametrize("role", ["prospect", "client"])
def test_may_sign_in_when_every_condition_holds(app, world, role):
    _, account_id = _ready(app, world, role)
    with app.app_context(), tenant_context(world.a.id):
        account = db.session.get(PortalAccount, account_id)
        assert may_sign_in(account) and sign_in_blockers(account) == []


@pytest.mark.parametrize("condition", CONDITIONS)
def test_may_not_sign_in_when_one_condition_fails(app, world, condition):
    contact_id, account_id = _ready(app, world)
    with app.app_context(), tenant_context(world.a.id):
        contact, account = db.session.get(Contact, contact_id), db.session.get(PortalAccount, account_id)
        _break_it(contact, account, condition)
        db.session.flush()
        assert not may_sign_in(account)
        expected = "contact_inactive" if condition == "contact_archived" else condition
        assert [key for key, _ in sign_in_blockers(account)] == [expected]


def test_a_lead_registers_but_signs_in_only_as_prospect(app, world, client_for, deliver):
    contact_id, account_id, email = _register(app, world, role="lead")
    post_form(client_for("acme"), _only_link(deliver, email, "/portal/set-password/"),
              {"password": STRONG, "confirm": STRONG})
    with app.app_context(), tenant_context(world.a.id):
        account = db.session.get(PortalAccount, account_id)
        assert [key for key, _ in sign_in_blockers(account)] == ["role"] and not may_sign_in(account)
        db.session.get(Contact, contact_id).role = "prospect"
        db.session.flush()
        assert may_sign_in(account)


def test_a_portal_login_has_no_way_into_staff(app, world, client_for):
    """It is not a staff principal: no permission, and a session naming it loads nobody."""
    _, account_id, _ = _register(app, world, password=STRONG)
    with app.app_context(), tenant_context(world.a.id):
        account = db.session.get(PortalAccount, account_id)
        assert account.principal_type == "portal" and not account.is_staff
        assert not any(can(account, p) for p in ("dashboard.view", "contacts.view", "portal.approve"))
        account.current_session_token = "anything"
        forged = account.get_id()
    client = client_for("acme")
    with client.session_transaction() as session:
        session["_user_id"] = forged
        session["_fresh"] = True
    response = client.get("/staff/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/staff/login")


# --- merging contacts ------------------------------------------------------------------------------

def _merge(app, world, survivor_id, merged_id):
    with app.app_context(), tenant_context(world.a.id):
        owner = db.session.get(StaffUser, world.a.members["owner"].id)
        merge_contacts(db.session.get(Contact, survivor_id), [db.session.get(Contact, merged_id)], actor=owner)
        db.session.commit()


def test_merge_moves_the_only_login_to_the_survivor(app, world):
    with app.app_context(), tenant_context(world.a.id):
        survivor, merged = make_contact("Sam", "Same", role="client"), make_contact("Sam", "Same", role="client")
        account = make_portal_account(merged)
        db.session.commit()
        ids = survivor.id, merged.id, account.id
    _merge(app, world, ids[0], ids[1])
    with app.app_context(), tenant_context(world.a.id):
        assert account_for(db.session.get(Contact, ids[0])).id == ids[2]
        assert account_for(db.session.get(Contact, ids[1])) is None


@pytest.mark.parametrize("usable_on", ["survivor", "merged"])
def test_merge_keeps_the_usable_login_and_disables_the_other(app, world, usable_on):
    with app.app_context(), tenant_context(world.a.id):
        survivor, merged = make_contact("Kim", "Twice", role="client"), make_contact("Kim", "Twice", role="client")
        usable_contact, other_contact = (survivor, merged) if usable_on == "survivor" else (merged, survivor)
        usable = make_portal_account(usable_contact, approval="approved", email_verified_at=utcnow(),
                                     password_hash="$argon2id$v=19$m=1024,t=1,p=1$x$y")
        other = make_portal_account(other_contact)  # pending, unverified, no password
        db.session.commit()
        ids = survivor.id, merged.id, usable.id, other.id
    _merge(app, world, ids[0], ids[1])
    with app.app_context(), tenant_context(world.a.id):
        kept = account_for(db.session.get(Contact, ids[0]))
        dropped = db.session.get(PortalAccount, ids[3])
        assert kept.id == ids[2] and may_sign_in(kept)
        assert not dropped.active and dropped.replaced_by_id == kept.id and dropped.contact_id == ids[0]
        assert not may_sign_in(dropped)
        assert account_for(db.session.get(Contact, ids[1])) is None
        assert "portal.account_replaced" in db.session.scalars(sa.select(AuditEvent.action)).all()
        # The disabled login's address is free again: a new login may use it.
        assert db.session.scalar(sa.select(sa.func.count()).select_from(PortalAccount).where(
            PortalAccount.email == dropped.email, PortalAccount.replaced_by_id.is_(None))) == 0


def test_deleting_the_survivor_takes_its_logins_with_it(app, world):
    from crm.contacts import delete_contact

    with app.app_context(), tenant_context(world.a.id):
        survivor, merged = make_contact("Del", "Twice", role="client"), make_contact("Del", "Twice", role="client")
        make_portal_account(survivor, approval="approved")
        make_portal_account(merged)
        db.session.commit()
        ids = survivor.id, merged.id
    _merge(app, world, *ids)
    with app.app_context(), tenant_context(world.a.id):
        owner = db.session.get(StaffUser, world.a.members["owner"].id)
        delete_contact(db.session.get(Contact, ids[0]), actor=owner)
        db.session.commit()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(PortalAccount)) == 0


def test_the_approval_queue_does_not_query_per_registrant(app, world, staff_client):
    from tests.test_query_counts import counted_queries

    _register(app, world, needs_approval=True)
    owner = staff_client("owner")
    owner.get("/staff/portal/approvals")  # warm up
    with counted_queries(app) as few:
        assert owner.get("/staff/portal/approvals").status_code == 200
    for n in range(15):
        _register(app, world, needs_approval=True, email=f"more{n}@example.com")
    with counted_queries(app) as many:
        page = owner.get("/staff/portal/approvals").get_data(as_text=True)
    assert "more14@example.com" in page
    assert len(many) == len(few), f"{len(few)} queries with one registrant, {len(many)} with 16"
