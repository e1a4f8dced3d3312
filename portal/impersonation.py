"""The portal's side of impersonation (core.impersonation): a portal login may be impersonated
exactly when it may sign in (portal.accounts.may_sign_in, the portal's one rule), and while it
is, current_account() is that login for the admin's browser. The contact's timeline notes the
start, the person may be told by e-mail (a tenant setting), and their profile lists it."""
from __future__ import annotations

from flask import g
from sqlalchemy.orm.attributes import set_committed_value

from core import impersonation
from core.db import db
from core.identity import StaffUser
from core.mail import send_mail
from core.tenancy import current_tenant, tenant_link
from crm.models import Contact
from crm.timeline import record_activity
from portal.accounts import TIMELINE_KIND, may_sign_in
from portal.models import PortalAccount

NOT_ON_PORTAL = "{name} cannot use the portal now (no login that may sign in), so there is nothing to see as them."


@impersonation.target_rule(PortalAccount)
def _portal_rule(admin, account: PortalAccount) -> str | None:
    if account.contact is None and account.contact_id is not None:
        set_committed_value(account, "contact", db.session.get(Contact, account.contact_id))
    if not may_sign_in(account):
        name = account.contact.full_name if account.contact is not None else account.email
        return NOT_ON_PORTAL.format(name=name)
    return None


def impersonated_account() -> PortalAccount | None:
    """The login the admin's browser is seeing the portal as, or None."""
    row = impersonation.current()
    if row is None or row.target_account_id is None:
        return None
    account = g.get("impersonated")
    account.current_session_token = None  # never one of the login's own sessions
    return account


@impersonation.started_hook
def _note_start(row, target) -> None:
    if not isinstance(target, PortalAccount):
        return
    record_activity(TIMELINE_KIND, f"{row.admin_label} started seeing the portal as them ({row.reason})",
                    contact=target.contact, subject=target, actor=db.session.get(StaffUser, row.admin_id))
    tenant = current_tenant()
    if tenant.impersonation_notify:
        send_mail(target.email, f"{tenant.brand_name} viewed your portal account", "portal_impersonated",
                  tenant_id=tenant.id, account=target, contact=target.contact, tenant=tenant, row=row,
                  link=tenant_link(tenant, "portal.profile"))
