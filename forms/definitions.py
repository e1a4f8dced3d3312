"""Kickoff form definitions: creating, changing, duplicating and archiving forms, their fields,
their settings and what happens on submit. Plain functions over forms.models; every refusal
is a ServiceError beside the field it is about, every change is audited, and every function
that changes something checks the actor may build forms ("forms.manage").

A field's `key` names its answer in every submission, so it is fixed when the field is made
and never follows later label edits: old submissions keep reading right.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa

from core.audit import record, register_actions
from core.db import db, utcnow
from core.errors import ServiceError
from core.identity import StaffUser
from core.permissions import can
from core.tenancy import COLOR_RE
from core.tenants import logo_mimetype
from core.text import clean_line, clean_web_address
from crm import custom_fields
from crm.models import Circle, ContactRole, CustomField
from crm.normalize import fold
from crm.pipeline import active_status_or_none
from crm.tags import NAME_MAX as TAG_NAME_MAX
from crm.tags import tag_key
from forms import processing
from forms.models import FieldKind, Form, FormField, OwnerMode, PortalLogin
from forms.rendering import key_is_safe

register_actions({
    "form.created": "Kickoff form created",
    "form.changed": "Kickoff form changed",
    "form.duplicated": "Kickoff form duplicated",
    "form.archived": "Kickoff form archived",
    "form.restored": "Kickoff form restored",
    "form.actions_changed": "Kickoff form's on-submit actions changed",
    "form.field_added": "Kickoff form field added",
    "form.field_changed": "Kickoff form field changed",
    "form.field_removed": "Kickoff form field removed",
    "form.field_moved": "Kickoff form field moved",
    "form.submissions_exported": "Kickoff form submissions exported",
})

TITLE_MAX, SLUG_MAX, SUBMIT_MAX, TEXT_MAX = 200, 80, 80, 5000
LABEL_MAX, HELP_MAX, PLACEHOLDER_MAX, CHOICE_MAX, CHOICES_MAX = 300, 1000, 200, 200, 200
SUBJECT_MAX, BODY_MAX, MIN_FILL_MAX = 200, 10000, 600
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?$")
URL_PARAMETER_RE = re.compile(r"^[A-Za-z0-9_.\-\[\]]{1,100}$")
UP, DOWN = "up", "down"
DISPLAYS = {"dropdown": "Dropdown list", "radio": "Radio buttons"}
CHOICE_KINDS = (FieldKind.SINGLE_CHOICE, FieldKind.MULTI_CHOICE)

# Where an answer can go: the contact and company attributes processing fills.
CONTACT_TARGETS, COMPANY_TARGETS = processing.CONTACT_TARGETS, processing.COMPANY_TARGETS
ANSWER_ONLY = ""
NEW_CUSTOM = {"new.contact": "contact", "new.company": "company"}
_TEXT_KINDS = (FieldKind.SHORT_TEXT, FieldKind.SINGLE_CHOICE, FieldKind.HIDDEN)
# The kinds of field that can fill each kind of target.
_ATTRIBUTE_KINDS = {"email": (FieldKind.EMAIL,), "phone": (FieldKind.PHONE,),
                    "notes": (FieldKind.LONG_TEXT, FieldKind.SHORT_TEXT)}
CUSTOM_KINDS = {
    "text": _TEXT_KINDS, "long_text": (FieldKind.LONG_TEXT, FieldKind.SHORT_TEXT),
    "number": (FieldKind.NUMBER,), "date": (FieldKind.DATE,), "boolean": (FieldKind.YES_NO, FieldKind.CONSENT),
    "choice": (FieldKind.SINGLE_CHOICE, FieldKind.HIDDEN), "multi_choice": (FieldKind.MULTI_CHOICE,),
    "url": (FieldKind.SHORT_TEXT, FieldKind.HIDDEN), "email": (FieldKind.EMAIL,), "phone": (FieldKind.PHONE,),
}
# The custom field a builder field creates ("a new custom field"), by the field's kind.
NEW_CUSTOM_TYPE = {
    FieldKind.SHORT_TEXT: "text", FieldKind.LONG_TEXT: "long_text", FieldKind.EMAIL: "email",
    FieldKind.PHONE: "phone", FieldKind.NUMBER: "number", FieldKind.DATE: "date",
    FieldKind.SINGLE_CHOICE: "choice", FieldKind.MULTI_CHOICE: "multi_choice", FieldKind.YES_NO: "boolean",
    FieldKind.CONSENT: "boolean", FieldKind.HIDDEN: "text",
}


# --- reading ------------------------------------------------------------------------------------------

def forms_list(*, archived: bool = False) -> list[Form]:
    query = sa.select(Form).where(Form.archived_at.is_not(None) if archived else Form.archived_at.is_(None))
    return list(db.session.scalars(query.order_by(sa.func.lower(Form.title), Form.id)))


def field_counts() -> dict[int, int]:
    """form id → how many fields it has (one query for the whole list)."""
    return dict(db.session.execute(sa.select(FormField.form_id, sa.func.count()).group_by(FormField.form_id)).all())


def active_forms_count(*, archived: bool) -> int:
    condition = Form.archived_at.is_not(None) if archived else Form.archived_at.is_(None)
    return db.session.scalar(sa.select(sa.func.count()).select_from(Form).where(condition))


def active_staff() -> list[StaffUser]:
    return list(db.session.scalars(sa.select(StaffUser).where(StaffUser.active.is_(True))
                                   .order_by(sa.func.lower(StaffUser.name), StaffUser.id)))


@dataclass(frozen=True)
class TargetChoice:
    value: str
    label: str
    group: str


def target_choices(*, include_new: bool = True) -> list[TargetChoice]:
    """Every place an answer can go, grouped as the builder's list shows them."""
    choices = [TargetChoice(ANSWER_ONLY, "Keep the answer on the submission only", "Answer only")]
    choices += [TargetChoice(f"contact.{k}", f"Contact: {v}", "Contact") for k, v in CONTACT_TARGETS.items()]
    choices += [TargetChoice(f"company.{k}", v, "Company") for k, v in COMPANY_TARGETS.items()]
    for entity, group in (("contact", "Contact custom fields"), ("company", "Company custom fields")):
        word = "Contact" if entity == "contact" else "Company"
        choices += [TargetChoice(f"custom.{f.id}", f"{word}: {f.label} (custom)", group)
                    for f in custom_fields.definitions(entity)]
    if include_new:
        choices += [TargetChoice("new.contact", "A new custom field on the contact", "New custom field"),
                    TargetChoice("new.company", "A new custom field on the company", "New custom field")]
    return choices


