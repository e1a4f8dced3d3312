"""The cross-tenant harness: every route of the app, as every role of tenant A, aimed at tenant B.

Signed in as each of A's roles on A's own host, the harness walks app.url_map: for every rule
and method it puts B's ids and B's real tokens into the path, the query string and the form,
and sends the request for real (POSTs carry a valid CSRF token and plausible form data, so
views get past validation and their logic runs). Then it asserts:

  * a rule naming an object by id answers 404, never 403: the object is looked up before the
    permission check (staff/views.py member()), so a foreign id reveals nothing;
  * a rule taking a token refuses B's real, valid tokens (the "link no longer works" page,
    400, or 404) and B's user is left as it was;
  * the operator console (everything under /admin) does not exist on a tenant host: 404;
  * none of B's rows changed: every table with a tenant_id, plus B's tenant row;
  * nothing of B's (the canary "CANARY-B", B's names, e-mails, host) appears in any response,
    redirect target or e-mail sent because of the request.

Positive controls keep it honest: A's own ids and tokens, on the same rules, must not be
refused, and B's tokens must work on B's host; otherwise a 404 would prove nothing.

New routes are picked up automatically. A path parameter the harness does not know how to
fill fails test_every_route_is_covered (and the harness itself): teach PATH_PARAMS how to get
the victim's value, or say in EXEMPT why the endpoint needs no probe.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Callable
from urllib.parse import urlencode, urlsplit

import pytest
import sqlalchemy as sa
from werkzeug.routing import Rule

from core.accounts import INVITE, RESET, create_staff_user
from core.db import Base, db
from core.identity import StaffUser, make_token
from core.tenancy import Tenant, cross_tenant, tenant_context
from core.tenants import add_domain, update_branding
from portal.accounts import SET_PASSWORD as PORTAL_SET_PASSWORD
from portal.accounts import VERIFY as PORTAL_VERIFY
from portal.accounts import make_set_password_token, make_verify_token
from portal.auth import RESET as PORTAL_RESET
from portal.auth import make_reset_token
from crm.models import Circle
from portal.models import PortalAccount
from tests.billing.factories import seed_billing
from tests.factories import add_to_circle, make_contact, make_portal_login, seed_crm
from tests.forms.factories import seed_forms
from tests.support import PASSWORD, Member, TenantWorld, csrf_token, host_of, login_portal, login_staff

ROLES = ("owner", "admin", "staff")

# --- how to aim a URL at the victim ------------------------------------------------------------

OBJECT_ID, TOKEN, CHOICE = "object id", "token", "choice"


@dataclass(frozen=True)
class PathParam:
    """How to fill one URL parameter with the victim's value.

    kind: OBJECT_ID (the rule must answer 404 for a foreign id), TOKEN (the rule must refuse
    a foreign token), CHOICE (a fixed word, e.g. an export format: no tenant data in it).
    values(victim, endpoint) gives every value worth trying.
    """

    kind: str
    values: Callable[["Victim", str], list]


# URL parameter name -> how to get the victim's value. A rule with a parameter missing here
# fails the suite: a new route must say how the harness aims it at another tenant.
PATH_PARAMS: dict[str, PathParam] = {
    # /staff/team/<member_id>[/...]: every staff member of the victim, the not-yet-accepted
    # invitee included (resend-invitation would only act on that one).
    "member_id": PathParam(OBJECT_ID, lambda victim, endpoint: victim.member_ids),
    # /staff/password/reset/<token>, /staff/invitation/<token>: the victim's real, valid tokens.
    "token": PathParam(TOKEN, lambda victim, endpoint: [victim.token_for(endpoint)]),
    # The CRM's records: every one of the victim's (tests/factories.py seed_crm makes them).
    **{param: PathParam(OBJECT_ID, lambda victim, endpoint, model=model: victim.crm_ids[model])
       for param, model in {
           "contact_id": "Contact", "company_id": "Company", "circle_id": "Circle", "item_id": "CircleItem",
           "tag_id": "Tag",
           "note_id": "Note", "task_id": "Task", "event_id": "Event", "field_id": "CustomField",
           "segment_id": "Segment", "status_id": "PipelineStatus", "operation_id": "Operation",
           "import_id": "ContactImport",
           "account_id": "PortalAccount",
           "form_id": "Form", "form_field_id": "FormField", "submission_id": "FormSubmission",
           "plan_id": "AccessPlan",
       }.items()},
    # A contact's payments (billing.views): the refund of a payment; revoking complimentary access
    # and cancelling a subscription, each the victim's entitlement of that kind.
    "payment_id": PathParam(OBJECT_ID, lambda victim, endpoint: victim.crm_ids["Payment"]),
    "entitlement_id": PathParam(OBJECT_ID, lambda victim, endpoint: victim.crm_ids[
        "ComplimentaryEntitlement" if endpoint == "billing.revoke_complimentary" else "SubscriptionEntitlement"]),
    # The public kickoff forms, /f/<slug>[/embed|/logo]: the victim's form (with a logo).
    "slug": PathParam(OBJECT_ID, lambda victim, endpoint: victim.crm_ids["FormSlug"]),
    # Flask-Admin's /admin/<model>/export/<export_type>/: a format name (console only).
    "export_type": PathParam(CHOICE, lambda victim, endpoint: ["csv"]),
    # Flask-Admin's /admin/static/<filename>: its own assets (console only).
    "filename": PathParam(CHOICE, lambda victim, endpoint: ["admin/css/bootstrap4/admin.css"]),
}

# Which token each token-taking endpoint expects (core.accounts purposes).
TOKEN_PURPOSES = {
    "staff.reset_password": RESET,
    "staff.accept_invitation": INVITE,
    "portal.verify_email": PORTAL_VERIFY,
    "portal.set_password": PORTAL_SET_PASSWORD,
    "portal.reset_password": PORTAL_RESET,
}

# Endpoints the harness does not probe, and why. Keep this short: every entry is a route
# whose cross-tenant behaviour nobody checks.
EXEMPT: dict[str, str] = {
    "static": "serves the vendored CSS/JS files from disk; no database, no tenant data",
}

# The operator console and its sign-in live under /admin on the platform host (admin/__init__.py
# _console_request); on a tenant host every one of them must be a plain 404.
CONSOLE_PREFIX = "/admin"

# Endpoints that end the signed-in session on purpose; they run last so every other probe
# runs signed in.
SIGNS_OUT = {"staff.logout"}  # (portal.logout must not: it ends only a portal session)
# Run last as well: the probes of portal pages run signed in to the attacker's own portal.
RUNS_LAST = SIGNS_OUT | {"portal.logout"}

# Form fields for one endpoint, over form_data()'s, where the generic form would stop a view
# short of the logic worth exercising.
FORM_OVERRIDES: dict[str, Callable[[TenantWorld], dict]] = {
    # a real member's address, so a reset e-mail is rendered and sent (and checked for leaks)
    "staff.forgot_password": lambda attacker: {"email": attacker.members["staff"].email},
}

NEW_PASSWORD = "Quiet-harbour-lantern-1987"
CSRF_REFUSED = "This form has expired or was sent from elsewhere"
TOKEN_REFUSED_PAGE = "This link no longer works"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass
class Victim:
    """One tenant as a target: its ids, its real tokens, and the strings whose appearance
    anywhere else is a leak."""

    world: TenantWorld
    invitee: Member
    tokens: dict[str, str]
    markers: tuple[str, ...]
    crm_ids: dict[str, list[int]]
    portal_email: str  # a contact of the tenant whose portal login may sign in

    @property
    def host(self) -> str:
        return host_of(self.world.slug)

    @property
    def member_ids(self) -> list[int]:
        return [m.id for m in self.world.members.values()] + [self.invitee.id]

    @property
    def any_id(self) -> int:
        return self.world.members["admin"].id

    def token_for(self, endpoint: str) -> str:
        purpose = TOKEN_PURPOSES.get(endpoint)
        if purpose is None:
            pytest.fail(f"{endpoint} takes a <token>: add it to TOKEN_PURPOSES with the purpose it checks")
        return self.tokens[purpose]


def _arm(side: TenantWorld, invitee: tuple[str, str], logo_text: bytes, domain: str,
         extra_markers: tuple[str, ...] = (), crm_marker: str = "") -> Victim:
    """Give a tenant what the probes aim at: a member who has not accepted an invitation yet,
    real reset/invitation tokens, a logo and a custom domain (so the tenant row and
    tenant_domain carry data a leak would show)."""
    tenant = db.session.get(Tenant, side.id)
    with tenant_context(tenant):
        email, name = invitee
        pending = create_staff_user(email, name, "staff", password=None)
        update_branding(tenant, display_name=f"{side.name} portal", primary_color="#aa3300",
                        logo=PNG_MAGIC + logo_text)
        add_domain(tenant, domain)
        admin = db.session.get(StaffUser, side.members["admin"].id)
        tokens = {RESET: make_token(admin, RESET), INVITE: make_token(pending, INVITE)}
        crm_ids = seed_crm(crm_marker)
        crm_ids.update(seed_forms(crm_marker, crm_ids["Contact"][0]))
        crm_ids.update(seed_billing(crm_marker, crm_ids["Contact"][0]))
        # The seeded registrant's real links (portal.accounts): confirm the e-mail, choose a password.
        account = db.session.get(PortalAccount, crm_ids["PortalAccount"][0])
        tokens[PORTAL_VERIFY] = make_verify_token(account)
        tokens[PORTAL_SET_PASSWORD] = make_set_password_token(account)
        tokens[PORTAL_RESET] = make_reset_token(account)
        # A client of the tenant who signs in to its portal: the attacker's portal pages are
        # probed signed in (as its staff pages are), so B's ids there must be a 404 too.
        portal_email = f"portal-client@{side.slug}.example"
        portal_person = make_contact(f"{crm_marker}Paula", "Portal", role="client", email=portal_email)
        make_portal_login(portal_person)
        # A member of the seeded Circle: the portal's Circle pages answer the tenant's own ids
        # (the controls), so their 404 for another tenant's means something.
        add_to_circle(db.session.get(Circle, crm_ids["Circle"][0]), contact=portal_person)
    people = [*side.members.values(), Member(pending.id, pending.email, pending.name, "staff")]
    # Long, specific strings only: a short one (the bare slug) could turn up by chance inside
    # a random CSRF token and make the suite flaky.
    markers = (side.name, side.host, domain, *extra_markers,
               *(p.email for p in people), *(p.name for p in people))
    return Victim(side, people[-1], tokens, markers, crm_ids, portal_email)


@pytest.fixture
def tenants(app, world) -> dict[str, Victim]:
    with app.app_context():
        sides = {
            "a": _arm(world.a, ("ingrid@acme.example", "Ingrid Invitee"), b"acme logo", "portal.acme-corp.example"),
            "b": _arm(world.b, ("canary-b-invitee@globex.example", "CANARY-B Invitee"), b"CANARY-B logo",
                      "portal.canary-b.example", extra_markers=("CANARY",), crm_marker="CANARY-B "),
        }
        db.session.commit()
        db.session.remove()
    return sides


# --- what each rule must do --------------------------------------------------------------------

NOT_FOUND, TOKEN_REFUSED, CONSOLE_404, NO_LEAK = "404", "token refused", "console 404", "no leak"


@dataclass
class Probe:
    rule: Rule
    method: str
    expect: str

    @property
    def endpoint(self) -> str:
        return self.rule.endpoint

    @property
    def label(self) -> str:
        return f"{self.method} {self.endpoint} ({self.rule.rule})"

    def urls(self, victim: Victim) -> list[tuple[str, int]]:
        """Every path to try, each with the victim id it is about (also sent in query/form)."""
        names = sorted(self.rule.arguments)
        choices = [PATH_PARAMS[n].values(victim, self.endpoint) for n in names]
        urls = []
        for combo in itertools.product(*choices):
            values = dict(zip(names, combo))
            _, path = self.rule.build(values, append_unknown=False)
            ids = [v for n, v in values.items() if PATH_PARAMS[n].kind == OBJECT_ID]
            urls.append((path, ids[0] if ids else victim.any_id))
        return urls


def _methods(rule: Rule) -> list[str]:
    return sorted((rule.methods or {"GET", "POST"}) - {"HEAD", "OPTIONS"})


def planned_probes(app) -> list[Probe]:
    """One probe per (rule, method) of the url_map; fails, naming every gap, when a rule has a
    parameter the harness cannot fill."""
    gaps, probes = [], []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in EXEMPT:
            continue
        for arg in sorted(rule.arguments - PATH_PARAMS.keys()):
            gaps.append(f"{rule.endpoint} ({rule.rule}): no way to fill <{arg}>; add it to PATH_PARAMS "
                        f"(how to get another tenant's value) or the endpoint to EXEMPT (why no probe)")
        kinds = {PATH_PARAMS[a].kind for a in rule.arguments if a in PATH_PARAMS}
        if TOKEN in kinds and rule.endpoint not in TOKEN_PURPOSES:
            gaps.append(f"{rule.endpoint} ({rule.rule}) takes a token: add it to TOKEN_PURPOSES")
        if rule.rule == CONSOLE_PREFIX or rule.rule.startswith(CONSOLE_PREFIX + "/"):
            expect = CONSOLE_404
        elif OBJECT_ID in kinds:
            expect = NOT_FOUND
        elif TOKEN in kinds:
            expect = TOKEN_REFUSED
        else:
            expect = NO_LEAK
        probes.extend(Probe(rule, method, expect) for method in _methods(rule))
    if gaps:
        pytest.fail("the cross-tenant harness cannot aim these routes at another tenant:\n  " + "\n  ".join(gaps))
    # Sign-out last, so every other probe runs signed in (to the staff area and the portal).
    return sorted(probes, key=lambda p: (p.endpoint in RUNS_LAST, p.rule.rule, p.method))


def form_data(attacker: TenantWorld, victim_id: int, n: int) -> dict:
    """A form that passes the app's validators, carrying the victim's id wherever a view
    might read one. Fields a view does not know are ignored by WTForms."""
    return {
        # the victim's ids, as any form might carry them (Flask-Admin actions post rowid)
        "id": victim_id, "member_id": victim_id, "rowid": [victim_id], "action": "deactivate",
        # CRM forms and bulk actions name records by these
        "contact_id": victim_id, "company_id": victim_id, "circle_id": victim_id, "tag_id": victim_id,
        "owner_id": victim_id, "status_id": victim_id, "assignee_id": victim_id, "event_id": victim_id,
        "ids": [victim_id], "contact_ids": [victim_id], "selected": [victim_id],
        # staff.member: a real change (role and access), so a breach would show in the rows
        "role": "staff",  # and no "active": the BooleanField reads as False, i.e. deactivate
        # staff.invite / forgot-password / login: a fresh address of the attacker's own
        "email": f"probe-{n}@{attacker.slug}.example", "name": "Probe Person",
        # reset-password / accept-invitation: a strong new password
        "password": NEW_PASSWORD, "confirm": NEW_PASSWORD,
        # branding, account (profile form)
        "display_name": f"{attacker.name} probe", "primary_color": "#336699",
        "form": "profile", "profile-name": "Probe Person",
    }


# --- looking for leaks -------------------------------------------------------------------------

def snapshot(app, tenant_id: int) -> dict[str, list[tuple]]:
    """Every row the tenant owns (any table with a tenant_id) and its tenant row, read across
    tenants so neither the ORM filter nor RLS hides anything."""
    with app.app_context():
        with cross_tenant("cross-tenant harness: snapshot the victim", audit=False):
            rows = {"tenant": [tuple(r) for r in db.session.execute(
                sa.select(Tenant.__table__).where(Tenant.__table__.c.id == tenant_id))]}
            for table in Base.metadata.sorted_tables:
                if "tenant_id" in table.c:
                    query = sa.select(table).where(table.c.tenant_id == tenant_id).order_by(*table.primary_key)
                    rows[table.name] = [tuple(r) for r in db.session.execute(query)]
        db.session.rollback()
        db.session.remove()
    assert rows["tenant"], f"tenant {tenant_id} has no row"
    return rows


def changed_rows(before: dict, after: dict) -> str:
    lines = []
    for table in sorted(before.keys() | after.keys()):
        old, new = before.get(table, []), after.get(table, [])
        if old != new:  # rows hold dicts (JSON columns): compare as lists, not sets
            lines.append(f"{table}: was {[r for r in old if r not in new]}, now {[r for r in new if r not in old]}")
    return "; ".join(lines)


def found(text: str, markers) -> list[str]:
    lowered = text.lower()
    return [m for m in markers if m.lower() in lowered]


def mail_text(message: EmailMessage) -> str:
    parts = [f"{name}: {value}" for name, value in message.items()]
    parts += [part.get_content() for part in message.walk() if not part.is_multipart()]
    return "\n".join(str(p) for p in parts)


def session_user(app, client) -> str | None:
    """The principal id in the client's session cookie for its host (None when signed out)."""
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"], domain=client.host)
    if cookie is None:
        return None
    return app.session_interface.get_signing_serializer(app).loads(cookie.value).get("_user_id")


