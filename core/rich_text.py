"""Rich text staff write for other people to read (Circle pages in the portal): a short list
of harmless tags, cleaned by nh3 (ammonia) when it is saved and again when it is shown, so
a row written by an older rule, or by hand, still cannot run script in a reader's browser."""
from __future__ import annotations

import html
import re

from markupsafe import Markup

TAGS = {"p", "br", "strong", "b", "em", "i", "u", "s", "a", "ul", "ol", "li", "h2", "h3", "h4",
        "blockquote", "code", "pre", "hr"}
ATTRIBUTES = {"a": {"href", "title"}}
URL_SCHEMES = {"http", "https", "mailto"}
_PARAGRAPHS = re.compile(r"\n\s*\n")
_TAG = re.compile(r"<[^>]*>")


def clean_html(text: str | None) -> str:
    """Only the allowed tags and attributes; links only to http(s) and mailto, opened without
    the reader's page as opener. Scripts and styles go with their content."""
    import nh3  # here, not with the app: only pages with rich text clean it

    return nh3.clean(text or "", tags=TAGS, attributes=ATTRIBUTES, url_schemes=URL_SCHEMES,
                     link_rel="noopener noreferrer nofollow", strip_comments=True,
                     clean_content_tags={"script", "style"})


def from_plain_text(text: str) -> str:
    """Text typed without any tag: blank lines make paragraphs, single line breaks stay."""
    paragraphs = [p.strip() for p in _PARAGRAPHS.split(text.replace("\r\n", "\n")) if p.strip()]
    return "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)


def rich_text_from_input(text: str | None) -> str:
    """What a writer typed, as the HTML to store: plain text becomes paragraphs, HTML is cleaned."""
    text = (text or "").strip()
    if "<" not in text:
        return from_plain_text(text)
    return clean_html(text).strip()


def visible_text(cleaned: str) -> str:
    """The words a reader would see (to tell an empty page from one with content)."""
    return html.unescape(_TAG.sub(" ", cleaned)).strip()


def render(text: str | None) -> Markup:
    """The templates' `|rich_text`: cleaned again, then safe to put in the page."""
    return Markup(clean_html(text))
