"""Tenant-defined fields on contacts and companies: definitions, and checking values."""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa

from core.audit import record, register_actions
from core.db import db, utcnow
from core.errors import ServiceError
from core.forms import CUSTOM_FIELD_PREFIX as FORM_PREFIX  # what a field's input is called
from core.text import clean_line
from crm.models import Company, Contact, CustomField
from crm.normalize import fold, normalize_email, normalize_phone
from crm.settings_service import AuditTarget

TRUE_WORDS = {"1", "true", "yes", "y", "on", "x", "ja", "oui", "si", "sí"}
FALSE_WORDS = {"0", "false", "no", "n", "off", ""}


def definitions(entity: str, *, include_archived: bool = False) -> list[CustomField]:
    query = sa.select(CustomField).where(CustomField.entity == entity).order_by(CustomField.position, CustomField.id)
    if not include_archived:
        query = query.where(CustomField.archived_at.is_(None))
    return list(db.session.scalars(query))


def key_for(label: str) -> str:
    key = re.sub(r"[^a-z0-9]+", "_", fold(label)).strip("_")[:60]
    return key or "field"


def create_definition(entity: str, label: str, field_type: str, *, choices=None, required=False,
                      help_text: str | None = None) -> CustomField:
    label = (label or "").strip()
    if entity not in CustomField.ENTITIES:
        raise ServiceError("Choose contacts or companies.", field="entity")
    if not label:
        raise ServiceError("Give the field a name.", field="label")
    if field_type not in CustomField.TYPES:
        raise ServiceError("Choose a field type.", field="field_type")
    clean_choices = [c.strip() for c in (choices or []) if c and c.strip()]
    if field_type in ("choice", "multi_choice") and not clean_choices:
        raise ServiceError("List the choices, one per line.", field="choices")
    key = key_for(label)
    taken = set(db.session.scalars(sa.select(CustomField.key).where(CustomField.entity == entity)))
    if key in taken:
        raise ServiceError(f"There is already a field called “{label}”.", field="label")
    position = len(taken)
    field = CustomField(entity=entity, key=key, label=label, field_type=field_type, choices=clean_choices,
                        required=required, help_text=(help_text or "").strip() or None, position=position)
    db.session.add(field)
    db.session.flush()
    return field


def archive_definition(field: CustomField) -> None:
    field.archived_at = utcnow()


def clean_value(field: CustomField, raw, *, region: str = "US"):
    """The stored form of one value, or ServiceError (beside the field) in plain words."""
    form_field = FORM_PREFIX + field.key
    if isinstance(raw, str):
        raw = raw.strip()
    empty = raw is None or raw == "" or raw == []
    if empty:
        if field.required and field.field_type != "boolean":
            raise ServiceError(f"{field.label} is required.", field=form_field)
        return False if field.field_type == "boolean" else None
    kind = field.field_type
    try:
        if kind in ("text", "long_text"):
            limit = 255 if kind == "text" else 10000
            if len(str(raw)) > limit:
                raise ValueError(f"use at most {limit} characters.")
            return str(raw)
        if kind == "number":
            text = str(raw)
            if text.count(",") == 1 and "." not in text:  # a decimal comma: "3,5"
                text = text.replace(",", ".")
            number = Decimal(text)
            if not number.is_finite():
                raise InvalidOperation(text)
            return int(number) if number == number.to_integral_value() else float(number)
        if kind == "date":
            return (raw if isinstance(raw, date) else date.fromisoformat(str(raw))).isoformat()
        if kind == "boolean":
            word = str(raw).strip().lower()
            if raw is True or word in TRUE_WORDS:
                return True
            if raw is False or word in FALSE_WORDS:
                return False
            raise ValueError("answer yes or no.")
        if kind == "choice":
            return _one_choice(field, raw)
        if kind == "multi_choice":
            values = raw if isinstance(raw, (list, tuple)) else [v for v in re.split(r"[;,]", str(raw))]
            picked = [_one_choice(field, v) for v in values if str(v).strip()]
            return list(dict.fromkeys(picked))
        if kind == "url":
            text = str(raw)
            if not re.match(r"^https?://[^\s/$.?#].[^\s]*$", text, re.I):
                raise ValueError("enter a web address starting with http:// or https://.")
            return text
        if kind == "email":
            return normalize_email(str(raw))
        if kind == "phone":
            return normalize_phone(str(raw), region)
    except InvalidOperation:
        raise ServiceError(f"{field.label}: enter a number.", field=form_field) from None
    except ValueError as exc:
        message = "enter a date as YYYY-MM-DD." if kind == "date" else str(exc)
        raise ServiceError(f"{field.label}: {message}", field=form_field) from None
    raise ServiceError(f"{field.label}: unknown field type.", field=form_field)


