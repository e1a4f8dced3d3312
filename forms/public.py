"""The public side of kickoff forms: `/f/<slug>` on the tenant's host, its frame-friendly
`/f/<slug>/embed`, and the form's logo.

The embed lives in a third-party iframe, where browsers increasingly block cookies, so
nothing here relies on the session: the blueprint is exempt from the session CSRF check and
protected instead by
- a signed, time-stamped form token (itsdangerous, salted per tenant and form) that carries
  when the page was rendered and the idempotency key of the one submission it may create,
- a honeypot input people never see,
- a minimum fill time (form.min_fill_seconds),
- rate limits per client address and per form (Flask-Limiter),
- CSP frame-ancestors: only the origins the tenant lists may frame the embed; the normal
  page may not be framed at all.
"""
from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from urllib.parse import parse_qs, urlsplit

import sqlalchemy as sa
from flask import (Blueprint, Response, abort, current_app, g, get_template_attribute, make_response, redirect,
                   render_template, request, url_for)
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from markupsafe import Markup, escape

from core import tenant_cache
from core.db import db
from core.extensions import csrf, limiter
from core.tenancy import require_tenant_host
from core.web import service_call, set_csp
from crm.setup import settings
from forms import rendering
from forms.models import Form, PortalLogin
from forms.submissions import receive_submission

bp = Blueprint("forms_public", __name__)
# Posts come from pages that may sit in a third-party iframe without cookies: the form token
# below protects them instead of the session's CSRF token.
csrf.exempt(bp)

UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
# What a framing origin in a CSP header may look like (the settings service checks it too;
# this keeps a bad stored value from breaking or widening the header).
_ORIGIN = re.compile(r"^https?://[a-z0-9.-]+(:\d{1,5})?$", re.IGNORECASE)

EXPIRED = "This form was open for a long time, so we could not accept it as it was. " \
          "Please check your answers and send it again."
INVALID = "We could not check this form. Please check your answers and send it again."
AUTOMATED = "Something on this page looked automated, so we did not accept it. " \
            "If you filled it in yourself, please check your answers and send it again."
TOO_MANY = "This form has been sent many times from here in a short while. " \
           "Please wait a minute, then send it again."
TOO_FAST = "That was quicker than anyone can fill in this form. " \
           "Please check your answers and send it again."


bp.before_request(require_tenant_host)


# --- the form token --------------------------------------------------------------------------

@dataclass(frozen=True)
class FormToken:
    idempotency_key: str
    rendered_at: float


class TokenRefused(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _serializer(form: Form) -> URLSafeTimedSerializer:
    # Salted per tenant and form: a token of one form is worthless on any other.
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"],
                                  salt=f"portico.kickoff-form.{form.tenant_id}.{form.id}")


def issue_token(form: Form) -> str:
    """A token for one rendering of the form: a fresh idempotency key and the time now."""
    return _serializer(form).dumps({"k": secrets.token_urlsafe(24), "t": time.time()})


def read_token(form: Form, token: str | None) -> FormToken:
    """The token's contents; TokenRefused (with the words to show) when it is missing,
    forged, for another form, or older than FORM_TOKEN_MAX_AGE."""
    try:
        data = _serializer(form).loads(token or "", max_age=current_app.config["FORM_TOKEN_MAX_AGE"])
    except SignatureExpired:
        raise TokenRefused(EXPIRED) from None
    except BadSignature:
        raise TokenRefused(INVALID) from None
    if not isinstance(data, dict) or not isinstance(data.get("k"), str) or not isinstance(data.get("t"), (int, float)):
        raise TokenRefused(INVALID)
    return FormToken(data["k"], float(data["t"]))


# --- routes -----------------------------------------------------------------------------------

def _live_form(slug: str) -> Form:
    """The tenant's form at this address (the tenant wall filters the query); archived or
    unknown is a 404."""
    form = db.session.scalar(sa.select(Form).where(Form.slug == slug, Form.archived_at.is_(None)))
    if form is None:
        abort(404)
    return form


@dataclass(frozen=True)
class ShownForm:
    """What showing a form and receiving its submissions read of it, as plain data: kept
    across requests by tenant_cache (a change to the form or its fields bumps the tenant's
    configuration version, archiving it too), so a submission costs no read of the form."""
    id: int
    tenant_id: int
    slug: str
    title: str
    intro: str
    submit_label: str
    thank_you_message: str
    redirect_url: str | None
    primary_colour: str | None
    logo_mimetype: str | None
    updated_at: object
    min_fill_seconds: int
    portal_login: str
    portal_requires_approval: bool


_SHOWN = [f.name for f in dataclass_fields(ShownForm)]


def _shown_form(slug: str) -> ShownForm:
    """The live form at this address for showing it, from the process's cache; 404 as _live_form."""
    def load():
        form = db.session.scalar(sa.select(Form).where(Form.slug == slug, Form.archived_at.is_(None)))
        return ShownForm(**{name: getattr(form, name) for name in _SHOWN}) if form is not None else None

    shown = tenant_cache.cached(f"kickoff_form:{slug}", load)
    if shown is None:
        abort(404)
    return shown


