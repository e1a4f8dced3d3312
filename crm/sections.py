"""What other parts of the product add to a contact's staff page.

The contact page belongs to the staff area, but some of what it shows belongs to features that
stand beside it (the kickoff forms' submissions, the portal login): they register a section
here, as they register MERGE_HOOKS, and the page asks for them all without knowing who they are.
"""
from __future__ import annotations

from typing import Callable

from crm.models import Contact

# name → `provider(contact, viewer)`: what the section shows, or None when the viewer may not see it.
CONTACT_SECTIONS: dict[str, Callable[[Contact, object], object]] = {}


def contact_section(name: str):
    """Register a provider for the section `name` of the contact page."""
    def register(provider: Callable[[Contact, object], object]):
        CONTACT_SECTIONS[name] = provider
        return provider
    return register


def contact_sections(contact: Contact, viewer) -> dict[str, object]:
    """Every registered section the viewer may see, by name."""
    shown = {}
    for name, provider in CONTACT_SECTIONS.items():
        section = provider(contact, viewer)
        if section is not None:
            shown[name] = section
    return shown
