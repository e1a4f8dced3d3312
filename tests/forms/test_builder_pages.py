"""The form builder's pages (/staff/forms) as staff see them: the list, creating and editing forms,
fields, settings, on-submit actions, sharing, the live preview, and submissions."""
from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from core.audit import AuditEvent
from core.db import db
from core.permissions import RolePermission
from crm.models import Contact
from forms.models import Form, FormField, FormSubmission
from tests.factories import make_contact, restrict_staff_visibility
from tests.forms.factories import make_form, make_submission
from tests.support import csrf_token, in_tenant, post_form
from tests.test_query_counts import counted_queries

BASE = "/staff/forms"
FIELD_LABEL = r'<div class="builder-field-text">\s*<strong>([^<]+)</strong>'
PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 32




def _form(app, world, title="Open day", **attrs) -> dict:
    """A form of A with the standard fields; returns its ids."""
    def make():
        form = make_form(title, **attrs)
        return {"id": form.id, "slug": form.slug, "fields": {f.key: f.id for f in form.fields}}
    return in_tenant(app, world.a, make)


def _text(response) -> str:
    return response.get_data(as_text=True)


def _error_beside(html: str, field_id: str) -> str:
    match = re.search(rf'<small id="{field_id}-error" class="field-error">([^<]*)</small>', html)
    assert match, f"no error beside {field_id}"
    return match.group(1)


def _grant_staff(app, world, *permissions):
    def grant():
        for permission in permissions:
            db.session.add(RolePermission(role="staff", permission=permission, granted=True))
    in_tenant(app, world.a, grant)


# --- who gets in --------------------------------------------------------------------------------------

def test_the_forms_link_is_in_the_navigation_of_those_who_may_use_it(world, staff_client):
    for role in ("owner", "admin"):
        page = _text(staff_client(role).get("/staff/"))
        assert f'href="{BASE}/"' in page and ">Forms" in page
    assert f'href="{BASE}/"' not in _text(staff_client("staff").get("/staff/"))


def test_the_roles_page_lists_the_new_permissions(staff_client):
    page = _text(staff_client("owner").get("/staff/settings/roles"))
    assert "Build, change and archive kickoff forms" in page
    assert "See kickoff form submissions and export them" in page


ROUTES = [  # (method, path, form data); {id}, {field}, {submission} are filled in
    ("GET", "/", {}), ("GET", "/new", {}), ("POST", "/new", {"title": "X"}),
    ("GET", "/{id}", {}), ("POST", "/{id}/fields", {"kind": "short_text", "label": "X"}),
    ("GET", "/{id}/fields/{field}", {}), ("POST", "/{id}/fields/{field}", {"label": "X"}),
    ("POST", "/{id}/fields/{field}/move", {"direction": "down"}), ("POST", "/{id}/fields/{field}/delete", {}),
    ("GET", "/{id}/settings", {}), ("POST", "/{id}/settings", {"title": "X"}), ("GET", "/{id}/actions", {}),
    ("POST", "/{id}/actions", {"role": "client"}), ("GET", "/{id}/share", {}), ("POST", "/{id}/preview", {}),
    ("POST", "/{id}/duplicate", {}), ("POST", "/{id}/archive", {}), ("POST", "/{id}/restore", {}),
    ("GET", "/{id}/submissions", {}), ("GET", "/submissions", {}), ("GET", "/submissions/export?as=csv", {}),
    ("GET", "/submissions/{submission}", {}),
]