@dataclass
class Attack:
    """One signed-in client of the attacker, aimed at the victim; collects every problem so a
    failure lists all of them at once."""

    app: object
    deliver: Callable
    client: object
    attacker: TenantWorld
    member: Member  # whom the client is signed in as
    victim: Victim
    baseline: dict
    signed_in_as: str | None = None
    csrf: str | None = None
    problems: list[str] = field(default_factory=list)
    exercised: set[str] = field(default_factory=set)
    mails_seen: int = 0
    sent: int = 0

    @property
    def who(self) -> str:
        return f"{self.attacker.slug} {self.member.role}"

    def __post_init__(self):
        self.signed_in_as = session_user(self.app, self.client)
        assert self.signed_in_as, f"{self.who}: the client is not signed in"
        self.csrf = csrf_token(self.client, "/staff/account")
        self.mails_seen = len(self.deliver().messages)

    def problem(self, probe_label: str, path: str, what: str) -> None:
        self.problems.append(f"[{self.who}] {probe_label} {path}: {what}")

    def send(self, endpoint: str, method: str, path: str, victim_id: int):
        self.sent += 1
        query = {"member_id": victim_id, "id": victim_id}
        url = f"{path}?{urlencode(query)}"
        if method == "GET":
            return self.client.get(url)
        data = {"csrf_token": self.csrf, **form_data(self.attacker, victim_id, self.sent)}
        if endpoint in FORM_OVERRIDES:
            data.update(FORM_OVERRIDES[endpoint](self.attacker))
        return self.client.open(url, method=method, data=data)

    def check_response(self, label: str, path: str, response, method: str) -> None:
        body = response.get_data().decode("utf-8", "replace")
        location = response.headers.get("Location", "")
        leaked = found(body + "\n" + location, self.victim.markers)
        if leaked:
            self.problem(label, path, f"the response ({response.status_code}) shows the other tenant's {leaked}")
        if response.status_code >= 500:
            self.problem(label, path, f"server error {response.status_code}")
        if method != "GET" and CSRF_REFUSED in body:
            self.problem(label, path, "CSRF refused the POST, so the view never ran; the probe proves nothing")

    def follow(self, label: str, path: str, response) -> None:
        """A redirect's target is where a leaked flash message or object would show: fetch it."""
        if response.status_code not in (301, 302, 303, 307, 308):
            return
        target = urlsplit(response.headers["Location"])
        if target.netloc and target.netloc != self.client.host:
            self.problem(label, path, f"redirects off the tenant's host to {response.headers['Location']}")
            return
        landing = self.client.get(target.path + (f"?{target.query}" if target.query else ""))
        self.check_response(f"{label} -> GET {target.path}", path, landing, "GET")

    def check_side_effects(self, label: str, path: str) -> None:
        mails = self.deliver().messages
        for message in mails[self.mails_seen:]:
            leaked = found(mail_text(message), self.victim.markers)
            if leaked:
                self.problem(label, path, f"an e-mail to {message['To']} ({message['Subject']!r}) carries {leaked}")
        self.mails_seen = len(mails)
        after = snapshot(self.app, self.victim.world.id)
        if after != self.baseline:
            self.problem(label, path, f"the other tenant's rows changed: {changed_rows(self.baseline, after)}")
            self.baseline = after  # report each change once, at the probe that made it

    def run(self, probe: Probe) -> None:
        self.exercised.add(probe.endpoint)
        for path, victim_id in probe.urls(self.victim):
            try:
                response = self.send(probe.endpoint, probe.method, path, victim_id)
            except Exception as exc:  # TESTING lets view errors through: report it with the rest
                self.problem(probe.label, path, f"raised {type(exc).__name__}: {exc}")
                self.check_side_effects(probe.label, path)
                continue
            status = response.status_code
            if probe.expect in (NOT_FOUND, CONSOLE_404) and status != 404:
                why = ("another tenant's id must look like no id at all (403 would confirm it exists)"
                       if probe.expect == NOT_FOUND else "the operator console does not exist on a tenant host")
                self.problem(probe.label, path, f"answered {status}, expected 404: {why}")
            if probe.expect == TOKEN_REFUSED:
                body = response.get_data(as_text=True)
                refused = (status == 400 and TOKEN_REFUSED_PAGE in body) or status == 404
                if not refused:
                    self.problem(probe.label, path,
                                 f"answered {status} without refusing the other tenant's token "
                                 f"(expected 400 '{TOKEN_REFUSED_PAGE}' or 404)")
            self.check_response(probe.label, path, response, probe.method)
            self.follow(probe.label, path, response)
            self.check_side_effects(probe.label, path)
            now = session_user(self.app, self.client)
            if probe.endpoint not in SIGNS_OUT and now != self.signed_in_as:
                self.problem(probe.label, path, f"the session changed from {self.signed_in_as!r} to {now!r} "
                             f"(signed out, or signed in as someone else); if the route signs out on purpose, "
                             f"add it to SIGNS_OUT")
                self.client.delete_cookie(self.app.config["SESSION_COOKIE_NAME"], domain=self.client.host)
                login_staff(self.client, self.member.email)
                self.signed_in_as = session_user(self.app, self.client)
                self.csrf = csrf_token(self.client, "/staff/account")