def target_label(target: str, custom: dict[int, CustomField] | None = None) -> str:
    """What a stored target means, in words (for the field list)."""
    if not target:
        return "Answer only"
    kind, _, name = target.partition(".")
    if kind == "contact":
        return f"Contact: {CONTACT_TARGETS.get(name, name)}"
    if kind == "company":
        return COMPANY_TARGETS.get(name, f"Company: {name}")
    if kind == "custom":
        field = (custom or {}).get(int(name)) if name.isdigit() else None
        if field is None and name.isdigit():
            field = db.session.get(CustomField, int(name))
        if field is None:
            return "A custom field that no longer exists"
        word = "Contact" if field.entity == "contact" else "Company"
        return f"{word}: {field.label} (custom{', archived' if field.archived_at else ''})"
    return target


def custom_fields_by_id() -> dict[int, CustomField]:
    return {f.id: f for f in db.session.scalars(sa.select(CustomField))}


def has_target(form: Form, target: str) -> bool:
    return any(f.target == target for f in form.fields)


# --- checks shared by forms and fields ----------------------------------------------------------------

def _require_manage(actor) -> None:
    if not can(actor, "forms.manage"):
        raise ServiceError("You do not have permission to build kickoff forms.")


def _text(value: str | None, *, label: str, field: str, max_length: int = TEXT_MAX) -> str:
    """Free text over several lines (an intro, a message): stripped, at most `max_length`."""
    text = (value or "").replace("\r\n", "\n").strip()
    if len(text) > max_length:
        raise ServiceError(f"{label.capitalize()} can be at most {max_length:,} characters.", field=field)
    if "\x00" in text:
        raise ServiceError(f"{label.capitalize()} must be plain text.", field=field)
    return text


