"""Finding contacts: search, filters, sorting, and paging that neither skips nor repeats."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from core.db import db
from tests.support import in_tenant
from tests.factories import add_to_circle, make_circle, make_company, make_contact, make_custom_field, make_tag

LINK = re.compile(r'href="/staff/contacts/(\d+)"')


def _ids(page_html: str) -> list[int]:
    return [int(i) for i in LINK.findall(page_html)]


@pytest.fixture
def people(app, world):
    def build():
        acme = make_company("Globodyne")
        vip = make_circle("VIP")
        hot = make_tag("hot")
        from crm.models import ContactTag
        made = {
            "ada": make_contact("Ada", "Lovelace", email="ada@example.com", role="client", company_id=acme.id,
                                phone="+442079460958", owner_id=world.a.members["staff"].id),
            "grace": make_contact("Grace", "Hopper", email="grace@navy.example", role="prospect"),
            "alan": make_contact("Alan", "Turing", email="alan@example.org", role="lead", is_active=False),
            "ágata": make_contact("Ágata", "Núñez", email="agata@example.es", role="lead"),
        }
        add_to_circle(vip, contact=made["grace"])
        db.session.add(ContactTag(contact_id=made["ada"].id, tag_id=hot.id))
        made["grace"].created_at = datetime(2024, 5, 1, tzinfo=timezone.utc)
        field = make_custom_field("Tier", "choice", choices=["Gold", "Silver"])
        made["ada"].custom_fields = {field.key: "Gold"}
        return {k: v.id for k, v in made.items()}, vip.id, hot.id
    return in_tenant(app, world.a, build)


@pytest.mark.parametrize("query, expected", [
    ("q=lovelace", ["ada"]), ("q=navy", ["grace"]), ("q=globodyne", ["ada"]), ("q=0958", ["ada"]), ("q=7946+0958", ["ada"]), ("q=4420", ["ada"]),
    ("q=2079", ["ada"]), ("q=9460", []),
    ("q=agata+nunez", ["ágata"]), ("q=NÚÑEZ", ["ágata"]), ("q=zzz", []), ("q=50%25", []),
    ("role=client&role=prospect", ["ada", "grace"]), ("active=no", ["alan"]), ("active=any&role=lead", ["alan", "ágata"]),
    ("created_to=2024-12-31", ["grace"]), ("cf_tier=gold", ["ada"]),
    # words are matched from their start, in any order; phone numbers by any run of digits
    ("q=love", ["ada"]), ("q=velace", []), ("q=hopper+grace", ["grace"]), ("q=ada@example.com", ["ada"]),
    ("q=%2B44+20+7946+0958", ["ada"]), ("q=020+7946+0958", ["ada"]), ("q=globo+ada", ["ada"]),
    ("q=example", ["ada", "grace", "ágata"]), ("q=example&active=any", ["ada", "grace", "alan", "ágata"]), ("q=ada+zzz", []),
])
def test_search_and_filters(world, staff_client, people, query, expected):
    ids, _, _ = people
    page = staff_client("owner").get(f"/staff/contacts?{query}").get_data(as_text=True)
    assert sorted(_ids(page)) == sorted(ids[name] for name in expected)
    assert f"{len(expected)} contact" in page


def test_circle_tag_and_owner_filters(world, staff_client, people):
    ids, vip, hot = people
    client = staff_client("owner")
    assert _ids(client.get(f"/staff/contacts?circle={vip}").get_data(as_text=True)) == [ids["grace"]]
    assert _ids(client.get(f"/staff/contacts?tag={hot}").get_data(as_text=True)) == [ids["ada"]]
    owned = _ids(client.get(f"/staff/contacts?owner={world.a.members['staff'].id}").get_data(as_text=True))
    assert owned == [ids["ada"]]


def test_sorting_by_name(world, staff_client, people):
    ids, _, _ = people
    page = staff_client("owner").get("/staff/contacts?sort=name&dir=asc").get_data(as_text=True)
    assert _ids(page) == [ids["grace"], ids["ada"], ids["ágata"]]  # Hopper, Lovelace, Núñez


def test_paging_visits_every_contact_once_in_any_sort(world, staff_client, app):
    def many():
        base = datetime(2025, 1, 1, tzinfo=timezone.utc)
        for i in range(123):
            contact = make_contact(f"P{i % 7}", f"Same{i % 3}")  # many equal sort keys: ties break by id
            contact.updated_at = base + timedelta(minutes=i % 10)
    in_tenant(app, world.a, many)
    client = staff_client("owner")
    for sort in ("name", "updated", "created", "activity", "email"):
        for direction in ("asc", "desc"):
            seen, url = [], f"/staff/contacts?sort={sort}&dir={direction}"
            while url:
                page = client.get(url).get_data(as_text=True)
                seen.extend(_ids(page))
                nxt = re.search(r'href="([^"]+)" rel="next"', page)
                url = nxt.group(1).replace("&amp;", "&") if nxt else None
            assert len(seen) == 123 and len(set(seen)) == 123, (sort, direction, len(seen), len(set(seen)))


def test_a_forged_cursor_is_ignored_not_an_error(world, staff_client, people):
    client = staff_client("owner")
    for cursor in ("garbage", "W1tbXV0=", "WyIxIiwgMV0"):
        assert client.get(f"/staff/contacts?after={cursor}").status_code == 200


def test_large_counts_are_capped_and_said_so(world, staff_client, people, monkeypatch):
    from crm import contact_list

    monkeypatch.setattr(contact_list, "LIST_COUNT_CAP", 2)
    page = staff_client("owner").get("/staff/contacts?active=any").get_data(as_text=True)
    assert "2+ contacts" in page and "Select all 2+ matching" in page


def test_rows_show_an_archived_status_and_a_former_members_name(app, world, staff_client):
    """The list names statuses and owners from its filter choices (active ones only): a
    contact whose status was archived, or whose owner left, still shows both."""
    from core.identity import StaffUser
    from crm.models import PipelineStatus

    def setup():
        old = PipelineStatus(name="Legacy stage", position=99)
        db.session.add(old)
        db.session.flush()
        sam = db.session.get(StaffUser, world.a.members["staff"].id)
        make_contact("Rita", "Retained", status_id=old.id, owner_id=sam.id)
        old.archived_at = datetime.now(timezone.utc)
        sam.active = False
        return []

    in_tenant(app, world.a, setup)
    page = staff_client("owner").get("/staff/contacts").get_data(as_text=True)
    row = re.search(r"<tr>(?:(?!</tr>).)*Rita Retained.*?</tr>", page, re.S).group(0)
    assert "Legacy stage" in row and world.a.members["staff"].name in row


def test_a_row_shows_the_company_role_status_and_owner(app, world, staff_client, people):
    """A row names its company (linked to the company's page), role, status and owner; a
    contact without company or owner leaves those cells empty."""
    import sqlalchemy as sa

    from crm.models import Company

    company_id = in_tenant(app, world.a, lambda: db.session.scalar(sa.select(Company.id).where(Company.name == "Globodyne")))
    page = staff_client("owner").get("/staff/contacts?sort=name&dir=asc").get_data(as_text=True)

    def cells(name: str) -> dict[str, str]:
        row = re.search(rf"<tr>(?:(?!</tr>).)*{name}.*?</tr>", page, re.S).group(0)
        return {label: text.strip() for label, text in re.findall(r'data-label="([^"]+)">(.*?)</td>', row, re.S)}

    ada, grace = cells("Ada Lovelace"), cells("Grace Hopper")
    assert ada["Company"] == f'<a href="/staff/companies/{company_id}">Globodyne</a>'
    assert ">Client<" in ada["Role"] and ada["Status"] == "New"
    assert ada["Owner"] == world.a.members["staff"].name
    assert grace["Company"] == "" and grace["Owner"] == "" and ">Prospect<" in grace["Role"]