def control(client, probe: Probe, own: Victim, who: str) -> list[str]:
    """The same rule with the attacker's own ids/tokens must not be refused: otherwise the
    404 for the victim's would say nothing about tenancy. GETs only, so nothing changes."""
    problems = []
    for path, _ in probe.urls(own):
        response = client.get(path)
        status = response.status_code
        ok = status == 200 if probe.expect == TOKEN_REFUSED else status not in (400, 404) and status < 500
        if not ok:
            problems.append(f"[{who}] control {probe.label} {path}: the tenant's own value answered {status}; "
                            f"the route is broken, so its 404 for another tenant proves nothing")
    return problems


def sign_into_portal(client, own: Victim) -> None:
    """The same browser signs in to its own tenant's portal too (a separate cookie), so portal
    routes taking an id answer for the signed-in contact rather than with the sign-in page."""
    response = login_portal(client, own.portal_email)
    assert response.status_code == 302, f"{own.portal_email} could not sign in to the portal (control)"
    assert client.get("/portal/").status_code == 200, "the portal home does not take the portal session (control)"


# --- the tests -----------------------------------------------------------------------------------

def test_every_route_is_covered(app):
    """Every endpoint is probed or EXEMPT with a reason, every path parameter can be filled,
    and EXEMPT names no endpoint that is gone."""
    probes = planned_probes(app)  # fails, naming them, on parameters it cannot fill
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    stale = sorted(EXEMPT.keys() - endpoints)
    assert not stale, f"EXEMPT names endpoints that no longer exist: {stale}"
    unprobed = endpoints - EXEMPT.keys() - {p.endpoint for p in probes}
    assert not unprobed, f"endpoints neither probed nor EXEMPT: {sorted(unprobed)}"
    assert {p.expect for p in probes} >= {NOT_FOUND, TOKEN_REFUSED, CONSOLE_404, NO_LEAK}, (
        "the harness lost one of its kinds of probe: "
        f"{sorted({p.expect for p in probes})}")