def slug_for(title: str) -> str:
    """A web address word from a title: "Open Day 2026!" → "open-day-2026"."""
    slug = re.sub(r"[^a-z0-9]+", "-", fold(title)).strip("-")[:SLUG_MAX].strip("-")
    return slug or "form"


def _unique_slug(base: str) -> str:
    taken = set(db.session.scalars(sa.select(Form.slug)))
    slug, n = base, 2
    while slug in taken:
        suffix = f"-{n}"
        slug, n = base[:SLUG_MAX - len(suffix)].rstrip("-") + suffix, n + 1
    return slug


def _clean_slug(slug: str | None, *, except_id: int | None = None) -> str:
    slug = (slug or "").strip().lower()
    if not SLUG_RE.match(slug):
        raise ServiceError(f"Use lower-case letters, digits and dashes (at most {SLUG_MAX}), e.g. open-day-2026; "
                           "no dash at either end.", field="slug")
    other = db.session.scalar(sa.select(Form).where(Form.slug == slug))
    if other is not None and other.id != except_id:
        where = " (archived)" if other.archived_at else ""
        raise ServiceError(f"The address “{slug}” is taken by “{other.title}”{where}. Choose another.", field="slug")
    return slug


def _clean_title(title: str | None) -> str:
    return clean_line(title, label="a title for the form", field="title", max_length=TITLE_MAX)


def _changes(obj, new: dict) -> dict:
    """Set the attributes that differ; {name: {"from": old, "to": new}} for the audit log."""
    changed = {}
    for name, value in new.items():
        old = getattr(obj, name)
        if old != value:
            changed[name] = {"from": old, "to": value}
            setattr(obj, name, value)
    return changed


# --- forms --------------------------------------------------------------------------------------------

def create_form(title: str | None, slug: str | None = None, *, actor) -> Form:
    """A new, empty form; its address comes from the title unless one is given."""
    _require_manage(actor)
    title = _clean_title(title)
    slug = _clean_slug(slug) if (slug or "").strip() else _unique_slug(slug_for(title))
    form = Form(title=title, slug=slug, created_by_id=getattr(actor, "id", None), circle_ids=[], tags=[],
                round_robin_staff_ids=[], notify_staff_ids=[])
    db.session.add(form)
    db.session.flush()
    record("form.created", form, actor=actor, details={"slug": slug})
    return form


def update_settings(form: Form, *, title: str | None, slug: str | None, intro: str | None,
                    submit_label: str | None, thank_you_message: str | None, redirect_url: str | None,
                    primary_colour: str | None, min_fill_seconds, logo: bytes | None = None,
                    remove_logo: bool = False, actor) -> list[str]:
    """Change what the form says and looks like. Returns the names of what changed."""
    _require_manage(actor)
    colour = (primary_colour or "").strip().lower() or None
    if colour is not None and not COLOR_RE.match(colour):
        raise ServiceError("Use a colour like #1f6feb, or leave it empty for your branding's colour.",
                           field="primary_colour")
    try:
        min_fill = int(str(min_fill_seconds).strip() or 0)
    except (TypeError, ValueError):
        raise ServiceError("Enter a whole number of seconds.", field="min_fill_seconds") from None
    if not 0 <= min_fill <= MIN_FILL_MAX:
        raise ServiceError(f"Enter between 0 and {MIN_FILL_MAX} seconds.", field="min_fill_seconds")
    new = {
        "title": _clean_title(title),
        "slug": _clean_slug(slug, except_id=form.id),
        "intro": _text(intro, label="the introduction", field="intro"),
        "submit_label": clean_line(submit_label, label="the words on the send button", field="submit_label",
                                   max_length=SUBMIT_MAX),
        "thank_you_message": _text(thank_you_message, label="the thank-you message", field="thank_you_message"),
        "redirect_url": clean_web_address(redirect_url, label="the address to send people to",
                                          field="redirect_url"),
        "primary_colour": colour,
        "min_fill_seconds": min_fill,
    }
    if not new["thank_you_message"] and not new["redirect_url"]:
        raise ServiceError("Write a thank-you message, or give an address to send people to after they send the "
                           "form.", field="thank_you_message")
    mimetype = logo_mimetype(logo) if logo else None
    changed = _changes(form, new)
    if logo:
        form.logo, form.logo_mimetype = logo, mimetype
        changed["logo"] = "uploaded"
    elif remove_logo and form.logo_mimetype:
        form.logo, form.logo_mimetype = None, None
        changed["logo"] = "removed"
    if changed:
        record("form.changed", form, actor=actor, details=changed)
    return list(changed)


