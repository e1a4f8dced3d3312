"""Each process caches what a tenant configures (its roles' permissions, the contact list's filter
choices, built kickoff forms), keyed by tenant.config_version; every change to configuration bumps
the version in its own transaction, so another process sees the change on its next request.

"Another process" is a second app on the same database here: its caches are its own, and nothing
tells it of a change but the version on the tenant's row."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from core.db import db
from core.identity import StaffUser
from core.permissions import DEFAULT_ROLE_PERMISSIONS
from core.roles import update_role_permissions
from core.tenancy import Tenant, cross_tenant
from crm.models import PipelineStatus, Tag
from forms import definitions
from forms.models import FieldKind, Form
from tests.conftest import HostClient
from tests.support import host_of, in_tenant, login_staff


@pytest.fixture
def other_process(app):
    """A second app on the same database and queue: a gunicorn worker beside this one."""
    from wsgi import create_app

    keys = ("TESTING", "SQLALCHEMY_DATABASE_URI", "PLATFORM_DOMAIN", "SECRET_KEY", "JOBS_SQLITE_PATH", "REDIS_URL",
            "RATELIMIT_STORAGE_URI", "MAIL_SERVER", "MAIL_PORT", "ARGON2_TIME_COST", "ARGON2_MEMORY_COST",
            "ARGON2_PARALLELISM")
    second = create_app({key: app.config[key] for key in keys})
    second.test_client_class = HostClient
    yield second
    with second.app_context():
        db.session.remove()
        db.engine.dispose()


def _signed_in(application, tenant, role: str):
    client = application.test_client()
    client.host = host_of(tenant.slug)
    assert login_staff(client, tenant.members[role].email).status_code == 302
    return client


def _version(app, tenant_id: int) -> int:
    with app.app_context(), cross_tenant("test reads the version", audit=False):
        return db.session.scalar(sa.select(Tenant.config_version).where(Tenant.id == tenant_id))


def _set_staff_permissions(app, world, permissions) -> None:
    def change():
        owner = db.session.get(StaffUser, world.a.members["owner"].id)
        update_role_permissions(owner, {"staff": permissions})
        db.session.commit()
    in_tenant(app, world.a, change)


def test_a_revoked_permission_is_refused_by_another_process_on_its_next_request(app, other_process, world):
    staff = _signed_in(other_process, world.a, "staff")
    export = "/staff/contacts/export?format=csv"
    assert staff.get(export).status_code == 200  # the other process has cached Staff's permissions
    before = _version(app, world.a.id)

    _set_staff_permissions(app, world, DEFAULT_ROLE_PERMISSIONS["staff"] - {"contacts.export"})

    assert _version(app, world.a.id) == before + 1
    refused = staff.get(export)
    assert refused.status_code == 403
    assert "Name,E-mail" not in refused.get_data(as_text=True)
    page = staff.get("/staff/contacts").get_data(as_text=True)
    assert "/staff/contacts/export" not in page  # the list no longer offers the export either

    _set_staff_permissions(app, world, DEFAULT_ROLE_PERMISSIONS["staff"])
    assert staff.get(export).status_code == 200


def test_a_change_to_the_filter_choices_shows_in_another_process(app, other_process, world):
    owner = _signed_in(other_process, world.a, "owner")
    assert "Gold partners" not in owner.get("/staff/contacts").get_data(as_text=True)

    def add_tag_and_status():
        db.session.add(Tag(name="Gold partners", key="gold partners"))
        db.session.add(PipelineStatus(name="Negotiating", position=99))
        db.session.commit()
    in_tenant(app, world.a, add_tag_and_status)
    page = owner.get("/staff/contacts").get_data(as_text=True)
    assert "Gold partners" in page and "Negotiating" in page

    # A bulk statement (no ORM flush) bumps the version too.
    def rename():
        db.session.execute(sa.update(Tag).where(Tag.name == "Gold partners").values(name="Platinum partners"))
        db.session.commit()
    in_tenant(app, world.a, rename)
    page = owner.get("/staff/contacts").get_data(as_text=True)
    assert "Platinum partners" in page and "Gold partners" not in page


def test_the_other_tenant_keeps_its_own_choices_and_version(app, other_process, world):
    owner_b = _signed_in(other_process, world.b, "owner")
    owner_b.get("/staff/contacts")
    before = _version(app, world.b.id)
    in_tenant(app, world.a, lambda: (db.session.add(Tag(name="A only", key="a only")), db.session.commit()))
    assert _version(app, world.b.id) == before
    assert "A only" not in owner_b.get("/staff/contacts").get_data(as_text=True)


def _form(app, world) -> str:
    def make():
        owner = db.session.get(StaffUser, world.a.members["owner"].id)
        form = definitions.create_form("Start here", "start-here", actor=owner)
        definitions.add_field(form, {"kind": FieldKind.SHORT_TEXT, "label": "Your name",
                                     "target": "contact.first_name", "required": True}, actor=owner)
        db.session.commit()
        return form.id
    return in_tenant(app, world.a, make)


def test_a_changed_form_field_shows_on_the_public_page_of_another_process(app, other_process, world):
    form_id = _form(app, world)
    visitor = other_process.test_client()
    visitor.host = host_of(world.a.slug)
    assert "Your name" in visitor.get("/f/start-here").get_data(as_text=True)

    def relabel():
        owner = db.session.get(StaffUser, world.a.members["owner"].id)
        field = db.session.get(Form, form_id).fields[0]
        definitions.update_field(field, {"kind": field.kind, "label": "Your first name", "required": True,
                                         "target": "contact.first_name"}, actor=owner)
        db.session.commit()
    in_tenant(app, world.a, relabel)
    page = visitor.get("/f/start-here").get_data(as_text=True)
    assert "Your first name" in page


def test_bookkeeping_and_one_transaction_bump_once_or_not_at_all(app, world):
    form_id = _form(app, world)
    before = _version(app, world.a.id)

    def rota_moves():  # a form's round-robin pointer moving on is no configuration
        db.session.execute(sa.update(Form).where(Form.id == form_id).values(round_robin_next=Form.round_robin_next + 1))
        db.session.commit()
    in_tenant(app, world.a, rota_moves)
    assert _version(app, world.a.id) == before

    def two_tags():
        db.session.add(Tag(name="One", key="one"))
        db.session.flush()
        db.session.add(Tag(name="Two", key="two"))
        db.session.commit()
    in_tenant(app, world.a, two_tags)
    assert _version(app, world.a.id) == before + 1

    def rolled_back_then_changed():
        db.session.add(Tag(name="Never", key="never"))
        db.session.flush()
        db.session.rollback()
        db.session.add(Tag(name="Three", key="three"))
        db.session.commit()
    in_tenant(app, world.a, rolled_back_then_changed)
    assert _version(app, world.a.id) == before + 2


def test_restricting_staff_visibility_hides_contacts_in_another_process_at_once(app, other_process, world):
    from tests.factories import make_contact, restrict_staff_visibility

    owner_id = world.a.members["owner"].id
    in_tenant(app, world.a, lambda: (make_contact("Amelia", "Hart", email="amelia@example.com", owner_id=owner_id),
                                     db.session.commit()))
    staff = _signed_in(other_process, world.a, "staff")
    assert "Amelia Hart" in staff.get("/staff/contacts").get_data(as_text=True)

    in_tenant(app, world.a, lambda: (restrict_staff_visibility(), db.session.commit()))

    assert "Amelia Hart" not in staff.get("/staff/contacts").get_data(as_text=True)


def test_an_archived_form_is_gone_from_another_process_at_once(app, other_process, world):
    form_id = _form(app, world)
    visitor = other_process.test_client()
    visitor.host = host_of(world.a.slug)
    assert visitor.get("/f/start-here").status_code == 200  # cached there now

    def archive():
        definitions.archive_form(db.session.get(Form, form_id), actor=db.session.get(StaffUser, world.a.members["owner"].id))
        db.session.commit()
    in_tenant(app, world.a, archive)
    assert visitor.get("/f/start-here").status_code == 404


def test_a_saved_segment_shows_among_the_list_tabs_of_another_process(app, other_process, world):
    from crm.contact_list import ContactFilters
    from crm.segments import save_segment

    owner = _signed_in(other_process, world.a, "owner")
    assert "Clients only" not in owner.get("/staff/contacts").get_data(as_text=True)

    def save():
        save_segment("Clients only", ContactFilters(role=["client"]),
                     actor=db.session.get(StaffUser, world.a.members["admin"].id))
        db.session.commit()
    in_tenant(app, world.a, save)
    assert "Clients only" in owner.get("/staff/contacts").get_data(as_text=True)
