"""The public kickoff form in a real Chromium: filled with the keyboard alone, at phone size
with an error to correct, and embedded in a page of another site (a second server on another
host and port) in a browser that blocks third-party cookies."""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from core.db import db
from core.tenancy import tenant_context
from crm.setup import settings
from forms.models import FieldKind, FormSubmission
from tests.e2e.conftest import CHROMIUM_FLAGS
from tests.forms.factories import make_form
from tests.e2e.viewports import PHONE

pytestmark = pytest.mark.e2e

FIELDS = (
    dict(key="first_name", kind=FieldKind.SHORT_TEXT, label="First name", required=True, target="contact.first_name"),
    dict(key="email", kind=FieldKind.EMAIL, label="E-mail", required=True, target="contact.email",
         help_text="We reply to this address."),
    dict(key="phone", kind=FieldKind.PHONE, label="Phone", target="contact.phone"),
    dict(key="project", kind=FieldKind.SECTION, label="Your project"),
    dict(key="size", kind=FieldKind.SINGLE_CHOICE, label="Team size", choices=["1-10", "11-50", "51+"],
         display="radio", required=True),
    dict(key="topics", kind=FieldKind.MULTI_CHOICE, label="Interested in", choices=["Portal", "Billing"]),
    dict(key="terms", kind=FieldKind.CONSENT, label="I accept the terms", required=True,
         terms_url="https://acme.example/terms"),
    dict(key="campaign", kind=FieldKind.HIDDEN, url_parameter="utm_campaign"),
)


@pytest.fixture
def kickoff(app, world):
    with app.app_context(), tenant_context(world.a.id):
        form = make_form("Start your project", slug="start", fields=FIELDS, min_fill_seconds=1,
                         intro="Tell us a little about yourself.",
                         thank_you_message="Thank you! We will be in touch within a day.")
        db.session.commit()
        slug = form.slug
        db.session.remove()
    return slug


def stored(app, world) -> list[FormSubmission]:
    with app.app_context(), tenant_context(world.a.id):
        rows = list(db.session.scalars(sa.select(FormSubmission).order_by(FormSubmission.id)))
        db.session.expunge_all()
        db.session.remove()
    return rows


