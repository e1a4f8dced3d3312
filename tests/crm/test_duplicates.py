"""Possible duplicates: contacts sharing a normalised e-mail, a phone, or a name at the same
company, grouped in SQL, paged, within the tenant and what the staff member may see."""
from __future__ import annotations

import re

import pytest

import sqlalchemy as sa

from core.db import db, utcnow
from core.identity import StaffUser
from core.tenancy import tenant_context
from crm.duplicates import duplicate_groups
from crm.models import Contact
from tests.factories import add_to_circle, assign_to_circle, make_circle, make_company, make_contact, \
    restrict_staff_visibility
from tests.test_query_counts import counted_queries


def _in(app, tenant_id, fn):
    with app.app_context(), tenant_context(tenant_id):
        result = fn()
        db.session.commit()
        return result


def _groups(app, world, role="owner", tenant="a", **kwargs):
    """[(reason, key, [contact names])] as `role` of the tenant sees them."""
    t = getattr(world, tenant)

    def read():
        staff = db.session.get(StaffUser, t.members[role].id)
        return [(g.reason, g.key, [c.full_name for c in g.contacts], g.size)
                for g in duplicate_groups(staff, **kwargs)]

    with app.app_context(), tenant_context(t.id):
        return read()


def _seed_pairs(world, app):
    """Tenant A: one pair by e-mail, one by phone, one by name at the same company, and
    contacts that must not be grouped. Tenant B: the same e-mail and phone again."""
    def a():
        # E-mail: live contacts never share one (unique index), so a pair has an inactive one.
        make_contact("Ada", "Active", email="ada@example.com")
        make_contact("Ada", "Inactive", email="ada@example.com", is_active=False)
        make_contact("Ada", "Archived", email="ada@example.com", is_active=False, archived_at=utcnow())
        make_contact("Old", "Twice", email="twice@example.com", is_active=False)  # two inactive ones
        make_contact("Older", "Twice", email="twice@example.com", is_active=False)
        make_contact("Only", "Once", email="once@example.com", is_active=False)
        # Phone: E.164 strings, stored normalised.
        make_contact("Phil", "One", phone="+14155550123", email=None)
        make_contact("Phil", "Two", phone="+14155550123", email="phil2@example.com")
        make_contact("Lone", "Phone", phone="+14155550999", email=None)
        # Name (any case) at the same company.
        acme = make_company("ACME, Inc.")
        make_contact("Grace", "Hopper", company_id=acme.id)
        make_contact("GRACE", "hopper", company_id=acme.id)
        make_contact("Grace", "Hopper")  # no company: not "at the same company"
        other = make_company("Initech")
        make_contact("Grace", "Hopper", company_id=other.id)
        # Merged away: never part of a group.
        survivor = make_contact("Phil", "Three", email=None)
        make_contact("Phil", "Merged", phone="+14155550123", email=None, merged_into_id=survivor.id)

    def b():
        make_contact("CANARY-B", "Ada", email="ada@example.com", is_active=False)
        make_contact("CANARY-B", "Phil", phone="+14155550123", email=None)
        make_contact("CANARY-B", "Lone", phone="+14155550999", email=None)

    _in(app, world.a.id, a)
    _in(app, world.b.id, b)


def test_groups_by_email_phone_and_name_at_company_within_the_tenant(world, app):
    _seed_pairs(world, app)
    groups = _groups(app, world)
    assert [(reason, names, size) for reason, _, names, size in groups] == [
        ("Same e-mail", ["Ada Active", "Ada Inactive"], 2),
        ("Same e-mail", ["Old Twice", "Older Twice"], 2),
        ("Same phone", ["Phil One", "Phil Two"], 2),
        ("Same name at the same company", ["Grace Hopper", "GRACE hopper"], 2),
    ]
    assert groups[0][1] == ("ada@example.com",) and groups[2][1] == ("+14155550123",)
    assert groups[3][1][1:] == ("hopper", "grace")  # (company id, last name, first name)
    # B holds the same e-mail and phone: they join none of A's groups.
    assert all("CANARY-B" not in " ".join(names) for _, _, names, _ in groups)


