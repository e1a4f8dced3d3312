"""Signing in to the portal: the portal's own sessions, the request's account, passwords.

A portal session is a PortalSession row whose token the `portico_portal` cookie holds (path
/portal, HttpOnly, SameSite=Lax, Secure when the app's cookies are). It has nothing to do with
the staff session (Flask-Login's, in Flask's `session` cookie): signing in or out of one never
touches the other, and the same browser may hold both. The rule `may_sign_in`
(portal.accounts) is asked on every request that wants the account, over the session row, the
account and its contact loaded in one statement, so a login disabled, a contact made Inactive
or moved back to Lead is signed out on its next request, and a Prospect made Client stays in.

Public: current_account(), portal_login_required, portal_next_url(); the services below for
the views (authenticate, sign_in_account, sign_out_account, passwords).
"""
from __future__ import annotations

import functools

import sqlalchemy as sa
from flask import current_app, flash, g, has_request_context, redirect, request, url_for
from sqlalchemy.orm.attributes import set_committed_value

from core.audit import ANONYMOUS, record
from core.db import db, utcnow
from core.errors import ServiceError
from core.impersonation import refuse_while_impersonating
from core.identity import end_sessions, live_session, load_token, make_token, normalize_email, start_session, \
    verify_password
from core.jobs import job, on_commit
from core.mail import send_mail
from core.tenancy import current_tenant, tenant_link
from core.web import safe_next_url
from crm.models import Contact
from crm.timeline import record_activity
from portal.accounts import TIMELINE_KIND, _checked_password, _usable, may_sign_in, send_missing_step, sign_in_blockers
from portal.models import PortalAccount, PortalSession

COOKIE_NAME = "portico_portal"
COOKIE_PATH = "/portal"
RESET = "portal-password-reset"
SIGNED_OUT_NOTICE = "You have been signed out. Sign in again to continue."
PAYMENT_ENDED_NOTICE = ("Your paid access to the portal has ended, so you have been signed out. Sign in again to "
                        "pay and reopen it.")

_ACCOUNT = "portal_account"
_COOKIE_CHANGE = "portal_cookie_change"


# --- the request's account -------------------------------------------------------------------------

def current_account() -> PortalAccount | None:
    """The portal account this request is signed in as, or None. Asked once per request (then
    remembered): one statement loads the session, the account and its contact, and the
    account is returned only while may_sign_in() holds; otherwise the session ends here."""
    if not has_request_context():
        return None
    if _ACCOUNT not in g:
        g.portal_account = _load_account()
    return g.portal_account


# The account's contact, joined on its composite key: the rule reads it.
_CONTACT_ON = sa.and_(Contact.tenant_id == PortalAccount.tenant_id, Contact.id == PortalAccount.contact_id)
_WITH_CONTACT = ((Contact, _CONTACT_ON),)


def _load_account() -> PortalAccount | None:
    from portal.impersonation import impersonated_account

    seen_as = impersonated_account()  # an admin seeing the portal as this login
    if seen_as is not None:
        return seen_as
    token = request.cookies.get(COOKIE_NAME)
    if not token or g.get("tenant") is None:
        return None
    found = live_session(PortalSession, PortalAccount, token, *_WITH_CONTACT) if len(token) <= 64 else None
    if found is None:  # ended (signed out elsewhere, by staff, by a new password) or expired
        _forget_cookie()
        g.portal_signed_out = True
        return None
    _, account, contact = found
    set_committed_value(account, "contact", contact)  # the rule reads it: no second query
    if not may_sign_in(account):
        end_sessions(account, only=token)
        why = [key for key, _ in sign_in_blockers(account)]
        record("portal.signed_out_by_rule", account, actor=account, details={"why": why})
        db.session.commit()
        _forget_cookie()
        g.portal_signed_out = "payment" if why == ["payment"] else True
        return None
    return account