@pytest.mark.parametrize("role", ROLES)
def test_tenant_a_cannot_reach_tenant_b(role, app, world, tenants, staff_client, client_for, deliver):
    """The harness proper: every rule and method, as this role of A on A's host, aimed at B."""
    victim, own = tenants["b"], tenants["a"]
    probes = planned_probes(app)

    # B's tokens are real: on B's own host they open the form. Without this a refusal on A's
    # host could just mean a broken token.
    on_b = client_for(world.b.slug)
    for endpoint in TOKEN_PURPOSES:
        path = app.url_map.bind(victim.host).build(endpoint, {"token": victim.token_for(endpoint)})
        response = on_b.get(path)
        assert response.status_code == 200 and "CANARY-B" in response.get_data(as_text=True), (
            f"{endpoint}: B's token does not work on B's host ({response.status_code}); the probe would prove nothing")

    client = staff_client(role)
    sign_into_portal(client, own)
    attack = Attack(app, deliver, client, world.a, world.a.members[role], victim, snapshot(app, victim.world.id))

    for probe in probes:
        if probe.method == "GET" and probe.expect in (NOT_FOUND, TOKEN_REFUSED):
            attack.problems += control(client, probe, own, attack.who)
        attack.run(probe)

    assert not attack.problems, (f"{len(attack.problems)} cross-tenant problem(s) in {attack.sent} requests:\n  "
                                 + "\n  ".join(attack.problems))
    expected = {rule.endpoint for rule in app.url_map.iter_rules()} - EXEMPT.keys()
    assert attack.exercised == expected, f"[{attack.who}] not exercised: {sorted(expected - attack.exercised)}"