def test_b_has_no_groups_from_a_single_copy(world, app):
    _seed_pairs(world, app)
    assert _groups(app, world, tenant="b") == []  # each of B's values occurs once in B


def test_groups_page_by_keyset_without_gaps_or_repeats(world, app):
    def seed():
        for i in range(7):
            make_contact("Twin", f"Phone{i}", phone=f"+1415555{1000 + i}", email=None)
            make_contact("Twin", f"PhoneB{i}", phone=f"+1415555{1000 + i}", email=None)
        for i in range(3):
            make_contact("Mail", f"Live{i}", email=f"m{i}@example.com")
            make_contact("Mail", f"Gone{i}", email=f"m{i}@example.com", is_active=False)
    _in(app, world.a.id, seed)
    owner_id = world.a.members["owner"].id
    seen, after = [], None
    with app.app_context(), tenant_context(world.a.id):
        staff = db.session.get(StaffUser, owner_id)
        for _ in range(10):
            page = duplicate_groups(staff, limit=4, after=after)
            seen += [(g.kind, g.key) for g in page]
            if len(page) < 4:
                break
            after = page[-1].cursor
        everything = [(g.kind, g.key) for g in duplicate_groups(staff)]
        assert duplicate_groups(staff, after="not a cursor") != []  # a bad cursor starts over
    assert seen == everything and len(everything) == 10 and len(set(seen)) == 10
    assert [k for k, _ in everything] == ["email"] * 3 + ["phone"] * 7


def test_only_contacts_the_staff_member_may_see_are_grouped(world, app):
    staff_id = world.a.members["staff"].id

    def seed():
        restrict_staff_visibility()
        make_contact("Mine", "A", phone="+14155550100", email=None, owner_id=staff_id)
        make_contact("Mine", "B", phone="+14155550100", email=None, owner_id=staff_id)
        make_contact("Mine", "C", phone="+14155550200", email=None, owner_id=staff_id)
        make_contact("Hidden", "C", phone="+14155550200", email=None)  # a pair only the owner sees
        circle = make_circle("North")
        assign_to_circle(circle, staff_id)
        add_to_circle(circle, contact=make_contact("Circle", "D", phone="+14155550300", email=None))
        make_contact("Mine", "D", phone="+14155550300", email=None, owner_id=staff_id)
    _in(app, world.a.id, seed)
    assert [names for _, _, names, _ in _groups(app, world, role="staff")] == [
        ["Mine A", "Mine B"], ["Circle D", "Mine D"]]
    assert len(_groups(app, world, role="owner")) == 3
    with app.app_context(), tenant_context(world.a.id):  # an e-mail pair whose active holder is hidden
        make_contact("Hidden", "Active", email="pair@example.com")
        make_contact("Mine", "Inactive", email="pair@example.com", is_active=False, owner_id=staff_id)
        db.session.commit()
    assert [names for _, _, names, _ in _groups(app, world, role="staff")] == [
        ["Mine A", "Mine B"], ["Circle D", "Mine D"]]
    assert _groups(app, world, role="owner")[0][2] == ["Hidden Active", "Mine Inactive"]


def test_groups_of_one_contact(world, app):
    _seed_pairs(world, app)
    with app.app_context(), tenant_context(world.a.id):
        staff = db.session.get(StaffUser, world.a.members["owner"].id)
        phil = db.session.scalars(sa.select(Contact).filter_by(last_name="Two")).one()
        grace = db.session.scalars(sa.select(Contact).filter_by(first_name="GRACE")).one()
        lone = db.session.scalars(sa.select(Contact).filter_by(last_name="Phone")).one()
        assert [(g.kind, [c.last_name for c in g.contacts]) for g in duplicate_groups(staff, contact=phil)] == [
            ("phone", ["One", "Two"])]
        assert [g.kind for g in duplicate_groups(staff, contact=grace)] == ["name"]
        assert duplicate_groups(staff, contact=lone) == []