def portal_login_required(view):
    """Only a signed-in portal account that may still sign in gets through; anyone else goes
    to the portal's sign-in page, which brings them back afterwards."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if current_account() is None:
            if g.get("portal_signed_out"):
                flash(PAYMENT_ENDED_NOTICE if g.portal_signed_out == "payment" else SIGNED_OUT_NOTICE, "info")
            # Back to a page after signing in, never to a form's POST-only address.
            back = request.full_path.rstrip("?") if request.method == "GET" else None
            return redirect(url_for("portal.login", next=back))
        return view(*args, **kwargs)

    return wrapper


def portal_next_url(target: str | None) -> str:
    """Where to go after signing in: a portal page of this host, else the portal home."""
    home = url_for("portal.home")
    url = safe_next_url(target, home)
    return url if url == COOKIE_PATH or url.startswith(COOKIE_PATH + "/") else home


# --- the cookie -----------------------------------------------------------------------------------

def _session_lifetime(remember: bool) -> int:
    cfg = current_app.config
    return cfg["REMEMBER_COOKIE_DURATION"] if remember else cfg["PORTAL_SESSION_MAX_AGE"]


def _forget_cookie() -> None:
    g.portal_cookie_change = None


def _apply_cookie(response):
    if g.get(_ACCOUNT) is not None:
        # A signed-in contact's page: never kept by a cache, nor shown again by the Back
        # button of a shared computer after signing out.
        response.headers["Cache-Control"] = "no-store"
    if _COOKIE_CHANGE not in g:
        return response
    change = g.portal_cookie_change
    secure = current_app.config["SESSION_COOKIE_SECURE"]
    if change is None:
        response.delete_cookie(COOKIE_NAME, path=COOKIE_PATH, secure=secure, httponly=True, samesite="Lax")
    else:
        token, max_age = change
        response.set_cookie(COOKIE_NAME, token, max_age=max_age, path=COOKIE_PATH, secure=secure, httponly=True,
                            samesite="Lax")
    # A page that sets or clears who is signed in must not be served from a cache.
    response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app) -> None:
    app.after_request(_apply_cookie)


# --- signing in and out -----------------------------------------------------------------------------

def authenticate(email: str, password: str) -> tuple[PortalAccount | None, bool]:
    """(account, password_ok) for this tenant's current login with that address, its contact
    loaded. The same work whether the address is known or not (core.identity.verify_password
    checks a dummy hash when there is no account); the caller must not tell the two apart."""
    try:
        email = normalize_email(email)
    except ValueError:
        email = ""
    account = None
    if email:
        row = db.session.execute(
            sa.select(PortalAccount, Contact).join(Contact, _CONTACT_ON)
            .where(PortalAccount.email == email, PortalAccount.replaced_by_id.is_(None))).first()
        if row is not None:
            account = row[0]
            set_committed_value(account, "contact", row[1])
    return account, verify_password(account, password)


def sign_in_account(account: PortalAccount, *, remember: bool = False) -> None:
    """Start a session row for this device and hand its token to the portal cookie: a
    persistent cookie with "keep me signed in", else one that ends with the browser; the row
    ends on the server after its own lifetime either way."""
    lifetime = _session_lifetime(remember)
    token = start_session(account, lifetime=lifetime)
    account.last_login_at = utcnow()
    record("portal.login", account, actor=account, details={"remember": remember})
    g.portal_account = account
    g.portal_cookie_change = (token, lifetime if remember else None)


def sign_out_account() -> None:
    """End this device's portal session, on the server too. The staff session, if any, stays."""
    from core import impersonation
    from core.identity import real_principal

    if impersonation.current() is not None:
        # The admin leaves the login they were seeing as; its own sessions are not theirs to end.
        impersonation.stop(real_principal())
        g.portal_account = None
        return
    account = current_account()
    if account is not None:
        end_sessions(account, only=account.current_session_token)
        record("portal.logout", account, actor=account)
    g.portal_account = None
    _forget_cookie()


def end_session_of(account: PortalAccount, session_id: int) -> bool:
    """The account ends one of its own devices (the profile page); another's id does nothing."""
    refuse_while_impersonating()
    done = db.session.execute(
        sa.update(PortalSession).where(PortalSession.id == session_id, PortalSession.account_id == account.id,
                                       PortalSession.revoked_at.is_(None))
        .values(revoked_at=utcnow()).execution_options(synchronize_session=False)).rowcount
    if done:
        record("portal.session_ended", account, actor=account, details={"session": session_id})
    return bool(done)


def end_other_sessions(account: PortalAccount) -> int:
    refuse_while_impersonating()
    ended = end_sessions(account, keep=account.current_session_token)
    if ended:
        record("portal.session_ended", account, actor=account, details={"others": ended})
    return ended


# --- refusals after the right password ---------------------------------------------------------------