def duplicate_form(form: Form, *, actor) -> Form:
    """A copy of the form, its fields and its on-submit actions, under "… (copy)" and a new
    address; it has no submissions and starts its round-robin afresh."""
    _require_manage(actor)
    title = f"{form.title} (copy)"
    if len(title) > TITLE_MAX:
        title = form.title[:TITLE_MAX - len(" (copy)") - 1].rstrip() + "… (copy)"
    copy = Form(title=title, slug=_unique_slug(f"{form.slug[:SLUG_MAX - 5]}-copy"),
                created_by_id=getattr(actor, "id", None))
    skip = {"id", "tenant_id", "slug", "title", "archived_at", "round_robin_next", "created_by_id",
            "created_at", "updated_at"}
    for column in Form.__table__.columns:
        if column.key not in skip:
            value = getattr(form, column.key)
            setattr(copy, column.key, list(value) if isinstance(value, list) else value)
    db.session.add(copy)
    db.session.flush()
    field_skip = {"id", "tenant_id", "form_id"}
    for field in form.fields:
        values = {c.key: getattr(field, c.key) for c in FormField.__table__.columns if c.key not in field_skip}
        values["choices"] = list(values["choices"] or [])
        db.session.add(FormField(form_id=copy.id, **values))
    db.session.flush()
    db.session.expire(copy, ["fields"])
    record("form.duplicated", copy, actor=actor, details={"from_form": form.id, "from_title": form.title})
    return copy


def archive_form(form: Form, *, actor) -> bool:
    """Off the web (its address stops answering) and out of the list; submissions are kept."""
    _require_manage(actor)
    if form.archived_at is not None:
        return False
    form.archived_at = utcnow()
    record("form.archived", form, actor=actor)
    return True


def restore_form(form: Form, *, actor) -> bool:
    _require_manage(actor)
    if form.archived_at is None:
        return False
    form.archived_at = None
    record("form.restored", form, actor=actor)
    return True


# --- on-submit actions --------------------------------------------------------------------------------

def parse_tags(raw) -> list[str]:
    """Tag names typed as "hot, newsletter" (or given as a list), each once."""
    items = re.split(r"[,\n]", raw) if isinstance(raw, str) else list(raw or [])
    names: dict[str, str] = {}
    for item in items:
        name = " ".join(str(item or "").split())
        if not name:
            continue
        name = clean_line(name, label=f"the tag “{name[:30]}”", field="tags", max_length=TAG_NAME_MAX)
        names.setdefault(tag_key(name), name)
    return list(names.values())


def _ids(values) -> list[int]:
    out = []
    for value in values or []:
        try:
            number = int(value)
        except (TypeError, ValueError):
            continue
        if 0 < number <= 2**31 - 1 and number not in out:
            out.append(number)
    return out


def _staff_ids(values, *, field: str) -> list[int]:
    ids = _ids(values)
    if not ids:
        return []
    found = set(db.session.scalars(sa.select(StaffUser.id).where(StaffUser.id.in_(ids), StaffUser.active.is_(True))))
    if len(found) != len(ids):
        raise ServiceError("Choose active staff members from the list.", field=field)
    return ids