def test_big_groups_show_their_first_ten_and_their_size(world, app):
    _in(app, world.a.id, lambda: [make_contact("Switch", f"Board{i}", phone="+14155550111", email=None)
                                  for i in range(13)])
    [(reason, _, names, size)] = _groups(app, world)
    assert size == 13 and len(names) == 10 and names[0] == "Switch Board0"


# --- the page ---------------------------------------------------------------------------------------

def test_duplicates_page_lists_groups_with_merge_links(world, app, staff_client):
    _seed_pairs(world, app)
    client = staff_client("admin")
    page = client.get("/staff/duplicates")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Same e-mail" in body and "Same phone" in body and "Same name at the same company" in body
    assert "ada@example.com" in body and "+1 415-555-0123" in body and "Grace Hopper at ACME, Inc." in body
    assert "CANARY-B" not in body and "Ada Archived" not in body and "Phil Merged" not in body
    links = re.findall(r'href="(/staff/contacts/merge\?[^"]+)"', body)
    assert len(links) == 4 and all(link.count("ids=") == 2 for link in links)
    merge = client.get(links[0].replace("&amp;", "&"))
    assert merge.status_code == 200 and "Ada Active" in merge.get_data(as_text=True)


def test_duplicates_page_pages_and_filters_to_a_contact(world, app, staff_client):
    def seed():
        for i in range(27):
            make_contact("Twin", f"A{i:02}", phone=f"+1415555{2000 + i}", email=None)
            make_contact("Twin", f"B{i:02}", phone=f"+1415555{2000 + i}", email=None)
        return db.session.scalars(sa.select(Contact.id).filter_by(last_name="B26")).one()
    last = _in(app, world.a.id, seed)
    client = staff_client("owner")
    first = client.get("/staff/duplicates").get_data(as_text=True)
    assert first.count("Same phone") == 25 and "Twin A24" in first and "Twin A25" not in first
    next_link = re.search(r'href="(/staff/duplicates\?after=[^"]+)" rel="next"', first).group(1)
    second = client.get(next_link.replace("&amp;", "&")).get_data(as_text=True)
    assert second.count("Same phone") == 2 and "Twin A25" in second and "Twin A24" not in second
    assert 'rel="next"' not in second and "First page" in second
    only = client.get(f"/staff/duplicates?contact={last}").get_data(as_text=True)
    assert only.count("Same phone") == 1 and "Twin A26" in only and "Show every group" in only


def test_duplicates_page_runs_a_fixed_number_of_queries(world, app, staff_client):
    client = staff_client("owner")
    _in(app, world.a.id, lambda: [make_contact("Pair", f"{i}", phone="+14155550123", email=None) for i in range(2)])
    client.get("/staff/duplicates")
    with counted_queries(app) as few:
        client.get("/staff/duplicates")

    def more():
        company = make_company("Globodyne")
        for i in range(10):
            make_contact("Pair", f"Mail{i}", email=f"pair{i}@example.com", owner_id=world.a.members["admin"].id)
            make_contact("Pair", f"MailGone{i}", email=f"pair{i}@example.com", is_active=False, company_id=company.id)
            make_contact("Same", f"Name{i}", company_id=company.id, email=None)
            make_contact("Same", f"Name{i}", company_id=company.id, email=None)
    _in(app, world.a.id, more)
    with counted_queries(app) as many:
        body = client.get("/staff/duplicates").get_data(as_text=True)
    assert body.count("Same e-mail") == 10 and body.count("Same name at the same company") == 10
    assert len(many) <= len(few) + 8, f"{len(few)} queries with one group, {len(many)} with 21"


