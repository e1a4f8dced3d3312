"""The tenant's CRM settings: who among Staff sees which contacts, and the region local phone
numbers are read in. (The pipeline is crm.pipeline; custom fields are crm.custom_fields.)"""
from __future__ import annotations

import functools

import phonenumbers
from phonenumbers import geocoder

from core.audit import record, register_actions
from core.errors import ServiceError
from crm.models import CrmSettings
from crm.setup import settings

register_actions({
    "crm.staff_visibility_changed": "Contact visibility for Staff changed",
    "crm.default_region_changed": "Default phone region changed",
})

VISIBILITY = {
    CrmSettings.ALL_CONTACTS: "Every contact. Staff change and delete only the contacts they own.",
    CrmSettings.OWN_OR_CIRCLES: "Only the contacts they own, or that are in a Circle they are assigned to. "
                                "Other contacts do not exist for them: not in lists, search, counts or exports.",
}
VISIBILITY_SHORT = {CrmSettings.ALL_CONTACTS: "every contact",
                    CrmSettings.OWN_OR_CIRCLES: "own contacts and their Circles' contacts"}
# Regions phonenumbers knows but names no country for.
_REGION_NAMES = {"AC": "Ascension Island", "BL": "Saint Barthélemy", "EH": "Western Sahara", "MF": "Saint Martin",
                 "TA": "Tristan da Cunha", "XK": "Kosovo"}


class AuditTarget:
    """What the audit log names for a row whose model has no audit_type or label of its own."""

    def __init__(self, obj, audit_type: str, label: str):
        self.id, self.tenant_id, self.audit_type, self._label = obj.id, obj.tenant_id, audit_type, label

    def __str__(self) -> str:
        return self._label


def _audit(action: str, current: CrmSettings, actor, details: dict) -> None:
    record(action, AuditTarget(current, "crm_settings", "CRM settings"), actor=actor, details=details,
           tenant_id=current.tenant_id)


def region_name(code: str) -> str:
    example = phonenumbers.example_number(code)
    name = geocoder.country_name_for_number(example, "en") if example is not None else ""
    return name or _REGION_NAMES.get(code, code)


@functools.lru_cache(maxsize=1)
def regions() -> list[tuple[str, str]]:
    """(code, "Germany (+49)") for every region phonenumbers reads, by name."""
    pairs = [(code, f"{region_name(code)} (+{phonenumbers.country_code_for_region(code)})")
             for code in phonenumbers.SUPPORTED_REGIONS]
    return sorted(pairs, key=lambda pair: pair[1])


def is_region(code: str | None) -> bool:
    return code in phonenumbers.SUPPORTED_REGIONS


def local_example(code: str) -> tuple[str, str] | None:
    """A local number of the region as people write it, and how it is stored: ("030 123456",
    "+49 30 123456")."""
    example = phonenumbers.example_number(code)
    if example is None:
        return None
    return (phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL),
            phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.INTERNATIONAL))


def set_staff_visibility(mode: str, actor) -> bool:
    """CrmSettings.ALL_CONTACTS or OWN_OR_CIRCLES; Owners and Admins always see everything.
    Returns whether anything changed."""
    if mode not in VISIBILITY:
        raise ServiceError("Choose which contacts Staff see.", field="staff_visibility")
    current = settings()
    if current.staff_visibility == mode:
        return False
    before = current.staff_visibility
    current.staff_visibility = mode
    _audit("crm.staff_visibility_changed", current, actor, {"from": before, "to": mode})
    return True


def set_default_region(code: str, actor) -> bool:
    """The region a phone number typed without its country code is read in (a
    phonenumbers region code: US, GB, DE…). Numbers already stored do not change.
    Returns whether anything changed."""
    code = (code or "").strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ServiceError("Choose a country from the list.", field="default_region")
    current = settings()
    if current.default_region == code:
        return False
    before = current.default_region
    current.default_region = code
    _audit("crm.default_region_changed", current, actor, {"from": before, "to": code})
    return True
