"""Finding records by what people type: the one place that turns search text into SQL, so
every list, picker and duplicate finder searches the same way (and a faster index changes
them all at once)."""
from __future__ import annotations

from crm.normalize import fold

MAX_WORDS = 8


def search_words(text: str | None) -> list[str]:
    """The words of a search, folded like the stored search text (case, accents)."""
    return fold(text).split()[:MAX_WORDS]


def contains(column, text: str):
    """`column LIKE %text%`, with the typed % and _ taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(f"%{escaped}%", escape="\\")


def contains_every_word(column, text: str | None) -> list:
    """One condition per word: all of them must appear, in any order."""
    return [contains(column, word) for word in search_words(text)]