def test_only_owners_and_admins_see_duplicates(world, app, staff_client):
    _seed_pairs(world, app)
    contact_id = _in(app, world.a.id, lambda: db.session.scalars(sa.select(Contact.id).filter_by(last_name="One")).one())
    staff = staff_client("staff")
    assert staff.get("/staff/duplicates").status_code == 403
    assert "Possible duplicates" not in staff.get("/staff/contacts").get_data(as_text=True)
    assert "Merge with" not in staff.get(f"/staff/contacts/{contact_id}").get_data(as_text=True)
    owner = staff_client("owner")
    assert 'href="/staff/duplicates"' in owner.get("/staff/contacts").get_data(as_text=True)
    assert f'href="/staff/contacts/merge?ids={contact_id}"' in owner.get(f"/staff/contacts/{contact_id}").get_data(
        as_text=True)
    b_contact = _in(app, world.b.id, lambda: db.session.scalars(sa.select(Contact.id)).first())
    assert owner.get(f"/staff/duplicates?contact={b_contact}").status_code == 404


# --- which pairs are duplicates: the identity rule, through every address a contact answers to ---

P, Q = "+14155550177", "+14155550188"
PAIRS = {  # two contacts -> the reasons the page groups them under
    "same main e-mail, one inactive": (dict(email="ann@example.com"), dict(email="ann@example.com", is_active=False),
                                       ["Same e-mail"]),
    "one's main e-mail is the other's other e-mail": (dict(email="ann@example.com"),
                                                      dict(email="ann.work@example.com",
                                                           extra_emails=["ann@example.com"]), ["Same e-mail"]),
    "the same other e-mail": (dict(email="a1@example.com", extra_emails=["ann@example.com"]),
                              dict(email="a2@example.com", extra_emails=["ann@example.com"]), ["Same e-mail"]),
    "same phone, one has no e-mail": (dict(email="ann@example.com", phone=P), dict(email=None, phone=P),
                                      ["Same phone"]),
    "same phone, neither has an e-mail": (dict(email=None, phone=P), dict(email=None, phone=P), ["Same phone"]),
    "one's phone is the other's other phone": (dict(email=None, phone=P), dict(email=None, phone=Q, extra_phones=[P]),
                                               ["Same phone"]),
    "same phone and e-mail": (dict(email="ann@example.com", phone=P),
                              dict(email="ann@example.com", phone=P, is_active=False), ["Same e-mail", "Same phone"]),
    "same phone, different e-mails": (dict(email="ann@example.com", phone=P), dict(email="bob@example.com", phone=P),
                                      ["Same phone, different e-mails"]),
    "same phone, one with other e-mails only": (dict(email="ann@example.com", phone=P),
                                                dict(email=None, extra_emails=["bob@example.com"], phone=P),
                                                ["Same phone, different e-mails"]),
    "nothing shared": (dict(email="ann@example.com", phone=P), dict(email="bob@example.com", phone=Q), []),
    "the other merged away": (dict(email="ann@example.com", phone=P),
                              dict(email="ann@example.com", phone=P, is_active=False, merged_into_id="first"), []),
    "the other in history": (dict(email="ann@example.com", phone=P),
                             dict(email="ann@example.com", phone=P, is_active=False, archived_at="now"), []),
}


@pytest.mark.parametrize("case", PAIRS)
def test_which_pairs_are_possible_duplicates(case, world, app):
    first, second, reasons = PAIRS[case]

    def seed():
        ann = make_contact("Ann", "First", **first)
        fields = dict(second)
        if fields.get("merged_into_id") == "first":
            fields["merged_into_id"] = ann.id
        if fields.get("archived_at") == "now":
            fields["archived_at"] = utcnow()
        make_contact("Ann", "Second", **fields)
    _in(app, world.a.id, seed)
    groups = _groups(app, world)
    assert [reason for reason, *_ in groups] == reasons
    assert all(names == ["Ann First", "Ann Second"] and size == 2 for _, _, names, size in groups)