def _one_choice(field: CustomField, raw) -> str:
    wanted = fold(str(raw))
    for choice in field.choices:
        if fold(choice) == wanted:
            return choice
    raise ValueError(f"“{raw}” is not one of the choices ({', '.join(field.choices)}).")


def clean_values(entity: str, raw: dict, *, region: str = "US", partial: bool = False,
                 keys: set[str] | None = None) -> dict:
    """Check every submitted custom value; collects all problems into one ServiceError per
    first bad field (forms show it beside that field). `keys`: only these fields are read
    (the others keep their values, whatever `raw` holds for them)."""
    cleaned = {}
    for field in definitions(entity):
        if (partial and field.key not in raw) or (keys is not None and field.key not in keys):
            continue
        cleaned[field.key] = clean_value(field, raw.get(field.key), region=region)
    return cleaned


# --- managing the definitions (the CRM settings page) -------------------------------------------

register_actions({
    "custom_field.created": "Custom field added",
    "custom_field.changed": "Custom field changed",
    "custom_field.moved": "Custom field moved",
    "custom_field.archived": "Custom field archived",
    "custom_field.restored": "Custom field restored",
    "custom_field.choice_renamed": "Custom field choice renamed",
})

CHOICE_TYPES = ("choice", "multi_choice")
ENTITY_LABELS = {"contact": "Contacts", "company": "Companies"}
RECORD_WORDS = {"contact": ("contact", "contacts"), "company": ("company", "companies")}
LABEL_MAX, HELP_MAX, CHOICE_MAX, CHOICES_MAX = 120, 300, 100, 200
UP, DOWN = "up", "down"


def _audit(action: str, field: CustomField, actor, details: dict | None = None) -> None:
    what = "contact" if field.entity == "contact" else "company"
    record(action, AuditTarget(field, "custom_field", f"{field.label} ({what} field)"), actor=actor,
           details=details, tenant_id=field.tenant_id)


def records_word(entity: str, count: int) -> str:
    one, many = RECORD_WORDS[entity]
    return f"{count:,} {one if count == 1 else many}"


def _clean_label(entity: str, label: str | None, *, except_id: int | None = None) -> str:
    label = clean_line(label, label="a name for the field", field="label", max_length=LABEL_MAX)
    wanted = fold(label)
    for other in definitions(entity, include_archived=True):
        if other.id != except_id and fold(other.label) == wanted:
            if other.archived_at is not None:
                raise ServiceError(f"There is an archived field called “{other.label}”: restore it instead, "
                                   "or choose another name.", field="label")
            raise ServiceError(f"There is already a field called “{other.label}”.", field="label")
    return label


def _clean_help(help_text: str | None) -> str | None:
    return clean_line(help_text, label="the help text", field="help_text", max_length=HELP_MAX, required=False)


def parse_choices(raw) -> list[str]:
    """The choices typed in a text area (one per line), or given as a list."""
    items = raw.splitlines() if isinstance(raw, str) else list(raw or [])
    return [str(item).strip() for item in items if item is not None and str(item).strip()]


def _clean_choices(field_type: str, raw) -> list[str]:
    if field_type not in CHOICE_TYPES:
        return []
    choices = parse_choices(raw)
    if not choices:
        raise ServiceError("List the choices, one per line.", field="choices")
    if len(choices) > CHOICES_MAX:
        raise ServiceError(f"A field can offer at most {CHOICES_MAX} choices.", field="choices")
    seen: dict[str, str] = {}
    for choice in choices:
        clean_line(choice, label=f"the choice “{choice[:40]}”", field="choices", max_length=CHOICE_MAX)
        if field_type == "multi_choice" and ("," in choice or ";" in choice):
            raise ServiceError(f"“{choice}”: choices of a multiple-choice field cannot contain commas or "
                               "semicolons (imports use them to separate choices).", field="choices")
        key = fold(choice)
        if key in seen:
            raise ServiceError(f"“{choice}” is listed twice.", field="choices")
        seen[key] = choice
    return choices