_REFUSALS = {
    "replaced": "This login was replaced by another one of yours. Sign in with the address {name} has for you now.",
    "disabled": "Your portal login is switched off. If you still need it, ask {name} to turn it back on.",
    "rejected": "Your registration for the portal was not approved. If you think this is a mistake, "
                "please get in touch with {name}.",
    "pending": "Your registration is waiting for approval. {name} reviews new registrations and will e-mail "
               "you as soon as yours is approved.",
    "no_password": "You have not chosen a password yet. Use the link we e-mailed you.",
    "unverified": "Please confirm your e-mail address first: follow the link we e-mailed you.",
    "contact_inactive": "Your account with {name} is inactive. Ask {name} to reactivate your account.",
    "role": "The portal is open to {name}'s prospects and clients, and your account does not have access yet. "
            "If you think it should, please ask {name}.",
    "payment": "The portal of {name} is open to members with a paid plan, and yours is not active (or not paid "
               "yet). Pay below to open it: the portal opens as soon as the payment is confirmed.",
}


def refusal_reasons(account: PortalAccount) -> list[tuple[str, str]]:
    """Why this account may not sign in, as (key, polite words for its owner) — for the page
    shown after the right password only."""
    name = current_tenant().brand_name
    return [(key, _REFUSALS[key].format(name=name)) for key, _ in sign_in_blockers(account)]


# --- passwords ------------------------------------------------------------------------------------------

def change_password(account: PortalAccount, current_password: str, new_password: str) -> None:
    """The account's owner, signed in, changes their password; their other devices are signed out."""
    refuse_while_impersonating()
    if not verify_password(account, current_password):
        raise ServiceError("That is not your current password.", field="current_password")
    _set_password(account, new_password, keep=account.current_session_token)
    record("portal.password_changed", account, actor=account)
    record_activity(TIMELINE_KIND, "Changed their portal password", contact=account.contact, actor=account,
                    subject=account)


def _set_password(account: PortalAccount, password: str, *, keep: str | None = None) -> None:
    contact = account.contact
    account.password_hash = _checked_password(account, password, contact.full_name if contact else "")
    account.password_changed_at = utcnow()
    end_sessions(account, keep=keep)


def request_password_reset(email: str, ip_address: str | None = None) -> None:
    """Queue the reset: the job looks the address up. The same work whatever the address, so
    neither the answer nor its timing tells whether a login exists."""
    refuse_while_impersonating()
    on_commit(send_password_reset, (email or "")[:320], ip_address, tenant_id=current_tenant().id)


def _reset_state(account: PortalAccount) -> str:
    return account.email  # and, through the fingerprint, the password: used once, dead


def make_reset_token(account: PortalAccount) -> str:
    return make_token(account, RESET, state=_reset_state(account))


def account_for_reset_token(token: str) -> PortalAccount | None:
    """The account a reset link is for; None when forged, expired or used."""
    account = load_token(PortalAccount, token, RESET, current_app.config["PASSWORD_RESET_MAX_AGE"],
                         state=_reset_state)
    return _usable(account)


def reset_password(account: PortalAccount, password: str) -> None:
    """A new password through the e-mailed link: every device is signed out, and the address
    counts as confirmed (the link reached it)."""
    refuse_while_impersonating()
    _set_password(account, password)
    if account.email_verified_at is None:
        account.email_verified_at = utcnow()
    record("portal.password_reset", account, actor=account)
    record_activity(TIMELINE_KIND, "Reset their portal password", contact=account.contact, actor=account,
                    subject=account)


def _find_for_reset(email: str) -> PortalAccount | None:
    return db.session.scalar(sa.select(PortalAccount).where(
        PortalAccount.email == email, PortalAccount.replaced_by_id.is_(None)))


@job(retries=5)
def send_password_reset(raw_email: str, ip_address: str | None) -> None:
    """A reset link for a login with a password; a login still without one gets what it still
    needs instead (portal.accounts.send_new_link: the choose-your-password link)."""
    try:
        email = normalize_email(raw_email)
    except ValueError:
        return
    account = _usable(_find_for_reset(email))
    if account is None:
        return
    if not account.has_password:
        send_missing_step(account, ip_address)
        return
    tenant = current_tenant()
    record("portal.password_reset_requested", account, actor=ANONYMOUS, details={"ip": ip_address})
    send_mail(account.email, f"Reset your {tenant.brand_name} portal password", "portal_password_reset",
              tenant_id=tenant.id, account=account, contact=account.contact, tenant=tenant,
              link=tenant_link(tenant, "portal.reset_password", token=make_reset_token(account)),
              minutes=current_app.config["PASSWORD_RESET_MAX_AGE"] // 60)