def no_sideways_scroll(page: Page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px"


def test_fill_the_form_with_the_keyboard(page: Page, live_server, app, world, kickoff, screenshot):
    page.goto(live_server.url(world.a.slug, f"/f/{kickoff}?utm_campaign=autumn"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Start your project")
    expect(page.get_by_label("E-mail")).to_have_attribute("aria-describedby", "f-email-help")
    screenshot(page, "empty")
    page.get_by_label("First name").focus()
    page.keyboard.type("Ada")
    page.keyboard.press("Tab")
    page.keyboard.type("ada@example.com")
    page.keyboard.press("Tab")
    page.keyboard.type("+1 415 555 0123")
    page.keyboard.press("Tab")  # the first radio of "Team size"
    expect(page.get_by_label("1-10")).to_be_focused()
    page.keyboard.press("ArrowDown")  # moves and selects, as radios do
    expect(page.get_by_label("11-50")).to_be_checked()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Portal")).to_be_focused()
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(page.get_by_label("I accept the terms")).to_be_focused()
    page.keyboard.press("Space")
    page.wait_for_timeout(1100)  # the form's minimum fill time
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Thank you! We will be in touch within a day.")
    screenshot(page, "thanks")
    [row] = stored(app, world)
    assert row.answers == {"first_name": "Ada", "email": "ada@example.com", "phone": "+1 415 555 0123",
                           "size": "11-50", "topics": ["Portal"], "terms": "yes", "campaign": "autumn"}
    assert row.utm == {"utm_campaign": "autumn"}


def test_fill_the_form_on_a_phone_and_correct_a_mistake(new_context, live_server, app, world, kickoff, screenshot):
    page = new_context(viewport=PHONE, has_touch=True, is_mobile=True).new_page()
    page.goto(live_server.url(world.a.slug, f"/f/{kickoff}"))
    no_sideways_scroll(page)
    page.get_by_label("First name").fill("Grace")
    page.get_by_label("E-mail").fill("grace@")
    page.get_by_label("51+").check()
    page.get_by_label("I accept the terms").check()
    page.wait_for_timeout(1100)
    page.get_by_role("button", name="Send").click()
    email = page.get_by_label("E-mail")
    expect(email).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-email-error")).to_have_text("Enter an e-mail address like name@example.com.")
    expect(email).to_have_attribute("aria-describedby", "f-email-help f-email-error")
    # Everything else is kept, so only the mistake needs fixing.
    expect(page.get_by_label("First name")).to_have_value("Grace")
    expect(page.get_by_label("51+")).to_be_checked()
    expect(page.get_by_label("I accept the terms")).to_be_checked()
    no_sideways_scroll(page)
    screenshot(page, "error", sizes=("phone",))
    box = page.get_by_role("button", name="Send").bounding_box()
    assert box["width"] >= 300, "the send button spans the phone's width"
    email.fill("grace@example.com")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("status")).to_contain_text("Thank you!")
    screenshot(page, "thanks", sizes=("phone",))
    assert [r.answers["email"] for r in stored(app, world)] == ["grace@example.com"]


# --- embedded on another site -------------------------------------------------------------------

class HostSite:
    """The tenant's own website: another origin (127.0.0.1 and its own port, a different site
    from *.localhost) serving one page with the embed snippet."""

    def __init__(self, html: str):
        body = html.encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def cookieless_browser(playwright, chromium_path):
    """Chromium with third-party cookies blocked, as browsers are heading."""
    browser = playwright.chromium.launch(executable_path=chromium_path,
                                         args=[*CHROMIUM_FLAGS, "--test-third-party-cookie-phaseout"])
    yield browser
    browser.close()


def test_fill_the_embedded_form_from_another_site_without_third_party_cookies(
        cookieless_browser, live_server, app, world, kickoff, screenshot):
    form_origin = live_server.url(world.a.slug, "").rstrip("/")
    host = HostSite(f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Acme website</title></head>
<body style="font-family:sans-serif;max-width:50rem;margin:2rem auto">
<h1>Welcome to Acme</h1><p>Fill in the form below.</p>
<iframe id="kickoff" src="{form_origin}/f/{kickoff}/embed" title="Start your project" data-portico-form
        style="width:100%;border:0;height:200px"></iframe>
<script src="{form_origin}/static/forms/embed.js" async></script>
<p id="below">Footer of the host page</p></body></html>""")
    try:
        with app.app_context(), tenant_context(world.a.id):
            settings().form_embed_origins = [host.origin]
            db.session.commit()
            db.session.remove()
        context = cookieless_browser.new_context(viewport={"width": 1000, "height": 900})
        page = context.new_page()
        # First-party, the form's site may keep a cookie that would go anywhere (SameSite=None) ...
        page.goto(f"{form_origin}/f/{kickoff}")
        page.evaluate("document.cookie = 'probe=1; SameSite=None; Secure; path=/'")
        assert "probe=1" in page.evaluate("document.cookie")

        posts = []
        page.on("request", lambda r: posts.append(r) if r.method == "POST" else None)
        page.goto(f"{host.origin}/pricing?utm_source=ads&utm_campaign=winter")
        frame_el = page.locator("#kickoff")
        frame = page.frame_locator("#kickoff")
        expect(frame.get_by_role("heading", level=1)).to_have_text("Start your project")
        # ... but inside the other site's frame the browser withholds it: cookies are blocked.
        inner = page.frame(url=lambda url: "/embed" in url)
        assert inner.evaluate("document.cookie") == ""
        inner.evaluate("document.cookie = 'inside=1; SameSite=None; Secure; path=/'")
        assert inner.evaluate("document.cookie") == "", "the frame could keep a cookie: they are not blocked"

        # embed.js sized the frame to the whole form (no inner scroll bar).
        expect(frame_el).not_to_have_css("height", "200px")
        inner_height = inner.evaluate("document.documentElement.getBoundingClientRect().height")
        assert abs(frame_el.bounding_box()["height"] - inner_height) <= 2
        screenshot(page, "embedded", sizes=("desktop",))

        frame.get_by_label("First name").fill("Linus")
        frame.get_by_label("E-mail").fill("linus@example.com")
        frame.get_by_label("1-10").check()
        frame.get_by_label("I accept the terms").check()
        time.sleep(1.1)
        frame.get_by_role("button", name="Send").click()
        expect(frame.get_by_role("status")).to_contain_text("Thank you! We will be in touch within a day.")
        screenshot(page, "embedded-thanks", sizes=("desktop",))
        # The frame shrank to the thank-you message.
        page.wait_for_function("document.getElementById('kickoff').getBoundingClientRect().height < 400")

        [post] = [r for r in posts if "/embed" in r.url]
        assert "cookie" not in {k.lower() for k in post.all_headers()}
        [row] = stored(app, world)
        assert row.answers["email"] == "linus@example.com"
        assert row.source_url == f"{host.origin}/pricing?utm_source=ads&utm_campaign=winter"
        assert row.utm == {"utm_source": "ads", "utm_campaign": "winter"}
        assert row.answers["campaign"] == "winter"  # the hidden field, from the host page's URL
        context.close()
    finally:
        host.close()


def test_a_site_not_listed_cannot_frame_the_form(cookieless_browser, live_server, world, kickoff):
    form_origin = live_server.url(world.a.slug, "").rstrip("/")
    host = HostSite(f'<!doctype html><title>Other</title><iframe id="f" src="{form_origin}/f/{kickoff}/embed"></iframe>')
    try:
        context = cookieless_browser.new_context()
        page = context.new_page()
        blocked = []
        page.on("console", lambda m: blocked.append(m.text) if "frame-ancestors" in m.text else None)
        page.goto(host.origin)
        page.wait_for_timeout(500)
        frame = page.frame(url=lambda url: "/embed" in url)
        # Chromium replaces a refused frame's document: the form is not there.
        assert frame is None or frame.locator("form.kickoff-form").count() == 0
        assert blocked, "Chromium did not report the frame-ancestors refusal"
        context.close()
    finally:
        host.close()


def test_the_same_person_twice_is_one_contact_with_two_submissions(page: Page, live_server, app, world, screenshot):
    """A prospect fills the public form, comes back a week later and fills it again with the
    e-mail typed differently: staff find one contact, in the form's Circle, as a Prospect,
    with both submissions."""
    from core.jobs import run_pending_jobs
    from tests.e2e.test_crm_settings import sign_in
    from tests.factories import make_circle

    with app.app_context(), tenant_context(world.a.id):
        circle = make_circle("Open day 2026")
        make_form("Open day", slug="open-day", fields=FIELDS[:3], min_fill_seconds=1, role="prospect",
                  circle_ids=[circle.id], thank_you_message="See you at the open day!")
        db.session.commit()
        db.session.remove()

    for email, phone in (("grace@example.com", ""), ("  Grace@Example.COM ", "+1 415 555 0199")):
        page.goto(live_server.url(world.a.slug, "/f/open-day"))
        page.get_by_label("First name").fill("Grace")
        page.get_by_label("E-mail").fill(email)
        page.get_by_label("Phone").fill(phone)
        page.wait_for_timeout(1100)  # the form's minimum fill time
        page.get_by_role("button", name="Send").click()
        expect(page.get_by_role("status")).to_contain_text("See you at the open day!")
    with app.app_context():
        run_pending_jobs()

    sign_in(page, live_server, world.a.slug, world.a.members["owner"].email)
    page.goto(live_server.url(world.a.slug, "/staff/contacts?q=grace"))
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("grace@example.com")
    expect(rows.first).to_contain_text("Prospect")
    rows.first.get_by_role("link", name="Grace").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Grace")
    expect(page.get_by_role("link", name="Open day 2026")).to_be_visible()
    expect(page.get_by_text("+1 415-555-0199").first).to_be_visible()  # the second visit filled the phone
    submissions = page.locator("article", has=page.get_by_text("Form submissions", exact=True))
    expect(submissions.get_by_role("link", name="Open day")).to_have_count(2)
    screenshot(page, "one-contact-two-submissions")
