"""The staff navigation (staff/nav.py): each member sees the areas their role may use, the
page's own area marked current; worked out once per set of permissions and page, so a change
of a role's permissions shows in the very next page."""
from __future__ import annotations

import re

import pytest

from tests.support import post_form
from tests.test_roles import PAGE as ROLES_PAGE, matrix

EVERYONE_MAIN = ["Dashboard", "Contacts", "Companies", "Circles", "Tags", "Tasks", "Events"]
MAIN_BY_ROLE = {
    "owner": ["Dashboard", "Contacts", "Import", *EVERYONE_MAIN[2:], "Forms", "Payments", "Approvals"],
    "admin": ["Dashboard", "Contacts", "Import", *EVERYONE_MAIN[2:], "Forms", "Payments", "Approvals"],
    "staff": EVERYONE_MAIN,
}
ACCOUNT_BY_ROLE = {
    "owner": ["Your account", "Background tasks", "Team", "Roles and permissions", "Audit log", "Branding",
              "Impersonation", "CRM settings", "Payment settings", "Access plans"],
    "admin": ["Your account", "Background tasks", "Team", "Audit log", "Branding", "Impersonation", "CRM settings",
              "Payment settings", "Access plans"],
    "staff": ["Your account", "Background tasks"],
}


def _links(html: str, list_class: str) -> list[tuple[str, str, bool]]:
    """(label, href, current) of each link in the navigation list of that class."""
    if list_class == "account-nav":
        part = re.search(r'<ul dir="rtl">(.*?)</ul>', html, re.S).group(1)
    else:
        part = re.search(rf'<ul class="{list_class}">(.*?)</ul>', html, re.S).group(1)
    return [(re.sub(r"<[^>]+>|\s+", " ", label).strip(), href, "aria-current" in attrs)
            for href, attrs, label in re.findall(r'<a href="([^"]+)"([^>]*)>(.*?)</a>', part, re.S)]


@pytest.mark.parametrize("role", ["owner", "admin", "staff"])
def test_each_role_sees_the_areas_it_may_use(world, staff_client, role):
    page = staff_client(role).get("/staff/").get_data(as_text=True)
    assert [label for label, _, _ in _links(page, "nav-links")] == MAIN_BY_ROLE[role]
    assert [label for label, _, _ in _links(page, "account-nav")] == ACCOUNT_BY_ROLE[role]
    assert [label for label, _, current in _links(page, "nav-links") if current] == ["Dashboard"]


def test_the_pages_area_is_current_and_exact_areas_only_on_their_own_page(world, staff_client):
    owner = staff_client("owner")
    # A page under an area (its endpoint named after the area's) marks the area.
    new_field = owner.get("/staff/settings/crm/fields/new").get_data(as_text=True)
    assert [(label, href) for label, href, current in _links(new_field, "account-nav") if current] == [
        ("CRM settings", "/staff/settings/crm")]
    assert not any(current for _, _, current in _links(new_field, "nav-links"))
    # The dashboard (staff.dashboard, exact) is current on its own page only.
    contacts = owner.get("/staff/contacts").get_data(as_text=True)
    assert [label for label, _, current in _links(contacts, "nav-links") if current] == ["Contacts"]
    team = owner.get("/staff/team").get_data(as_text=True)
    assert [label for label, _, current in _links(team, "account-nav") if current] == ["Team"]
    assert not any(current for _, _, current in _links(team, "nav-links"))


def test_a_granted_permission_shows_its_area_on_the_next_page(world, staff_client):
    owner, sam = staff_client("owner"), staff_client("staff")
    assert "Audit log" not in [label for label, _, _ in _links(sam.get("/staff/").get_data(as_text=True),
                                                               "account-nav")]
    assert post_form(owner, ROLES_PAGE, matrix(grant=[("staff", "audit.view"), ("staff", "contacts.import")])
                     ).status_code == 302
    page = sam.get("/staff/").get_data(as_text=True)
    assert ("Audit log", "/staff/audit", False) in _links(page, "account-nav")
    assert ("Import", "/staff/imports", False) in _links(page, "nav-links")
    # Another tenant's Staff keep their own role's areas.
    other = staff_client("staff", tenant="b").get("/staff/").get_data(as_text=True)
    assert [label for label, _, _ in _links(other, "account-nav")] == ACCOUNT_BY_ROLE["staff"]
    # Taken back: gone again at once.
    assert post_form(owner, ROLES_PAGE, matrix()).status_code == 302
    page = sam.get("/staff/").get_data(as_text=True)
    assert [label for label, _, _ in _links(page, "account-nav")] == ACCOUNT_BY_ROLE["staff"]
    assert [label for label, _, _ in _links(page, "nav-links")] == MAIN_BY_ROLE["staff"]