def update_actions(form: Form, *, role: str, status_id, circle_ids, tags, owner_mode: str, owner_id,
                   round_robin_staff_ids, notify_staff_ids, send_confirmation: bool,
                   confirmation_subject: str | None, confirmation_body: str | None, portal_login: str,
                   portal_requires_approval: bool, make_primary_contact: bool, actor) -> list[str]:
    """What a submission of this form does to the contact it lands on, and who hears of it.
    Returns the names of what changed."""
    _require_manage(actor)
    if role not in ContactRole.ALL:
        raise ServiceError("Choose Lead, Prospect or Client.", field="role")
    status = None
    if status_id not in (None, ""):
        status = active_status_or_none(status_id)
        if status is None:
            raise ServiceError("Choose a status from your pipeline.", field="status_id")
    circles = _ids(circle_ids)
    if circles:
        found = set(db.session.scalars(sa.select(Circle.id).where(Circle.id.in_(circles),
                                                                     Circle.archived_at.is_(None))))
        if len(found) != len(circles):
            raise ServiceError("Choose Circles from the list (archived Circles cannot be joined).",
                               field="circle_ids")
    if owner_mode not in OwnerMode.ALL:
        raise ServiceError("Choose who becomes the owner.", field="owner_mode")
    owner = None
    robin: list[int] = []
    if owner_mode == OwnerMode.FIXED:
        owner = (_staff_ids([owner_id], field="owner_id") or [None])[0]
        if owner is None:
            raise ServiceError("Choose the staff member who becomes the owner.", field="owner_id")
    elif owner_mode == OwnerMode.ROUND_ROBIN:
        robin = _staff_ids(round_robin_staff_ids, field="round_robin_staff_ids")
        if len(robin) < 2:
            raise ServiceError("Choose at least two staff members to take turns (or choose a fixed owner).",
                               field="round_robin_staff_ids")
    if portal_login not in PortalLogin.ALL:
        raise ServiceError("Choose how the registrant gets a portal login.", field="portal_login")
    needs_email = []
    if send_confirmation:
        needs_email.append(("send_confirmation", "a confirmation e-mail"))
    if portal_login != PortalLogin.NONE:
        needs_email.append(("portal_login", "a portal login"))
    # Processing writes to the address an e-mail field gave (forms.processing.submission_email).
    gives_email = any(f.target == "contact.email" or (f.kind == FieldKind.EMAIL and not f.target)
                      for f in form.fields)
    for field_name, what in needs_email:
        if not gives_email:
            raise ServiceError(f"For {what} the form needs an e-mail field that fills the contact's e-mail: "
                               "add one on the Fields page first.", field=field_name)
    if make_primary_contact and not has_target(form, "company.name"):
        raise ServiceError("The form needs a field that fills the company's name (on the Fields page) before "
                           "it can make the registrant its primary contact.", field="make_primary_contact")
    subject = clean_line(confirmation_subject, label="a subject for the confirmation e-mail",
                         field="confirmation_subject", max_length=SUBJECT_MAX, required=bool(send_confirmation))
    new = {
        "role": role, "status_id": status.id if status else None, "circle_ids": circles,
        "tags": parse_tags(tags), "owner_mode": owner_mode, "owner_id": owner,
        "round_robin_staff_ids": robin,
        "notify_staff_ids": _staff_ids(notify_staff_ids, field="notify_staff_ids"),
        "send_confirmation": bool(send_confirmation),
        "confirmation_subject": subject or form.confirmation_subject,
        "confirmation_body": _text(confirmation_body, label="the confirmation e-mail", field="confirmation_body",
                                   max_length=BODY_MAX),
        "portal_login": portal_login,
        "portal_requires_approval": bool(portal_requires_approval) and portal_login != PortalLogin.NONE,
        "make_primary_contact": bool(make_primary_contact),
    }
    if new["round_robin_staff_ids"] != form.round_robin_staff_ids:
        form.round_robin_next = 0  # a new rota starts at its first member
    changed = _changes(form, new)
    if changed:
        record("form.actions_changed", form, actor=actor, details=changed)
    return list(changed)


# --- fields -------------------------------------------------------------------------------------------

def parse_choices(raw) -> list[str]:
    return custom_fields.parse_choices(raw)


def _clean_choices(kind: str, raw, *, custom: CustomField | None) -> list[str]:
    if kind not in CHOICE_KINDS:
        return []
    choices = parse_choices(raw)
    if not choices and custom is not None and custom.field_type in custom_fields.CHOICE_TYPES:
        choices = list(custom.choices)  # the custom field's own choices, unless narrowed
    if not choices:
        raise ServiceError("List the choices, one per line.", field="choices")
    if len(choices) > CHOICES_MAX:
        raise ServiceError(f"A field can offer at most {CHOICES_MAX} choices.", field="choices")
    seen = set()
    for choice in choices:
        clean_line(choice, label=f"the choice “{choice[:40]}”", field="choices", max_length=CHOICE_MAX)
        if fold(choice) in seen:
            raise ServiceError(f"“{choice}” is listed twice.", field="choices")
        seen.add(fold(choice))
    if custom is not None and custom.field_type in custom_fields.CHOICE_TYPES:
        allowed = {fold(c) for c in custom.choices}
        extra = [c for c in choices if fold(c) not in allowed]
        if extra:
            raise ServiceError(f"{', '.join(f'“{c}”' for c in extra)}: not a choice of the custom field "
                               f"“{custom.label}” ({', '.join(custom.choices)}). Offer only its choices, or add "
                               "them in the CRM settings.", field="choices")
    return choices