def test_tenant_b_cannot_reach_tenant_a(app, world, tenants, staff_client, deliver):
    """Symmetry: the wall is not special to B. B's owner, on B's host, aims every rule that
    takes an id or a token at A's staff and A's real tokens: 404 / refused, A's rows
    unchanged, nothing of A's shown or e-mailed."""
    victim = tenants["a"]
    client = staff_client("owner", tenant="b")
    sign_into_portal(client, tenants["b"])
    attack = Attack(app, deliver, client, world.b, world.b.members["owner"], victim, snapshot(app, victim.world.id))
    aimed = [p for p in planned_probes(app) if p.expect in (NOT_FOUND, TOKEN_REFUSED)]
    assert {p.expect for p in aimed} == {NOT_FOUND, TOKEN_REFUSED}, "no id or token rule left to aim at A"
    for probe in aimed:
        attack.run(probe)
    assert not attack.problems, (f"{len(attack.problems)} cross-tenant problem(s), B against A:\n  "
                                 + "\n  ".join(attack.problems))


def test_session_cookie_of_a_does_not_sign_in_on_b(app, world, client_for):
    """Cookie jars are per host, so a browser never sends A's cookie to B; this copies it by
    hand (as a cookie set on the parent domain, or a stolen cookie, would) and checks that B's
    host does not take it."""
    on_a = client_for(world.a.slug)
    response = login_staff(on_a, world.a.members["owner"].email, remember=True)
    assert response.status_code == 302, "A's owner could not sign in on A's host"
    assert on_a.get("/staff/").status_code == 200, "A's own host does not accept A's session (control)"
    cookies = {name: on_a.get_cookie(name, domain=world.a.host)
               for name in (app.config["SESSION_COOKIE_NAME"], app.config.get("REMEMBER_COOKIE_NAME", "remember_token"))}
    assert all(cookies.values()), f"expected a session and a remember-me cookie, got {cookies}"

    # B's staff area, and the platform's console: each must send A's cookie to its own sign-in.
    for host_slug, path, sign_in in ((world.b.slug, "/staff/", "/staff/login"),
                                     (world.b.slug, "/staff/team", "/staff/login"),
                                     (None, "/admin/", "/admin/login")):
        other = client_for(host_slug)
        for name, cookie in cookies.items():
            other.set_cookie(name, cookie.value, domain=other.host)
        response = other.get(path)
        where = f"{path} on {other.host}"
        assert response.status_code == 302, f"{where}: A's cookie got {response.status_code}, expected a sign-in redirect"
        assert urlsplit(response.headers["Location"]).path == sign_in, (
            f"{where}: A's cookie was sent to {response.headers['Location']}, not to sign in")
        landing = other.get(response.headers["Location"])
        page = landing.get_data(as_text=True)
        owner = world.a.members["owner"]
        assert landing.status_code == 200 and owner.name not in page and owner.email not in page, (
            f"{where}: the sign-in page ({landing.status_code}) knows A's owner from A's cookie")


