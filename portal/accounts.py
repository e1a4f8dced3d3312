"""Portal logins for contacts: registration (from a kickoff form, or by staff), e-mail
verification, choosing a password, staff approval, and who may sign in.

The flow, decided here so every caller (the kickoff forms, the staff pages, the CLI, later the
portal's own sign-in) shares it:

* `register_portal_account(contact, password=…, needs_approval=…)` stores the login. With a
  password, a confirm-your-e-mail link is sent at once. Without one, a choose-your-password
  link is sent instead (at once, or with the approval e-mail when the form needs approval: a
  registrant who may be turned down is not asked to choose a password first). Following that
  link proves the address too, so setting the password also verifies the e-mail.
* Staff with `portal.approve` approve or reject pending registrants; approval e-mails the
  registrant, with the next step they still need (choose a password, confirm the e-mail).
* `may_sign_in(account)` is the one rule the portal's sign-in will ask (see its docstring).

Links are signed, expiring and single-use (core.identity.make_token with a `state`: the link
stops working once what it was for has changed). Every change is audited and written on the
contact's timeline. E-mails are background jobs queued on commit.
"""
from __future__ import annotations

import sqlalchemy as sa
from flask import current_app

from billing.entitlements import portal_access_open
from core.audit import ANONYMOUS, record, register_actions
from core.db import db, utcnow
from core.errors import ServiceError
from core.identity import StaffUser, end_sessions, hash_password, load_token, make_token, normalize_email, \
    open_sessions
from core.identity import password_problem as _staff_password_rules
from core.jobs import job, on_commit
from core.mail import send_mail
from core.permissions import can
from core.tenancy import current_tenant, tenant_link
from core.text import clean_line
from crm.merge import MERGE_HOOKS
from crm.models import Contact, ContactRole
from crm.sections import contact_section
from crm.timeline import record_activity
from portal.models import Approval, PortalAccount

VERIFY, SET_PASSWORD = "portal-verify-email", "portal-set-password"
SIGN_IN_ROLES = (ContactRole.PROSPECT, ContactRole.CLIENT)
TIMELINE_KIND = "portal"

register_actions({
    "portal.account_registered": "Portal login registered",
    "portal.email_verified": "Portal e-mail address confirmed",
    "portal.password_set": "Portal password chosen",
    "portal.account_approved": "Portal registrant approved",
    "portal.account_rejected": "Portal registrant rejected",
    "portal.account_moved": "Portal login moved to merged contact",
    "portal.account_replaced": "Portal login replaced in a merge",
    "portal.link_requested": "New portal link requested",
    "portal.login": "Signed in to the portal",
    "portal.login_failed": "Portal sign-in failed",
    "portal.login_refused": "Portal sign-in refused (right password, no access)",
    "portal.logout": "Signed out of the portal",
    "portal.signed_out_by_rule": "Signed out of the portal: no longer allowed in",
    "portal.session_ended": "Portal device signed out by its owner",
    "portal.password_changed": "Portal password changed",
    "portal.password_reset_requested": "Portal password reset requested",
    "portal.password_reset": "Portal password reset",
    "portal.login_enabled": "Portal login enabled",
    "portal.login_disabled": "Portal login disabled",
    "portal.invited": "Invited to the portal",
    "portal.verification_resent": "Portal confirmation link sent again",
    "portal.sessions_ended": "Portal sessions ended by staff",
})


# --- reading -------------------------------------------------------------------------------------

def account_for(contact: Contact) -> PortalAccount | None:
    """The contact's current portal login, if any."""
    return db.session.scalar(sa.select(PortalAccount).where(
        PortalAccount.contact_id == contact.id, PortalAccount.replaced_by_id.is_(None)))


def _account_by_email(email: str) -> PortalAccount | None:
    return db.session.scalar(sa.select(PortalAccount).where(
        PortalAccount.email == email, PortalAccount.replaced_by_id.is_(None)))