@pytest.mark.parametrize("method, path, data", ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_staff_without_the_permissions_are_refused_and_change_nothing(world, staff_client, app, method, path, data):
    ids = _form(app, world)
    ids["submission"] = in_tenant(app, world.a, lambda: make_submission(db.session.get(Form, ids["id"]), {"a": 1}).id)
    url = BASE + path.format(id=ids["id"], field=ids["fields"]["email"], submission=ids["submission"])
    client = staff_client("staff")
    response = client.get(url) if method == "GET" else post_form(client, url, data)
    assert response.status_code == 403
    state = in_tenant(app, world.a, lambda: (
        [(f.title, f.archived_at, f.role) for f in db.session.scalars(sa.select(Form))],
        [(f.key, f.label, f.position) for f in db.session.scalars(sa.select(FormField).order_by(FormField.id))]))
    assert state[0] == [("Open day", None, "lead")]
    assert [label for _, label, _ in state[1]] == ["First name", "Last name", "E-mail", "Phone", "Company"]


def test_anonymous_visitors_are_sent_to_sign_in(world, client_for):
    response = client_for(world.a.slug).get(f"{BASE}/")
    assert response.status_code == 302 and "/staff/login" in response.headers["Location"]


def test_the_builder_is_not_on_the_platform_host(world, client_for):
    assert client_for(None).get(f"{BASE}/").status_code == 404


# --- the list ------------------------------------------------------------------------------------------

def test_the_list_shows_active_and_archived_forms_with_their_counts_and_address(world, staff_client, app):
    def make():
        live = make_form("Open day", slug="open-day")
        make_form("Old promo", slug="old-promo", archived_at=datetime.now(timezone.utc))
        for n in range(3):
            make_submission(live, {"email": f"p{n}@x.test"})
    in_tenant(app, world.a, make)
    client = staff_client("admin")
    page = _text(client.get(f"{BASE}/"))
    assert "Open day" in page and "Old promo" not in page
    assert 'href="http://acme.localhost/f/open-day"' in page and ">3</a>" in page
    assert "Archived (1)" in page
    archived = _text(client.get(f"{BASE}/?show=archived"))
    assert "Old promo" in archived and "Open day" not in archived and ">Restore<" in archived


def test_the_list_runs_the_same_queries_for_many_forms(world, staff_client, app):
    client = staff_client("owner")
    _form(app, world, "First")
    client.get(f"{BASE}/")
    with counted_queries(app) as few:
        client.get(f"{BASE}/")
    for n in range(8):
        _form(app, world, f"More {n}")
    with counted_queries(app) as many:
        assert "More 7" in _text(client.get(f"{BASE}/"))
    assert len(many) == len(few)


# --- creating, duplicating, archiving --------------------------------------------------------------

def test_creating_a_form_opens_its_field_editor(world, staff_client, app):
    client = staff_client("owner")
    response = post_form(client, f"{BASE}/new", {"title": "Open Day 2026"}, follow_redirects=True)
    page = _text(response)
    assert "“Open Day 2026” is created. Add its fields." in page
    assert "No fields yet" in page and "http://acme.localhost/f/open-day-2026" in page


def test_a_taken_address_is_explained_beside_its_input(world, staff_client, app):
    _form(app, world, "Join", slug="join")
    client = staff_client("owner")
    response = post_form(client, f"{BASE}/new", {"title": "Join again", "slug": "join"})
    assert response.status_code == 400
    page = _text(response)
    assert "is taken by “Join”" in _error_beside(page, "slug")
    assert 'value="Join again"' in page  # what was typed is kept
    assert in_tenant(app, world.a, lambda: db.session.scalar(sa.select(sa.func.count()).select_from(Form))) == 1


def test_duplicate_and_archive_from_the_list(world, staff_client, app):
    ids = _form(app, world, "Join", slug="join")
    client = staff_client("owner")
    page = _text(post_form(client, f"{BASE}/{ids['id']}/duplicate", follow_redirects=True))
    assert "“Join (copy)” is a copy of “Join”, at /f/join-copy." in page and "E-mail" in page
    page = _text(post_form(client, f"{BASE}/{ids['id']}/archive", follow_redirects=True))
    assert "“Join” is archived" in page and "Join (copy)" in page
    page = _text(post_form(client, f"{BASE}/{ids['id']}/restore", follow_redirects=True))
    assert "“Join” is back at /f/join." in page


# --- fields -------------------------------------------------------------------------------------------

def test_adding_a_field_shows_it_in_the_list(world, staff_client, app):
    ids = _form(app, world, fields=())
    client = staff_client("owner")
    response = post_form(client, f"{BASE}/{ids['id']}/fields", {
        "kind": "single_choice", "label": "Shirt size", "choices": "S\nM\nL", "display": "radio",
        "required": "y", "target": ""}, follow_redirects=True)
    page = _text(response)
    assert "“Shirt size” is added." in page
    assert "<strong>Shirt size</strong> <span class=\"badge\">Required</span>" in page
    assert "Single choice · Answer only" in page


def test_a_bad_field_is_explained_and_what_was_typed_is_kept(world, staff_client, app):
    ids = _form(app, world, fields=())
    client = staff_client("owner")
    response = post_form(client, f"{BASE}/{ids['id']}/fields", {
        "kind": "single_choice", "label": "Shirt size", "choices": "", "target": ""})
    assert response.status_code == 400
    page = _text(response)
    assert _error_beside(page, "choices") == "List the choices, one per line."
    assert 'value="Shirt size"' in page and '<option selected value="single_choice">' in page
    assert in_tenant(app, world.a, lambda: db.session.scalar(sa.select(sa.func.count()).select_from(FormField))) == 0


def test_editing_a_field_keeps_its_key(world, staff_client, app):
    ids = _form(app, world)
    client = staff_client("owner")
    url = f"{BASE}/{ids['id']}/fields/{ids['fields']['phone']}"
    page = _text(client.get(url))
    assert "Edit “Phone”" in page and "stored as “phone”" in page and "Type of field: <strong>Phone</strong>" in page
    page = _text(post_form(client, url, {"label": "Mobile", "target": "contact.phone", "placeholder": "+44"},
                           follow_redirects=True))
    assert "“Mobile” is saved." in page and "Contact: Phone" in page
    assert in_tenant(app, world.a, lambda: db.session.get(FormField, ids["fields"]["phone"]).key) == "phone"


def test_a_field_of_another_form_is_not_found(world, staff_client, app):
    one, other = _form(app, world, "One"), _form(app, world, "Other")
    client = staff_client("owner")
    assert client.get(f"{BASE}/{one['id']}/fields/{other['fields']['email']}").status_code == 404


def test_moving_and_removing_fields(world, staff_client, app):
    ids = _form(app, world)
    client = staff_client("owner")
    email = ids["fields"]["email"]
    response = post_form(client, f"{BASE}/{ids['id']}/fields/{email}/move", {"direction": "up"})
    assert response.headers["Location"].endswith(f"#field-{email}")  # back on the same button
    page = _text(client.get(f"{BASE}/{ids['id']}"))
    order = re.findall(FIELD_LABEL, page)
    assert order[:3] == ["First name", "E-mail", "Last name"]
    assert re.search(r'Move up “First name”', page) and 'disabled' in page  # the first cannot go up
    page = _text(post_form(client, f"{BASE}/{ids['id']}/fields/{email}/delete", follow_redirects=True))
    assert "“E-mail” is removed from the form." in page
    assert re.findall(FIELD_LABEL, page)[:2] == ["First name", "Last name"]


# --- settings, actions, share ---------------------------------------------------------------------

def _settings_data(**overrides):
    return {"title": "Open day", "slug": "open-day", "intro": "", "submit_label": "Send",
            "thank_you_message": "Thanks!", "redirect_url": "", "primary_colour": "", "min_fill_seconds": "3",
            **overrides}


def test_settings_save_and_errors_show_beside_their_inputs(world, staff_client, app):
    ids = _form(app, world, slug="open-day")
    client = staff_client("owner")
    url = f"{BASE}/{ids['id']}/settings"
    response = post_form(client, url, _settings_data(redirect_url="javascript:alert(1)"))
    assert response.status_code == 400
    assert "https://" in _error_beside(_text(response), "redirect_url")
    page = _text(post_form(client, url, _settings_data(title="Open day 2026", primary_colour="#AA3300",
                                                       logo=(io.BytesIO(PNG), "logo.png")),
                           content_type="multipart/form-data", follow_redirects=True))
    assert "Settings saved." in page and 'value="#aa3300"' in page and 'alt="This form\'s logo"' in page
    logo = client.get(f"{BASE}/{ids['id']}/logo")
    assert logo.status_code == 200 and logo.data == PNG and logo.mimetype == "image/png"


def test_on_submit_actions_save_and_explain_problems(world, staff_client, app):
    ids = _form(app, world)
    client = staff_client("owner")
    url = f"{BASE}/{ids['id']}/actions"
    page = _text(client.get(url))
    for words in ("Role to give", "Add to these Circles", "Take turns among", "confirmation e-mail", "Portal login",
                  "primary contact"):
        assert words in page
    response = post_form(client, url, {"role": "prospect", "owner_mode": "round_robin", "portal_login": "none"})
    assert response.status_code == 400
    assert "at least two staff members" in _text(response)
    page = _text(post_form(client, url, {"role": "prospect", "owner_mode": "none", "portal_login": "password",
                                         "portal_requires_approval": "y", "tags": "open day, vip"},
                           follow_redirects=True))
    assert "On-submit actions saved." in page and 'value="open day, vip"' in page
    assert in_tenant(app, world.a, lambda: (lambda f: (f.role, f.portal_login, f.portal_requires_approval, f.tags))(
        db.session.get(Form, ids["id"]))) == ("prospect", "password", True, ["open day", "vip"])


def test_share_shows_the_link_and_the_embed_snippet(world, staff_client, app):
    ids = _form(app, world, "Open <day>", slug="open-day")
    page = _text(staff_client("owner").get(f"{BASE}/{ids['id']}/share"))
    assert 'value="http://acme.localhost/f/open-day"' in page
    snippet = re.search(r'<textarea id="embed-snippet"[^>]*>(.*?)</textarea>', page, re.S).group(1)
    assert "&lt;iframe src=&#34;http://acme.localhost/f/open-day/embed&#34;" in snippet
    assert "&lt;script src=&#34;http://acme.localhost/static/forms/embed.js&#34; async&gt;&lt;/script&gt;" in snippet
    assert "Open &amp;lt;day&amp;gt;" in snippet  # the title, escaped in the snippet, and again on the page
    assert "Copy embed code" in page


# --- the live preview -----------------------------------------------------------------------------------

def test_the_preview_renders_the_unsaved_draft_as_the_public_sees_it(world, staff_client, app):
    ids = _form(app, world)
    client = staff_client("owner")
    token = csrf_token(client, f"{BASE}/{ids['id']}")
    response = client.post(f"{BASE}/{ids['id']}/preview", data={
        "csrf_token": token, "preview_new_field": "1", "kind": "single_choice", "label": "Shirt <size>",
        "choices": "Small\nLarge", "display": "radio"})
    assert response.status_code == 200
    page = _text(response)
    assert "Shirt &lt;size&gt;" in page and 'value="Small"' in page and 'type="radio"' in page
    assert "<h1>Open day</h1>" in page and " inert" in page  # nothing can be sent from it
    edit = client.post(f"{BASE}/{ids['id']}/preview", data={
        "csrf_token": token, "preview_field_id": ids["fields"]["phone"], "label": "Mobile number"})
    assert "Mobile number" in _text(edit) and ">Phone<" not in _text(edit)
    title = client.post(f"{BASE}/{ids['id']}/preview", data={"csrf_token": token, "title": "Open day 2026",
                                                            "primary_colour": "#aa3300"})
    assert "<h1>Open day 2026</h1>" in _text(title) and "--brand: #aa3300" in _text(title)
    assert in_tenant(app, world.a, lambda: db.session.get(FormField, ids["fields"]["phone"]).label) == "Phone"


def test_the_editor_pages_carry_the_preview_frame(world, staff_client, app):
    ids = _form(app, world)
    page = _text(staff_client("owner").get(f"{BASE}/{ids['id']}"))
    assert f'data-preview-url="{BASE}/{ids["id"]}/preview"' in page
    assert 'sandbox="allow-same-origin"' in page and "/static/forms/builder.js" in page


# --- submissions --------------------------------------------------------------------------------------

def _submissions(app, world, n=3, **attrs):
    def make():
        form = db.session.scalar(sa.select(Form).where(Form.title == "Open day")) or make_form("Open day")
        contact = db.session.scalar(sa.select(Contact).where(Contact.email == "ada@x.test")) or \
            make_contact("Ada", "Lovelace", email="ada@x.test")
        start = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)
        subs = [make_submission(form, {"first_name": f"Ada {i}", "email": "ada@x.test", "company": "=HYPERLINK()"},
                                submitted_at=start + timedelta(days=i), contact_id=contact.id,
                                source_url="https://acme.example/landing", utm={"utm_source": "news"},
                                state="processed", **attrs) for i in range(n)]
        return {"form": form.id, "contact": contact.id, "ids": [s.id for s in subs]}
    return in_tenant(app, world.a, make)