def test_tenant_b_accounts_mean_nothing_on_a_host(app, world, client_for, deliver):
    """B's credentials do not sign in on A's host, and asking A's host for a reset of B's
    address sends nothing and says what it says for any address."""
    on_a = client_for(world.a.slug)
    b_owner = world.b.members["owner"].email
    response = login_staff(on_a, b_owner, PASSWORD)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "do not match an account here" in body, (
        f"B's owner on A's host: {response.status_code}, expected the plain sign-in failure")
    assert session_user(app, on_a) is None, "B's owner got a session on A's host"
    # The form echoes the address typed in; anything else of B's would be a leak.
    b_things = (world.b.name, world.b.host, world.b.members["owner"].name)
    assert not found(body, b_things), "the failed sign-in page shows something of B's"

    response = on_a.post("/staff/password/forgot",
                         data={"csrf_token": csrf_token(on_a, "/staff/login"), "email": b_owner})
    assert response.status_code == 302, f"forgot-password with B's address: {response.status_code}"
    landing = on_a.get(response.headers["Location"]).get_data(as_text=True)
    assert "If an account exists for that address" in landing, "forgot-password did not answer as for any address"
    sent = deliver().messages
    assert not sent, f"A's host e-mailed {[m['To'] for m in sent]} for B's address"