def test_a_phone_shared_by_different_e_mails_comes_last_and_a_contacts_own_groups_follow_its_addresses(world, app):
    def seed():
        office = make_company("Office Co")
        make_contact("Maria", "Lopez", email="maria@office.example", phone=P, company_id=office.id)
        make_contact("Pedro", "Ruiz", email="pedro@office.example", phone=P, company_id=office.id)
        make_contact("Ana", "Diaz", company_id=office.id, email="ana@office.example")
        make_contact("ana", "diaz", company_id=office.id, email=None, extra_emails=["ana.d@home.example"])
        make_contact("Maria", "Home", email=None, extra_emails=["maria@office.example"], phone=Q)
        make_contact("Maria", "Mobile", email=None, phone=Q)
        for address in ("+odd@example.com", "!bang@example.com"):  # e-mails that sort among or before phones
            make_contact("Odd", "One", email=address)
            make_contact("Odd", "Two", email=None, extra_emails=[address])
    _in(app, world.a.id, seed)
    assert [(reason, key[-1], names) for reason, key, names, _ in _groups(app, world)] == [
        ("Same e-mail", "maria@office.example", ["Maria Lopez", "Maria Home"]),
        ("Same e-mail", "!bang@example.com", ["Odd One", "Odd Two"]),
        ("Same e-mail", "+odd@example.com", ["Odd One", "Odd Two"]),
        ("Same phone", Q, ["Maria Home", "Maria Mobile"]),
        ("Same name at the same company", "ana", ["Ana Diaz", "ana diaz"]),
        ("Same phone, different e-mails", P, ["Maria Lopez", "Pedro Ruiz"]),
    ]
    with app.app_context(), tenant_context(world.a.id):
        staff = db.session.get(StaffUser, world.a.members["owner"].id)
        home = db.session.scalars(sa.select(Contact).filter_by(last_name="Home")).one()
        assert [(g.kind, g.key) for g in duplicate_groups(staff, contact=home)] == [
            ("email", ("maria@office.example",)), ("phone", (Q,))]
        pages, after = [], None
        while True:  # one group a page: the cursor walks across the reasons in their order
            page = duplicate_groups(staff, limit=1, after=after)
            if not page:
                break
            pages.append(page[0].kind)
            after = page[0].cursor
        assert pages == ["email", "email", "email", "phone", "name", "phone_other"]


def test_a_hidden_contact_sharing_an_other_e_mail_or_phone_makes_no_group(world, app, staff_client):
    staff_id = world.a.members["staff"].id

    def seed():
        restrict_staff_visibility()
        make_contact("Mine", "One", email="mine@example.com", phone=P, owner_id=staff_id)
        make_contact("Zelda", "Hiddenname", email="z@example.com", extra_emails=["mine@example.com"])
        make_contact("Zelda", "Hiddenphone", email=None, extra_phones=[P])
        make_contact("Mine", "Two", email=None, extra_phones=[Q], owner_id=staff_id)
        make_contact("Mine", "Three", email=None, phone=Q, owner_id=staff_id)
    _in(app, world.a.id, seed)
    assert [(reason, names) for reason, _, names, _ in _groups(app, world, role="staff")] == [
        ("Same phone", ["Mine Two", "Mine Three"])]
    assert [reason for reason, *_ in _groups(app, world)] == ["Same e-mail", "Same phone", "Same phone"]
    with app.app_context(), tenant_context(world.a.id):
        from core.roles import update_role_permissions
        from core.permissions import role_permissions

        owner = db.session.get(StaffUser, world.a.members["owner"].id)
        update_role_permissions(owner, {"staff": set(role_permissions(world.a.id)["staff"]) | {"contacts.merge"}})
        db.session.commit()
    page = staff_client("staff").get("/staff/duplicates").get_data(as_text=True)
    assert "Mine Two" in page and "Mine Three" in page and "Hiddenname" not in page and "Hiddenphone" not in page