def pending_approvals(limit: int = 200) -> list[PortalAccount]:
    """Registrants waiting for a staff decision, oldest first, with their contacts loaded."""
    return list(db.session.scalars(
        sa.select(PortalAccount)
        .where(PortalAccount.approval == Approval.PENDING, PortalAccount.replaced_by_id.is_(None),
               PortalAccount.active.is_(True))
        .order_by(PortalAccount.created_at, PortalAccount.id).limit(limit)
        .options(sa.orm.selectinload(PortalAccount.contact))))


def pending_count() -> int:
    return db.session.scalar(pending_count_query())


# Built once: the staff navigation asks it on every page of those who decide.
_PENDING_COUNT = sa.select(sa.func.count()).select_from(PortalAccount).where(
    PortalAccount.approval == Approval.PENDING, PortalAccount.replaced_by_id.is_(None), PortalAccount.active.is_(True))


def pending_count_query() -> sa.Select:
    return _PENDING_COUNT


# --- who may sign in -------------------------------------------------------------------------------

@contact_section("portal")
def _contact_page_portal(contact: Contact, viewer) -> dict:
    account = account_for(contact)
    return {"account": account, "blockers": sign_in_blockers(account) if account else [],
            "sessions": open_sessions(account) if account else [],
            "may_manage": can(viewer, "contacts.edit", contact), "may_grant": can(viewer, "portal.approve")}


def sign_in_blockers(account: PortalAccount) -> list[tuple[str, str]]:
    """Everything that keeps this login from being used, as (key, plain words), most
    fundamental first; empty when it may sign in."""
    contact = account.contact
    blockers = []
    if not account.is_current:
        blockers.append(("replaced", "Replaced by another login when contacts were merged"))
    if not account.active:
        blockers.append(("disabled", "Disabled"))
    if account.approval == Approval.REJECTED:
        blockers.append(("rejected", "Rejected"))
    elif account.approval == Approval.PENDING:
        blockers.append(("pending", "Waiting for approval"))
    if not account.has_password:
        blockers.append(("no_password", "No password chosen yet"))
    if not account.is_verified:
        blockers.append(("unverified", "E-mail not verified"))
    if contact is None or not contact.is_active or contact.archived_at is not None or contact.merged_into_id:
        blockers.append(("contact_inactive", "The contact is inactive"))
    elif contact.role not in SIGN_IN_ROLES:
        blockers.append(("role", f"Only Prospects and Clients may sign in; this contact is a {contact.role_label}"))
    elif not portal_access_open(contact.id, account.form_id):
        # billing's one rule, over the tenant's cached payment rule and one indexed row
        blockers.append(("payment", "No paid plan: portal access needs one"))
    return blockers


def may_sign_in(account: PortalAccount | None) -> bool:
    """Whether this login may be used to sign in to the portal, now.

    All of: the account is active and current (not replaced in a merge), approved (accounts
    that needed no approval are approved from the start), has a password, has a verified
    e-mail, and its contact is active (not Inactive, not in history, not merged away) and a
    Prospect or Client.

    The contact's role is read live, not copied onto the account: a Lead who registers keeps
    their login, unusable, and it starts working the moment staff make the contact a Prospect
    or Client (and stops again if they are moved back to Lead or made Inactive). When the
    contact must pay (the rule of the form they registered through, else the tenant's), they must
    hold one of those plans (billing.entitlements.portal_access_open:
    closing takes effect on the next request, paying again reopens without staff).
    """
    return account is not None and not sign_in_blockers(account)


def status_label(account: PortalAccount | None) -> str:
    """One short phrase for staff pages: what stands between this login and the portal."""
    if account is None:
        return "No portal login"
    blockers = sign_in_blockers(account)
    return blockers[0][1] if blockers else "Active"


# --- passwords and links ---------------------------------------------------------------------------

def password_problem(password: str, *, email: str = "", name: str = "") -> str | None:
    """A plain-words reason the password is too weak, or None: the same rules as staff
    passwords (core.identity)."""
    return _staff_password_rules(password or "", email=email, name=name)


def _checked_password(account: PortalAccount, password: str, name: str = "") -> str:
    problem = password_problem(password, email=account.email, name=name)
    if problem:
        raise ServiceError(problem, field="password")
    return hash_password(password)


