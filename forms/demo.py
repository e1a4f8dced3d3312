"""A kickoff form for the demo tenant, built through the builder's services, so `make run`
shows a working public form (its address is printed with the logins)."""
from __future__ import annotations

import sqlalchemy as sa

from core.db import db
from core.demo import demo_link, demo_seeder
from core.identity import StaffRole, StaffUser
from crm.models import Circle
from forms import definitions
from forms.models import FieldKind, Form, OwnerMode

DEMO_FORM_SLUG = "get-started"
demo_link("Kickoff form", f"/f/{DEMO_FORM_SLUG}")
FIELDS = [
    {"kind": FieldKind.SECTION, "label": "About you"},
    {"kind": FieldKind.SHORT_TEXT, "label": "First name", "target": "contact.first_name", "required": True},
    {"kind": FieldKind.SHORT_TEXT, "label": "Last name", "target": "contact.last_name"},
    {"kind": FieldKind.EMAIL, "label": "E-mail", "target": "contact.email", "required": True,
     "help_text": "We reply within one working day."},
    {"kind": FieldKind.PHONE, "label": "Phone", "target": "contact.phone"},
    {"kind": FieldKind.SHORT_TEXT, "label": "Company", "target": "company.name"},
    {"kind": FieldKind.SECTION, "label": "Your project"},
    {"kind": FieldKind.SINGLE_CHOICE, "label": "What do you need?", "choices": ["Brand", "Website", "Both"],
     "display": "radio", "required": True},
    {"kind": FieldKind.LONG_TEXT, "label": "Tell us more", "target": "contact.notes"},
    {"kind": FieldKind.CONSENT, "label": "I agree to be contacted about my project", "required": True,
     "terms_url": "https://example.com/privacy"},
    {"kind": FieldKind.HIDDEN, "label": "Campaign", "url_parameter": "utm_campaign"},
]


@demo_seeder
def seed_kickoff_form(tenant) -> None:
    if db.session.scalar(sa.select(Form.id).where(Form.slug == DEMO_FORM_SLUG)) is not None:
        return
    owner = db.session.scalar(sa.select(StaffUser).where(StaffUser.role == StaffRole.OWNER).order_by(StaffUser.id))
    form = definitions.create_form("Start your project", DEMO_FORM_SLUG, actor=owner)
    definitions.update_settings(
        form, title=form.title, slug=form.slug, submit_label="Send",
        intro="Tell us a little about you and your project; we will get back to you within a day.",
        thank_you_message="Thank you! We will be in touch within one working day.", redirect_url=None,
        primary_colour=None, min_fill_seconds=3, actor=owner)
    for field in FIELDS:
        definitions.add_field(form, field, actor=owner)
    circle_ids = list(db.session.scalars(sa.select(Circle.id).where(Circle.name == "Spring workshop")))
    team = list(db.session.scalars(sa.select(StaffUser.id).where(StaffUser.active.is_(True)).order_by(StaffUser.id)))
    definitions.update_actions(
        form, role="lead", status_id=None, circle_ids=circle_ids, tags=["website"],
        owner_mode=OwnerMode.ROUND_ROBIN if len(team) > 1 else OwnerMode.NONE, owner_id=None,
        round_robin_staff_ids=team if len(team) > 1 else [], notify_staff_ids=[owner.id], send_confirmation=True,
        confirmation_subject="We received your project details", confirmation_body="", portal_login="none",
        portal_requires_approval=False, make_primary_contact=True, actor=owner)
