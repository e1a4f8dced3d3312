"""The public kickoff form, /f/<slug> and /f/<slug>/embed: what a prospect sees and sends, and
every protection that works without the session cookie (form token, honeypot, minimum fill
time, rate limits, CSP framing)."""
from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from freezegun import freeze_time
from werkzeug.datastructures import MultiDict

from core.db import db
from core.tenancy import tenant_context
from crm.models import Contact
from crm.setup import settings
from forms.models import FieldKind, FormSubmission, PortalLogin
from tests.forms.factories import STANDARD_FIELDS as STANDARD_FIELDS_FOR_HIDDEN
from tests.forms.factories import add_field, make_form

TOKEN_RE = re.compile(r'name="kf_token" type="hidden" value="([^"]*)"')
PERSON = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "phone": "+44 20 7946 0958",
          "company": "Analytical Engines"}
PNG = b"\x89PNG\r\n\x1a\n" + b"form logo"


# --- helpers ------------------------------------------------------------------------------------

@pytest.fixture
def acme(app, world):
    """Run a block inside tenant A and commit it: `with acme(): make_form(...)`."""
    from contextlib import contextmanager

    @contextmanager
    def block():
        with app.app_context(), tenant_context(world.a.id):
            yield
            db.session.commit()
    return block


@pytest.fixture
def public(client_for, world):
    """A visitor on tenant A's host, with no session and no CSRF token of its own."""
    return client_for(world.a.slug)


def new_form(acme, **attrs):
    attrs.setdefault("min_fill_seconds", 0)
    with acme():
        form = make_form(attrs.pop("title", "Join Acme"), **attrs)
        return form.slug


def token_of(response) -> str:
    match = TOKEN_RE.search(response.get_data(as_text=True))
    assert match, response.get_data(as_text=True)[:2000]
    return html.unescape(match.group(1))


def submit(client, path: str, answers: dict | MultiDict, *, token: str | None = None, **kwargs):
    """Open the page (for its token) and send the answers, as a browser would."""
    if token is None:
        token = token_of(client.get(path))
    data = MultiDict(answers)
    data.setdefault("kf_token", token)
    return client.post(path, data=data, **kwargs)


def submissions(app, world) -> list[FormSubmission]:
    with app.app_context(), tenant_context(world.a.id):
        rows = list(db.session.scalars(sa.select(FormSubmission).order_by(FormSubmission.id)))
        db.session.expunge_all()
        return rows


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


# --- the page -------------------------------------------------------------------------------------

def test_the_form_page_shows_every_field_with_its_label_and_help(app, world, acme, public):
    slug = new_form(acme, intro="Tell us about your project.")
    with acme():
        from forms.models import Form
        form = db.session.scalar(sa.select(Form).where(Form.slug == slug))
        add_field(form, key="about", kind=FieldKind.SECTION, label="About the project")
        add_field(form, key="budget", kind=FieldKind.NUMBER, label="Budget", help_text="In euros, roughly.",
                  placeholder="5000")
    response = public.get(f"/f/{slug}")
    body = text(response)
    assert response.status_code == 200
    assert "<h1>Join Acme</h1>" in body and "Tell us about your project." in body
    for label in ("First name", "Last name", "E-mail", "Phone", "Company", "Budget"):
        assert re.search(rf'<label for="f-[a-z_]+">{label}', body), label
    assert '<h2 class="kf-section">About the project</h2>' in body
    assert 'aria-describedby="f-budget-help"' in body and "In euros, roughly." in body
    assert 'placeholder="5000"' in body
    assert 'type="email"' in body and 'type="tel"' in body and 'type="number"' in body
    # Protections ride along: a signed token and a honeypot people never see.
    assert token_of(response)
    assert 'class="kf-hp" aria-hidden="true"' in body and 'tabindex="-1"' in body
    # Each rendering has its own token, so no cache may keep or share one.
    assert response.headers["Cache-Control"] == "no-store"
    assert token_of(public.get(f"/f/{slug}")) != token_of(response)
    # The public form sets no cookie: nothing here relies on a session.
    assert "Set-Cookie" not in response.headers


def test_the_normal_page_may_not_be_framed(world, acme, public):
    slug = new_form(acme)
    csp = public.get(f"/f/{slug}").headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp


def test_unknown_archived_or_platform_host_forms_are_404(app, world, acme, public, client_for):
    from core.db import utcnow
    slug = new_form(acme)
    archived = new_form(acme, archived_at=utcnow())
    assert public.get("/f/no-such-form").status_code == 404
    assert public.get(f"/f/{archived}").status_code == 404
    assert public.post(f"/f/{archived}", data={}).status_code == 404
    assert public.get(f"/f/{archived}/embed").status_code == 404
    assert client_for(None).get(f"/f/{slug}").status_code == 404


def test_another_tenants_form_is_404(app, world, client_for):
    with app.app_context(), tenant_context(world.b.id):
        make_form("CANARY-B form", slug="globex-only")
        db.session.commit()
    response = client_for(world.a.slug).get("/f/globex-only")
    assert response.status_code == 404
    assert "CANARY-B" not in text(response)
    assert client_for(world.b.slug).get("/f/globex-only").status_code == 200