def _custom_target(target: str, *, keeping: bool = False) -> CustomField:
    """The custom field a "custom.<id>" target names; an archived one only when a field that
    already fills it keeps it (archiving a custom field must not make its form field unsavable)."""
    name = target.partition(".")[2]
    field = db.session.get(CustomField, int(name)) if name.isdigit() and len(name) < 10 else None
    if field is None or (field.archived_at is not None and not keeping):
        raise ServiceError("Choose a custom field from the list.", field="target")
    return field


def _check_target(form: Form, kind: str, target: str, *, except_id: int | None,
                  current: str = "") -> CustomField | None:
    """The target is one this kind of field can fill, and no other field of the form fills
    it (two answers for one e-mail would leave the contact to chance). Returns the custom
    field an existing "custom.<id>" target names."""
    if kind == FieldKind.SECTION:
        if target:
            raise ServiceError("A section heading holds no answer: choose “Answer only”.", field="target")
        return None
    if not target or target in NEW_CUSTOM:
        return None
    kind_word = FieldKind.LABELS[kind].lower()
    scope, _, name = target.partition(".")
    custom = None
    if scope in ("contact", "company"):
        names = CONTACT_TARGETS if scope == "contact" else COMPANY_TARGETS
        if name not in names:
            raise ServiceError("Choose where the answer goes from the list.", field="target")
        allowed = _ATTRIBUTE_KINDS.get(name, _TEXT_KINDS + ((FieldKind.LONG_TEXT,) if name == "street" else ()))
        if kind not in allowed:
            need = " or ".join(FieldKind.LABELS[k].lower() for k in allowed)
            raise ServiceError(f"{target_label(target)} needs a {need} field, not a {kind_word} field.",
                               field="target")
    elif scope == "custom":
        custom = _custom_target(target, keeping=target == current)
        if kind not in CUSTOM_KINDS[custom.field_type]:
            need = " or ".join(FieldKind.LABELS[k].lower() for k in CUSTOM_KINDS[custom.field_type])
            raise ServiceError(f"The custom field “{custom.label}” ({CustomField.TYPES[custom.field_type].lower()}) "
                               f"needs a {need} field, not a {kind_word} field.", field="target")
    else:
        raise ServiceError("Choose where the answer goes from the list.", field="target")
    for other in form.fields:
        if other.id != except_id and other.target == target:
            raise ServiceError(f"The field “{other.label}” already fills this; a form fills each place once.",
                               field="target")
    return custom


def _unique_key(form: Form, label: str, target: str) -> str:
    scope, _, name = target.partition(".")
    if scope == "contact":
        base = name
    elif scope == "company":
        base = "company" if name == "name" else f"company_{name}"
    else:
        base = custom_fields.key_for(label)
    if not key_is_safe(base):  # kf_…, or a name of the form class itself (validate, meta, validate_…)
        base = "f_" + base
    base = base[:60]
    taken = {f.key for f in form.fields}
    key, n = base, 2
    while key in taken or not key_is_safe(key):
        suffix = f"_{n}"
        key, n = base[:60 - len(suffix)] + suffix, n + 1
    return key