def _verify_state(account: PortalAccount) -> str:
    # The link confirms this address, once: a new address or a confirmed one ends it.
    verified = account.email_verified_at.isoformat() if account.email_verified_at else "unverified"
    return f"{account.email}|{verified}"


def _password_state(account: PortalAccount) -> str:
    return account.email  # and, through the fingerprint, the password: set once, dead


def make_verify_token(account: PortalAccount) -> str:
    return make_token(account, VERIFY, state=_verify_state(account))


def make_set_password_token(account: PortalAccount) -> str:
    return make_token(account, SET_PASSWORD, state=_password_state(account))


def _usable(account: PortalAccount | None) -> PortalAccount | None:
    if account is None or not account.active or not account.is_current or account.approval == Approval.REJECTED:
        return None
    return account


def account_for_verify_token(token: str) -> PortalAccount | None:
    """The account a confirm-your-e-mail link is for; None when forged, expired or used."""
    account = load_token(PortalAccount, token, VERIFY, current_app.config["PORTAL_VERIFY_MAX_AGE"],
                         state=_verify_state)
    return _usable(account)


def account_for_set_password_token(token: str) -> PortalAccount | None:
    """The account a choose-your-password link is for; None when forged, expired or used."""
    account = load_token(PortalAccount, token, SET_PASSWORD, current_app.config["PORTAL_SET_PASSWORD_MAX_AGE"],
                         state=_password_state)
    return _usable(account)


# --- registering -----------------------------------------------------------------------------------

def register_portal_account(contact: Contact, *, password: str | None, needs_approval: bool, actor=None,
                            source: str = "", password_hash: str | None = None,
                            form_id: int | None = None) -> PortalAccount:
    """A portal login for `contact`, with its e-mail address (see the module docstring for
    what is e-mailed when). Idempotent: when the contact already has a login, it is returned
    as it is (its password, verification and approval untouched).

    `form_id`: the kickoff form they registered through; its payment rule, if it has one, is
    theirs (billing.entitlements.required_plans).

    `password_hash` instead of `password`: one chosen earlier and kept only hashed (a kickoff
    form hashes it on receipt, after checking it with password_problem()).

    Any contact may hold one; whether it can be used is may_sign_in()'s question, so a Lead
    who registers is stored now and can sign in once they become a Prospect or Client.
    Raises ServiceError (field "email" or "password") when it cannot be made.
    """
    existing = account_for(contact)
    if existing is not None:
        return existing
    if contact.merged_into_id is not None:
        raise ServiceError("This contact was merged into another; register that one instead.")
    try:
        email = normalize_email(contact.email or "")
    except ValueError:
        raise ServiceError("A portal login needs the contact's e-mail address.", field="email") from None
    if _account_by_email(email) is not None:
        raise ServiceError(f"Another contact already has a portal login with {email}.", field="email")
    source = clean_line(source, label="the source", max_length=200, required=False) or ""
    now = utcnow()
    account = PortalAccount(contact_id=contact.id, email=email, source=source, form_id=form_id,
                            approval=Approval.PENDING if needs_approval else Approval.APPROVED,
                            decided_at=None if needs_approval else now)
    if password is not None:
        password_hash = _checked_password(account, password, contact.full_name)
    if password_hash is not None:
        account.password_hash = password_hash
        account.password_changed_at = now
    db.session.add(account)
    db.session.flush()
    details = {"source": source, "needs_approval": needs_approval, "password_chosen": password_hash is not None}
    record("portal.account_registered", account, actor=actor, details=details)
    via = f" via {source}" if source else ""
    waiting = "; waiting for approval" if needs_approval else ""
    record_activity(TIMELINE_KIND, f"Registered for a portal login{via}{waiting}", contact=contact,
                    actor=actor, subject=account, details=details)
    if password_hash is not None:
        on_commit(send_verification, account.id, tenant_id=account.tenant_id)
    elif not needs_approval:
        on_commit(send_set_password, account.id, tenant_id=account.tenant_id)
    return account


