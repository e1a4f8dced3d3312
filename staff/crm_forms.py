"""WTForms for contacts and companies. Custom fields join the form at run time, one input per
tenant-defined field, named cf_<key> (core.forms.with_custom_fields)."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, SelectChoice, SelectField, StringField, TelField, TextAreaField, URLField
from wtforms.validators import Optional

from crm.contacts import SOCIAL_KEYS
from crm.models import ContactRole

ROLE_CHOICES = [SelectChoice(role, ContactRole.LABELS[role]) for role in ContactRole.ALL]


class ContactForm(FlaskForm):
    first_name = StringField("First name", render_kw={"autocomplete": "off"})
    last_name = StringField("Last name", render_kw={"autocomplete": "off"})
    email = EmailField("E-mail", render_kw={"autocomplete": "off"})
    extra_emails = TextAreaField("Other e-mails", description="One per line.", render_kw={"rows": 2})
    phone = TelField("Phone", description="With the country code, or a local number of your default region.")
    extra_phones = TextAreaField("Other phones", description="One per line.", render_kw={"rows": 2})
    company_name = StringField("Company", description="Type a name: an existing company is matched, a new one is added.",
                               render_kw={"list": "company-names", "autocomplete": "off"})
    job_title = StringField("Job title")
    street = StringField("Street")
    city = StringField("City")
    postal_code = StringField("Postal code")
    region = StringField("Region or state")
    country = StringField("Country", description="Two-letter code, e.g. US, GB, DE.", render_kw={"maxlength": 2})
    source = StringField("Source", description="Where they came from: referral, trade fair, website…")
    role = SelectField("Role", choices=ROLE_CHOICES, default=ContactRole.LEAD)
    # The services check these (with plain-words messages), so the form does not refuse first.
    status_id = SelectField("Status", coerce=str, validate_choice=False)
    owner_id = SelectField("Owner", coerce=str, validate_choice=False)
    is_active = BooleanField("Active", default=True)
    is_test = BooleanField("Test contact (left out of reports)")
    notes = TextAreaField("Notes", render_kw={"rows": 4})

    GROUPS = (
        ("Person", ("first_name", "last_name", "job_title", "company_name")),
        ("Reaching them", ("email", "phone", "extra_emails", "extra_phones")),
        ("Address", ("street", "city", "postal_code", "region", "country")),
        ("In the pipeline", ("role", "status_id", "owner_id", "source", "is_active", "is_test")),
    )


for _key, _label in SOCIAL_KEYS.items():
    setattr(ContactForm, f"social_{_key}", URLField(_label, validators=[Optional()],
                                                    render_kw={"placeholder": "https://"}))


class CompanyForm(FlaskForm):
    name = StringField("Name")
    domain = StringField("Web domain", description="e.g. example.com")
    phone = TelField("Phone")
    street = StringField("Street")
    city = StringField("City")
    postal_code = StringField("Postal code")
    region = StringField("Region or state")
    country = StringField("Country", description="Two-letter code, e.g. US, GB, DE.", render_kw={"maxlength": 2})
    role = SelectField("Role", choices=ROLE_CHOICES, default=ContactRole.LEAD)
    owner_id = SelectField("Owner", coerce=str, validate_choice=False)

    GROUPS = (
        ("Company", ("name", "domain", "phone", "role", "owner_id")),
        ("Address", ("street", "city", "postal_code", "region", "country")),
    )
