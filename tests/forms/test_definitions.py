"""The form builder's services (forms.definitions): forms, their fields, settings and on-submit
actions; what they refuse, in which words, beside which field; and what they audit."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from core.audit import AuditEvent
from core.db import db
from core.errors import ServiceError
from core.identity import StaffUser
from core.tenancy import tenant_context
from crm.models import CustomField, PipelineStatus
from forms import definitions as service
from forms.models import FieldKind, Form, FormField, OwnerMode, PortalLogin
from tests.factories import make_circle, make_custom_field
from tests.forms.factories import make_form

PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 32


@pytest.fixture
def as_a(app, world):
    """Inside tenant A: returns its members by role (StaffUser rows)."""
    with app.app_context(), tenant_context(world.a.id):
        people = {role: db.session.get(StaffUser, m.id) for role, m in world.a.members.items()}
        yield people
        db.session.rollback()


def _refused(call, field):
    with pytest.raises(ServiceError) as caught:
        call()
    assert caught.value.field == field, caught.value.message
    return caught.value.message


def _actions(**overrides):
    values = dict(role="lead", status_id=None, circle_ids=[], tags="", owner_mode=OwnerMode.NONE, owner_id=None,
                  round_robin_staff_ids=[], notify_staff_ids=[], send_confirmation=False, confirmation_subject="",
                  confirmation_body="", portal_login=PortalLogin.NONE, portal_requires_approval=False,
                  make_primary_contact=False)
    return values | overrides


def _settings(form, **overrides):
    values = {name: getattr(form, name) for name in ("title", "slug", "intro", "submit_label", "thank_you_message",
                                                     "redirect_url", "primary_colour", "min_fill_seconds")}
    return values | overrides


# --- forms --------------------------------------------------------------------------------------------

def test_create_makes_the_address_from_the_title_and_keeps_it_unique(as_a):
    owner = as_a["owner"]
    first = service.create_form("Open Day 2026 — Ágata's!", actor=owner)
    second = service.create_form("Open day 2026: Agata s", actor=owner)
    assert first.slug == "open-day-2026-agata-s"
    assert second.slug == "open-day-2026-agata-s-2"
    assert db.session.scalars(sa.select(AuditEvent.action).where(AuditEvent.target_type == "form")).all() == \
        ["form.created", "form.created"]


def test_an_address_typed_is_checked(as_a):
    owner = as_a["owner"]
    form = service.create_form("Join", "join-us", actor=owner)
    assert form.slug == "join-us"
    assert "taken by “Join”" in _refused(lambda: service.create_form("Other", "join-us", actor=owner), "slug")
    assert "lower-case letters" in _refused(lambda: service.create_form("Other", "Join Us!", actor=owner), "slug")
    assert "no dash at either end" in _refused(lambda: service.create_form("Other", "-x", actor=owner), "slug")
    _refused(lambda: service.create_form("   ", actor=owner), "title")


def test_slugs_are_unique_per_tenant_not_across_tenants(app, world):
    for tenant in (world.a, world.b):
        with app.app_context(), tenant_context(tenant.id):
            owner = db.session.get(StaffUser, tenant.members["owner"].id)
            assert service.create_form("Join", "join", actor=owner).slug == "join"
            db.session.commit()


def test_staff_without_the_permission_are_refused(as_a):
    _refused(lambda: service.create_form("Join", actor=as_a["staff"]), None)
    form = make_form("Join")
    _refused(lambda: service.archive_form(form, actor=as_a["staff"]), None)
    _refused(lambda: service.add_field(form, {"kind": "short_text", "label": "X"}, actor=as_a["staff"]), None)


def test_settings_are_validated_beside_their_inputs(as_a):
    owner = as_a["owner"]
    form = make_form("Join")
    cases = {
        "redirect_url": ("javascript:alert(1)", "https://"),
        "primary_colour": ("blue", "#1f6feb"),
        "min_fill_seconds": ("soon", "whole number"),
        "submit_label": ("", "Enter the words on the send button"),
    }
    for name, (value, words) in cases.items():
        assert words in _refused(lambda: service.update_settings(form, **_settings(form, **{name: value}),
                                                                 actor=owner), name)
    assert "thank-you message" in _refused(lambda: service.update_settings(
        form, **_settings(form, thank_you_message="", redirect_url=""), actor=owner), "thank_you_message")
    assert "PNG, JPEG" in _refused(lambda: service.update_settings(form, **_settings(form), logo=b"GIF-ish",
                                                                   actor=owner), "logo")
    assert "512 KB" in _refused(lambda: service.update_settings(form, **_settings(form),
                                                                logo=PNG + b"0" * 600_000, actor=owner), "logo")
    assert form.title == "Join" and form.primary_colour is None and form.logo_mimetype is None


def test_settings_change_and_are_audited(as_a):
    owner = as_a["owner"]
    form = make_form("Join")
    changed = service.update_settings(form, **_settings(
        form, title="Join us", slug="join-us", intro="Hello", primary_colour="#AA3300",
        redirect_url="https://x.test/ok", min_fill_seconds="5"), logo=PNG, actor=owner)
    assert set(changed) == {"title", "slug", "intro", "primary_colour", "redirect_url", "min_fill_seconds", "logo"}
    assert (form.primary_colour, form.logo_mimetype, form.min_fill_seconds) == ("#aa3300", "image/png", 5)
    event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "form.changed")).one()
    assert event.details["title"] == {"from": "Join", "to": "Join us"} and event.details["logo"] == "uploaded"
    assert service.update_settings(form, **_settings(form), remove_logo=True, actor=owner) == ["logo"]
    assert form.logo_mimetype is None


def test_duplicate_copies_fields_and_actions_under_a_new_address(as_a):
    owner = as_a["owner"]
    circle = make_circle("VIP")
    form = make_form("Join", slug="join", circle_ids=[circle.id], tags=["hot"], role="prospect")
    copy = service.duplicate_form(form, actor=owner)
    assert (copy.title, copy.slug, copy.role, copy.circle_ids, copy.tags) == \
        ("Join (copy)", "join-copy", "prospect", [circle.id], ["hot"])
    assert [(f.key, f.label, f.target) for f in copy.fields] == [(f.key, f.label, f.target) for f in form.fields]
    assert {f.id for f in copy.fields}.isdisjoint({f.id for f in form.fields})
    assert service.duplicate_form(form, actor=owner).slug == "join-copy-2"


def test_archive_and_restore(as_a):
    owner = as_a["owner"]
    form = make_form("Join")
    assert service.archive_form(form, actor=owner) and form.is_archived
    assert not service.archive_form(form, actor=owner)
    assert [f.title for f in service.forms_list(archived=True)] == ["Join"] and service.forms_list() == []
    assert service.restore_form(form, actor=owner) and not form.is_archived
    actions = db.session.scalars(sa.select(AuditEvent.action).where(AuditEvent.target_type == "form")
                                 .order_by(AuditEvent.id)).all()
    assert actions == ["form.archived", "form.restored"]


# --- fields -------------------------------------------------------------------------------------------

def test_a_fields_key_stays_when_its_label_changes(as_a):
    owner = as_a["owner"]
    form = make_form("Join", fields=())
    field = service.add_field(form, {"kind": "short_text", "label": "Favourite colour"}, actor=owner)
    assert field.key == "favourite_colour"
    service.update_field(field, {"label": "Your favourite colour", "target": ""}, actor=owner)
    assert (field.key, field.label) == ("favourite_colour", "Your favourite colour")
    again = service.add_field(form, {"kind": "short_text", "label": "Favourite colour"}, actor=owner)
    assert again.key == "favourite_colour_2"


def test_keys_follow_the_target_and_avoid_the_public_forms_own_names(as_a):
    owner = as_a["owner"]
    form = make_form("Join", fields=())
    email = service.add_field(form, {"kind": "email", "label": "Your e-mail", "target": "contact.email"}, actor=owner)
    company = service.add_field(form, {"kind": "short_text", "label": "Firm", "target": "company.name"}, actor=owner)
    reserved = service.add_field(form, {"kind": "short_text", "label": "KF token"}, actor=owner)
    assert (email.key, company.key, reserved.key) == ("email", "company", "f_kf_token")


@pytest.mark.parametrize("label, key", [
    ("Validate", "f_validate"), ("Meta", "f_meta"), ("Process", "f_process"),
    ("Validate email", "f_validate_email"), ("Data", "f_data"), ("Errors", "f_errors"),
])
def test_keys_never_shadow_the_wtforms_forms_own_names(as_a, label, key):
    from forms.rendering import KickoffForm, key_is_safe

    form = make_form("Join", fields=())
    field = service.add_field(form, {"kind": "short_text", "label": label}, actor=as_a["owner"])
    assert field.key == key and key_is_safe(field.key)
    assert not hasattr(KickoffForm, field.key) and not field.key.startswith(("validate_", "_"))
    again = service.add_field(form, {"kind": "short_text", "label": label}, actor=as_a["owner"])
    assert again.key == f"{key}_2"


def test_every_kind_of_field_can_be_added(as_a):
    owner = as_a["owner"]
    form = make_form("Join", fields=())
    extra = {
        FieldKind.SINGLE_CHOICE: {"choices": "Small\nLarge", "display": "radio"},
        FieldKind.MULTI_CHOICE: {"choices": ["Email", "Phone"]},
        FieldKind.HIDDEN: {"url_parameter": "utm_source"},
        FieldKind.CONSENT: {"terms_url": "https://acme.example/terms"},
    }
    for kind in FieldKind.ALL:
        service.add_field(form, {"kind": kind, "label": FieldKind.LABELS[kind], "required": True,
                                 "placeholder": "e.g.", **extra.get(kind, {})}, actor=owner)
    fields = {f.kind: f for f in form.fields}
    assert [f.kind for f in form.fields] == list(FieldKind.ALL)
    assert fields[FieldKind.SINGLE_CHOICE].choices == ["Small", "Large"] and \
        fields[FieldKind.SINGLE_CHOICE].display == "radio"
    # Nothing to answer, or filled from the address: never required. Placeholders only where they show.
    assert not fields[FieldKind.SECTION].required and not fields[FieldKind.HIDDEN].required
    assert fields[FieldKind.SHORT_TEXT].placeholder == "e.g." and fields[FieldKind.DATE].placeholder == ""
    assert fields[FieldKind.HIDDEN].url_parameter == "utm_source"


@pytest.mark.parametrize("data, field, words", [
    ({"kind": "single_choice", "label": "Size", "choices": " \n "}, "choices", "List the choices"),
    ({"kind": "multi_choice", "label": "Size", "choices": "A\na"}, "choices", "listed twice"),
    ({"kind": "hidden", "label": "Source", "url_parameter": "utm source"}, "url_parameter", "utm_source"),
    ({"kind": "consent", "label": "Terms", "terms_url": "ftp://x"}, "terms_url", "https://"),
    ({"kind": "consent", "label": "Terms"}, "terms_url", "address of the terms"),
    ({"kind": "rocket", "label": "X"}, "kind", "type of field"),
    ({"kind": "short_text", "label": ""}, "label", "label"),
    ({"kind": "short_text", "label": "Mail", "target": "contact.email"}, "target", "needs a e-mail field"),
    ({"kind": "section", "label": "About you", "target": "contact.city"}, "target", "holds no answer"),
    ({"kind": "short_text", "label": "X", "target": "contact.password_hash"}, "target", "from the list"),
    ({"kind": "short_text", "label": "X", "target": "custom.999999"}, "target", "custom field from the list"),
    ({"kind": "single_choice", "label": "Size", "display": "wheel", "choices": "A"}, "display", "radio"),
])
def test_bad_fields_are_refused_beside_their_input(as_a, data, field, words):
    form = make_form("Join", fields=())
    assert words in _refused(lambda: service.add_field(form, data, actor=as_a["owner"]), field)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(FormField)) == 0


def test_a_place_is_filled_by_one_field_only(as_a):
    form = make_form("Join")  # its e-mail field fills contact.email
    words = _refused(lambda: service.add_field(form, {"kind": "email", "label": "Work e-mail",
                                                      "target": "contact.email"}, actor=as_a["owner"]), "target")
    assert "“E-mail” already fills this" in words


def test_existing_custom_fields_match_their_type_and_choices(as_a):
    owner = as_a["owner"]
    form = make_form("Join", fields=())
    budget = make_custom_field("Budget", "number")
    tier = make_custom_field("Tier", "choice", choices=["Gold", "Silver"])
    assert "needs a number field" in _refused(lambda: service.add_field(
        form, {"kind": "short_text", "label": "Budget", "target": f"custom.{budget.id}"}, actor=owner), "target")
    assert "not a choice of the custom field “Tier”" in _refused(lambda: service.add_field(
        form, {"kind": "single_choice", "label": "Tier", "choices": "Gold\nBronze", "target": f"custom.{tier.id}"},
        actor=owner), "choices")
    field = service.add_field(form, {"kind": "single_choice", "label": "Tier", "target": f"custom.{tier.id}"},
                              actor=owner)
    assert field.choices == ["Gold", "Silver"]  # the custom field's own when none are typed


def test_a_new_custom_field_is_made_through_the_crm(as_a):
    owner = as_a["owner"]
    form = make_form("Join", fields=())
    field = service.add_field(form, {"kind": "multi_choice", "label": "Interests", "choices": "Golf\nChess",
                                     "target": "new.contact"}, actor=owner)
    custom = db.session.scalars(sa.select(CustomField).where(CustomField.label == "Interests")).one()
    assert (custom.entity, custom.field_type, custom.choices) == ("contact", "multi_choice", ["Golf", "Chess"])
    assert field.target == f"custom.{custom.id}"
    assert db.session.scalar(sa.select(AuditEvent.id).where(AuditEvent.action == "custom_field.created"))
    words = _refused(lambda: service.add_field(form, {"kind": "short_text", "label": "Interests",
                                                      "target": "new.contact"}, actor=owner), "label")
    assert words.startswith("New custom field:")


def test_admins_without_crm_configure_cannot_make_custom_fields(as_a, app):
    from core.permissions import RolePermission, forget_role_permissions

    form = make_form("Join", fields=())
    admin = as_a["admin"]
    db.session.add(RolePermission(role="admin", permission="crm.configure", granted=False))
    db.session.flush()
    forget_role_permissions()
    assert "configure the CRM" in _refused(lambda: service.add_field(
        form, {"kind": "short_text", "label": "Shoe", "target": "new.contact"}, actor=admin), "target")


def test_move_and_delete_renumber_the_fields(as_a):
    owner = as_a["owner"]
    form = make_form("Join")  # first_name, last_name, email, phone, company
    keys = lambda: [f.key for f in form.fields]  # noqa: E731
    email = next(f for f in form.fields if f.key == "email")
    assert service.move_field(email, "up", actor=owner)
    assert keys() == ["first_name", "email", "last_name", "phone", "company"]
    first = form.fields[0]
    assert not service.move_field(first, "up", actor=owner)
    assert service.move_field(form.fields[-1], "up", actor=owner) is True
    assert keys() == ["first_name", "email", "last_name", "company", "phone"]
    service.delete_field(email, actor=owner)
    assert keys() == ["first_name", "last_name", "company", "phone"]
    assert [f.position for f in form.fields] == [0, 1, 2, 3]
    actions = db.session.scalars(sa.select(AuditEvent.action).where(AuditEvent.target_type == "form")
                                 .order_by(AuditEvent.id)).all()
    assert actions == ["form.field_moved", "form.field_moved", "form.field_removed"]


# --- on-submit actions --------------------------------------------------------------------------------

def test_actions_are_saved_and_audited(as_a):
    owner, admin, staff = as_a["owner"], as_a["admin"], as_a["staff"]
    form = make_form("Join")
    status = db.session.scalars(sa.select(PipelineStatus).order_by(PipelineStatus.position)).first()
    circle = make_circle("VIP")
    changed = service.update_actions(form, **_actions(
        role="prospect", status_id=str(status.id), circle_ids=[str(circle.id)], tags="Hot, newsletter ,hot",
        owner_mode=OwnerMode.ROUND_ROBIN, round_robin_staff_ids=[str(admin.id), str(staff.id)],
        notify_staff_ids=[str(owner.id)], send_confirmation=True, confirmation_subject="Welcome",
        confirmation_body="See you soon.", portal_login=PortalLogin.EMAIL_LINK, portal_requires_approval=True,
        make_primary_contact=True), actor=owner)
    assert set(changed) >= {"role", "status_id", "circle_ids", "tags", "owner_mode", "round_robin_staff_ids",
                            "notify_staff_ids", "send_confirmation", "portal_login", "make_primary_contact"}
    assert form.tags == ["Hot", "newsletter"] and form.round_robin_staff_ids == [admin.id, staff.id]
    assert form.portal_requires_approval and form.confirmation_subject == "Welcome"
    assert db.session.scalar(sa.select(AuditEvent.details).where(AuditEvent.action == "form.actions_changed"))[
        "role"] == {"from": "lead", "to": "prospect"}


@pytest.mark.parametrize("overrides, field, words", [
    ({"role": "boss"}, "role", "Lead, Prospect or Client"),
    ({"status_id": "999999"}, "status_id", "pipeline"),
    ({"circle_ids": ["999999"]}, "circle_ids", "Circles"),
    ({"owner_mode": OwnerMode.FIXED}, "owner_id", "Choose the staff member"),
    ({"owner_mode": OwnerMode.ROUND_ROBIN, "round_robin_staff_ids": []}, "round_robin_staff_ids", "at least two"),
    ({"notify_staff_ids": ["999999"]}, "notify_staff_ids", "active staff"),
    ({"send_confirmation": True, "confirmation_subject": ""}, "confirmation_subject", "subject"),
    ({"tags": "x" * 61}, "tags", "at most 60"),
])
def test_bad_actions_are_refused_beside_their_input(as_a, overrides, field, words):
    form = make_form("Join")
    assert words in _refused(lambda: service.update_actions(form, **_actions(**overrides), actor=as_a["owner"]),
                             field)
    assert form.role == "lead" and form.owner_mode == OwnerMode.NONE


def test_actions_that_need_an_email_or_a_company_field_say_so(as_a):
    form = make_form("Join", fields=({"key": "name", "kind": "short_text", "label": "Name"},))
    owner = as_a["owner"]
    assert "needs an e-mail field" in _refused(lambda: service.update_actions(
        form, **_actions(send_confirmation=True, confirmation_subject="Hi"), actor=owner), "send_confirmation")
    assert "needs an e-mail field" in _refused(lambda: service.update_actions(
        form, **_actions(portal_login=PortalLogin.PASSWORD), actor=owner), "portal_login")
    assert "company's name" in _refused(lambda: service.update_actions(
        form, **_actions(make_primary_contact=True), actor=owner), "make_primary_contact")


def test_a_deactivated_staff_member_cannot_be_the_owner(as_a):
    staff = as_a["staff"]
    staff.active = False
    form = make_form("Join")
    _refused(lambda: service.update_actions(form, **_actions(owner_mode=OwnerMode.FIXED, owner_id=str(staff.id)),
                                            actor=as_a["owner"]), "owner_id")


# --- preview ------------------------------------------------------------------------------------------

def test_the_preview_shows_the_draft_without_saving_it(as_a):
    form = make_form("Join")
    phone = next(f for f in form.fields if f.key == "phone")
    draft = {"label": "Mobile <b>now</b>", "required": "y", "placeholder": "+44", "title": "Join   us"}
    definition = service.preview_definition(form, draft, field_id=phone.id)
    shown = next(f for f in definition["fields"] if f["key"] == "phone")
    assert (shown["label"], shown["required"], shown["kind"]) == ("Mobile <b>now</b>", True, "phone")
    assert definition["form"]["title"] == "Join us"
    added = service.preview_definition(form, {"kind": "single_choice", "label": "Size", "choices": "S\nM"},
                                       new_field=True)
    assert added["fields"][-1]["choices"] == ["S", "M"] and len(added["fields"]) == 6
    assert len(service.preview_definition(form, {"label": " "}, new_field=True)["fields"]) == 5
    db.session.refresh(phone)
    assert phone.label == "Phone" and not db.session.dirty


def test_forms_of_another_tenant_are_out_of_reach(app, world):
    with app.app_context(), tenant_context(world.b.id):
        other = make_form("CANARY-B form", slug="join")
        db.session.commit()
        other_id = other.id
    with app.app_context(), tenant_context(world.a.id):
        owner = db.session.get(StaffUser, world.a.members["owner"].id)
        assert db.session.get(Form, other_id) is None
        assert service.create_form("Join", "join", actor=owner).slug == "join"
        assert service.forms_list() != [] and all(f.title != "CANARY-B form" for f in service.forms_list())


def test_a_field_keeps_a_custom_field_archived_since(as_a):
    owner = as_a["owner"]
    form = make_form("Join", fields=())
    budget = make_custom_field("Budget", "number")
    field = service.add_field(form, {"kind": "number", "label": "Budget", "target": f"custom.{budget.id}"},
                              actor=owner)
    budget.archived_at = datetime.now(timezone.utc)
    assert service.update_field(field, {"label": "Your budget", "target": f"custom.{budget.id}"}, actor=owner) == \
        ["label"]
    assert "from the list" in _refused(lambda: service.add_field(
        form, {"kind": "number", "label": "Other", "target": f"custom.{budget.id}"}, actor=owner), "target")
    assert service.target_label(field.target) == "Contact: Budget (custom, archived)"