# --- a fresh visit's inputs, rendered once per form version ------------------------------------

def _without_token(body: str) -> str:
    return TOKEN_RE.sub('name="kf_token" type="hidden" value=""', body)


@pytest.mark.parametrize("suffix", ["", "/embed"])
def test_a_fresh_visit_gets_the_same_page_as_a_rendered_one(app, world, acme, public, suffix):
    """A plain visit's inputs come from the process's copy (forms.public._blank_form_html); a
    visit that fills a hidden input from its address renders them. The two pages are the same
    but for the token, the filled value, and each visit's own referrer, escaped."""
    slug = new_form(acme, fields=[*STANDARD_FIELDS_FOR_HIDDEN,
                                  dict(key="campaign", kind=FieldKind.HIDDEN, url_parameter="utm_campaign"),
                                  dict(key="budget", kind=FieldKind.SINGLE_CHOICE, label="Budget",
                                       choices=["Small", "Large"], required=True)])
    referrer = 'https://blog.example/post?q="quoted"&tag=<b>'
    escaped = "https://blog.example/post?q=&#34;quoted&#34;&amp;tag=&lt;b&gt;"
    for _ in range(2):  # the second plain visit is served from the copy the first one made
        plain = public.get(f"/f/{slug}{suffix}", headers={"Referer": referrer}).get_data(as_text=True)
        filled = public.get(f"/f/{slug}{suffix}?utm_campaign=spring",
                            headers={"Referer": referrer}).get_data(as_text=True)
        assert f'name="kf_source_url" type="hidden" value="{escaped}"' in plain
        assert 'name="campaign" type="hidden" value="spring"' in filled
        assert _without_token(plain) == _without_token(filled).replace(
            'name="campaign" type="hidden" value="spring"', 'name="campaign" type="hidden" value=""')
    other = public.get(f"/f/{slug}{suffix}").get_data(as_text=True)
    assert 'name="kf_source_url" type="hidden" value=""' in other and "blog.example" not in other
    # Each visit's token is its own, and works.
    tokens = {token_of(public.get(f"/f/{slug}{suffix}")) for _ in range(3)}
    assert len(tokens) == 3
    response = submit(public, f"/f/{slug}{suffix}", {**PERSON, "budget": "Large"}, token=tokens.pop())
    assert response.status_code == 200 and len(submissions(app, world)) == 1


def test_an_edited_form_shows_the_change_on_the_next_visit(app, world, acme, public):
    from forms.models import Form, FormField

    slug = new_form(acme)
    assert ">First name" in text(public.get(f"/f/{slug}"))
    with acme():
        form = db.session.scalar(sa.select(Form).where(Form.slug == slug))
        field = db.session.scalar(sa.select(FormField).where(FormField.form_id == form.id,
                                                             FormField.key == "first_name"))
        field.label, form.submit_label = "Given name", "Count me in"
    body = text(public.get(f"/f/{slug}"))
    assert ">Given name" in body and ">First name" not in body
    assert ">Count me in</button>" in body
    with acme():
        form = db.session.scalar(sa.select(Form).where(Form.slug == slug))
        add_field(form, key="budget", kind=FieldKind.NUMBER, label="Budget")
    assert '<label for="f-budget">Budget' in text(public.get(f"/f/{slug}"))
    # A CRM setting the inputs depend on (the phone region) is configuration too.
    with acme():
        settings().default_region = "GB"
    assert public.get(f"/f/{slug}").status_code == 200


def test_two_tenants_forms_at_the_same_address_show_their_own_inputs(app, world, acme, client_for):
    with acme():
        make_form("Acme's form", slug="join", fields=[dict(key="email", kind=FieldKind.EMAIL, label="Acme e-mail")])
    with app.app_context(), tenant_context(world.b.id):
        make_form("CANARY-B form", slug="join", fields=[dict(key="email", kind=FieldKind.EMAIL,
                                                             label="CANARY-B e-mail")])
        db.session.commit()
    a, b = client_for(world.a.slug), client_for(world.b.slug)
    for _ in range(3):  # each served again from its own tenant's copy
        page_a, page_b = text(a.get("/f/join")), text(b.get("/f/join"))
        assert "Acme e-mail" in page_a and "CANARY-B" not in page_a
        assert "CANARY-B e-mail" in page_b and "Acme e-mail" not in page_b
    # A token of one tenant's form is worthless on the other's.
    response = submit(b, "/f/join", {"email": "ada@example.com"}, token=token_of(a.get("/f/join")))
    assert response.status_code == 400


# --- sending it ---------------------------------------------------------------------------------

