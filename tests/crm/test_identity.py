"""crm.identity: the one rule deciding which contact a person's details belong to, and the
import following it (issue 12: a different person sharing an office phone is neither skipped
nor written over)."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from core.db import db
from core.tenancy import tenant_context
from crm.contacts import archive_contact, update_contact
from crm.identity import contact_for, contacts_for, details
from crm.models import Contact, ContactAddress
from tests.crm.import_files import csv_bytes
from tests.factories import make_contact

MARIA = {"email": "maria@office.example", "phone": "+12125550199"}

# (case, the contacts there are, the details looked up, whom they belong to: a key of the
# contacts, or None for nobody known)
CASES = [
    ("same e-mail", {"maria": MARIA}, (["maria@office.example"], []), "maria"),
    ("same e-mail, another phone", {"maria": MARIA}, (["maria@office.example"], ["+12125550100"]), "maria"),
    ("e-mail vs other e-mail", {"maria": {"email": "maria@office.example", "extra_emails": ["m.lopez@home.example"]}},
     (["m.lopez@home.example"], []), "maria"),
    ("an e-mail match beats a phone match",
     {"maria": MARIA, "pedro": {"email": "pedro@office.example", "phone": "+12125550100"}},
     (["pedro@office.example"], ["+12125550199"]), "pedro"),
    ("main e-mail before another one's other e-mail",
     {"old": {"email": "old@x.example", "extra_emails": ["ann@x.example"]}, "ann": {"email": "ann@x.example"}},
     (["ann@x.example"], []), "ann"),
    ("same phone, different e-mails", {"maria": MARIA}, (["pedro@office.example"], ["+12125550199"]), None),
    ("same other phone, different e-mails",
     {"maria": {"email": "maria@office.example", "extra_phones": ["+12125550199"]}},
     (["pedro@office.example"], ["+12125550199"]), None),
    ("same phone, contact has only an other e-mail",
     {"maria": {"email": None, "extra_emails": ["maria@office.example"], "phone": "+12125550199"}},
     (["pedro@office.example"], ["+12125550199"]), None),
    ("phone only: the details have no e-mail", {"maria": MARIA}, ([], ["+12125550199"]), "maria"),
    ("phone only: the contact has no e-mail", {"maria": {"email": None, "phone": "+12125550199"}},
     (["pedro@office.example"], ["+12125550199"]), "maria"),
    ("other phone, no e-mail given", {"maria": {"email": "maria@office.example", "extra_phones": ["+12125550199"]}},
     ([], ["+12125550199"]), "maria"),
    ("shared phone without e-mails: the oldest",
     {"first": {"email": None, "phone": "+12125550199"}, "second": {"email": None, "phone": "+12125550199"}},
     ([], ["+12125550199"]), "first"),
    ("e-mail only, nobody has it", {"maria": MARIA}, (["someone@else.example"], []), None),
    ("e-mail only, matched", {"maria": MARIA}, (["maria@office.example"], []), "maria"),
    ("case and spacing of the e-mail", {"maria": MARIA}, (["  Maria@Office.EXAMPLE "], []), "maria"),
    ("spacing of the phone", {"maria": {"email": None, "phone": "+12125550199"}}, ([], ["(212) 555-0199"]), "maria"),
    ("phone with country code and dashes", {"maria": MARIA}, ([], ["+1 212-555-0199"]), "maria"),
    ("nothing given", {"maria": MARIA}, ([], []), None),
]


@pytest.mark.parametrize("case, contacts, given, expected", CASES, ids=[c[0] for c in CASES])
def test_the_identity_rule(app, world, case, contacts, given, expected):
    with app.app_context(), tenant_context(world.a.id):
        made = {key: make_contact(key.capitalize(), "Case", **fields) for key, fields in contacts.items()}
        db.session.commit()
        emails, phones = given
        found = contact_for(emails, phones, region="US")
        assert (found.id if found else None) == (made[expected].id if expected else None), case


def test_live_before_inactive_and_nobody_in_history_or_merged_away(app, world):
    with app.app_context(), tenant_context(world.a.id):
        inactive = make_contact("Dup", "Ann", email="ann@x.example", is_active=False)
        live = make_contact("Live", "Ann", email="ann@x.example")
        gone = make_contact("Gone", "Bob", email="bob@x.example")
        db.session.commit()
        assert contact_for(["ann@x.example"]).id == live.id
        archive_contact(live, actor=None)
        archive_contact(gone, actor=None)
        db.session.commit()
        assert contact_for(["ann@x.example"]).id == inactive.id
        assert contact_for(["bob@x.example"]) is None


def test_a_batch_is_decided_in_one_query(app, world):
    with app.app_context(), tenant_context(world.a.id):
        maria = make_contact("Maria", "Lopez", **MARIA)
        db.session.commit()
        statements = []
        engine = db.engine
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        sa.event.listen(engine, "before_cursor_execute", listener)
        try:
            found = contacts_for([details(["maria@office.example"]), details(["pedro@office.example"], ["+12125550199"]),
                                  details([], ["+12125550199"])])
        finally:
            sa.event.remove(engine, "before_cursor_execute", listener)
        assert [c.id if c else None for c in found] == [maria.id, None, maria.id]
        assert len([s for s in statements if "contact_address" in s]) == 1


def test_addresses_follow_the_contact(app, world):
    with app.app_context(), tenant_context(world.a.id):
        maria = make_contact("Maria", "Lopez", **MARIA)
        db.session.commit()

        def held():
            return set(db.session.scalars(sa.select(ContactAddress.address)
                                          .where(ContactAddress.contact_id == maria.id)))

        assert held() == {"maria@office.example", "+12125550199"}
        update_contact(maria, {"email": "Maria.Lopez@Office.example", "extra_emails": ["m@home.example"],
                               "extra_phones": ["+1 212 555 0100"]}, actor=None)
        db.session.commit()
        assert held() == {"maria.lopez@office.example", "m@home.example", "+12125550199", "+12125550100"}
        assert contact_for(["maria@office.example"]) is None
        assert contact_for(["M@HOME.example"]).id == maria.id


# --- the import: Maria and Pedro of issue 12 --------------------------------------------------------

def _pedro_file(tmp_path):
    source = tmp_path / "pedro.csv"
    source.write_bytes(csv_bytes([["First Name", "Last Name", "Email", "Phone"],
                                  ["Pedro", "Ruiz", "pedro@office.example", "+1 212 555 0199"]]))
    return source


@pytest.mark.parametrize("mode", ["skip", "overwrite", "fill"])
def test_import_creates_pedro_and_leaves_maria_intact(app, world, tmp_path, mode):
    with app.app_context(), tenant_context(world.a.id):
        make_contact("Maria", "Lopez", email="maria@office.example", phone="+12125550199")
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["contacts", "import", str(_pedro_file(tmp_path)), "--tenant", "acme",
                                                "--on-duplicate", mode])
    assert result.exit_code == 0, result.output
    assert "Created: 1\nUpdated: 0\nSkipped: 0\n" in result.output
    with app.app_context(), tenant_context(world.a.id):
        people = {c.email: c for c in db.session.scalars(sa.select(Contact))}
        assert set(people) == {"maria@office.example", "pedro@office.example"}
        maria, pedro = people["maria@office.example"], people["pedro@office.example"]
        assert (maria.first_name, maria.last_name, maria.phone, maria.extra_emails) == (
            "Maria", "Lopez", "+12125550199", [])
        assert (pedro.first_name, pedro.last_name, pedro.phone) == ("Pedro", "Ruiz", "+12125550199")
        # Pedro is found by his own address from now on, and Maria still by hers.
        assert contact_for(["pedro@office.example"]).id == pedro.id
        assert contact_for(["maria@office.example"]).id == maria.id


def test_import_still_matches_a_phone_when_the_row_has_no_email(app, world, tmp_path):
    with app.app_context(), tenant_context(world.a.id):
        make_contact("Maria", "Lopez", email="maria@office.example", phone="+12125550199", city=None)
        db.session.commit()
    source = tmp_path / "maria.csv"
    source.write_bytes(csv_bytes([["First Name", "Phone", "City"], ["Maria", "(212) 555-0199", "New York"]]))
    result = app.test_cli_runner().invoke(args=["contacts", "import", str(source), "--tenant", "acme",
                                                "--on-duplicate", "fill"])
    assert result.exit_code == 0, result.output
    assert "Created: 0\nUpdated: 1\n" in result.output
    with app.app_context(), tenant_context(world.a.id):
        maria = db.session.scalars(sa.select(Contact)).one()
        assert (maria.email, maria.city) == ("maria@office.example", "New York")


def test_import_of_many_people_sharing_a_phone_skips_nobody(app, world, tmp_path):
    with app.app_context(), tenant_context(world.a.id):
        for n in range(5):
            make_contact(f"Old{n}", "Office", email=f"old{n}@office.example", phone="+12125550199")
        db.session.commit()
    rows = [["First Name", "Email", "Phone"]] + [[f"New{n}", f"new{n}@office.example", "+12125550199"]
                                                 for n in range(20)]
    source = tmp_path / "office.csv"
    source.write_bytes(csv_bytes(rows))
    result = app.test_cli_runner().invoke(args=["contacts", "import", str(source), "--tenant", "acme"])
    assert result.exit_code == 0, result.output
    assert "Created: 20\nUpdated: 0\nSkipped: 0\n" in result.output
    with app.app_context(), tenant_context(world.a.id):
        assert db.session.scalar(sa.select(sa.func.count(Contact.id))) == 25
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ContactAddress)
                                 .where(ContactAddress.address == "+12125550199")) == 25
