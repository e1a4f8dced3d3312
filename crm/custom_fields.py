"""Tenant-defined fields on contacts and companies: definitions, and checking values."""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa

from core.db import db, utcnow
from core.errors import ServiceError
from crm.models import CustomField
from crm.normalize import fold, normalize_email, normalize_phone

FORM_PREFIX = "cf_"
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


def clean_values(entity: str, raw: dict, *, region: str = "US", partial: bool = False) -> dict:
    """Check every submitted custom value; collects all problems into one ServiceError per
    first bad field (forms show it beside that field)."""
    cleaned = {}
    for field in definitions(entity):
        if partial and field.key not in raw:
            continue
        cleaned[field.key] = clean_value(field, raw.get(field.key), region=region)
    return cleaned