# --- following the links ---------------------------------------------------------------------------

def verify_email(account: PortalAccount) -> None:
    """The registrant followed their confirm-your-e-mail link."""
    if account.is_verified:
        return
    account.email_verified_at = utcnow()
    record("portal.email_verified", account, actor=account)
    record_activity(TIMELINE_KIND, "Confirmed their e-mail address for the portal", contact=account.contact,
                    actor=account, subject=account)


def set_password(account: PortalAccount, password: str) -> None:
    """The registrant chose their password through the link e-mailed to them, which also
    proves they read that address: the e-mail counts as verified."""
    account.password_hash = _checked_password(account, password, account.contact.full_name if account.contact else "")
    account.password_changed_at = utcnow()
    record("portal.password_set", account, actor=account)
    record_activity(TIMELINE_KIND, "Chose a password for the portal", contact=account.contact,
                    actor=account, subject=account)
    verify_email(account)


def request_new_link(email: str, ip_address: str | None = None) -> None:
    """Someone asks for a fresh link (theirs expired or was used). The request does the same
    work whatever the address: the job looks it up and sends what the account still needs, so
    neither the answer nor its timing tells whether a login exists."""
    on_commit(send_new_link, (email or "")[:320], ip_address, tenant_id=current_tenant().id)


# --- staff decisions -------------------------------------------------------------------------------

def _check_decision(account: PortalAccount, actor) -> None:
    if not can(actor, "portal.approve"):
        raise ServiceError("Your role may not approve portal registrations.")
    if account.approval != Approval.PENDING or not account.is_current:
        raise ServiceError(f"{account.email} has already been {Approval.LABELS[account.approval].lower()}.")


def approve(account: PortalAccount, actor: StaffUser) -> None:
    """Let the registrant in (as far as approval goes) and e-mail them."""
    _check_decision(account, actor)
    account.approval = Approval.APPROVED
    account.decided_by_id = actor.id
    account.decided_at = utcnow()
    record("portal.account_approved", account, actor=actor)
    record_activity(TIMELINE_KIND, "Portal registration approved", contact=account.contact, actor=actor,
                    subject=account)
    on_commit(send_approved, account.id, tenant_id=account.tenant_id)


def reject(account: PortalAccount, actor: StaffUser, reason: str = "") -> None:
    """Turn the registrant down. Nothing is e-mailed: what to tell them is the team's call."""
    _check_decision(account, actor)
    reason = clean_line(reason, label="the reason", field="reason", max_length=500, required=False)
    account.approval = Approval.REJECTED
    account.decided_by_id = actor.id
    account.decided_at = utcnow()
    account.rejection_reason = reason
    record("portal.account_rejected", account, actor=actor, details={"reason": reason} if reason else None)
    record_activity(TIMELINE_KIND, "Portal registration rejected" + (f": {reason}" if reason else ""),
                    contact=account.contact, actor=actor, subject=account)


# --- staff actions on a contact's login (its staff page) ----------------------------------------------

def _check_manager(actor, contact: Contact | None, *, grants: bool) -> None:
    """Who may act on a contact's portal login: whoever may edit the contact; letting someone
    in (enabling, inviting) also takes the right to approve portal registrations."""
    if contact is None or not can(actor, "contacts.edit", contact):
        raise ServiceError("Your role may not change this contact's portal login.")
    if grants and not can(actor, "portal.approve"):
        raise ServiceError("Letting someone into the portal takes the right to approve portal registrations; "
                           "ask someone who has it.")


def set_login_enabled(account: PortalAccount, enabled: bool, actor: StaffUser) -> bool:
    """Switch the login on or off; off signs out every device now. False when it already was."""
    _check_manager(actor, account.contact, grants=enabled)
    if not account.is_current:
        raise ServiceError("This login was replaced by another when contacts were merged; it stays off.")
    if account.active == enabled:
        return False
    account.active = enabled
    ended = 0 if enabled else end_sessions(account)
    record("portal.login_enabled" if enabled else "portal.login_disabled", account, actor=actor,
           details=None if enabled else {"sessions_ended": ended})
    record_activity(TIMELINE_KIND, "Portal login enabled" if enabled else "Portal login disabled",
                    contact=account.contact, actor=actor, subject=account)
    return True


