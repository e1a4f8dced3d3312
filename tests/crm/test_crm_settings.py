"""The CRM settings page (/staff/settings/crm): who may open it, which contacts Staff see, and
the region local phone numbers are read in."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from core.audit import AuditEvent
from core.db import db
from crm.models import Contact, CrmSettings, CustomField, PipelineStatus
from crm.setup import settings
from tests.factories import add_to_circle, assign_to_circle, make_circle, make_contact, make_custom_field
from tests.support import in_tenant, post_form

PAGE = "/staff/settings/crm"
CONTACT = {"first_name": "Ada", "last_name": "Lovelace", "role": "lead", "is_active": "y"}




def _settings(app, world) -> tuple[str, str]:
    return in_tenant(app, world.a, lambda: (settings().staff_visibility, settings().default_region))


def _ids(app, world) -> dict[str, int]:
    def load():
        status = db.session.scalars(sa.select(PipelineStatus).where(PipelineStatus.name == "Contacted")).one()
        field = make_custom_field("Tier", "choice", choices=["Gold"])
        return {"status_id": status.id, "field_id": field.id}
    return in_tenant(app, world.a, load)


ROUTES = [  # (method, path with {status_id}/{field_id}, form)
    ("GET", PAGE, {}),
    ("POST", PAGE + "/statuses", {"name": "Won"}),
    ("POST", PAGE + "/statuses/{status_id}/rename", {"name": "Called"}),
    ("POST", PAGE + "/statuses/{status_id}/move", {"direction": "up"}),
    ("POST", PAGE + "/statuses/{status_id}/default", {}),
    ("GET", PAGE + "/statuses/{status_id}/archive", {}),
    ("POST", PAGE + "/statuses/{status_id}/archive", {}),
    ("POST", PAGE + "/statuses/{status_id}/restore", {}),
    ("POST", PAGE + "/statuses/{status_id}/move-contacts", {}),
    ("GET", PAGE + "/fields/new", {}),
    ("POST", PAGE + "/fields/new", {"entity": "contact", "label": "X", "field_type": "text"}),
    ("GET", PAGE + "/fields/{field_id}", {}),
    ("POST", PAGE + "/fields/{field_id}", {"label": "Y"}),
    ("POST", PAGE + "/fields/{field_id}/rename-choice", {"old": "Gold", "new": "Platinum"}),
    ("POST", PAGE + "/fields/{field_id}/move", {"direction": "down"}),
    ("POST", PAGE + "/fields/{field_id}/archive", {}),
    ("POST", PAGE + "/fields/{field_id}/restore", {}),
    ("POST", PAGE + "/visibility", {"staff_visibility": "own_or_circles"}),
    ("POST", PAGE + "/phone-region", {"default_region": "GB"}),
]


@pytest.mark.parametrize("method, path, form", ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_staff_are_refused_and_change_nothing(world, staff_client, app, method, path, form):
    ids = _ids(app, world)
    client = staff_client("staff")
    url = path.format(**ids)
    response = client.get(url) if method == "GET" else post_form(client, url, form)
    assert response.status_code == 403
    state = in_tenant(app, world.a, lambda: (
        [(s.name, s.position, s.is_default, s.archived_at) for s in db.session.scalars(
            sa.select(PipelineStatus).order_by(PipelineStatus.id))],
        [(f.label, f.choices, f.archived_at, f.position) for f in db.session.scalars(sa.select(CustomField))]))
    assert len(state[0]) == 5 and state[0][1][0] == "Contacted" and state[1] == [("Tier", ["Gold"], None, 0)]
    assert _settings(app, world) == (CrmSettings.ALL_CONTACTS, "US")


def test_anonymous_visitors_are_sent_to_sign_in(world, client_for):
    response = client_for(world.a.slug).get(PAGE)
    assert response.status_code == 302 and "/staff/login" in response.headers["Location"]


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owners_and_admins_find_it_in_the_account_menu(world, staff_client, role):
    client = staff_client(role)
    menu = client.get("/staff/").get_data(as_text=True)
    assert f'href="{PAGE}"' in menu and "CRM settings" in menu
    body = client.get(PAGE).get_data(as_text=True)
    for section in ("Pipeline", "Custom fields", "Who sees which contacts", "Phone numbers"):
        assert f">{section}</h2>" in body and f">{section}</a>" in body  # heading and jump link


def test_staff_do_not_see_the_menu_link(world, staff_client):
    assert "CRM settings" not in staff_client("staff").get("/staff/").get_data(as_text=True)


# --- who sees which contacts -------------------------------------------------------------------------

def _checked_radio(page: str) -> list[str]:
    radios = re.findall(r'<input\b[^>]*name="staff_visibility"[^>]*>', page)
    checked = [re.search(r'value="([^"]+)"', r).group(1) for r in radios if " checked" in r]
    assert len(radios) == 2 and len(checked) == 1, radios
    return checked[0]


def test_visibility_setting_changes_what_staff_see(world, staff_client, app):
    sam = world.a.members["staff"].id

    def seed():
        circle = make_circle("North")
        assign_to_circle(circle, sam)
        make_contact("Owned", "ByStaff", owner_id=sam)
        in_circle = make_contact("Circle", "Member")
        add_to_circle(circle, contact=in_circle)
        return make_contact("Hidden", "Elsewhere", owner_id=world.a.members["owner"].id).id
    hidden_id = in_tenant(app, world.a, seed)

    staff, admin = staff_client("staff"), staff_client("admin")
    body = staff.get("/staff/contacts").get_data(as_text=True)
    assert all(name in body for name in ("Owned ByStaff", "Circle Member", "Hidden Elsewhere"))

    page = admin.get(PAGE).get_data(as_text=True)
    assert _checked_radio(page) == "all"
    assert "1 person at the moment" in page
    response = post_form(admin, f"{PAGE}/visibility", {"staff_visibility": "own_or_circles"}, follow_redirects=True)
    assert "Staff now see own contacts and their Circles&#39; contacts." in response.get_data(as_text=True)
    assert _checked_radio(response.get_data(as_text=True)) == "own_or_circles"
    assert _settings(app, world)[0] == CrmSettings.OWN_OR_CIRCLES

    body = staff.get("/staff/contacts").get_data(as_text=True)
    assert "Owned ByStaff" in body and "Circle Member" in body and "Hidden Elsewhere" not in body
    assert "2 contacts." in body
    assert staff.get(f"/staff/contacts/{hidden_id}").status_code == 404
    assert "Hidden Elsewhere" in admin.get("/staff/contacts").get_data(as_text=True)  # Admins see all

    post_form(admin, f"{PAGE}/visibility", {"staff_visibility": "all"})
    assert "Hidden Elsewhere" in staff.get("/staff/contacts").get_data(as_text=True)
    events = in_tenant(app, world.a, lambda: [(e.action, e.details) for e in db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "crm.staff_visibility_changed").order_by(AuditEvent.id))])
    assert events == [("crm.staff_visibility_changed", {"from": "all", "to": "own_or_circles"}),
                      ("crm.staff_visibility_changed", {"from": "own_or_circles", "to": "all"})]


def test_an_unknown_visibility_is_refused(world, staff_client, app):
    response = post_form(staff_client("admin"), f"{PAGE}/visibility", {"staff_visibility": "everyone-and-more"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and 'id="staff_visibility-error"' in body
    assert "Choose which contacts Staff see." in body
    assert _settings(app, world)[0] == CrmSettings.ALL_CONTACTS


# --- phone numbers -----------------------------------------------------------------------------------

def test_default_region_changes_how_a_local_number_is_read(world, staff_client, app):
    client = staff_client("owner")
    # In the US (the default), a London number without its country code is no number at all.
    response = post_form(client, "/staff/contacts/new", {**CONTACT, "phone": "020 7946 0958"})
    assert "is not a valid phone number" in response.get_data(as_text=True)

    page = client.get(PAGE).get_data(as_text=True)
    assert '<option selected value="US">' in page or '<option value="US" selected>' in page
    assert "United States" in page and "is saved as <strong>+1" in page
    response = post_form(client, f"{PAGE}/phone-region", {"default_region": "gb"}, follow_redirects=True)
    body = response.get_data(as_text=True)
    assert "Local phone numbers are now read as numbers of United Kingdom." in body
    assert "is saved as <strong>+44" in body
    assert _settings(app, world)[1] == "GB"

    post_form(client, "/staff/contacts/new", {**CONTACT, "phone": "020 7946 0958"})
    assert in_tenant(app, world.a, lambda: db.session.scalars(sa.select(Contact.phone)).one()) == "+442079460958"
    event = in_tenant(app, world.a, lambda: db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "crm.default_region_changed")).one())
    assert event.details == {"from": "US", "to": "GB"} and event.target_label == "CRM settings"


@pytest.mark.parametrize("code", ["", "ZZ", "United Kingdom", "001"])
def test_an_unknown_region_is_refused(world, staff_client, app, code):
    response = post_form(staff_client("admin"), f"{PAGE}/phone-region", {"default_region": code})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and 'id="default_region-error"' in body
    assert "Choose a country from the list." in body
    assert _settings(app, world)[1] == "US"


def test_the_audit_log_names_every_settings_change_in_plain_words(world, staff_client, app):
    client = staff_client("owner")
    post_form(client, f"{PAGE}/statuses", {"name": "Won"})
    post_form(client, f"{PAGE}/phone-region", {"default_region": "DE"})
    post_form(client, f"{PAGE}/fields/new", {"entity": "contact", "label": "Budget", "field_type": "number"})
    body = client.get("/staff/audit").get_data(as_text=True)
    for label in ("Pipeline status added", "Default phone region changed", "Custom field added"):
        assert label in body
    assert "Won" in body and "Budget (contact field)" in body and "CRM settings" in body


def test_nothing_to_change_says_so(world, staff_client, app):
    client = staff_client("admin")
    response = post_form(client, f"{PAGE}/phone-region", {"default_region": "US"}, follow_redirects=True)
    assert "Nothing to change." in response.get_data(as_text=True)
    assert in_tenant(app, world.a, lambda: db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
        AuditEvent.action.like("crm.%")))) == 0