def test_submissions_newest_first_with_their_contact_source_utm_and_state(world, staff_client, app):
    data = _submissions(app, world)
    in_tenant(app, world.a, lambda: setattr(db.session.get(FormSubmission, data["ids"][0]), "state", "failed") or
          setattr(db.session.get(FormSubmission, data["ids"][0]), "error", "SMTP down"))
    page = _text(staff_client("admin").get(f"{BASE}/submissions"))
    times = re.findall(r"(2026-03-0\d 09:00) UTC", page)
    assert times == ["2026-03-03 09:00", "2026-03-02 09:00", "2026-03-01 09:00"]
    assert f'href="/staff/contacts/{data["contact"]}">Ada Lovelace</a>' in page
    assert "https://acme.example/landing" in page and "source: news" in page
    assert "Failed" in page and "SMTP down" in page and "Processed" in page


def test_submissions_are_paged_by_keyset_and_filtered(world, staff_client, app):
    data = _submissions(app, world, n=55)
    in_tenant(app, world.a, lambda: make_submission(make_form("Other form"), {"x": "1"},
                                              submitted_at=datetime(2026, 1, 1, tzinfo=timezone.utc)))
    client = staff_client("owner")
    first = _text(client.get(f"{BASE}/{data['form']}/submissions"))
    assert first.count("data-label=\"Time\"") == 50
    after = re.search(r'href="([^"]+after=[^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    second = _text(client.get(after))
    assert second.count("data-label=\"Time\"") == 5 and "2026-03-01 09:00" in second and 'rel="next"' not in second
    dated = _text(client.get(f"{BASE}/submissions?date_from=2026-03-02&date_to=2026-03-03"))
    assert re.findall(r"(2026-03-0\d) 09:00 UTC", dated) == ["2026-03-03", "2026-03-02"]
    other = _text(client.get(f"{BASE}/submissions?form={data['form'] + 1}"))
    assert "Other form" in other and "Ada Lovelace" not in other
    bad = client.get(f"{BASE}/submissions?date_from=March")
    assert bad.status_code == 400 and _error_beside(_text(bad), "filter-date_from") == "Enter a date as YYYY-MM-DD."


def _restricted_submissions(app, world) -> dict:
    """Open day's submissions, as Staff see them once the tenant restricts them to their own
    contacts and their circles': one on Ada (nobody's, so hidden from Sam Staff), one on Vera
    (Sam's own), one not processed yet (no contact)."""
    data = _submissions(app, world, n=1)
    _grant_staff(app, world, "forms.submissions.view")

    def make():
        restrict_staff_visibility()
        form = db.session.get(Form, data["form"])
        vera = make_contact("Vera", "Visible", email="vera@x.test", owner_id=world.a.members["staff"].id)
        data["visible"] = make_submission(form, {"first_name": "Vera", "email": "vera@x.test"}, state="processed",
                                          contact_id=vera.id, source_url="https://acme.example/vera",
                                          submitted_at=datetime(2026, 3, 5, 9, 0, tzinfo=timezone.utc)).id
        data["waiting"] = make_submission(form, {"first_name": "Una", "email": "una@x.test"},
                                          submitted_at=datetime(2026, 3, 6, 9, 0, tzinfo=timezone.utc)).id
        data["hidden"] = data["ids"][0]
    in_tenant(app, world.a, make)
    return data


def test_a_submission_on_a_hidden_contact_shows_only_that_it_came(world, staff_client, app):
    data = _restricted_submissions(app, world)
    for url in (f"{BASE}/submissions", f"{BASE}/{data['form']}/submissions"):
        page = _text(staff_client("staff").get(url))
        assert page.count('data-label="Time"') == 3, "every submission is listed"
        assert "2026-03-01 09:00 UTC" in page, "its time is shown"
        assert page.count("Not visible to you") == 1 and page.count("Processed") == 2
        for secret in ("Lovelace", "Ada 0", "ada@x.test", "acme.example/landing", f"/staff/contacts/{data['contact']}",
                       f'href="{BASE}/submissions/{data["hidden"]}"'):
            assert secret not in page, secret
        assert f'href="{BASE}/submissions/{data["visible"]}"' in page and "Vera Visible" in page
        assert f'href="{BASE}/submissions/{data["waiting"]}"' in page and "None yet" in page
    full = _text(staff_client("admin").get(f"{BASE}/submissions"))
    assert "Not visible to you" not in full and "Ada Lovelace" in full and "acme.example/landing" in full


def test_the_page_of_a_submission_on_a_hidden_contact_is_a_404(world, staff_client, app):
    data = _restricted_submissions(app, world)
    client = staff_client("staff")
    hidden = client.get(f"{BASE}/submissions/{data['hidden']}")
    assert hidden.status_code == 404 and "Ada 0" not in _text(hidden)
    assert "<dd class=\"pre-line\">Vera</dd>" in _text(client.get(f"{BASE}/submissions/{data['visible']}"))
    assert "<dd class=\"pre-line\">Una</dd>" in _text(client.get(f"{BASE}/submissions/{data['waiting']}"))
    assert "<dd class=\"pre-line\">Ada 0</dd>" in _text(staff_client("admin").get(f"{BASE}/submissions/{data['hidden']}"))


@pytest.mark.parametrize("scope", ["all forms", "one form"])
def test_exports_leave_out_submissions_on_hidden_contacts(world, staff_client, app, scope):
    data = _restricted_submissions(app, world)
    query = "" if scope == "all forms" else f"&form={data['form']}"

    def exported(role):
        client = staff_client(role)
        text = _text(client.get(f"{BASE}/submissions/export?as=csv{query}"))
        rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))[1:]
        sheet = load_workbook(io.BytesIO(client.get(f"{BASE}/submissions/export?as=xlsx{query}").data))["Submissions"]
        cells = [[str(c.value or "") for c in row] for row in sheet.iter_rows()][1:]
        return text, rows, cells

    text, rows, cells = exported("staff")
    for found in (rows, cells):
        assert [r[0] for r in found] == ["2026-03-06 09:00:00", "2026-03-05 09:00:00"], "Una's and Vera's only"
        assert found[1][2:4] == ["Vera Visible", "vera@x.test"]
        assert any("Una" in cell for cell in found[0]), "not processed yet: no contact to hide it"
    for secret in ("Lovelace", "Ada 0", "ada@x.test", "acme.example/landing", "2026-03-01"):
        assert secret not in text and all(secret not in cell for row in cells for cell in row), secret
    text, rows, cells = exported("admin")
    assert len(rows) == len(cells) == 3 and "Ada Lovelace" in text