def _check_required(field_type: str, required: bool) -> bool:
    if required and field_type == "boolean":
        raise ServiceError("A yes/no field cannot be required: leaving it unticked already means no.",
                           field="required")
    return bool(required)


def _unique_key(entity: str, label: str) -> str:
    base = key_for(label)
    taken = set(db.session.scalars(sa.select(CustomField.key).where(CustomField.entity == entity)))
    key, n = base, 2
    while key in taken:
        suffix = f"_{n}"
        key, n = base[:60 - len(suffix)] + suffix, n + 1
    return key


def _renumber(entity: str, ordered_active: list[CustomField] | None = None) -> None:
    """Positions 0..n-1 for the entity's active fields (in the given order, or the current
    one), then its archived fields."""
    current = sorted(definitions(entity, include_archived=True),
                     key=lambda f: (f.archived_at is not None, f.position, f.id))
    active = ordered_active if ordered_active is not None else [f for f in current if f.archived_at is None]
    archived = [f for f in current if f.archived_at is not None]
    for position, field in enumerate(active + archived):
        if field.position != position:
            field.position = position
    db.session.flush()


def create_field(entity: str, label: str, field_type: str, *, choices=None, required: bool = False,
                 help_text: str | None = None, editable_by_contact: bool = False, actor) -> CustomField:
    """A new field at the end of the entity's form; audited."""
    if entity not in CustomField.ENTITIES:
        raise ServiceError("Choose contacts or companies.", field="entity")
    if field_type not in CustomField.TYPES:
        raise ServiceError("Choose a field type.", field="field_type")
    label = _clean_label(entity, label)
    clean_choices = _clean_choices(field_type, choices)
    required = _check_required(field_type, required)
    help_text = _clean_help(help_text)
    editable = _check_editable(entity, editable_by_contact)
    active = definitions(entity)
    field = CustomField(entity=entity, key=_unique_key(entity, label), label=label, field_type=field_type,
                        choices=clean_choices, required=required, help_text=help_text, position=len(active),
                        editable_by_contact=editable)
    db.session.add(field)
    db.session.flush()
    _renumber(entity, active + [field])
    _audit("custom_field.created", field, actor, {"type": field_type, "required": required,
                                                  "choices": clean_choices, "editable_by_contact": editable})
    return field


def editable_by_contact() -> list[CustomField]:
    """The contact fields staff let contacts change on their own portal profile, in form order."""
    return [field for field in definitions("contact") if field.editable_by_contact]


def _check_editable(entity: str, editable: bool) -> bool:
    if editable and entity != "contact":
        raise ServiceError("Only contact fields can be editable by the contact.", field="editable_by_contact")
    return bool(editable)


def _value_rows(field: CustomField):
    """(stored value as text, how many records) for the field's records that hold a value;
    merged contacts are left out."""
    model = Contact if field.entity == "contact" else Company
    value = model.custom_fields[field.key].as_string()
    query = sa.select(value, sa.func.count()).where(value.is_not(None)).group_by(value)
    if model is Contact:
        query = query.where(Contact.merged_into_id.is_(None))
    return db.session.execute(query).all()


def choice_usage(field: CustomField) -> dict[str, int]:
    """choice -> how many records (contacts or companies, history included) hold it."""
    import json

    usage: dict[str, int] = {}
    for text, count in _value_rows(field):
        if field.field_type == "multi_choice":
            try:
                values = json.loads(text)
            except (TypeError, ValueError):
                values = [text]
            values = values if isinstance(values, list) else [values]
        else:
            values = [text]
        for value in dict.fromkeys(str(v) for v in values):
            usage[value] = usage.get(value, 0) + count
    return usage


