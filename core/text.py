"""Checking the short texts people type: names, titles, labels."""
from __future__ import annotations

import unicodedata
from urllib.parse import urlsplit

from core.errors import ServiceError

# Characters that reorder the text around them: a name could display as something else.
_BIDI_OVERRIDES = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def clean_line(value: str | None, *, label: str, field: str | None = None, max_length: int = 200,
               required: bool = True) -> str | None:
    """One line of text, stripped: no line breaks or control characters (they would break
    e-mail headers and CSV files), at most `max_length` characters. Raises ServiceError in
    plain words, beside `field`."""
    text = (value or "").strip()
    if not text:
        if required:
            raise ServiceError(f"Enter {label}.", field=field)
        return None
    # Printable ASCII holds none of them: most text is checked without a look at each character.
    if not (text.isascii() and text.isprintable()) and any(
            unicodedata.category(c) in ("Cc", "Zl", "Zp") or c in _BIDI_OVERRIDES for c in text):
        raise ServiceError(f"{label.capitalize()} must be one line of plain text.", field=field)
    if len(text) > max_length:
        raise ServiceError(f"{label.capitalize()} can be at most {max_length} characters.", field=field)
    return text


def clean_web_address(value: str | None, *, label: str, field: str | None = None, max_length: int = 2000,
                      required: bool = False) -> str | None:
    """An http(s) address with a host, as typed (stripped); None when empty and not required.
    Any other scheme (javascript:, data:, …) is refused: these addresses become links."""
    text = clean_line(value, label=label, field=field, max_length=max_length, required=required)
    if text is None:
        return None
    try:
        parts = urlsplit(text)
        ok = parts.scheme.lower() in ("http", "https") and bool(parts.hostname) and " " not in text
    except ValueError:
        ok = False
    if not ok:
        raise ServiceError("Enter a web address starting with https:// (or http://).", field=field)
    return text