def test_a_submission_shows_the_answers_labelled_by_the_fields(world, staff_client, app):
    data = _submissions(app, world, n=1)
    page = _text(staff_client("owner").get(f"{BASE}/submissions/{data['ids'][0]}"))
    assert "<dt>First name</dt><dd class=\"pre-line\">Ada 0</dd>" in page
    assert "<dt>Company</dt><dd class=\"pre-line\">=HYPERLINK()</dd>" in page  # as sent, on the page
    assert "https://acme.example/landing" in page and "utm_source" in page


def test_exports_are_spreadsheet_safe(world, staff_client, app):
    data = _submissions(app, world, n=2)
    client = staff_client("owner")
    response = client.get(f"{BASE}/submissions/export?as=csv&form={data['form']}")
    assert response.mimetype == "text/csv" and "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(_text(response).lstrip("\ufeff"))))
    header = rows[0]
    assert header[:4] == ["Submitted (UTC)", "Form", "Contact", "Contact e-mail"] and "Company" in header
    assert rows[1][header.index("Company")] == "'=HYPERLINK()"
    assert rows[1][0] == "2026-03-02 09:00:00" and rows[1][2] == "Ada Lovelace"
    workbook = load_workbook(io.BytesIO(client.get(f"{BASE}/submissions/export?as=xlsx").data))
    sheet = workbook["Submissions"]
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[0][-1] == "Answers" and len(values) == 3
    assert "Company: '=HYPERLINK()" not in values[1][-1] or values[1][-1].startswith("First name")
    assert all(not str(v).startswith("=") for row in values for v in row if v is not None)
    exports = in_tenant(app, world.a, lambda: db.session.scalars(
        sa.select(AuditEvent.details).where(AuditEvent.action == "form.submissions_exported")).all())
    assert exports == [{"format": "csv", "form": data["form"]}, {"format": "xlsx"}]