def update_field(field: CustomField, *, label: str, help_text: str | None, required: bool,
                 choices=None, editable_by_contact: bool | None = None, actor) -> list[str]:
    """Change the label, help text, required flag, whether the contact may edit it (None: as
    it is) and (choice fields) the choices. The type and the stored key stay, so values are
    kept. A choice that records still hold cannot be removed (rename it instead:
    rename_choice). Returns the names of what changed."""
    new = {"label": _clean_label(field.entity, label, except_id=field.id), "help_text": _clean_help(help_text),
           "required": _check_required(field.field_type, required)}
    if editable_by_contact is not None:
        new["editable_by_contact"] = _check_editable(field.entity, editable_by_contact)
    if field.field_type in CHOICE_TYPES and choices is not None:
        new_choices = _clean_choices(field.field_type, choices)
        removed = [c for c in field.choices if c not in new_choices]
        if removed:
            usage = choice_usage(field)
            in_use = [(c, usage[c]) for c in removed if usage.get(c)]
            if in_use:
                listed = "; ".join(f"“{c}” by {records_word(field.entity, n)}" for c, n in in_use)
                raise ServiceError(f"Still in use: {listed}. Keep {'it' if len(in_use) == 1 else 'them'} in the "
                                   "list, or rename the choice below (the records follow).", field="choices")
        new["choices"] = new_choices
    changed = [name for name, value in new.items() if getattr(field, name) != value]
    details = {name: {"from": getattr(field, name), "to": new[name]} for name in changed}
    for name in changed:
        setattr(field, name, new[name])
    if changed:
        db.session.flush()
        _audit("custom_field.changed", field, actor, details)
    return changed


def rename_choice(field: CustomField, old: str, new: str, actor) -> int:
    """Rename one choice of a choice field, in the definition and in every record that holds
    it. Returns how many records changed."""
    if field.field_type not in CHOICE_TYPES:
        raise ServiceError("Only choice fields have choices to rename.", field="old")
    if old not in field.choices:
        raise ServiceError("Choose one of the field's choices.", field="old")
    new = clean_line(new, label="the new name of the choice", field="new", max_length=CHOICE_MAX)
    if new == old:
        return 0
    if field.field_type == "multi_choice" and ("," in new or ";" in new):
        raise ServiceError("Choices of a multiple-choice field cannot contain commas or semicolons.", field="new")
    for other in field.choices:
        if other != old and fold(other) == fold(new):
            raise ServiceError(f"“{other}” is already a choice.", field="new")
    field.choices = [new if c == old else c for c in field.choices]
    model = Contact if field.entity == "contact" else Company
    value = model.custom_fields[field.key].as_string()
    query = sa.select(model).where(value.is_not(None))
    if model is Contact:
        query = query.where(Contact.merged_into_id.is_(None))
    changed = 0
    for record_ in db.session.scalars(query):
        values = dict(record_.custom_fields or {})
        current = values.get(field.key)
        if field.field_type == "choice" and current == old:
            values[field.key] = new
        elif field.field_type == "multi_choice" and isinstance(current, list) and old in current:
            values[field.key] = list(dict.fromkeys(new if v == old else v for v in current))
        else:
            continue
        record_.custom_fields = values
        changed += 1
    db.session.flush()
    _audit("custom_field.choice_renamed", field, actor, {"from": old, "to": new, "records": changed})
    return changed


def move_field(field: CustomField, direction: str, actor) -> bool:
    """One place up or down among the entity's active fields (the order of the forms).
    Returns False at either end."""
    if direction not in (UP, DOWN):
        raise ServiceError("Choose up or down.", field="direction")
    if field.archived_at is not None:
        raise ServiceError(f"“{field.label}” is archived: restore it before changing its place.")
    active = definitions(field.entity)
    index = active.index(field)
    other = index - 1 if direction == UP else index + 1
    if not 0 <= other < len(active):
        return False
    active[index], active[other] = active[other], active[index]
    _renumber(field.entity, active)
    _audit("custom_field.moved", field, actor, {"direction": direction, "position": field.position})
    return True


def archive_field(field: CustomField, actor) -> bool:
    """Off the forms, pages and filters; the values records hold are kept, and come back with
    restore_field. Returns False when it was archived already."""
    if field.archived_at is not None:
        return False
    field.archived_at = utcnow()
    _renumber(field.entity)
    _audit("custom_field.archived", field, actor)
    return True


def restore_field(field: CustomField, actor) -> bool:
    """Back on the forms, at the end, with the values records kept. Returns False when it was
    not archived."""
    if field.archived_at is None:
        return False
    active = definitions(field.entity)
    field.archived_at = None
    _renumber(field.entity, active + [field])
    _audit("custom_field.restored", field, actor)
    return True
