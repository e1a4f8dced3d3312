"""core.web.service_call: the one way a view calls a service. It commits what the block did,
or, when a business rule refuses (ServiceError), rolls all of it back and shows the reason;
any other error rolls back too and is raised."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import get_flashed_messages
from sqlalchemy.exc import IntegrityError
from wtforms import Form, StringField

from core.db import db
from core.errors import ServiceError
from core.tenancy import tenant_context
from core.web import service_call
from crm.models import Tag


class NameForm(Form):
    name = StringField("Name")


@pytest.fixture
def in_a_request(app, world):
    """A request of tenant A, with a session for flashed messages."""
    with app.test_request_context("/staff/"), tenant_context(world.a.id):
        yield


def tag_names() -> list[str]:
    """The tags as the view's own session sees them straight after the block (so a rollback
    left to teardown would not do), which must be what another request sees."""
    def names():
        return db.session.scalars(sa.select(Tag.name).order_by(Tag.name)).all()

    seen = names()
    db.session.remove()
    assert names() == seen
    return seen


def add_tag(name: str) -> Tag:
    tag = Tag(name=name, key=name.lower())
    db.session.add(tag)
    db.session.flush()  # written to the database, not only pending in the session
    return tag


def test_a_block_that_ends_normally_is_committed(in_a_request):
    with service_call() as outcome:
        add_tag("VIP")
        assert not outcome  # nothing committed yet
    assert outcome
    assert outcome.committed and outcome.error is None
    assert get_flashed_messages() == []
    assert tag_names() == ["VIP"]


def test_a_refusal_rolls_back_everything_the_block_wrote_and_shows_the_message_beside_its_field(in_a_request):
    form = NameForm()
    with service_call(form) as outcome:
        add_tag("VIP")
        add_tag("Lead")
        raise ServiceError("There is already a tag called “Lead”.", field="name")
    assert not outcome
    assert outcome.error.message == "There is already a tag called “Lead”."
    assert form.name.errors == ["There is already a tag called “Lead”."]
    assert form.form_errors == []
    assert get_flashed_messages() == []  # beside the field, not flashed as well
    assert tag_names() == []


def test_a_refusal_that_names_no_field_of_the_form_shows_above_the_form(in_a_request):
    form = NameForm()
    with service_call(form) as outcome:
        raise ServiceError("You do not have permission to manage tags.", field="nonexistent")
    assert not outcome
    assert form.form_errors == ["You do not have permission to manage tags."]
    assert not form.name.errors


def test_without_a_form_the_refusal_is_flashed_as_an_error(in_a_request):
    with service_call() as outcome:
        add_tag("VIP")
        raise ServiceError("Enter a tag.")
    assert not outcome
    assert get_flashed_messages(with_categories=True) == [("error", "Enter a tag.")]
    assert tag_names() == []


def test_a_view_that_answers_a_refusal_itself_gets_the_error_and_nothing_is_shown(in_a_request):
    form = NameForm()
    with service_call(form, show_error=False) as outcome:
        add_tag("VIP")
        raise ServiceError("Are you sure?", field="confirm")
    assert not outcome
    assert outcome.error.field == "confirm" and outcome.error.message == "Are you sure?"
    assert not form.name.errors and form.form_errors == []
    assert get_flashed_messages() == []
    assert tag_names() == []


def test_any_other_error_goes_on_up_and_leaves_nothing_written(in_a_request):
    with pytest.raises(ZeroDivisionError):
        with service_call(NameForm()) as outcome:
            add_tag("VIP")
            1 / 0
    assert not outcome and outcome.error is None
    assert get_flashed_messages() == []
    assert tag_names() == []


def test_a_commit_that_fails_is_rolled_back_and_raised(in_a_request):
    with service_call():
        add_tag("VIP")
    with pytest.raises(IntegrityError):
        with service_call() as outcome:
            db.session.add(Tag(name="vip", key="vip"))  # the same key: refused by the database at commit
    assert not outcome
    assert tag_names() == ["VIP"]  # and the session is usable again


def test_an_http_abort_inside_the_block_rolls_back_and_is_raised(in_a_request):
    from werkzeug.exceptions import Forbidden
    from flask import abort

    with pytest.raises(Forbidden):
        with service_call():
            add_tag("VIP")
            abort(403)
    assert tag_names() == []


def test_a_refusal_outside_a_block_answers_its_own_words_and_keeps_nothing(app, world):
    """A view that calls a service without service_call still never shows a 500 for a rule."""
    with app.test_request_context("/staff/circles/1/staff", method="POST", base_url="http://acme.localhost",
                                  headers={"Referer": "http://acme.localhost/staff/circles/1"}), \
            tenant_context(world.a.id):
        add_tag("VIP")
        response = app.make_response(app.handle_user_exception(
            ServiceError("You do not have permission to manage circles.")))
        page = response.get_data(as_text=True)
        assert response.status_code == 422
        assert "That was not done" in page and "You do not have permission to manage circles." in page
        assert 'href="/staff/circles/1"' in page  # back to where they were, on this host only
        assert tag_names() == []


def test_a_refusal_asked_for_as_json_answers_json(app, world):
    with app.test_request_context("/staff/tags", method="POST", headers={"Accept": "application/json"}), \
            tenant_context(world.a.id):
        response = app.make_response(app.handle_user_exception(ServiceError("Enter a tag.")))
        assert response.status_code == 422
        assert response.get_json() == {"error": {"code": 422, "title": "That was not done", "message": "Enter a tag."}}


def test_the_way_back_never_leads_to_another_site(app, world):
    with app.test_request_context("/staff/tags", method="POST", base_url="http://acme.localhost",
                                  headers={"Referer": "http://evil.example/staff/tags"}), tenant_context(world.a.id):
        page = app.make_response(app.handle_user_exception(ServiceError("Enter a tag."))).get_data(as_text=True)
        assert "evil.example" not in page and "Go back" not in page


def test_an_events_span_names_its_day_once():
    """The portal's and the staff pages' event times: the end by its time alone on the same day."""
    import re
    from datetime import datetime, timezone

    from core.web import time_span

    def shown(markup) -> str:
        return re.sub(r"<[^>]+>", "", str(markup))

    start = datetime(2026, 12, 10, 18, 0, tzinfo=timezone.utc)
    assert shown(time_span(start, start.replace(hour=20))) == "Thu 2026-12-10 18:00 – 20:00 UTC"
    assert shown(time_span(start, datetime(2026, 12, 11, 9, 30, tzinfo=timezone.utc))) == \
        "Thu 2026-12-10 18:00 – Fri 2026-12-11 09:30 UTC"
    assert shown(time_span(start)) == "Thu 2026-12-10 18:00 UTC"
    assert '<time datetime="2026-12-10T20:00:00+00:00">' in str(time_span(start, start.replace(hour=20)))
    assert str(time_span(None)) == "—"
