"""/portal/company: for a company's primary contact, the company's details and its other
contacts. Anyone else gets a 404, and no link to it."""
from __future__ import annotations

from flask import abort, render_template

from crm.companies import colleagues_of, company_led_by
from crm.normalize import display_phone
from portal import bp
from portal.auth import current_account, portal_login_required
from portal.navigation import nav_item


def _leads_a_company(account) -> bool:
    # Read from the contact loaded with the session (no query): company_led_by() decides on the page.
    contact = account.contact
    return bool(contact.is_primary_contact and contact.company_id)


nav_item("Company", "portal.company", order=40, visible=_leads_a_company)


@bp.get("/portal/company", endpoint="company")
@portal_login_required
def company_page():
    account = current_account()
    company = company_led_by(account.contact)
    if company is None:
        abort(404)
    return render_template("portal/company.html", account=account, company=company,
                           people=colleagues_of(account.contact, company), display_phone=display_phone)
