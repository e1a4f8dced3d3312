"""Factories for kickoff forms: call them inside a tenant context (tenant_context or a
request). Each returns the flushed object; keyword arguments override the defaults."""
from __future__ import annotations

import itertools

from core.db import db
from forms.models import FieldKind, Form, FormField, FormSubmission

_seq = itertools.count(1)

# A form's usual fields: name, e-mail, phone and company, mapped onto the contact.
STANDARD_FIELDS = (
    dict(key="first_name", kind=FieldKind.SHORT_TEXT, label="First name", required=True, target="contact.first_name"),
    dict(key="last_name", kind=FieldKind.SHORT_TEXT, label="Last name", target="contact.last_name"),
    dict(key="email", kind=FieldKind.EMAIL, label="E-mail", required=True, target="contact.email"),
    dict(key="phone", kind=FieldKind.PHONE, label="Phone", target="contact.phone"),
    dict(key="company", kind=FieldKind.SHORT_TEXT, label="Company", target="company.name"),
)


def make_form(title: str | None = None, *, fields=STANDARD_FIELDS, **attrs) -> Form:
    n = next(_seq)
    attrs.setdefault("slug", f"form-{n}")
    form = Form(title=title or f"Kickoff form {n}", **attrs)
    db.session.add(form)
    db.session.flush()
    for position, spec in enumerate(fields):
        add_field(form, position=position, **spec)
    return form


def add_field(form: Form, *, key: str, kind: str, label: str | None = None, position: int | None = None,
              **attrs) -> FormField:
    if position is None:
        position = len(form.fields)
    field = FormField(form_id=form.id, key=key, kind=kind, label=label or key.replace("_", " ").capitalize(),
                      position=position, **attrs)
    db.session.add(field)
    db.session.flush()
    db.session.expire(form, ["fields"])
    return field


def make_submission(form: Form, answers: dict, **attrs) -> FormSubmission:
    attrs.setdefault("idempotency_key", f"key-{next(_seq)}")
    submission = FormSubmission(form_id=form.id, answers=answers, **attrs)
    db.session.add(submission)
    db.session.flush()
    return submission


def seed_forms(marker: str = "", contact_id: int | None = None) -> dict[str, list]:
    """A form with fields and a submission that landed on `contact_id`, for the cross-tenant
    harness: titles and answers carry `marker`. Returns {model name: [ids]} and the form's
    address under "FormSlug"."""
    slug = f"{marker.strip().lower().replace(' ', '-')}-join".strip("-")
    form = make_form(f"{marker}Join us", slug=slug, intro=f"{marker}intro", logo_mimetype="image/png",
                     logo=b"\x89PNG\r\n\x1a\n" + f"{marker}form logo".encode())
    submission = make_submission(form, {"first_name": f"{marker}Casey", "email": "casey@example.com"},
                                 contact_id=contact_id, source_url=f"https://{slug}.example/landing")
    return {"Form": [form.id], "FormField": [f.id for f in form.fields][:2], "FormSubmission": [submission.id],
            "FormSlug": [form.slug]}
