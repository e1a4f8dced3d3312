"""Merging contacts: the chosen values survive, everything of the others moves to the survivor,
the old ids lead to it, it is audited, and a merge either happens whole or not at all."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from core.audit import AuditEvent
from core.db import db, utcnow
from core.errors import ServiceError
from core.identity import StaffUser
from core.tenancy import tenant_context
from crm import merge as merge_module
from crm.merge import MERGE_HOOKS, merge_contacts
from crm.search import contact_matches
from crm.models import (CircleMember, Contact, ContactTag, EventAttendee, Note, PipelineStatus, SelectedContact, Task,
                        TimelineEntry)
from tests.factories import (add_attendee, add_to_circle, make_circle, make_company, make_contact, make_custom_field,
                             make_event, make_note, make_tag, make_task, make_timeline_entry, restrict_staff_visibility,
                             tag_record)
from tests.support import in_tenant, post_form




def _staff(world, role="owner", tenant="a"):
    return db.session.get(StaffUser, getattr(world, tenant).members[role].id)


def _get(model, ident):
    return db.session.get(model, ident)


def _state(app, tenant_id):
    """Every CRM row of the tenant that a merge could touch, comparable before and after, and
    the merge audit events (sign-ins add audit events of their own)."""
    with app.app_context(), tenant_context(tenant_id):
        out = {}
        for model in (Contact, Note, Task, TimelineEntry, EventAttendee, CircleMember, ContactTag, SelectedContact):
            rows = db.session.scalars(sa.select(model).order_by(model.id)).all()
            out[model.__tablename__] = [{c.name: getattr(r, c.key) for c in model.__table__.columns} for r in rows]
        out["merged"] = db.session.scalars(sa.select(AuditEvent.id).where(AuditEvent.action == "contact.merged")).all()
        return out


@pytest.fixture
def dupes(app, world):
    """Survivor Ada and two duplicates with something of everything, in tenant A."""
    def seed():
        statuses = {s.name: s.id for s in db.session.scalars(sa.select(PipelineStatus))}
        make_custom_field("Shoe size", "number")
        make_custom_field("Team", "text")
        acme = make_company("Acme")
        initech = make_company("Initech")
        ada = make_contact("Ada", "Lovelace", email="ada@example.com", phone="+14155550100", role="lead",
                           extra_emails=["ada@old.example"], notes="Met at the fair.",
                           social={"linkedin": "https://linkedin.example/ada"}, street="1 Main St", city="London",
                           custom_fields={"shoe_size": 38, "team": ""}, company_id=initech.id,
                           owner_id=world.a.members["staff"].id, status_id=statuses["New"])
        dup = make_contact("Augusta Ada", "King", email="countess@example.com", phone="+14155550101",
                           role="client", job_title="Countess", company_id=acme.id, is_primary_contact=True,
                           notes="Prefers e-mail.", social={"twitter": "https://x.example/ada",
                                                            "linkedin": "https://linkedin.example/other"},
                           custom_fields={"team": "Engines"}, extra_phones=["+14155550102"],
                           status_id=statuses["Qualified"], owner_id=world.a.members["admin"].id,
                           city="Paris", country="FR")
        third = make_contact("A.", "Lovelace", email="ada@example.com", is_active=False, role="prospect",
                             notes="Met at the fair.")
        earlier = make_contact("Very", "Old", email=None, merged_into_id=third.id)
        for who in (ada, dup, third):
            make_note(who, f"note of {who.first_name}")
            make_task(f"task of {who.first_name}", contact_id=who.id)
            make_timeline_entry(who, f"entry of {who.first_name}")
        both = make_event("Open day")
        add_attendee(both, ada, status="invited")
        add_attendee(both, dup, status="accepted")
        only_dup = make_event("Gala")
        add_attendee(only_dup, dup, status="attended")
        shared, own = make_circle("VIP"), make_circle("Engines")
        add_to_circle(shared, contact=ada)
        add_to_circle(shared, contact=dup)
        add_to_circle(own, contact=third)
        past = add_to_circle(make_circle("Old circle"), contact=dup)
        past.removed_at = utcnow() - timedelta(days=3)
        hot, cold = make_tag("hot"), make_tag("cold")
        tag_record(hot, contact=ada)
        tag_record(hot, contact=dup)
        tag_record(cold, contact=third)
        db.session.add(SelectedContact(staff_id=world.a.members["owner"].id, contact_id=dup.id))
        db.session.add(SelectedContact(staff_id=world.a.members["owner"].id, contact_id=third.id))
        db.session.add(SelectedContact(staff_id=world.a.members["admin"].id, contact_id=ada.id))
        db.session.add(SelectedContact(staff_id=world.a.members["admin"].id, contact_id=third.id))
        return {"ada": ada.id, "dup": dup.id, "third": third.id, "earlier": earlier.id, "acme": acme.id,
                "initech": initech.id, "both": both.id, "gala": only_dup.id, "shared": shared.id, "own": own.id,
                "hot": hot.id, "cold": cold.id, "statuses": statuses}
    return in_tenant(app, world.a, seed)


def test_choices_are_respected_and_everything_moves(app, world, dupes):
    d = dupes

    def run():
        ada, dup, third = (_get(Contact, d[k]) for k in ("ada", "dup", "third"))
        merge_contacts(ada, [dup, third], {"first_name": dup.id, "email": dup.id, "address": dup.id,
                                           "company_id": dup.id, "status_id": dup.id, "custom:team": dup.id},
                       actor=_staff(world))
    in_tenant(app, world.a, run)

    with app.app_context(), tenant_context(world.a.id):
        ada = _get(Contact, d["ada"])
        # chosen
        assert ada.first_name == "Augusta Ada" and ada.email == "countess@example.com"
        assert (ada.street, ada.city, ada.country) == (None, "Paris", "FR")  # the address goes as a whole
        assert ada.company_id == d["acme"] and ada.status_id == d["statuses"]["Qualified"]
        # defaults: the survivor's value, else the first non-empty; the role furthest along
        assert ada.last_name == "Lovelace" and ada.phone == "+14155550100" and ada.job_title == "Countess"
        assert ada.role == "client" and ada.owner_id == world.a.members["staff"].id and ada.is_active
        assert ada.custom_fields == {"shoe_size": 38, "team": "Engines"}
        # combined
        assert ada.extra_emails == ["ada@example.com", "ada@old.example"]
        assert ada.extra_phones == ["+14155550101", "+14155550102"]
        assert ada.notes == "Met at the fair.\n\nPrefers e-mail."
        assert ada.social == {"linkedin": "https://linkedin.example/ada", "twitter": "https://x.example/ada"}
        # the survivor is now at Acme, where the duplicate was the primary contact
        assert ada.is_primary_contact
        def found_by(text):
            return set(db.session.scalars(sa.select(Contact.id).where(*contact_matches(text))))
        assert ada.id in found_by("countess@example.com") and ada.id in found_by("augusta")

        # the merged contacts stay, pointing at the survivor, inactive, without an e-mail
        for key in ("dup", "third"):
            gone = _get(Contact, d[key])
            assert gone.merged_into_id == ada.id and not gone.is_active and gone.email is None
            assert not gone.is_primary_contact
        assert _get(Contact, d["earlier"]).merged_into_id == ada.id  # merged into `third` before: no chains

        # their records moved
        for model in (Note, Task):
            assert db.session.scalar(sa.select(sa.func.count()).select_from(model).where(
                model.contact_id != ada.id)) == 0
            assert db.session.scalar(sa.select(sa.func.count()).select_from(model)) == 3
        summaries = db.session.scalars(sa.select(TimelineEntry.summary).where(TimelineEntry.contact_id == ada.id)
                                       .order_by(TimelineEntry.id)).all()
        assert {"entry of Ada", "entry of Augusta Ada", "entry of A."} <= set(summaries)
        assert summaries[-1] == "Merged with Augusta Ada King, A. Lovelace"
        assert db.session.scalar(sa.select(sa.func.count()).select_from(TimelineEntry).where(
            TimelineEntry.contact_id != ada.id)) == 0
        # one attendee row per event, the furthest status kept
        attendance = db.session.execute(sa.select(EventAttendee.event_id, EventAttendee.contact_id,
                                                  EventAttendee.status).order_by(EventAttendee.event_id)).all()
        assert attendance == [(d["both"], ada.id, "accepted"), (d["gala"], ada.id, "attended")]
        # circles: every row moves; the duplicate current one is closed, one stays current
        rows = db.session.scalars(sa.select(CircleMember).order_by(CircleMember.id)).all()
        assert {r.contact_id for r in rows} == {ada.id}
        current = sorted(r.circle_id for r in rows if r.removed_at is None)
        assert current == sorted([d["shared"], d["own"]])
        closed_shared = [r for r in rows if r.circle_id == d["shared"] and r.removed_at is not None]
        assert len(closed_shared) == 1 and closed_shared[0].removed_by_id == world.a.members["owner"].id
        # tags: the union, once each
        assert sorted(db.session.scalars(sa.select(ContactTag.tag_id))) == sorted([d["hot"], d["cold"]])
        assert set(db.session.scalars(sa.select(ContactTag.contact_id))) == {ada.id}
        # selections follow the survivor, once per staff member
        assert sorted(db.session.execute(sa.select(SelectedContact.staff_id, SelectedContact.contact_id))) == sorted(
            [(world.a.members["owner"].id, ada.id), (world.a.members["admin"].id, ada.id)])
        # audited once, with what was chosen
        [event] = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "contact.merged")).all()
        assert event.target_id == ada.id and event.actor_id == world.a.members["owner"].id
        assert event.details["merged_ids"] == [d["dup"], d["third"]]
        assert event.details["choices"]["email"] == d["dup"] and event.details["choices"]["role"] == d["dup"]
        assert event.details["choices"]["last_name"] == d["ada"]


def test_merge_through_the_pages_and_the_old_ids_lead_to_the_survivor(app, world, dupes, staff_client):
    d = dupes
    client = staff_client("admin")
    page = client.get(f"/staff/contacts/merge?ids={d['dup']}&ids={d['ada']}")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    # The survivor by default: the live one added first; each field's default is its value.
    assert re.search(rf'name="survivor" value="{d["ada"]}" checked', body)
    assert re.search(rf'name="choice-email" value="{d["ada"]}" checked', body)
    assert re.search(rf'name="choice-role" value="{d["dup"]}" checked', body)  # Client beats Lead
    assert "Augusta Ada King" in body and "Countess" in body and "2 notes" not in body and "1 note" in body

    response = post_form(client, "/staff/contacts/merge", {
        "ids": [d["dup"], d["ada"]], "survivor": d["dup"], "choice-first_name": d["ada"], "choice-email": d["ada"],
        "choice-role": d["ada"]})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/staff/contacts/{d['dup']}")
    landing = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Merged Ada Lovelace into Ada King." in landing
    assert "Merged with Ada Lovelace" in landing and "ada@example.com" in landing

    old = client.get(f"/staff/contacts/{d['ada']}")
    assert old.status_code == 301 and old.headers["Location"].endswith(f"/staff/contacts/{d['dup']}")
    with app.app_context(), tenant_context(world.a.id):
        kept = _get(Contact, d["dup"])
        assert (kept.first_name, kept.email, kept.role) == ("Ada", "ada@example.com", "lead")
        assert "countess@example.com" in kept.extra_emails
    # A stale link to the merged contact shows its survivor instead.
    again = client.get(f"/staff/contacts/merge?ids={d['ada']}").get_data(as_text=True)
    assert "Ada Lovelace was already merged into Ada King." in again


def test_staff_get_403_and_nothing_changes(app, world, dupes, staff_client):
    d = dupes
    before = _state(app, world.a.id)
    client = staff_client("staff")
    assert client.get(f"/staff/contacts/merge?ids={d['ada']}&ids={d['dup']}").status_code == 403
    assert client.get("/staff/contacts/merge").status_code == 403
    response = post_form(client, "/staff/contacts/merge", {"ids": [d["ada"], d["dup"]], "survivor": d["ada"]})
    assert response.status_code == 403
    assert _state(app, world.a.id) == before
    with app.app_context(), tenant_context(world.a.id):
        with pytest.raises(ServiceError, match="Your role may not merge contacts"):
            merge_contacts(_get(Contact, d["ada"]), [_get(Contact, d["dup"])], actor=_staff(world, "staff"))


def test_another_tenants_ids_are_404(app, world, dupes, staff_client):
    def seed_b():
        return [make_contact("CANARY-B", "One").id, make_contact("CANARY-B", "Two").id]
    with app.app_context(), tenant_context(world.b.id):
        b_ids = seed_b()
        db.session.commit()
    before_a, before_b = _state(app, world.a.id), _state(app, world.b.id)
    client = staff_client("owner")
    assert client.get(f"/staff/contacts/merge?ids={b_ids[0]}&ids={b_ids[1]}").status_code == 404
    assert client.get(f"/staff/contacts/merge?ids={dupes['ada']}&ids={b_ids[0]}").status_code == 404
    response = post_form(client, "/staff/contacts/merge", {"ids": [dupes["ada"], b_ids[0]], "survivor": dupes["ada"]})
    assert response.status_code == 404 and "CANARY-B" not in response.get_data(as_text=True)
    assert _state(app, world.a.id) == before_a and _state(app, world.b.id) == before_b


def test_a_merge_that_fails_midway_changes_nothing(app, world, dupes, staff_client):
    d = dupes
    before = _state(app, world.a.id)
    calls = []

    def hook(survivor, merged, actor):
        calls.append((survivor.id, merged.id, actor.id))
        if len(calls) == 2:
            raise ServiceError("The forms could not move their submissions.")

    MERGE_HOOKS.append(hook)
    try:
        response = post_form(staff_client("owner"), "/staff/contacts/merge", {
            "ids": [d["ada"], d["dup"], d["third"]], "survivor": d["ada"]})
    finally:
        MERGE_HOOKS.remove(hook)
    assert response.status_code == 200
    assert "The forms could not move their submissions." in response.get_data(as_text=True)
    assert calls == [(d["ada"], d["dup"], world.a.members["owner"].id), (d["ada"], d["third"], world.a.members["owner"].id)]
    assert _state(app, world.a.id) == before


def test_a_contact_the_actor_may_not_see_stops_the_merge_before_anything(app, world, dupes, monkeypatch):
    d = dupes
    before = _state(app, world.a.id)
    hidden = d["third"]
    monkeypatch.setattr(merge_module, "contact_visible_to", lambda staff, contact: contact.id != hidden)
    with app.app_context(), tenant_context(world.a.id):
        with pytest.raises(ServiceError, match="not found"):
            merge_contacts(_get(Contact, d["ada"]), [_get(Contact, d["dup"]), _get(Contact, hidden)],
                           actor=_staff(world))
        db.session.commit()
    assert _state(app, world.a.id) == before


def test_restricted_staff_cannot_open_hidden_contacts_on_the_merge_page(app, world, dupes, staff_client):
    in_tenant(app, world.a, restrict_staff_visibility)
    # Staff may not merge at all; a hidden id is a 404 before that is even asked.
    client = staff_client("staff")
    assert client.get(f"/staff/contacts/merge?ids={dupes['dup']}").status_code == 404
    assert client.get(f"/staff/contacts/merge?ids={dupes['ada']}").status_code == 403


@pytest.mark.parametrize("case, message", [
    ("no_others", "at least two"),
    ("survivor_among_others", "listed twice"),
    ("already_merged", "already merged"),
    ("foreign_choice", "Choose each value from one of the contacts"),
    ("unknown_field", "no field"),
    ("email_taken", "already has"),
])
def test_refused_merges_change_nothing(app, world, dupes, case, message):
    d = dupes
    with app.app_context(), tenant_context(world.a.id):
        outsider = make_contact("Out", "Sider", email="outsider@example.com")
        inactive_twin = make_contact("Out", "Twin", email="outsider@example.com", is_active=False)
        db.session.commit()
        outsider_id, twin_id = outsider.id, inactive_twin.id
    before = _state(app, world.a.id)
    with app.app_context(), tenant_context(world.a.id):
        ada, dup = _get(Contact, d["ada"]), _get(Contact, d["dup"])
        args = {
            "no_others": (ada, [], {}),
            "survivor_among_others": (ada, [dup, ada], {}),
            "already_merged": (ada, [_get(Contact, d["earlier"])], {}),
            "foreign_choice": (ada, [dup], {"email": outsider_id}),
            "unknown_field": (ada, [dup], {"password": dup.id}),
            # the inactive twin's e-mail is held by a live contact outside the merge
            "email_taken": (ada, [_get(Contact, twin_id)], {"email": twin_id}),
        }[case]
        with pytest.raises(ServiceError, match=message):
            merge_contacts(*args, actor=_staff(world))
        db.session.commit()
    assert _state(app, world.a.id) == before


def test_bad_choices_on_the_page_are_explained_and_nothing_changes(app, world, dupes, staff_client):
    d = dupes
    before = _state(app, world.a.id)
    client = staff_client("owner")
    response = post_form(client, "/staff/contacts/merge", {
        "ids": [d["ada"], d["dup"]], "survivor": d["ada"], "choice-email": d["third"]})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "Choose each value from one of the contacts being merged." in body
    assert 'name="choice-email"' in body  # the form is shown again
    one = post_form(client, "/staff/contacts/merge", {"ids": [d["ada"]], "survivor": d["ada"]})
    assert "Choose at least two contacts to merge." in one.get_data(as_text=True)
    assert _state(app, world.a.id) == before


def test_merge_page_finds_more_contacts_to_add(app, world, dupes, staff_client):
    d = dupes
    client = staff_client("owner")
    single = client.get(f"/staff/contacts/merge?ids={d['ada']}").get_data(as_text=True)
    # The inactive A. Lovelace shares Ada's e-mail: offered straight away.
    assert "Possible duplicates of Ada Lovelace" in single and "A. Lovelace" in single
    assert f"ids={d['ada']}&amp;ids={d['third']}" in single
    found = client.get(f"/staff/contacts/merge?ids={d['ada']}&q=countess").get_data(as_text=True)
    assert "Augusta Ada King" in found and f"ids={d['ada']}&amp;ids={d['dup']}" in found
    nothing = client.get(f"/staff/contacts/merge?ids={d['ada']}&q=nobody-at-all").get_data(as_text=True)
    assert "No other contact matches" in nothing


def test_primary_contact_flag_stays_only_at_the_survivors_company(app, world, dupes):
    d = dupes

    def run():
        ada, dup = _get(Contact, d["ada"]), _get(Contact, d["dup"])
        merge_contacts(ada, [dup], {}, actor=_staff(world))  # Ada stays at Initech
        return ada
    ada = in_tenant(app, world.a, run)
    assert ada.company_id == d["initech"] and not ada.is_primary_contact
    with app.app_context(), tenant_context(world.a.id):
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Contact).where(
            Contact.is_primary_contact.is_(True))) == 0


def test_merged_ids_appear_in_no_duplicate_group_and_the_group_is_gone(app, world, dupes, staff_client):
    d = dupes
    client = staff_client("owner")
    assert "Same e-mail" in client.get("/staff/duplicates").get_data(as_text=True)
    post_form(client, "/staff/contacts/merge", {"ids": [d["ada"], d["third"]], "survivor": d["ada"]})
    assert "Same e-mail" not in client.get("/staff/duplicates").get_data(as_text=True)


def test_a_failed_merge_leaves_the_callers_transaction_as_it_was(app, world, dupes):
    """The merge runs in a savepoint: a caller that catches the error and commits its own
    work commits nothing of the merge."""
    d = dupes
    before = _state(app, world.a.id)

    def broken(survivor, merged, actor):
        raise RuntimeError("disk full")

    MERGE_HOOKS.append(broken)
    try:
        with app.app_context(), tenant_context(world.a.id):
            with pytest.raises(RuntimeError):
                merge_contacts(_get(Contact, d["ada"]), [_get(Contact, d["dup"])], {"email": d["dup"]},
                               actor=_staff(world))
            db.session.commit()
    finally:
        MERGE_HOOKS.remove(broken)
    assert _state(app, world.a.id) == before