def invite(contact: Contact, actor: StaffUser) -> PortalAccount:
    """E-mail the contact a choose-your-password link, making their portal login (approved: the
    invitation is the approval) when they have none."""
    _check_manager(actor, contact, grants=True)
    account = account_for(contact)
    if account is None:
        account = register_portal_account(contact, password=None, needs_approval=False, actor=actor,
                                          source="Invitation")
        account.decided_by_id = actor.id
    else:
        if account.has_password:
            raise ServiceError(f"{account.email} has already chosen a password: they can sign in, or use "
                               "“Forgot your password?” on the sign-in page.")
        if not account.active:
            raise ServiceError("This portal login is disabled: enable it first.")
        if account.approval != Approval.APPROVED:
            raise ServiceError("This registration is waiting for a decision (or was rejected): decide it "
                               "in the approval queue; approving it e-mails the link.")
        on_commit(send_set_password, account.id, tenant_id=account.tenant_id)
    record("portal.invited", account, actor=actor)
    record_activity(TIMELINE_KIND, f"Invited to the portal: a link to choose a password went to {account.email}",
                    contact=contact, actor=actor, subject=account)
    return account


def resend_verification(account: PortalAccount, actor: StaffUser) -> None:
    """E-mail the confirm-your-e-mail link again."""
    _check_manager(actor, account.contact, grants=False)
    if account.is_verified:
        raise ServiceError(f"{account.email} is already confirmed.")
    if not account.has_password:
        raise ServiceError("No password is chosen yet: send an invitation instead (choosing the password "
                           "confirms the address too).")
    if _usable(account) is None:
        raise ServiceError("This portal login is disabled or rejected: no link is sent.")
    on_commit(send_verification, account.id, tenant_id=account.tenant_id)
    record("portal.verification_resent", account, actor=actor)
    record_activity(TIMELINE_KIND, f"Confirmation link sent again to {account.email}", contact=account.contact,
                    actor=actor, subject=account)


def sign_out_everywhere(account: PortalAccount, actor: StaffUser) -> int:
    """End every portal session of the login; returns how many were open."""
    _check_manager(actor, account.contact, grants=False)
    ended = end_sessions(account)
    record("portal.sessions_ended", account, actor=actor, details={"count": ended})
    if ended:
        record_activity(TIMELINE_KIND, f"Signed out of the portal on {ended} device{'s' if ended != 1 else ''} "
                        "by staff", contact=account.contact, actor=actor, subject=account)
    return ended


# --- merging contacts ------------------------------------------------------------------------------

def _strength(account: PortalAccount, survivor_id: int) -> tuple:
    return (account.active, account.approval == Approval.APPROVED, account.is_verified, account.has_password,
            account.approval != Approval.REJECTED, account.last_login_at is not None,
            account.contact_id == survivor_id)


def merge_portal_accounts(survivor: Contact, merged: Contact, actor) -> None:
    """MERGE_HOOKS: the survivor ends up with one current portal login.

    * Only the merged contact has one: it moves to the survivor, unchanged.
    * Both have one: the survivor keeps the one further along: active, then approved, then
      with a verified e-mail, then with a password, then not rejected, then used before; on a
      tie, the survivor's own. That is the login the person can actually use, so the merge
      never locks them out. The other is disabled and marked replaced by the kept one; it
      moves to the survivor too (like every other record of the merged contact), where it
      stays on record but can never sign in, and its address is free to be used again.
    """
    moving = account_for(merged)
    if moving is None:
        return
    kept = account_for(survivor)
    if kept is None:
        moving.contact_id = survivor.id
        record("portal.account_moved", moving, actor=actor, details={"from_contact": merged.id})
        record_activity(TIMELINE_KIND, f"Portal login {moving.email} came with the merge", contact=survivor,
                        actor=actor, subject=moving)
        db.session.flush()
        return
    keep, drop = sorted((kept, moving), key=lambda a: _strength(a, survivor.id), reverse=True)
    drop.active = False
    drop.replaced_by_id = keep.id
    db.session.flush()  # out of the one-current-login slots before the kept one moves in
    keep.contact_id = survivor.id
    drop.contact_id = survivor.id
    record("portal.account_replaced", drop, actor=actor, details={"kept": keep.id, "kept_email": keep.email})
    record_activity(TIMELINE_KIND, f"Merge kept the portal login {keep.email}; {drop.email} is disabled",
                    contact=survivor, actor=actor, subject=keep)
    db.session.flush()


