"""Fixtures the CRM tests share."""
from __future__ import annotations

import pytest

from tests.factories import make_circle, make_contact
from tests.support import in_tenant


@pytest.fixture
def crowd(app, world):
    """60 leads (two pages of 50), a few owned by the staff member."""
    def build():
        made = [make_contact(f"Person{i:02d}", "Crowd", role="lead",
                             owner_id=world.a.members["staff"].id if i < 5 else world.a.members["owner"].id)
                for i in range(60)]
        return [c.id for c in made], make_circle("Newsletter").id
    return in_tenant(app, world.a, build)