def _ip_limit() -> str:
    return current_app.config["RATELIMIT_FORM_PER_IP"]


def _form_limit() -> str:
    return current_app.config["RATELIMIT_FORM_PER_FORM"]


def _per_form_key() -> str:
    return f"kickoff-form|{g.tenant.id}|{request.view_args.get('slug')}"


def _rate_limited(view):
    # The page and its embed share both budgets.
    view = limiter.shared_limit(_form_limit, "kickoff-form", key_func=_per_form_key, methods=["POST"])(view)
    return limiter.shared_limit(_ip_limit, "kickoff-form-ip", methods=["POST"])(view)


@bp.route("/f/<slug>", methods=["GET", "POST"])
@_rate_limited
def page(slug: str):
    return _serve(_shown_form(slug), embed=False)


@bp.route("/f/<slug>/embed", methods=["GET", "POST"])
@_rate_limited
def embed(slug: str):
    return _serve(_shown_form(slug), embed=True)


@bp.errorhandler(429)
def _too_many(exc):
    """Over a rate limit: the form again, answers kept, in plain words; inside the embed too
    (the app's error page may not be framed)."""
    slug = (request.view_args or {}).get("slug", "")
    form = _shown_form(slug)
    wtform = _form_class(form)()
    embed = request.endpoint == "forms_public.embed"
    return _refuse(form, wtform, TOO_MANY, embed=embed, status=429)


@bp.get("/f/<slug>/logo")
def logo(slug: str):
    form = _live_form(slug)
    if not form.logo_mimetype or not form.logo:
        abort(404)
    response = Response(form.logo, mimetype=form.logo_mimetype)
    response.cache_control.public = True
    response.cache_control.max_age = 86400  # the URL carries ?v=<updated_at>
    return response


# --- rendering and receiving --------------------------------------------------------------------

def _form_class(form: Form | ShownForm):
    """The form's WTForms class, built once per process and configuration version of the
    tenant (core.tenant_cache: a change to the form, its fields or the CRM settings bumps it)."""
    def build():
        fields = form.fields if isinstance(form, Form) else db.session.get(Form, form.id).fields
        return rendering.build_form_class(fields, region=settings().default_region, portal_login=form.portal_login)

    return tenant_cache.cached(f"kickoff_form_class:{form.id}", build)


def _embed_origins() -> tuple[str, ...]:
    return tenant_cache.cached("form_embed_origins", lambda: tuple(
        o for o in (settings().form_embed_origins or []) if _ORIGIN.match(o)))


def _serve(form: ShownForm, *, embed: bool):
    Kickoff = _form_class(form)
    if request.method == "GET":
        prefill = rendering.url_prefill(Kickoff._specs, request.args)
        token = issue_token(form)
        # Where the visitor came from; the embed's script replaces it with the host page.
        source_url = (request.referrer or "")[:2000]
        if not prefill:
            return _page(form, None, embed=embed, form_html=_blank_form_html(form, Kickoff, token, source_url))
        wtform = Kickoff(formdata=None, data=prefill)
        wtform.kf_token.data = token
        wtform.kf_source_url.data = source_url
        return _page(form, wtform, embed=embed)

    wtform = Kickoff()
    try:
        token = read_token(form, wtform.kf_token.data)
    except TokenRefused as refused:
        return _refuse(form, wtform, refused.message, embed=embed)
    if wtform.kf_homepage.data:
        return _refuse(form, wtform, AUTOMATED, embed=embed)
    if time.time() - token.rendered_at < form.min_fill_seconds:
        return _refuse(form, wtform, TOO_FAST, embed=embed)
    if not wtform.validate():
        return _page(form, wtform, embed=embed, status=422)

    source_url = (wtform.kf_source_url.data or request.referrer or request.url)[:2000]
    # The tenant is only read after the commit (the thank-you page): kept as loaded instead of
    # read again in a transaction of their own.
    session = db.session()
    expire_on_commit, session.expire_on_commit = session.expire_on_commit, False
    try:
        with service_call(wtform) as outcome:
            receive_submission(  # idempotent: the same token again returns the first submission
                form, rendering.collect_answers(wtform),
                idempotency_key=token.idempotency_key, source_url=source_url, utm=_utm(source_url),
                ip_address=(request.remote_addr or "")[:45], user_agent=request.user_agent.string[:500],
                password=rendering.password_of(wtform))
    finally:
        session.expire_on_commit = expire_on_commit
    if not outcome:
        return _page(form, wtform, embed=embed, status=422)
    return _thanks(form, embed=embed)


def _refuse(form: ShownForm, wtform, message: str, *, embed: bool, status: int = 400):
    """Re-render with the answers kept (never the password), a fresh token, and the reason in
    plain words. The honeypot is cleared: a person's browser may have autofilled it."""
    wtform.kf_token.data = issue_token(form)
    wtform.kf_homepage.data = ""
    wtform.form_errors.append(message)
    return _page(form, wtform, embed=embed, status=status)