MERGE_HOOKS.append(merge_portal_accounts)


# --- e-mails (background jobs) -----------------------------------------------------------------------

def _mail(account: PortalAccount, subject: str, template: str, **context) -> None:
    tenant = current_tenant()
    send_mail(account.email, subject, template, tenant_id=tenant.id, account=account, tenant=tenant,
              contact=account.contact, **context)


def _days(seconds: int) -> int:
    return max(1, seconds // 86400)


def _verify_mail(account: PortalAccount) -> None:
    tenant = current_tenant()
    _mail(account, f"Confirm your e-mail address for {tenant.brand_name}", "portal_verify_email",
          link=tenant_link(tenant, "portal.verify_email", token=make_verify_token(account)),
          days=_days(current_app.config["PORTAL_VERIFY_MAX_AGE"]))


def _set_password_mail(account: PortalAccount) -> None:
    tenant = current_tenant()
    _mail(account, f"Choose your password for {tenant.brand_name}", "portal_set_password",
          link=tenant_link(tenant, "portal.set_password", token=make_set_password_token(account)),
          days=_days(current_app.config["PORTAL_SET_PASSWORD_MAX_AGE"]))


def _live(account_id: int) -> PortalAccount | None:
    return _usable(db.session.get(PortalAccount, account_id))


@job(retries=5)
def send_verification(account_id: int) -> None:
    account = _live(account_id)
    if account is not None and not account.is_verified:
        _verify_mail(account)


@job(retries=5)
def send_set_password(account_id: int) -> None:
    account = _live(account_id)
    if account is not None and not account.has_password:
        _set_password_mail(account)


@job(retries=5)
def send_approved(account_id: int) -> None:
    """The approval e-mail carries the next step still open: choose a password (which also
    confirms the address), or confirm the address, or just where the portal is."""
    account = _live(account_id)
    if account is None or account.approval != Approval.APPROVED:
        return
    tenant = current_tenant()
    if not account.has_password:
        step, token, endpoint = "password", make_set_password_token(account), "portal.set_password"
        days = _days(current_app.config["PORTAL_SET_PASSWORD_MAX_AGE"])
    elif not account.is_verified:
        step, token, endpoint = "verify", make_verify_token(account), "portal.verify_email"
        days = _days(current_app.config["PORTAL_VERIFY_MAX_AGE"])
    else:
        step, token, endpoint, days = "ready", None, None, None
    link = tenant_link(tenant, endpoint, token=token) if endpoint else tenant_link(tenant, "portal.login")
    _mail(account, f"You're approved for {tenant.brand_name}", "portal_approved", link=link, step=step, days=days)


@job(retries=5)
def send_new_link(raw_email: str, ip_address: str | None) -> None:
    try:
        email = normalize_email(raw_email)
    except ValueError:
        return
    account = _usable(_account_by_email(email))
    if account is not None:
        send_missing_step(account, ip_address)


def send_missing_step(account: PortalAccount, ip_address: str | None) -> None:
    """E-mail the link for the step this login still needs (choose a password, confirm the
    address), if any; inside a job that someone asked for anonymously."""
    if not account.has_password:
        if account.approval != Approval.APPROVED:
            return  # the choose-your-password link comes with the approval
        _set_password_mail(account)
    elif not account.is_verified:
        _verify_mail(account)
    else:
        return
    record("portal.link_requested", account, actor=ANONYMOUS, details={"ip": ip_address})