def test_excel_exports_count_the_submissions_they_would_hold(world, staff_client, app, monkeypatch):
    data = _submissions(app, world, n=2)
    in_tenant(app, world.a, lambda: [make_contact("Extra") for _ in range(3)])  # contacts are not what is counted
    client = staff_client("owner")
    monkeypatch.setattr("crm.export.XLSX_MAX", 2)
    ok = client.get(f"{BASE}/submissions/export?as=xlsx&form={data['form']}")
    assert ok.status_code == 200 and ok.mimetype.endswith("spreadsheetml.sheet")
    monkeypatch.setattr("crm.export.XLSX_MAX", 1)
    refused = client.get(f"{BASE}/submissions/export?as=xlsx&form={data['form']}", follow_redirects=True)
    assert "Excel exports hold up to 1 submissions" in _text(refused)


def test_the_contact_page_lists_its_form_submissions(world, staff_client, app):
    data = _submissions(app, world, n=2)
    page = _text(staff_client("owner").get(f"/staff/contacts/{data['contact']}"))
    section = page[page.index("Form submissions"):]
    assert section.count(f'href="{BASE}/submissions/') == 2 and "Open day" in section
    assert "Form submissions" not in _text(staff_client("staff").get(f"/staff/contacts/{data['contact']}"))


