"""The "Your details" section of /portal/profile: the contact's own name, phone, address and
the custom fields staff marked "editable by the contact". The rules are crm.contacts'
(update_own_details): checked as staff edits are, all saved or nothing, on the contact's
timeline as the contact's own change."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField, TelField

from core.forms import custom_values_of, fill_custom, with_custom_fields
from crm import custom_fields
from crm.contacts import OWN_DETAILS, update_own_details
from crm.normalize import display_phone

FORM_NAME = "details"  # the hidden "form" field that tells the profile page's forms apart


class DetailsForm(FlaskForm):
    # The service checks every value (with plain-words messages), so the form does not refuse first.
    first_name = StringField("First name", render_kw={"autocomplete": "given-name", "maxlength": 100})
    last_name = StringField("Last name", render_kw={"autocomplete": "family-name", "maxlength": 100})
    phone = TelField("Phone", description="With the country code, e.g. +44 20 7946 0958.",
                     render_kw={"autocomplete": "tel"})
    street = StringField("Street", render_kw={"autocomplete": "street-address", "maxlength": 200})
    city = StringField("City", render_kw={"autocomplete": "address-level2", "maxlength": 100})
    postal_code = StringField("Postal code", render_kw={"autocomplete": "postal-code", "maxlength": 20})
    region = StringField("Region or state", render_kw={"autocomplete": "address-level1", "maxlength": 100})
    country = StringField("Country", description="Two letters, e.g. US, GB, DE.",
                          render_kw={"autocomplete": "country", "maxlength": 2})


def details_form(account, *, submitted: bool) -> DetailsForm:
    """The section's form: what was posted, or the contact's current details."""
    form_class = with_custom_fields(DetailsForm, custom_fields.editable_by_contact())
    if submitted:
        return form_class(prefix=FORM_NAME)
    contact = account.contact
    data = {name: getattr(contact, name) for name in OWN_DETAILS}
    data["phone"] = display_phone(data.get("phone"))  # +44 20 7946 0958, as staff see it, not +442079460958
    form = form_class(formdata=None, prefix=FORM_NAME, data=data)
    fill_custom(form, contact)
    return form


def save_details(form: DetailsForm, account) -> list[str]:
    """Inside the page's service_call(form): a refusal shows beside its field."""
    data = {name: form[name].data for name in OWN_DETAILS}
    data["custom_fields"] = custom_values_of(form)
    return update_own_details(account.contact, data, actor=account)