def test_a_portal_login_of_a_reaches_nothing_of_b(app, world, tenants, portal_client, deliver):
    """The portal's own walk: signed in to A's portal (its own session and cookie, no staff
    session), every portal route aimed at B's ids and real tokens: refused, nothing of B's
    shown or e-mailed, B's rows unchanged, and A's portal session intact until sign-out."""
    victim = tenants["b"]
    client = portal_client("client")
    baseline = snapshot(app, victim.world.id)
    mails_seen = len(deliver().messages)
    problems = []
    probes = [p for p in planned_probes(app) if p.rule.rule.startswith("/portal")]
    assert {p.endpoint for p in probes} >= {"portal.home", "portal.login", "portal.profile", "portal.reset_password"}
    probes.sort(key=lambda p: p.endpoint == "portal.logout")
    for n, probe in enumerate(probes):
        for path, victim_id in probe.urls(victim):
            label = f"[portal] {probe.label} {path}"
            if probe.method == "GET":
                response = client.get(path)
            else:
                data = {"csrf_token": csrf_token(client, "/portal/profile"), **form_data(world.a, victim_id, n),
                        "session_id": victim_id}
                response = client.open(path, method=probe.method, data=data)
            body = response.get_data().decode("utf-8", "replace") + response.headers.get("Location", "")
            if response.status_code >= 500:
                problems.append(f"{label}: server error {response.status_code}")
            if probe.expect == NOT_FOUND and response.status_code != 404:
                problems.append(f"{label}: B's id answered {response.status_code}, expected 404")
            if probe.expect == TOKEN_REFUSED and not (response.status_code == 400 and TOKEN_REFUSED_PAGE in body):
                problems.append(f"{label}: B's token answered {response.status_code}, not refused")
            if found(body, victim.markers):
                problems.append(f"{label}: shows {found(body, victim.markers)}")
            for message in deliver().messages[mails_seen:]:
                if found(mail_text(message), victim.markers):
                    problems.append(f"{label}: an e-mail to {message['To']} carries B's data")
            mails_seen = len(deliver().messages)
            after = snapshot(app, victim.world.id)
            if after != baseline:
                problems.append(f"{label}: B's rows changed: {changed_rows(baseline, after)}")
                baseline = after
            if probe.endpoint != "portal.logout" and client.get("/portal/").status_code != 200:
                problems.append(f"{label}: A's portal session ended")
                client = portal_client("client", first_name=f"Again{n}")
    assert not problems, "\n  ".join(problems)