def test_the_submissions_list_runs_the_same_queries_for_more_rows(world, staff_client, app):
    _submissions(app, world, n=1)
    client = staff_client("owner")
    client.get(f"{BASE}/submissions")
    with counted_queries(app) as few:
        client.get(f"{BASE}/submissions")
    _submissions(app, world, n=30)
    with counted_queries(app) as many:
        assert _text(client.get(f"{BASE}/submissions")).count('data-label="Time"') == 31
    assert len(many) == len(few)


def test_staff_allowed_only_submissions_read_them_but_cannot_build(world, staff_client, app):
    data = _submissions(app, world, n=1)
    _grant_staff(app, world, "forms.submissions.view")
    client = staff_client("staff")
    listing = _text(client.get(f"{BASE}/"))
    assert f'href="{BASE}/"' in listing and "Open day" in listing  # the nav link, and the form
    assert f'href="{BASE}/{data["form"]}"' not in listing and "New form" not in listing and ">Archive<" not in listing
    page = _text(client.get(f"{BASE}/{data['form']}/submissions"))
    assert ">Submissions</a>" in page and ">Settings</a>" not in page and "Ada Lovelace" in page
    assert client.get(f"{BASE}/{data['form']}").status_code == 403


def test_the_edit_page_keeps_a_target_that_is_no_longer_listed(world, staff_client, app):
    def make():
        from tests.factories import make_custom_field
        budget = make_custom_field("Budget", "number")
        form = make_form("Join", fields=({"key": "budget", "kind": "number", "label": "Budget",
                                          "target": f"custom.{budget.id}"},))
        budget.archived_at = datetime.now(timezone.utc)
        return form.id, form.fields[0].id, budget.id
    form_id, field_id, budget_id = in_tenant(app, world.a, make)
    page = _text(staff_client("owner").get(f"{BASE}/{form_id}/fields/{field_id}"))
    assert f'<option selected value="custom.{budget_id}">Contact: Budget (custom, archived)</option>' in page
