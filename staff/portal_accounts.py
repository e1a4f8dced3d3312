"""The approval queue for portal registrants (/staff/portal/approvals), the count badge the
staff navigation shows beside it, and what staff do to one contact's portal login from the
contact page (enable, disable, invite, resend the confirmation, sign out everywhere)."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from core import scalars
from core.identity import current_principal
from core.permissions import can, require, staff_login_required
from core.tenancy import get_or_404
from core.web import service_call
from crm.access import get_visible_contact_or_404
from portal.accounts import (account_for, approve, invite, pending_approvals, pending_count, pending_count_query,
                             reject, resend_verification, set_login_enabled, sign_out_everywhere)
from portal.models import PortalAccount
from staff import bp

QUEUE_LIMIT = 200  # the oldest; deciding them brings the next ones up
PENDING = "portal.pending_approvals"


@scalars.announcer
def _announce_pending_approvals():
    # Every staff page shows the badge to those who may decide: a page's main statement
    # brings the count along (core.scalars).
    if can(current_principal(), "portal.approve"):
        scalars.want(PENDING, pending_count_query)


@bp.app_context_processor
def _pending_portal_approvals():
    def count() -> int:
        """Pending registrants, for the navigation badge: counted once per page, and only for
        those who may decide."""
        return scalars.value(PENDING, pending_count_query) if can(current_principal(), "portal.approve") else 0

    return {"portal_pending_count": count}


@bp.get("/portal/approvals")
@staff_login_required
def portal_approvals():
    require("portal.approve")
    accounts = pending_approvals(limit=QUEUE_LIMIT)
    total = len(accounts) if len(accounts) < QUEUE_LIMIT else pending_count()
    return render_template("staff/portal/approvals.html", accounts=accounts, total=total)


def _decide(account_id: int, decide, done: str):
    account = get_or_404(PortalAccount, account_id)
    require("portal.approve")
    with service_call() as outcome:
        decide(account)
    if outcome:
        flash(done.format(name=account.contact.full_name if account.contact else account.email), "success")
    return redirect(url_for("staff.portal_approvals"))


@bp.post("/portal/approvals/<int:account_id>/approve")
@staff_login_required
def portal_approve(account_id):
    return _decide(account_id, lambda account: approve(account, current_principal()),
                   "{name} is approved; we have e-mailed them.")


@bp.post("/portal/approvals/<int:account_id>/reject")
@staff_login_required
def portal_reject(account_id):
    reason = request.form.get("reason", "")
    return _decide(account_id, lambda account: reject(account, current_principal(), reason),
                   "{name} is rejected.")


# --- one contact's login, from the contact page --------------------------------------------------------

def _on_contact_login(contact_id: int, act, *, needs_login: bool = True):
    """Run `act(contact, account)` for the contact's portal login and go back to the contact page."""
    contact = get_visible_contact_or_404(contact_id)
    require("contacts.edit", contact)
    account = account_for(contact)
    if needs_login and account is None:
        flash(f"{contact.full_name} has no portal login.", "error")
    else:
        with service_call() as outcome:
            message = act(contact, account)
        if outcome and message:
            flash(message, "success")
    return redirect(url_for("staff.contact", contact_id=contact.id) + "#portal-heading")


@bp.post("/contacts/<int:contact_id>/portal/enable")
@staff_login_required
def contact_portal_enable(contact_id):
    return _on_contact_login(contact_id, lambda contact, account: (
        "Portal login enabled." if set_login_enabled(account, True, current_principal()) else "It was already on."))


@bp.post("/contacts/<int:contact_id>/portal/disable")
@staff_login_required
def contact_portal_disable(contact_id):
    return _on_contact_login(contact_id, lambda contact, account: (
        "Portal login disabled; every device is signed out." if set_login_enabled(account, False, current_principal())
        else "It was already off."))


@bp.post("/contacts/<int:contact_id>/portal/invite")
@staff_login_required
def contact_portal_invite(contact_id):
    def act(contact, account):
        made = invite(contact, current_principal())
        return f"Invitation sent to {made.email}: a link to choose a password."

    return _on_contact_login(contact_id, act, needs_login=False)


@bp.post("/contacts/<int:contact_id>/portal/resend-verification")
@staff_login_required
def contact_portal_resend_verification(contact_id):
    def act(contact, account):
        resend_verification(account, current_principal())
        return f"Confirmation link sent again to {account.email}."

    return _on_contact_login(contact_id, act)


@bp.post("/contacts/<int:contact_id>/portal/sign-out")
@staff_login_required
def contact_portal_sign_out(contact_id):
    def act(contact, account):
        ended = sign_out_everywhere(account, current_principal())
        return f"Signed out of the portal on {ended} device{'s' if ended != 1 else ''}." if ended else \
            "No device was signed in."

    return _on_contact_login(contact_id, act)