def clean_field(form: Form, data: dict, *, field: FormField | None = None) -> dict:
    """The stored values of a field from what the builder sent, or ServiceError beside the
    input it is about. `field` is the one being changed (None for a new one)."""
    kind = data.get("kind") if field is None else field.kind
    if kind not in FieldKind.ALL:
        raise ServiceError("Choose a type of field.", field="kind")
    label_word = "the heading" if kind == FieldKind.SECTION else "a label for the field"
    label = clean_line(data.get("label"), label=label_word, field="label", max_length=LABEL_MAX)
    target = (data.get("target") or "").strip()
    custom = _check_target(form, kind, target, except_id=field.id if field else None,
                           current=field.target if field else "")
    answer = kind not in FieldKind.NO_ANSWER
    display = data.get("display") or "dropdown"
    if kind == FieldKind.SINGLE_CHOICE and display not in DISPLAYS:
        raise ServiceError("Choose a dropdown list or radio buttons.", field="display")
    url_parameter = (data.get("url_parameter") or "").strip()
    if kind == FieldKind.HIDDEN:
        if not URL_PARAMETER_RE.match(url_parameter):
            raise ServiceError("Enter the name of the web address parameter that fills it, e.g. utm_source "
                               "(letters, digits, _ . -).", field="url_parameter")
    terms_url = ""
    if kind == FieldKind.CONSENT:
        terms_url = clean_web_address(data.get("terms_url"), label="the address of the terms", field="terms_url",
                                      required=True)
    required = bool(data.get("required")) and answer and kind != FieldKind.HIDDEN
    return {
        "kind": kind, "label": label,
        "help_text": _text(data.get("help_text"), label="the help text", field="help_text", max_length=HELP_MAX),
        "placeholder": (clean_line(data.get("placeholder"), label="the placeholder", field="placeholder",
                                   max_length=PLACEHOLDER_MAX, required=False) or "")
        if kind in (FieldKind.SHORT_TEXT, FieldKind.LONG_TEXT, FieldKind.EMAIL, FieldKind.PHONE,
                    FieldKind.NUMBER) else "",
        "required": required,
        "choices": _clean_choices(kind, data.get("choices"), custom=custom),
        "display": display if kind == FieldKind.SINGLE_CHOICE else "dropdown",
        "target": target,
        "url_parameter": url_parameter if kind == FieldKind.HIDDEN else "",
        "terms_url": terms_url,
    }


def _create_custom_target(values: dict, actor) -> str:
    """A "new custom field" target: the custom field is made now (CRM settings list it from
    then on) and the form field points at it."""
    entity = NEW_CUSTOM[values["target"]]
    if not can(actor, "crm.configure"):
        raise ServiceError("Adding custom fields needs the permission to configure the CRM; choose an existing "
                           "field, or ask an Owner or Admin.", field="target")
    field_type = NEW_CUSTOM_TYPE.get(values["kind"])
    if field_type is None:
        raise ServiceError("This kind of field cannot make a custom field.", field="target")
    try:
        custom = custom_fields.create_field(entity, values["label"], field_type, choices=values["choices"],
                                            help_text=values["help_text"][:custom_fields.HELP_MAX] or None,
                                            actor=actor)
    except ServiceError as exc:
        # Its checks speak of the custom field's name and choices: show them where the builder asks for those.
        raise ServiceError(f"New custom field: {exc.message}",
                           field={"label": "label", "choices": "choices"}.get(exc.field, "target")) from None
    return f"custom.{custom.id}"


def add_field(form: Form, data: dict, *, actor) -> FormField:
    """A new field at the end of the form."""
    _require_manage(actor)
    values = clean_field(form, data)
    if values["target"] in NEW_CUSTOM:
        values["target"] = _create_custom_target(values, actor)
    fields = list(form.fields)
    field = FormField(form_id=form.id, key=_unique_key(form, values["label"], values["target"]),
                      position=len(fields), **values)
    db.session.add(field)
    db.session.flush()
    db.session.expire(form, ["fields"])
    record("form.field_added", form, actor=actor, details={"field": field.key, "label": field.label,
                                                          "kind": field.kind, "target": field.target})
    return field


def update_field(field: FormField, data: dict, *, actor) -> list[str]:
    """Change a field; its kind and key stay (answers already sent are read by them)."""
    _require_manage(actor)
    form = form_of(field)
    values = clean_field(form, data, field=field)
    if values["target"] in NEW_CUSTOM:
        values["target"] = _create_custom_target(values, actor)
    changed = _changes(field, values)
    if changed:
        record("form.field_changed", form, actor=actor, details={"field": field.key, **changed})
    return list(changed)


def form_of(field: FormField) -> Form:
    return db.session.get(Form, field.form_id)


