"""The approval queue for portal registrants (/staff/portal/approvals), and the count badge
the staff navigation shows beside it."""
from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for

from core.identity import current_principal
from core.permissions import can, require, staff_login_required
from core.tenancy import get_or_404
from core.web import service_call
from portal.accounts import approve, pending_approvals, pending_count, reject
from portal.models import PortalAccount
from staff import bp

QUEUE_LIMIT = 200  # the oldest; deciding them brings the next ones up


@bp.app_context_processor
def _pending_portal_approvals():
    def count() -> int:
        """Pending registrants, for the navigation badge: counted once per page, and only for
        those who may decide."""
        if "portal_pending" not in g:
            g.portal_pending = pending_count() if can(current_principal(), "portal.approve") else 0
        return g.portal_pending

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
