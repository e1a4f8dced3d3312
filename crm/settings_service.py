"""The tenant's CRM settings: who among Staff sees which contacts, the region local phone
numbers are read in, and for kickoff forms the sites that may embed them and how alike a typed
company name must be to an existing company. (The pipeline is crm.pipeline; custom fields are
crm.custom_fields.)"""
from __future__ import annotations

import functools
import re
from urllib.parse import urlsplit

import phonenumbers

from core.audit import record, register_actions
from core.errors import ServiceError
from crm.models import CrmSettings
from crm.setup import settings

register_actions({
    "crm.staff_visibility_changed": "Contact visibility for Staff changed",
    "crm.default_region_changed": "Default phone region changed",
    "crm.form_embed_origins_changed": "Sites allowed to embed forms changed",
    "crm.company_match_threshold_changed": "Company name matching threshold changed",
})
THRESHOLD_MIN, THRESHOLD_MAX = 50, 100
MAX_EMBED_ORIGINS = 50
_HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
# Plain http is for a site under development on this machine only.
_LOCAL_HOSTS = ("localhost", "127.0.0.1")

VISIBILITY = {
    CrmSettings.ALL_CONTACTS: "Every contact. Staff change and delete only the contacts they own.",
    CrmSettings.OWN_OR_CIRCLES: "Only the contacts they own, or that are in a Circle they are assigned to. "
                                "Other contacts do not exist for them: not in lists, search, counts or exports.",
}
VISIBILITY_SHORT = {CrmSettings.ALL_CONTACTS: "every contact",
                    CrmSettings.OWN_OR_CIRCLES: "own contacts and their Circles' contacts"}


class AuditTarget:
    """What the audit log names for a row whose model has no audit_type or label of its own."""

    def __init__(self, obj, audit_type: str, label: str):
        self.id, self.tenant_id, self.audit_type, self._label = obj.id, obj.tenant_id, audit_type, label

    def __str__(self) -> str:
        return self._label


def _audit(action: str, current: CrmSettings, actor, details: dict) -> None:
    record(action, AuditTarget(current, "crm_settings", "CRM settings"), actor=actor, details=details,
           tenant_id=current.tenant_id)


def _change(attr: str, value, action: str, actor) -> bool:
    """Set one setting, audited with its old and new value; returns whether it changed."""
    current = settings()
    before = getattr(current, attr)
    if before == value:
        return False
    setattr(current, attr, value)
    _audit(action, current, actor, {"from": before, "to": value})
    return True


@functools.lru_cache(maxsize=1)
def _territory_names() -> dict[str, str]:
    """English country names from CLDR (Babel): a few hundred kB read once, where phonenumbers'
    geocoder would load ~100 MB of place names into every process to name the same countries."""
    from babel import Locale

    return dict(Locale("en").territories)


def region_name(code: str) -> str:
    return _territory_names().get(code, code)


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
    return _change("staff_visibility", mode, "crm.staff_visibility_changed", actor)


def set_default_region(code: str, actor) -> bool:
    """The region a phone number typed without its country code is read in (a
    phonenumbers region code: US, GB, DE…). Numbers already stored do not change.
    Returns whether anything changed."""
    code = (code or "").strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ServiceError("Choose a country from the list.", field="default_region")
    return _change("default_region", code, "crm.default_region_changed", actor)


def parse_origin(raw: str) -> str:
    """"https://www.Example.com/" → "https://www.example.com"; raises ValueError in plain words.
    An origin is https://host or https://host:port; http only for localhost (site development)."""
    text = (raw or "").strip().rstrip("/")
    example = "Write it like https://www.example.com"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ValueError(f"“{raw.strip()}” is not a web address. {example}.") from None
    host = (parts.hostname or "").lower()
    try:
        host = host.encode("idna").decode("ascii")  # browsers compare origins in punycode
    except UnicodeError:
        raise ValueError(f"“{raw.strip()}” is not a web address. {example}.") from None
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise ValueError(f"“{raw.strip()}” is not a web address. {example}.")
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"“{raw.strip()}” has more than the site's address. {example}, without a page.")
    local = host in _LOCAL_HOSTS or host.endswith(".localhost")
    if not (_HOST.match(host) or host == "127.0.0.1"):
        raise ValueError(f"“{raw.strip()}” is not a web address. {example}.")
    if parts.scheme.lower() == "http" and not local:
        raise ValueError(f"“{raw.strip()}” must use https:// (plain http:// is only for localhost).")
    return f"{parts.scheme.lower()}://{host}" + (f":{port}" if port else "")


def set_form_embed_origins(origins, actor) -> bool:
    """The sites (origins) that may show the tenant's kickoff forms in a frame: an iterable of
    addresses, or text with one per line (commas and spaces also separate). Duplicates
    collapse; order is kept. Returns whether anything changed."""
    if isinstance(origins, str):
        origins = re.split(r"[\s,]+", origins)
    cleaned: list[str] = []
    for raw in origins:
        if not (raw or "").strip():
            continue
        try:
            origin = parse_origin(raw)
        except ValueError as exc:
            raise ServiceError(str(exc), field="form_embed_origins") from None
        if origin not in cleaned:
            cleaned.append(origin)
    if len(cleaned) > MAX_EMBED_ORIGINS:
        raise ServiceError(f"List at most {MAX_EMBED_ORIGINS} sites.", field="form_embed_origins")
    return _change("form_embed_origins", cleaned, "crm.form_embed_origins_changed", actor)


def set_company_match_threshold(value, actor) -> bool:
    """How alike (50-100) a company name typed on a form must be to an existing company's to
    land on it; 100 means only the same name (ignoring case, accents and "Inc."-like endings).
    Returns whether anything changed."""
    try:
        threshold = int(str(value).strip())
    except (TypeError, ValueError):
        threshold = None
    if threshold is None or not THRESHOLD_MIN <= threshold <= THRESHOLD_MAX:
        raise ServiceError(f"Enter a whole number from {THRESHOLD_MIN} to {THRESHOLD_MAX}.",
                           field="company_match_threshold")
    return _change("company_match_threshold", threshold, "crm.company_match_threshold_changed", actor)