def _utm(source_url: str) -> dict:
    """UTM values from this page's address, else from the page that embeds or linked here."""
    utm = {key: request.args[key][:200] for key in UTM_KEYS if request.args.get(key)}
    if not utm and source_url:
        query = parse_qs(urlsplit(source_url).query)
        utm = {key: query[key][0][:200] for key in UTM_KEYS if query.get(key)}
    return utm


def _web_url(url: str | None) -> str:
    return url if url and urlsplit(url).scheme in ("http", "https") and urlsplit(url).netloc else ""


def _thanks(form: ShownForm, *, embed: bool):
    target = _web_url(form.redirect_url)
    if target and not embed:
        _allow_posting_to(target)
        return redirect(target, 303)
    # In a frame the host page navigates (embed.js, on the frame's message); the link is for
    # when it cannot.
    return _respond(render_template("forms/thanks.html", form=form, redirect_url=target,
                                    payment_plans=_payment_step(form), **_branding(form, embed)),
                    form, embed=embed)


def _payment_step(form: ShownForm) -> list[tuple[str, str]] | None:
    """(name, price) of the plans a registrant of this form pays for portal access (one of,
    when several), for the thank-you page to say what comes next; None when they pay nothing."""
    if form.portal_login == PortalLogin.NONE:
        return None
    from billing.entitlements import required_plans
    from billing.plans import describe_price, plans

    required = required_plans(form.id)
    if not required:
        return None
    return [(p.name, describe_price(p)) for p in plans(include_archived=False) if p.id in required] or None


def _page(form: ShownForm, wtform, *, embed: bool, status: int = 200, form_html: Markup | None = None):
    target = _web_url(form.redirect_url)
    if target and not embed:
        _allow_posting_to(target)
    html = render_template("forms/page.html", form=form, wtform=wtform, form_html=form_html, **_branding(form, embed))
    return _respond(html, form, embed=embed, status=status)


# Stand-ins for the two values a fresh form differs in from one showing to the next: no label,
# choice or text of a tenant's holds them (they are new in every process).
_TOKEN_MARK, _SOURCE_MARK = f"kf-token-{secrets.token_hex(12)}", f"kf-source-{secrets.token_hex(12)}"


def _blank_form_html(form: ShownForm, Kickoff, token: str, source_url: str) -> Markup:
    """The form's inputs as a fresh visit shows them (nothing filled in from the address, no
    errors): rendered once per process and configuration version of the tenant, with stand-ins
    for its token and where the visitor came from, which each showing fills in (escaped as
    WTForms escapes them). Rendering a form's widgets costs more than the rest of its page."""
    def render() -> str:
        wtform = Kickoff(formdata=None)
        wtform.kf_token.data, wtform.kf_source_url.data = _TOKEN_MARK, _SOURCE_MARK
        return str(get_template_attribute("forms/_form.html", "render_kickoff_form")(
            wtform, submit_label=form.submit_label or "Send"))

    html = tenant_cache.cached(f"kickoff_form_html:{form.id}", render)
    return Markup(html.replace(_TOKEN_MARK, str(escape(token))).replace(_SOURCE_MARK, str(escape(source_url))))


def _allow_posting_to(target: str) -> None:
    # Browsers apply form-action to the redirect that follows a post, too.
    parts = urlsplit(target)
    set_csp(form_action=f"'self' {parts.scheme}://{parts.netloc}")


def _respond(html: str, form: ShownForm, *, embed: bool, status: int = 200):
    response = make_response(html, status)
    # Every rendering carries its own token (and idempotency key): never cache or share one.
    response.headers["Cache-Control"] = "no-store"
    if embed:
        set_csp(frame_ancestors=" ".join(["'self'", *_embed_origins()]))
    return response


def _branding(form: ShownForm, embed: bool) -> dict:
    tenant = g.tenant
    colour = form.primary_colour if form.primary_colour and _COLOUR.match(form.primary_colour) else None
    if form.logo_mimetype:
        logo_url = url_for(".logo", slug=form.slug, v=int(form.updated_at.timestamp()) if form.updated_at else 0)
    elif tenant.logo_mimetype and "portal.logo" in current_app.view_functions:
        logo_url = url_for("portal.logo", v=tenant.logo_version)
    else:
        logo_url = None
    return {"embed": embed, "brand_colour": colour or tenant.primary_color, "logo_url": logo_url}


def embed_snippet(form: Form) -> Markup:
    """What a tenant pastes into their own site: the iframe and the script that resizes it.
    Needs a request on the tenant's host (the addresses are absolute)."""
    src = url_for("forms_public.embed", slug=form.slug, _external=True)
    script = url_for("static", filename="forms/embed.js", _external=True)
    return Markup(
        f'<iframe src="{escape(src)}" title="{escape(form.title)}" data-portico-form '
        f'style="width:100%;border:0;min-height:480px" loading="lazy"></iframe>\n'
        f'<script src="{escape(script)}" async></script>')


def init_app(app) -> None:
    app.register_blueprint(bp)
