"""What makes two values "the same" in the CRM: e-mails, phones, company names."""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import phonenumbers

from core.identity import normalize_email  # one definition of a normalised e-mail

__all__ = ["normalize_email", "normalize_phone", "company_name_key", "fold"]

_LEGAL_SUFFIXES = {
    "inc", "incorporated", "llc", "ltd", "limited", "corp", "corporation", "co", "company", "gmbh",
    "ag", "sa", "sas", "sarl", "bv", "nv", "plc", "pty", "oy", "ab", "as", "srl", "spa", "kg", "lp", "llp",
}


def normalize_phone(raw: str, region: str = "US") -> str:
    """E.164 (+14155550123); raises ValueError with a readable message."""
    text = (raw or "").strip()
    try:
        number = phonenumbers.parse(text, region.upper() if region else None)
    except phonenumbers.NumberParseException:
        raise ValueError(f"“{text}” is not a phone number.") from None
    if not phonenumbers.is_possible_number(number) or not phonenumbers.is_valid_number(number):
        raise ValueError(f"“{text}” is not a valid phone number. Include the country code, e.g. +44 20 7946 0958.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=4096)  # a list page formats fifty numbers, and parsing one costs ~20 µs
def display_phone(e164: str | None) -> str:
    if not e164:
        return ""
    try:
        return phonenumbers.format_number(phonenumbers.parse(e164), phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    except phonenumbers.NumberParseException:
        return e164


_SPACES = re.compile(r"\s+")


def fold(text: str | None) -> str:
    """Lower-case, accents removed, white space collapsed: "Ágata  Ñúñez" → "agata nunez"."""
    text = text or ""
    if not text.isascii():  # ASCII has no accents to take off (an import folds every name)
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return _SPACES.sub(" ", text.casefold()).strip()


def company_name_key(name: str) -> str:
    """"ACME, Inc." and "Acme Inc" and "acme" are one company."""
    words = re.findall(r"[a-z0-9]+", fold(name).replace("&", " and "))
    while len(words) > 1 and words[-1] in _LEGAL_SUFFIXES:
        words.pop()
    return " ".join(words)