def _renumber(form: Form, ordered: list[FormField]) -> None:
    # Positions are not unique in the table, so plain updates in any order are safe.
    for position, field in enumerate(ordered):
        if field.position != position:
            field.position = position
    db.session.flush()
    db.session.expire(form, ["fields"])


def delete_field(field: FormField, *, actor) -> None:
    """Off the form. Answers submissions already hold are kept (under the field's key)."""
    _require_manage(actor)
    form = form_of(field)
    remaining = [f for f in form.fields if f.id != field.id]
    details = {"field": field.key, "label": field.label}
    db.session.delete(field)
    db.session.flush()
    _renumber(form, remaining)
    record("form.field_removed", form, actor=actor, details=details)


def move_field(field: FormField, direction: str, *, actor) -> bool:
    """One place up or down. Returns False at either end."""
    _require_manage(actor)
    if direction not in (UP, DOWN):
        raise ServiceError("Choose up or down.", field="direction")
    form = form_of(field)
    ordered = list(form.fields)
    index = next(i for i, f in enumerate(ordered) if f.id == field.id)
    other = index - 1 if direction == UP else index + 1
    if not 0 <= other < len(ordered):
        return False
    ordered[index], ordered[other] = ordered[other], ordered[index]
    _renumber(form, ordered)
    record("form.field_moved", form, actor=actor, details={"field": field.key, "direction": direction,
                                                          "position": other})
    return True


# --- the live preview ---------------------------------------------------------------------------------

_PREVIEW_SETTINGS = ("title", "intro", "submit_label", "thank_you_message", "primary_colour")


def preview_field(data: dict, *, kind: str | None = None, key: str = "preview_field") -> dict:
    """A field as the renderer takes it, from what is being typed in the builder: nothing is
    refused (the preview shows work in progress), only bounded and made harmless."""
    kind = kind or data.get("kind")
    if kind not in FieldKind.ALL:
        kind = FieldKind.SHORT_TEXT

    def line(name: str, limit: int) -> str:
        return " ".join(str(data.get(name) or "").split())[:limit]

    terms = str(data.get("terms_url") or "").strip()
    return {
        "key": key, "kind": kind, "label": line("label", LABEL_MAX) or FieldKind.LABELS[kind],
        "help_text": str(data.get("help_text") or "")[:HELP_MAX], "placeholder": line("placeholder", PLACEHOLDER_MAX),
        "required": bool(data.get("required")) and kind not in (FieldKind.SECTION, FieldKind.HIDDEN),
        "choices": [c[:CHOICE_MAX] for c in parse_choices(data.get("choices"))[:CHOICES_MAX]],
        "display": data.get("display") if data.get("display") in DISPLAYS else "dropdown",
        "target": "", "url_parameter": line("url_parameter", 100),
        "terms_url": terms if re.match(r"^https?://", terms, re.I) else "",
    }


def field_dict(field: FormField) -> dict:
    return {name: getattr(field, name) for name in ("key", "kind", "label", "help_text", "placeholder", "required",
                                                    "choices", "display", "target", "url_parameter", "terms_url")}


def preview_definition(form: Form, draft: dict, *, field_id: int | None = None, new_field: bool = False) -> dict:
    """The form as it would look with the draft typed so far: settings from the draft where it
    carries them, and the field being edited (field_id) or added (new_field) in place."""
    settings = {name: getattr(form, name) for name in _PREVIEW_SETTINGS}
    for name in _PREVIEW_SETTINGS:
        if name in draft:
            settings[name] = str(draft[name] or "")[:TEXT_MAX]
    if settings["primary_colour"] and not COLOR_RE.match(settings["primary_colour"]):
        settings["primary_colour"] = form.primary_colour
    settings["title"] = " ".join(settings["title"].split())[:TITLE_MAX] or form.title
    fields = []
    for field in form.fields:
        if field.id == field_id:
            fields.append(preview_field(draft, kind=field.kind, key=field.key))
        else:
            fields.append(field_dict(field))
    if new_field and (draft.get("label") or "").strip():  # an empty "add a field" form adds nothing yet
        fields.append(preview_field(draft))
    return {"form": settings, "fields": fields, "has_logo": bool(form.logo_mimetype)}