def test_a_submission_is_stored_and_thanked_for(app, world, acme, public, deliver):
    slug = new_form(acme, thank_you_message="Thanks, we will call you within a day.")
    response = submit(public, f"/f/{slug}?utm_source=newsletter&utm_campaign=spring", PERSON,
                      headers={"User-Agent": "TestBrowser/1.0"}, environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert response.status_code == 200, text(response)[:3000]
    assert "Thanks, we will call you within a day." in text(response)
    assert 'role="status"' in text(response)
    [stored] = submissions(app, world)
    assert stored.answers == PERSON
    assert stored.utm == {"utm_source": "newsletter", "utm_campaign": "spring"}
    assert stored.ip_address == "203.0.113.7" and stored.user_agent == "TestBrowser/1.0"
    assert stored.source_url.startswith("http://acme.localhost/f/")
    deliver()
    with app.app_context(), tenant_context(world.a.id):
        contact = db.session.scalar(sa.select(Contact).where(Contact.email == "ada@example.com"))
        assert contact is not None and contact.first_name == "Ada"


def test_the_referrer_of_the_page_is_the_source_url(app, world, acme, public):
    slug = new_form(acme)
    token = token_of(public.get(f"/f/{slug}", headers={"Referer": "https://blog.example/post?utm_medium=blog"}))
    page = public.get(f"/f/{slug}", headers={"Referer": "https://blog.example/post?utm_medium=blog"})
    source = re.search(r'name="kf_source_url" type="hidden" value="([^"]*)"', page.get_data(as_text=True)).group(1)
    response = submit(public, f"/f/{slug}", {**PERSON, "kf_source_url": html.unescape(source)}, token=token)
    assert response.status_code == 200
    [stored] = submissions(app, world)
    assert stored.source_url == "https://blog.example/post?utm_medium=blog"
    assert stored.utm == {"utm_medium": "blog"}


def test_double_click_and_retry_store_one_submission_and_thank_the_same(app, world, acme, public):
    slug = new_form(acme, thank_you_message="See you soon.")
    token = token_of(public.get(f"/f/{slug}"))
    first = submit(public, f"/f/{slug}", PERSON, token=token)
    again = submit(public, f"/f/{slug}", PERSON, token=token)
    assert first.status_code == again.status_code == 200
    assert "See you soon." in text(first) and "See you soon." in text(again)
    assert len(submissions(app, world)) == 1
    # A new rendering of the page is a new submission.
    submit(public, f"/f/{slug}", PERSON)
    assert len(submissions(app, world)) == 2


def test_a_warm_post_stores_its_submission_in_one_statement(app, world, acme, public):
    """Past the tenant (with its set_config), a submission is one INSERT … ON CONFLICT DO
    NOTHING: no read of the form (cached with the tenant's configuration) and no pre-read or
    savepoint for the idempotency key. A repeat of the page reads the first one instead."""
    from tests.test_query_counts import counted_queries

    slug = new_form(acme, thank_you_message="See you soon.")
    submit(public, f"/f/{slug}", PERSON)  # warm: the form's cached shape, compiled statements
    token = token_of(public.get(f"/f/{slug}"))
    with counted_queries(app) as statements:
        assert "See you soon." in text(submit(public, f"/f/{slug}", PERSON, token=token))
    assert len(statements) == 2 and "ON CONFLICT" in statements[1], statements
    with counted_queries(app) as again:
        assert "See you soon." in text(submit(public, f"/f/{slug}", PERSON, token=token))
    assert len(again) == 3, again
    assert len(submissions(app, world)) == 2


def test_success_redirects_when_the_form_says_so(app, world, acme, public):
    slug = new_form(acme, redirect_url="https://www.acme.example/welcome")
    page = public.get(f"/f/{slug}")
    # The browser must be allowed to follow the post's redirect to the other site.
    assert "form-action 'self' https://www.acme.example" in page.headers["Content-Security-Policy"]
    response = submit(public, f"/f/{slug}", PERSON, token=token_of(page))
    assert response.status_code == 303
    assert response.headers["Location"] == "https://www.acme.example/welcome"
    assert len(submissions(app, world)) == 1


def test_in_the_embed_a_redirect_is_left_to_the_host_page(app, world, acme, public):
    slug = new_form(acme, redirect_url="https://www.acme.example/welcome")
    response = submit(public, f"/f/{slug}/embed", PERSON)
    assert response.status_code == 200
    body = text(response)
    assert '<a href="https://www.acme.example/welcome" target="_top" data-kf-redirect>Continue</a>' in body
    assert "forms/frame.js" in body


def test_validation_errors_keep_the_answers_and_sit_beside_the_fields(app, world, acme, public):
    slug = new_form(acme)
    response = submit(public, f"/f/{slug}", {"first_name": "", "last_name": "Lovelace", "email": "not-an-address",
                                             "phone": "12", "company": "Engines & Co"})
    assert response.status_code == 422
    body = text(response)
    assert re.search(r'aria-describedby="f-first_name-error" aria-invalid="true"', body)
    assert '<small id="f-first_name-error" class="field-error">Please fill this in.</small>' in body
    assert '<small id="f-email-error" class="field-error">Enter an e-mail address like name@example.com.</small>' in body
    assert 'id="f-phone-error"' in body and "not a valid phone number" in body
    assert 'value="Lovelace"' in body and 'value="not-an-address"' in body and 'value="Engines & Co"' in body
    assert submissions(app, world) == []


# --- every field kind's validation --------------------------------------------------------------

KINDS = [
    # kind, field attributes, a bad answer and its message, a good answer and how it is stored
    (FieldKind.SHORT_TEXT, {}, "x" * 301, "Use at most 300 characters.", "  Ada  ", "Ada"),
    (FieldKind.LONG_TEXT, {}, "x" * 5001, "Use at most 5000 characters.", "Line one\r\nLine two", "Line one\r\nLine two"),
    (FieldKind.EMAIL, {}, "ada@", "Enter an e-mail address like name@example.com.", "ada@example.com", "ada@example.com"),
    (FieldKind.PHONE, {}, "555", "is not a valid phone number", "+1 415 555 0123", "+1 415 555 0123"),
    (FieldKind.NUMBER, {}, "lots", "Enter a number, like 42 or 3.5.", "12.5", "12.5"),
    (FieldKind.DATE, {}, "2025-02-30", "Enter a date, like 2025-03-31.", "2025-02-28", "2025-02-28"),
    (FieldKind.SINGLE_CHOICE, {"choices": ["Small", "Large"]}, "Huge", "Choose one of the options.", "Large", "Large"),
    (FieldKind.SINGLE_CHOICE, {"choices": ["Small", "Large"], "display": "radio"}, "Huge", "Not a valid choice.",
     "Small", "Small"),
    (FieldKind.MULTI_CHOICE, {"choices": ["Web", "App"]}, ["Web", "Fax"], "Choose from the options shown.",
     ["Web", "App"], ["Web", "App"]),
    (FieldKind.YES_NO, {}, "maybe", "Not a valid choice.", "no", "no"),
    (FieldKind.HIDDEN, {"url_parameter": "ref"}, None, None, "partner-7", "partner-7"),
]


@pytest.mark.parametrize("kind, attrs, bad, message, good, stored", KINDS,
                         ids=[f"{k[0]}-{k[1].get('display', '')}" for k in KINDS])
def test_each_field_kind_checks_its_answer(app, world, acme, public, kind, attrs, bad, message, good, stored):
    slug = new_form(acme, fields=[dict(key="email", kind=FieldKind.EMAIL, label="E-mail", required=True),
                                  dict(key="answer", kind=kind, label="The question", **attrs)])
    if bad is not None:
        response = submit(public, f"/f/{slug}", MultiDict([("email", "ada@example.com"),
                                                            *[("answer", v) for v in (bad if isinstance(bad, list) else [bad])]]))
        assert response.status_code == 422
        assert message in text(response)
    response = submit(public, f"/f/{slug}", MultiDict([("email", "ada@example.com"),
                                                        *[("answer", v) for v in (good if isinstance(good, list) else [good])]]))
    assert response.status_code == 200, text(response)[:3000]
    [row] = submissions(app, world)
    assert row.answers["answer"] == stored


@pytest.mark.parametrize("kind, attrs, message", [
    (FieldKind.SHORT_TEXT, {}, "Please fill this in."),
    (FieldKind.EMAIL, {}, "Please fill this in."),
    (FieldKind.DATE, {}, "Please fill this in."),
    (FieldKind.SINGLE_CHOICE, {"choices": ["A", "B"]}, "Choose an answer."),
    (FieldKind.SINGLE_CHOICE, {"choices": ["A", "B"], "display": "radio"}, "Choose an answer."),
    (FieldKind.MULTI_CHOICE, {"choices": ["A", "B"]}, "Choose at least one."),
    (FieldKind.YES_NO, {}, "Choose an answer."),
    (FieldKind.CONSENT, {"terms_url": "https://acme.example/terms"}, "Tick this box to continue."),
])
def test_required_fields_say_so(app, world, acme, public, kind, attrs, message):
    slug = new_form(acme, fields=[dict(key="answer", kind=kind, label="The question", required=True, **attrs)])
    response = submit(public, f"/f/{slug}", {"answer": "   "} if kind in (FieldKind.SHORT_TEXT,) else {})
    assert response.status_code == 422
    assert f'<small id="f-answer-error" class="field-error">{message}</small>' in text(response)


def test_phone_numbers_are_read_in_the_tenants_region(app, world, acme, public):
    slug = new_form(acme, fields=[dict(key="phone", kind=FieldKind.PHONE, label="Phone", required=True)])
    assert submit(public, f"/f/{slug}", {"phone": "030 1234567"}).status_code == 422  # not a US number
    with acme():
        settings().default_region = "DE"
    response = submit(public, f"/f/{slug}", {"phone": "030 1234567"})
    assert response.status_code == 200, text(response)[:2000]
    assert submissions(app, world)[0].answers["phone"] == "030 1234567"


def test_choices_render_as_dropdown_radios_and_checkboxes(world, acme, public):
    slug = new_form(acme, fields=[
        dict(key="size", kind=FieldKind.SINGLE_CHOICE, label="Size", choices=["S", "M"]),
        dict(key="colour", kind=FieldKind.SINGLE_CHOICE, label="Colour", choices=["Red", "Blue"], display="radio"),
        dict(key="topics", kind=FieldKind.MULTI_CHOICE, label="Topics", choices=["Web", "App"]),
        dict(key="news", kind=FieldKind.YES_NO, label="Newsletter?"),
    ])
    body = text(public.get(f"/f/{slug}"))
    assert '<select id="f-size" name="size"><option value="">Choose…</option><option value="S">S</option>' in body
    assert '<legend>Colour</legend>' in body and 'type="radio" value="Red"' in body
    assert '<legend>Topics</legend>' in body and 'type="checkbox" value="App"' in body
    assert '<legend>Newsletter?</legend>' in body and 'value="yes"> Yes</label>' in body


def test_consent_links_its_terms_and_is_stored_as_yes(app, world, acme, public):
    slug = new_form(acme, fields=[
        dict(key="terms", kind=FieldKind.CONSENT, label="I accept the terms", required=True,
             terms_url="https://acme.example/terms"),
        dict(key="sneaky", kind=FieldKind.CONSENT, label="Sneaky", terms_url="javascript:alert(1)"),
    ])
    body = text(public.get(f"/f/{slug}"))
    assert '<a href="https://acme.example/terms" target="_blank" rel="noopener noreferrer">read the terms' in body
    assert "javascript:" not in body
    assert submit(public, f"/f/{slug}", {"terms": "y"}).status_code == 200
    assert submissions(app, world)[0].answers == {"terms": "yes", "sneaky": ""}


def test_overlong_hidden_values_are_clipped_not_refused(app, world, acme, public):
    # Nobody could correct an error on an input they cannot see.
    slug = new_form(acme, fields=[dict(key="ref", kind=FieldKind.HIDDEN, url_parameter="ref")])
    response = submit(public, f"/f/{slug}", {"ref": "x" * 900, "kf_source_url": "https://a.example/" + "y" * 3000})
    assert response.status_code == 200
    [row] = submissions(app, world)
    assert row.answers["ref"] == "x" * 500 and len(row.source_url) == 2000


def test_hidden_fields_come_from_the_url(app, world, acme, public):
    slug = new_form(acme, fields=[dict(key="email", kind=FieldKind.EMAIL, label="E-mail", required=True),
                                  dict(key="campaign", kind=FieldKind.HIDDEN, url_parameter="utm_campaign")])
    path = f"/f/{slug}?utm_campaign=spring-launch"
    page = public.get(path)
    assert 'name="campaign" type="hidden" value="spring-launch"' in text(page)
    response = submit(public, path, {"email": "ada@example.com", "campaign": "spring-launch"}, token=token_of(page))
    assert response.status_code == 200
    row = submissions(app, world)[0]
    assert row.answers["campaign"] == "spring-launch" and row.utm == {"utm_campaign": "spring-launch"}


def test_a_password_for_the_portal_is_asked_twice_checked_and_never_shown_again(app, world, acme, public):
    slug = new_form(acme, portal_login=PortalLogin.PASSWORD)
    page = text(public.get(f"/f/{slug}"))
    assert "Choose a password for your account" in page and "Repeat the password" in page
    weak = submit(public, f"/f/{slug}", {**PERSON, "kf_password": "short", "kf_password_confirm": "short"})
    assert weak.status_code == 422 and "Use at least 10 characters." in text(weak)
    strong = "Quiet-harbour-lantern-1987"
    differ = submit(public, f"/f/{slug}", {**PERSON, "kf_password": strong, "kf_password_confirm": strong + "x"})
    assert differ.status_code == 422 and "The two passwords are not the same." in text(differ)
    assert strong not in text(differ)
    ok = submit(public, f"/f/{slug}", {**PERSON, "kf_password": strong, "kf_password_confirm": strong})
    assert ok.status_code == 200, text(ok)[:3000]
    [row] = submissions(app, world)
    assert row.portal_password_hash and strong not in row.portal_password_hash
    assert "kf_password" not in row.answers


# --- protections -------------------------------------------------------------------------------

def test_posts_need_no_session_or_csrf_cookie(app, world, acme, client_for):
    slug = new_form(acme)
    reader, sender = client_for(world.a.slug), client_for(world.a.slug)
    token = token_of(reader.get(f"/f/{slug}"))  # rendered in one browser ...
    response = submit(sender, f"/f/{slug}", PERSON, token=token)  # ... sent from a cookieless one
    assert response.status_code == 200
    assert app.config["WTF_CSRF_ENABLED"] is not False  # the session CSRF is on elsewhere
    assert len(submissions(app, world)) == 1


@pytest.mark.parametrize("token", ["", "forged", "eyJrIjoiYSIsInQiOjF9.ZZZZZZ.forgedsignature"])
def test_a_missing_or_forged_token_is_refused_in_plain_words(app, world, acme, public, token):
    slug = new_form(acme)
    response = public.post(f"/f/{slug}", data={**PERSON, "kf_token": token})
    assert response.status_code == 400
    body = text(response)
    assert "We could not check this form. Please check your answers and send it again." in body
    assert "Traceback" not in body
    # The answers stay, and a fresh token makes the next send work.
    assert 'value="Lovelace"' in body
    fresh = token_of(response)
    assert fresh and fresh != token
    assert submit(public, f"/f/{slug}", PERSON, token=fresh).status_code == 200
    assert len(submissions(app, world)) == 1


def test_a_token_of_another_form_is_refused(app, world, acme, public):
    one, other = new_form(acme), new_form(acme)
    response = submit(public, f"/f/{one}", PERSON, token=token_of(public.get(f"/f/{other}")))
    assert response.status_code == 400 and "We could not check this form." in text(response)
    assert submissions(app, world) == []


def test_an_expired_token_is_refused(app, world, acme, public):
    slug = new_form(acme)
    with freeze_time("2026-01-01 12:00:00") as clock:
        token = token_of(public.get(f"/f/{slug}"))
        clock.tick(timedelta(seconds=app.config["FORM_TOKEN_MAX_AGE"] + 5))
        response = submit(public, f"/f/{slug}", PERSON, token=token)
    assert response.status_code == 400
    assert "This form was open for a long time" in text(response) and 'value="Ada"' in text(response)
    assert submissions(app, world) == []


def test_the_honeypot_catches_bots(app, world, acme, public):
    slug = new_form(acme)
    response = submit(public, f"/f/{slug}", {**PERSON, "kf_homepage": "http://spam.example"})
    assert response.status_code == 400
    body = text(response)
    assert "Something on this page looked automated" in body
    assert "http://spam.example" not in body  # cleared: a person's browser may have autofilled it
    assert submissions(app, world) == []


def test_a_form_sent_faster_than_anyone_can_fill_it_is_refused(app, world, acme, public):
    slug = new_form(acme, min_fill_seconds=5)
    with freeze_time("2026-01-01 12:00:00") as clock:
        token = token_of(public.get(f"/f/{slug}"))
        clock.tick(2)
        fast = submit(public, f"/f/{slug}", PERSON, token=token)
        assert fast.status_code == 400
        assert "That was quicker than anyone can fill in this form." in text(fast)
        assert submissions(app, world) == []
        fresh = token_of(fast)
        clock.tick(6)
        assert submit(public, f"/f/{slug}", PERSON, token=fresh).status_code == 200
    assert len(submissions(app, world)) == 1


def test_submissions_are_rate_limited_per_address(app, world, acme, public, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_FORM_PER_IP", "3 per minute")
    slug = new_form(acme)
    addr = {"REMOTE_ADDR": "198.51.100.1"}
    for n in range(3):
        assert submit(public, f"/f/{slug}", {**PERSON, "email": f"p{n}@example.com"},
                      environ_base=addr).status_code == 200
    blocked = submit(public, f"/f/{slug}/embed", {**PERSON, "email": "p9@example.com"}, environ_base=addr)
    assert blocked.status_code == 429
    body = text(blocked)
    assert "This form has been sent many times from here in a short while." in body
    assert 'value="p9@example.com"' in body and token_of(blocked)  # answers kept, a fresh token
    assert "frame-ancestors 'self'" in blocked.headers["Content-Security-Policy"]  # still shows in the frame
    # Another address is not held back; reading the form never is.
    assert public.get(f"/f/{slug}", environ_base=addr).status_code == 200
    assert submit(public, f"/f/{slug}", PERSON, environ_base={"REMOTE_ADDR": "198.51.100.2"}).status_code == 200
    assert len(submissions(app, world)) == 4


def test_addresses_of_one_ipv6_64_share_one_budget(app, world, acme, public, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_FORM_PER_IP", "2 per minute")
    slug = new_form(acme)
    for n in range(2):
        assert submit(public, f"/f/{slug}", PERSON, environ_base={"REMOTE_ADDR": f"2001:db8:5:5::{n + 1}"}
                      ).status_code == 200
    assert submit(public, f"/f/{slug}", PERSON, environ_base={"REMOTE_ADDR": "2001:db8:5:5:ffff::3"}
                  ).status_code == 429
    assert submit(public, f"/f/{slug}", PERSON, environ_base={"REMOTE_ADDR": "2001:db8:5:6::1"}).status_code == 200


def test_submissions_are_rate_limited_per_form(app, world, acme, public, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_FORM_PER_FORM", "2 per minute")
    slug, other = new_form(acme), new_form(acme)
    for n in range(2):
        assert submit(public, f"/f/{slug}", PERSON, environ_base={"REMOTE_ADDR": f"198.51.100.{n}"}).status_code == 200
    assert submit(public, f"/f/{slug}", PERSON, environ_base={"REMOTE_ADDR": "198.51.100.50"}).status_code == 429
    assert submit(public, f"/f/{other}", PERSON, environ_base={"REMOTE_ADDR": "198.51.100.50"}).status_code == 200


# --- keys that are names of the WTForms form itself ---------------------------------------------

# Stored before the builder refused them (or typed into a draft): each would shadow a name of the
# form class (validate, meta, process, data, errors) or be taken for an inline validator.
SHADOWING_FIELDS = (
    dict(key="validate", kind=FieldKind.SHORT_TEXT, label="Validate", required=True),
    dict(key="meta", kind=FieldKind.SHORT_TEXT, label="Meta"),
    dict(key="process", kind=FieldKind.SHORT_TEXT, label="Process"),
    dict(key="data", kind=FieldKind.SHORT_TEXT, label="Data"),
    dict(key="errors", kind=FieldKind.SHORT_TEXT, label="Errors"),
    dict(key="email", kind=FieldKind.EMAIL, label="E-mail", required=True, target="contact.email"),
    dict(key="validate_email", kind=FieldKind.SHORT_TEXT, label="Validate email"),
)


def test_fields_keyed_like_the_forms_own_names_render_validate_and_store_under_their_keys(app, world, acme,
                                                                                          public):
    slug = new_form(acme, fields=SHADOWING_FIELDS)
    page = public.get(f"/f/{slug}")
    assert page.status_code == 200
    body = text(page)
    assert 'id="f-validate"' in body and 'id="f-meta"' in body and 'id="f-validate_email"' in body
    assert 'name="email"' in body and 'name="kf_f_validate"' in body and 'name="kf_f_validate_email"' in body
    assert 'name="validate"' not in body and 'name="meta"' not in body

    answers = {"kf_f_validate": "", "kf_f_meta": "m", "kf_f_process": "p", "kf_f_data": "d", "kf_f_errors": "e",
               "email": "not-an-address", "kf_f_validate_email": "anything"}
    refused = submit(public, f"/f/{slug}", answers)
    assert refused.status_code == 422
    body = text(refused)
    assert '<small id="f-validate-error" class="field-error">Please fill this in.</small>' in body
    assert '<small id="f-email-error" class="field-error">Enter an e-mail address like name@example.com.</small>' in body
    assert submissions(app, world) == []

    assert submit(public, f"/f/{slug}", {**answers, "kf_f_validate": "yes", "email": "ada@example.com"}
                  ).status_code == 200
    [stored] = submissions(app, world)
    assert stored.answers == {"validate": "yes", "meta": "m", "process": "p", "data": "d", "errors": "e",
                              "email": "ada@example.com", "validate_email": "anything"}


def test_url_parameters_fill_a_hidden_field_keyed_like_the_forms_own_names(app, world, acme, public):
    slug = new_form(acme, fields=(*STANDARD_FIELDS_FOR_HIDDEN, dict(key="meta", kind=FieldKind.HIDDEN, label="Meta",
                                                                     url_parameter="utm_source")))
    body = text(public.get(f"/f/{slug}?utm_source=newsletter"))
    assert 'name="kf_f_meta"' in body and 'value="newsletter"' in body and 'data-url-parameter="utm_source"' in body


# --- the embed ------------------------------------------------------------------------------------

def test_the_embed_may_be_framed_only_by_the_listed_sites(app, world, acme, public):
    slug = new_form(acme)
    response = public.get(f"/f/{slug}/embed")
    assert "frame-ancestors 'self';" in response.headers["Content-Security-Policy"] + ";"
    with acme():
        settings().form_embed_origins = ["https://www.acme.example", "http://localhost:8000"]
    response = public.get(f"/f/{slug}/embed")
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'self' https://www.acme.example http://localhost:8000" in csp
    assert "script-src 'self'" in csp and "default-src 'self'" in csp  # the rest is unchanged
    assert "X-Frame-Options" not in response.headers
    # Page chrome is left out, and no cookie is set (third-party frames usually get none).
    body = text(response)
    assert '<header class="site-header">' not in body and "site-footer" not in body
    assert "Set-Cookie" not in response.headers
    assert 'src="/static/forms/frame.js"' in body
    # Another tenant's settings do not leak into A's header.
    assert "frame-ancestors 'none'" in public.get(f"/f/{slug}").headers["Content-Security-Policy"]


def test_the_embed_records_the_host_page_and_its_utm_values(app, world, acme, public):
    slug = new_form(acme)
    response = submit(public, f"/f/{slug}/embed",
                      {**PERSON, "kf_source_url": "https://www.acme.example/pricing?utm_source=ads&utm_medium=cpc"})
    assert response.status_code == 200
    [row] = submissions(app, world)
    assert row.source_url == "https://www.acme.example/pricing?utm_source=ads&utm_medium=cpc"
    assert row.utm == {"utm_source": "ads", "utm_medium": "cpc"}


# --- branding ----------------------------------------------------------------------------------

def test_the_form_wears_the_tenants_brand_or_its_own(app, world, acme, public):
    from forms.models import Form
    slug = new_form(acme)
    body = text(public.get(f"/f/{slug}"))
    with app.app_context():
        from core.tenancy import Tenant
        colour = db.session.get(Tenant, world.a.id).primary_color
    assert f"--brand: {colour};" in body
    assert public.get(f"/f/{slug}/logo").status_code == 404

    with acme():
        form = db.session.scalar(sa.select(Form).where(Form.slug == slug))
        form.primary_colour, form.logo, form.logo_mimetype = "#aa0055", PNG, "image/png"
    body = text(public.get(f"/f/{slug}/embed"))
    assert "--brand: #aa0055;" in body
    logo_url = re.search(r'<img src="(/f/[^"]+/logo\?v=\d+)"', body).group(1)
    logo = public.get(logo_url)
    assert logo.status_code == 200 and logo.data == PNG and logo.mimetype == "image/png"

    with acme():
        db.session.scalar(sa.select(Form).where(Form.slug == slug)).primary_colour = "red;}a{"
    assert "red;}a{" not in text(public.get(f"/f/{slug}"))


# --- the macro from a draft (the builder's live preview) -------------------------------------------

def test_a_draft_renders_without_being_saved(app):
    from flask import render_template_string

    from forms.rendering import build_form_class

    draft = [
        {"key": "name", "kind": "short_text", "label": "Your name", "required": True, "placeholder": "Jane Doe"},
        {"kind": "section", "label": "Details"},
        {"key": "size", "kind": "single_choice", "label": "Team size", "choices": ["1-10", "11-50"], "display": "radio"},
        {"key": "terms", "kind": "consent", "label": "I agree", "terms_url": "https://acme.example/terms"},
    ]
    with app.test_request_context("/"):
        preview = build_form_class(draft, region="GB")(formdata=None)
        body = render_template_string(
            '{% from "forms/_form.html" import render_kickoff_form %}'
            '{{ render_kickoff_form(form, submit_label="Join", preview=true) }}', form=preview)
    assert '<label for="f-name">Your name <span class="kf-required" aria-hidden="true">*</span></label>' in body
    assert '<h2 class="kf-section">Details</h2>' in body
    assert "<legend>Team size</legend>" in body and 'href="https://acme.example/terms"' in body
    assert '<button type="submit" disabled>Join</button>' in body and " inert" in body


def test_field_keys_may_not_clash_with_the_forms_own_inputs():
    from forms.rendering import build_form_class

    with pytest.raises(ValueError):
        build_form_class([{"key": "kf_token", "kind": "short_text"}])
    with pytest.raises(ValueError):
        build_form_class([{"key": "a", "kind": "short_text"}, {"key": "a", "kind": "email"}])


# --- the tenant's settings: embed origins and company matching --------------------------------------

@pytest.mark.parametrize("raw, stored", [
    ("https://www.Example.com/", "https://www.example.com"),
    ("https://shop.example.co.uk:8443", "https://shop.example.co.uk:8443"),
    ("http://localhost:8000", "http://localhost:8000"),
    ("http://acme.localhost:5000", "http://acme.localhost:5000"),
    ("http://127.0.0.1:3000", "http://127.0.0.1:3000"),
    ("https://bücher.example", "https://xn--bcher-kva.example"),
])
def test_embed_origins_are_normalised(raw, stored):
    from crm.settings_service import parse_origin
    assert parse_origin(raw) == stored


@pytest.mark.parametrize("raw, message", [
    ("http://www.example.com", "must use https://"),
    ("https://www.example.com/contact", "has more than the site's address"),
    ("https://www.example.com?x=1", "has more than the site's address"),
    ("www.example.com", "is not a web address"),
    ("ftp://example.com", "is not a web address"),
    ("https://exa mple.com", "is not a web address"),
    ("https://*.example.com", "is not a web address"),
    ("https://example.com;script-src", "is not a web address"),
    ("https://user@example.com", "has more than the site's address"),
])
def test_bad_embed_origins_are_refused_in_plain_words(raw, message):
    from crm.settings_service import parse_origin
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_origin(raw)


def crm_settings_csrf(client) -> str:
    page = client.get("/staff/settings/crm")
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.get_data(as_text=True)).group(1)


def test_an_admin_sets_embed_origins_and_the_matching_threshold(app, world, staff_client):
    client = staff_client("admin")
    page = text(client.get("/staff/settings/crm"))
    assert '<h2 id="kickoff-forms-title">Kickoff forms</h2>' in page and 'href="#kickoff-forms"' in page
    assert 'value="90"' in page  # the default threshold

    bad = client.post("/staff/settings/crm/kickoff-forms", data={
        "csrf_token": crm_settings_csrf(client), "form_embed_origins": "https://www.acme.example\nhttp://acme.example",
        "company_match_threshold": "85"})
    assert bad.status_code == 422
    body = text(bad)
    assert "“http://acme.example” must use https://" in body and 'id="form_embed_origins-error"' in body
    assert "http://acme.example" in body  # what was typed stays
    with app.app_context(), tenant_context(world.a.id):
        assert settings().form_embed_origins == [] and settings().company_match_threshold == 90

    for threshold in ("49", "101", "ninety"):
        response = client.post("/staff/settings/crm/kickoff-forms", data={
            "csrf_token": crm_settings_csrf(client), "form_embed_origins": "", "company_match_threshold": threshold})
        assert response.status_code == 422
        assert "Enter a whole number from 50 to 100." in text(response)

    good = client.post("/staff/settings/crm/kickoff-forms", data={
        "csrf_token": crm_settings_csrf(client),
        "form_embed_origins": "https://www.acme.example/\nhttps://www.acme.example, http://localhost:8000",
        "company_match_threshold": "80"}, follow_redirects=True)
    assert "Kickoff form settings saved." in text(good)
    with app.app_context(), tenant_context(world.a.id):
        assert settings().form_embed_origins == ["https://www.acme.example", "http://localhost:8000"]
        assert settings().company_match_threshold == 80
    with app.app_context(), tenant_context(world.b.id):
        assert settings().form_embed_origins == [] and settings().company_match_threshold == 90


def test_staff_members_cannot_change_form_settings(app, world, staff_client):
    from tests.support import post_form

    response = post_form(staff_client("staff"), "/staff/settings/crm/kickoff-forms", {
        "form_embed_origins": "https://evil.example", "company_match_threshold": "50"})
    assert response.status_code == 403
    with app.app_context(), tenant_context(world.a.id):
        assert settings().form_embed_origins == []
