"""What a kickoff form's submission does to the CRM, once it is stored (forms.submissions runs
this in its job, with the submission's row locked).

* The person: matched by crm.identity's rule (normalised e-mail, main or other, the live
  contact holding it before an inactive one; else the normalised phone, in the tenant's
  default region, when neither side has a different e-mail). A new person becomes a contact through crm.contacts, with the form's
  role and status. A returning person's contact only gets what it lacks: empty fields are
  filled, a new phone number joins its other phones, and the role moves forward only (a
  Client who fills a Lead form stays a Client). Nothing staff entered is overwritten; what
  the form said differently stays on the submission and in the timeline entry.
* Circles and tags of the form; an owner (fixed, or round-robin among the form's staff,
  skipping anyone no longer active) when the contact has none.
* Fields with target "custom.<id>" fill the contact's (or company's) custom field, checked by
  crm.custom_fields; "company.<attr>" finds the company (crm.companies.match_company with the
  tenant's threshold) or creates it, and may make the registrant its primary contact.
* A timeline entry "Submitted <form>" on the contact, linking the submission, with the
  answers; an audit event; the portal login the form asks for (portal.accounts); the staff
  notification (to the chosen staff who may see the contact, crm.access) and the registrant's
  confirmation (e-mail jobs, queued on commit).

An answer that breaks a CRM rule (a malformed phone in a custom field, an e-mail another
contact holds) is left out of the contact, kept on the submission, and said in its `error`;
the rest goes through. Only a submission with nothing to make a contact from fails.

Two workers processing the same new person at once end with one contact. On PostgreSQL each
worker takes transaction-level advisory locks on (tenant, e-mail) and (tenant, phone) before
matching, in one statement, and the second waits for the first to commit. (An e-mail is also
unique among live contacts, a partial unique index: a contact staff or an import commit between
the CRM's check and the insert fails the job, and its retry takes that contact.) On
SQLite the database has one writer at a time: the job's first statement (the submission's
row lock, a write) holds the write lock to the end of the transaction, so two jobs run one
after the other and the second sees the first's contact. Company names are locked the same
way, so one new company is created, not two.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from core import tenant_cache
from core.audit import record
from core.db import db, utcnow
from core.errors import ServiceError
from core.identity import StaffUser
from core.mail import send_mail
from core.tenancy import current_tenant, current_tenant_id, tenant_link
from crm import custom_fields
from crm.access import contact_visible_to, sees_every_contact
from crm.circles import add_contact_to_circle
from crm.companies import create_company, match_company, primary_contact_of, set_primary_contact, update_company
from crm.contacts import FIELD_LABELS, assign_owner, change_role, create_contact, update_contact
from crm.identity import contact_for
from crm.models import Circle, Company, Contact, ContactRole, CustomField, PipelineStatus
from crm.normalize import company_name_key, normalize_email, normalize_phone
from crm.setup import config
from crm.tags import tag_contact
from crm.timeline import record_activity
from forms.models import FieldKind, Form, FormSubmission, OwnerMode, PortalLogin, SubmissionState

# Where a field's answer may go: "contact.<attr>", "company.<attr>", "custom.<custom_field_id>".
CONTACT_TARGETS = {
    "first_name": "First name", "last_name": "Last name", "email": "E-mail", "phone": "Phone",
    "job_title": "Job title", "street": "Street", "city": "City", "postal_code": "Postal code",
    "region": "Region", "country": "Country", "notes": "Notes",
}
COMPANY_TARGETS = {
    "name": "Company name", "domain": "Company website domain", "phone": "Company phone",
    "street": "Company street", "city": "Company city", "postal_code": "Company postal code",
    "region": "Company region", "country": "Company country",
}
TIMELINE_KIND = "form_submission"
_YES = custom_fields.TRUE_WORDS


class FormActor:
    """Who a form's automatic actions are done as, on timelines and in the audit log: the
    form itself, not a person (it has no staff permissions)."""

    principal_type = "system"
    id = None
    is_staff = False

    def __init__(self, form: Form):
        self.display_name = self.audit_label = f"Kickoff form “{form.title}”"

    def __str__(self) -> str:
        return self.display_name


@dataclass
class Answers:
    """A submission's answers sorted by where they go."""

    contact: dict = field(default_factory=dict)  # contact attribute -> text
    company: dict = field(default_factory=dict)  # company attribute -> text
    custom: list = field(default_factory=list)  # (CustomField, raw answer, label on the form)
    rows: list = field(default_factory=list)  # (label, answer as text, field kind), in form order


def answer_text(value, kind: str = "") -> str:
    """An answer as people read it: choices joined, ticked boxes as Yes/No."""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value if str(v).strip())
    text = "" if value is None else str(value).strip()
    if kind in (FieldKind.YES_NO, FieldKind.CONSENT) and text:
        return "Yes" if text.lower() in _YES else "No"
    return text


def answer_rows(form: Form, answers: dict, *, include_hidden: bool = True) -> list[tuple[str, str]]:
    """(label, answer) in the form's order, for e-mails and pages; unanswered fields left out.
    Answers to fields since removed from the form come last, under their keys."""
    rows, seen = [], set()
    for f in form.fields:
        seen.add(f.key)
        if f.kind in FieldKind.NO_ANSWER or (f.kind == FieldKind.HIDDEN and not include_hidden):
            continue
        text = answer_text(answers.get(f.key), f.kind)
        if text:
            rows.append((f.label, text))
    for key, value in answers.items():
        if key not in seen and answer_text(value):
            rows.append((key, answer_text(value)))
    return rows


def _sort_answers(form: Form, answers: dict, problems: list[str]) -> Answers:
    out = Answers()
    for f in form.fields:
        if f.kind in FieldKind.NO_ANSWER or f.key not in answers:
            continue
        raw = answers[f.key]
        text = answer_text(raw, f.kind)
        out.rows.append((f.label, text, f.kind))
        where, _, attr = (f.target or "").partition(".")
        if where == "contact" and attr in CONTACT_TARGETS and text:
            out.contact[attr] = text
        elif where == "company" and attr in COMPANY_TARGETS and text:
            out.company[attr] = text
        elif where == "custom" and attr.isdigit():
            definition = db.session.get(CustomField, int(attr))
            if definition is None or definition.archived_at is not None:
                problems.append(f"{f.label}: its custom field no longer exists; the answer is kept on the submission only.")
            elif raw not in (None, "", []):
                out.custom.append((definition, raw, f.label))
    return out


# --- matching the person ---------------------------------------------------------------------------

def _advisory_locks(keys: list[tuple[str, str]]) -> None:
    """On PostgreSQL, hold transaction-level advisory locks on (tenant, kind, key) until this
    transaction ends, all taken by one statement, in the order given (e-mail, phone,
    company: the same order in every job, so two jobs never wait on each other): two workers
    matching the same person (or company) take turns. SQLite needs none: the job already
    holds the database's only write lock."""
    if not keys or db.session.get_bind().dialect.name != "postgresql":
        return
    tenant_id = current_tenant_id()
    locks = []
    for kind, key in keys:
        digest = hashlib.blake2b(f"portico.forms:{tenant_id}:{kind}:{key}".encode(), digest_size=8).digest()
        locks.append(sa.func.pg_advisory_xact_lock(int.from_bytes(digest, "big", signed=True)))
    db.session.execute(sa.select(*locks))


def match_contact(email: str | None, phone: str | None) -> Contact | None:
    """The contact these normalised details belong to, by crm.identity's rule: an e-mail
    (main or other) wins; a phone (main or other) only when the contact has no e-mail or none
    was given."""
    return contact_for((email,), (phone,))


def _lock_contact(contact_id: int) -> Contact:
    """A returning person's contact, locked (PostgreSQL: FOR UPDATE) and read fresh: staff's
    and other submissions' changes committed meanwhile are seen, and nobody changes it under
    this job."""
    return db.session.scalar(sa.select(Contact).where(Contact.id == contact_id).with_for_update()
                             .execution_options(populate_existing=True))


def _identity(data: dict, region: str, problems: list[str]) -> tuple[str | None, str | None]:
    """The normalised e-mail and phone among the contact answers; an unreadable one is left
    out of the contact (and said)."""
    email = phone = None
    if data.get("email"):
        try:
            email = normalize_email(data["email"])
        except ValueError as exc:
            problems.append(f"E-mail: {exc} It is kept on the submission only.")
        data.pop("email")
    if data.get("phone"):
        try:
            phone = normalize_phone(data["phone"], region)
        except ValueError as exc:
            problems.append(f"Phone: {exc} It is kept on the submission only.")
        data.pop("phone")
    return email, phone


def _label(name: str) -> str:
    return CONTACT_TARGETS.get(name) or FIELD_LABELS.get(name, name).capitalize()


def _tolerant(call, data: dict, problems: list[str], *, labels=_label, keep=()):
    """call(data), leaving out each field the CRM refuses (said in `problems`) until it goes
    through; a refusal that names no field in `data`, or one in `keep`, is raised."""
    data = dict(data)
    while True:
        try:
            return call(data)
        except ServiceError as exc:
            if exc.field not in data or exc.field in keep:
                raise
            problems.append(f"{labels(exc.field)}: {exc.message} It is kept on the submission only.")
            data.pop(exc.field)


def _empty(value) -> bool:
    return value is None or value == "" or value == [] or value == {}


# --- the parts of processing -----------------------------------------------------------------------

def _create(form: Form, data: dict, actor, problems: list[str]) -> Contact | None:
    """A new contact, or None when the same person's contact was created meanwhile (the
    caller matches again). Called when crm.identity found nobody answering to the e-mail,
    under its advisory lock: the CRM need not look for a live contact holding it again."""
    data = dict(data)
    if form.status_id:
        status = db.session.get(PipelineStatus, form.status_id)
        if status is not None and status.archived_at is None:
            data["status_id"] = status.id
        else:
            problems.append("Status: the form's status was archived; the contact got the default status.")
    # No savepoint: form jobs take turns on the e-mail (its advisory lock), and the CRM's check
    # of the e-mail sees a contact someone else committed meanwhile (a ServiceError, nothing
    # written). Only an insert committed between that check and ours could break the unique
    # index: the job then fails whole and its retry finds the contact.
    try:
        return _tolerant(lambda d: create_contact(d, actor=actor, role=form.role, email_checked=True,
                                                  activity=f"Added from the form “{form.title}”"),
                         data, problems, keep=("email",))
    except ServiceError as exc:
        if exc.field == "email":  # created and committed between our match and our insert
            return None
        raise


def _fill(contact: Contact, data: dict, actor, problems: list[str]) -> list[str]:
    """Give a returning person's contact what it lacks; returns the fields changed."""
    fill = {}
    for name, value in data.items():
        if name == "phone":
            if contact.phone is None:
                fill["phone"] = value
            elif value != contact.phone and value not in (contact.extra_phones or []):
                fill["extra_phones"] = [*(contact.extra_phones or []), value]
        elif _empty(getattr(contact, name)):
            fill[name] = value
    if not fill:
        return []
    labels = lambda name: _label("phone" if name == "extra_phones" else name)  # noqa: E731
    # No savepoint: a refusal _tolerant does not take raises out of the job, which rolls back whole.
    return _tolerant(lambda d: update_contact(contact, d, actor=actor), fill, problems, labels=labels)


def _custom_values(record_, answers: Answers, entity: str, region: str, *, only_empty: bool,
                   problems: list[str]) -> list[str]:
    """Fill `record_`'s custom fields (of `entity`) from the answers; returns their labels."""
    values = dict(record_.custom_fields or {})
    filled = []
    for definition, raw, label in answers.custom:
        if definition.entity != entity:
            continue
        try:
            value = custom_fields.clean_value(definition, raw, region=region)
        except ServiceError as exc:
            problems.append(f"{label}: {exc.message} It is kept on the submission only.")
            continue
        if _empty(value) or (only_empty and not _empty(values.get(definition.key))):
            continue
        values[definition.key] = value
        filled.append(definition.label)
    if filled:
        record_.custom_fields = values
        record_.updated_at = utcnow()
    return filled


def _company(answers: Answers, actor, region: str, *, problems: list[str]) -> Company | None:
    """The company the answers name (matched, filled where empty, or created), or None.
    Resolved before a new contact is made, so the contact is created at it (one write)."""
    data = dict(answers.company)
    name = data.get("name", "")
    if not company_name_key(name):
        if data or any(d.entity == "company" for d, _, _ in answers.custom):
            problems.append("Company details without a company name are kept on the submission only.")
        return None
    company = match_company(name, threshold=config().company_match_threshold)
    company_labels = lambda n: COMPANY_TARGETS.get(n, n)  # noqa: E731
    if company is None:
        # No savepoint: the CRM refuses a company's details (ServiceError) before it writes
        # anything, and what it writes then is the company, its timeline entry and its audit
        # event, sent with the rest at the commit.
        try:
            company = _tolerant(lambda d: create_company(d, actor=actor), data, problems,
                                labels=company_labels, keep=("name",))
        except ServiceError as exc:
            problems.append(f"Company name: {exc.message} It is kept on the submission only.")
            return None
        _custom_values(company, answers, "company", region, only_empty=False, problems=problems)
    else:
        fill = {n: v for n, v in data.items() if n != "name" and _empty(getattr(company, n))}
        if fill:
            _tolerant(lambda d: update_company(company, d, actor=actor), fill, problems, labels=company_labels)
        _custom_values(company, answers, "company", region, only_empty=True, problems=problems)
    return company


def _attach(form: Form, contact: Contact, company: Company, typed: str, actor, *, problems: list[str]) -> None:
    """The contact at the company (unless it is at another already), and its primary contact
    when the form says so and the company has none."""
    if contact.company_id is None:
        update_contact(contact, {"company_id": company.id}, actor=actor)
    elif contact.company_id != company.id:
        problems.append(f"Company: the form said “{typed}”; the contact stays at {contact.company.name}.")
        return
    if form.make_primary_contact and primary_contact_of(company) is None:
        try:
            with db.session.begin_nested():
                set_primary_contact(company, contact, actor=actor)
        except IntegrityError:
            pass  # another registrant became the primary contact at the same moment


def _lock_form(form_id: int) -> Form:
    """The form's row, locked and read fresh: round-robin turns are handed out one at a time."""
    db.session.execute(sa.update(Form).where(Form.id == form_id)
                       .values(round_robin_next=Form.round_robin_next, updated_at=Form.updated_at))
    return db.session.scalar(sa.select(Form).where(Form.id == form_id).execution_options(populate_existing=True))


def next_owner(form: Form, problems: list[str]) -> StaffUser | None:
    """The owner a new contact of this form gets: the fixed one, or the next active member in
    the round-robin (advancing the turn, under the form's row lock)."""
    if form.owner_mode == OwnerMode.FIXED and form.owner_id:
        owner = db.session.get(StaffUser, form.owner_id)
        if owner is None or not owner.active:
            problems.append("Owner: the form's owner is no longer on the team; no owner was set.")
            return None
        return owner
    if form.owner_mode != OwnerMode.ROUND_ROBIN or not form.round_robin_staff_ids:
        return None
    form = _lock_form(form.id)
    ids = list(form.round_robin_staff_ids)
    start = form.round_robin_next % len(ids)
    for step in range(len(ids)):
        position = (start + step) % len(ids)
        owner = db.session.get(StaffUser, int(ids[position]))
        if owner is not None and owner.active:
            # Not through the ORM: handing out a turn is no edit of the form (updated_at stays).
            db.session.execute(sa.update(Form).where(Form.id == form.id).values(
                round_robin_next=(position + 1) % len(ids), updated_at=Form.updated_at))
            return owner
    problems.append("Owner: nobody in the form's round-robin is still on the team; no owner was set.")
    return None


def _portal_login(form: Form, submission: FormSubmission, contact: Contact, actor, problems: list[str], *,
                  created: bool) -> None:
    from portal.accounts import register_portal_account

    password_hash = submission.portal_password_hash if form.portal_login == PortalLogin.PASSWORD else None
    submission.portal_password_hash = None  # the login has it now, or never will
    if form.portal_login == PortalLogin.NONE:
        return
    if password_hash is not None and not created:
        # Whoever typed a known person's address must not choose that person's password (one
        # click on the verification link would open the login to them): the contact gets a
        # set-password link at their own address instead.
        password_hash = None
        problems.append("Portal login: the registrant is an existing contact, so the password typed on the form "
                        "was not used; a link to choose one goes to the contact's own address.")
    if not contact.email:
        problems.append("Portal login: the contact has no e-mail address, so no login was made.")
        return
    try:
        with db.session.begin_nested():
            register_portal_account(contact, password=None, password_hash=password_hash,
                                    needs_approval=form.portal_requires_approval, actor=actor, source=form.title,
                                    form_id=form.id)
    except ServiceError as exc:
        problems.append(f"Portal login: {exc.message}")


@dataclass(frozen=True)
class Notified:
    """A staff member a form notifies, as plain data (kept by core.tenant_cache: staff and
    their roles are configuration)."""

    id: int
    email: str
    display_name: str
    sees_every_contact: bool


def notified_staff(form: Form) -> tuple[Notified, ...]:
    """The active staff members the form notifies."""
    staff_ids = sorted({int(i) for i in form.notify_staff_ids or []})
    if not staff_ids:
        return ()

    def load():
        with db.session.no_autoflush:  # what processing wrote goes out once, at the commit
            staff = db.session.scalars(sa.select(StaffUser).where(StaffUser.id.in_(staff_ids),
                                                                  StaffUser.active.is_(True))).all()
        return tuple(Notified(m.id, m.email, m.display_name, sees_every_contact(m)) for m in staff)
    return tenant_cache.cached(f"form_notified_staff:{form.id}:{staff_ids}", load)


def _may_see(member: Notified, contact: Contact) -> bool:
    if member.sees_every_contact:
        return True
    # Flushed first (the query autoflushes): the Circles processing just added the contact to count.
    return contact_visible_to(db.session.get(StaffUser, member.id), contact)


def _emails(form: Form, submission: FormSubmission, contact: Contact, created: bool) -> None:
    tenant = current_tenant()
    answers = submission.answers or {}
    staff = notified_staff(form)
    if staff:
        link = tenant_link(tenant, "staff.contact", contact_id=contact.id)
        rows = answer_rows(form, answers)
        # Only those who may see the contact: the note carries its name and answers.
        for member in [m for m in staff if _may_see(m, contact)]:
            send_mail(member.email, f"New submission of {form.title}: {contact.full_name}", "form_submission_staff",
                      tenant_id=tenant.id, tenant=tenant, form=form, contact=contact, member=member,
                      submission=submission, rows=rows, link=link, created=created)
    if form.send_confirmation:
        email = submission_email(submission)
        if email:
            # Greeted by the name they typed, never the contact's: the address was typed by
            # the sender, and the contact's name is not theirs to learn.
            first_name = next((str(answers.get(f.key) or "").strip() for f in form.fields
                               if f.target == "contact.first_name"), "")
            send_mail(email, form.confirmation_subject or f"We received your details: {form.title}",
                      "form_submission_confirmation", tenant_id=tenant.id, tenant=tenant, form=form,
                      first_name=first_name, rows=answer_rows(form, answers, include_hidden=False))


def submission_email(submission: FormSubmission) -> str | None:
    """The e-mail address the submitter gave (normalised), if any."""
    form = submission.form
    for f in form.fields:
        if f.target == "contact.email" or (f.kind == FieldKind.EMAIL and not f.target):
            try:
                return normalize_email(answer_text(submission.answers.get(f.key)))
            except ValueError:
                continue
    return None


# --- the whole of it -------------------------------------------------------------------------------

def process(submission: FormSubmission) -> None:
    """Apply the submission to the CRM and record the outcome on it (see the module
    docstring). Raises ServiceError when there is nothing to make a contact from."""
    form = submission.form
    actor = FormActor(form)
    region = config().default_region
    problems: list[str] = []
    answers = _sort_answers(form, submission.answers or {}, problems)
    data = dict(answers.contact)
    email, phone = _identity(data, region, problems)
    if not (email or phone or data.get("first_name") or data.get("last_name")):
        raise ServiceError("The submission has no name, e-mail address or phone number to make a contact from.")
    company_key = company_name_key(answers.company.get("name", ""))
    _advisory_locks([*([("email", email)] if email else []), *([("phone", phone)] if phone else []),
                     *([("company", company_key)] if company_key else [])])
    if email:
        data["email"] = email
    if phone:
        data["phone"] = phone

    contact = match_contact(email, phone) if (email or phone) else None
    if contact is not None:
        contact = _lock_contact(contact.id)
    # Locks in this order, always: person, contact, company, form (two jobs never wait on each other).
    company_problems: list[str] = []  # said where the company part comes, after the contact's
    company = _company(answers, actor, region, problems=company_problems)
    created = False
    if contact is None:
        contact = _create(form, {**data, "company_id": company.id} if company is not None else data, actor, problems)
        created = contact is not None
        if contact is None:
            contact = match_contact(email, phone)
            if contact is None:
                raise ServiceError("The contact could not be created; the submission is kept.")
            contact = _lock_contact(contact.id)
    if not created and email and contact.email != email and email not in (contact.extra_emails or ()):
        # Matched by phone, on a contact without an e-mail: adding the typed address would let
        # anyone who knows the number claim the contact (and its portal login). Staff decide.
        data.pop("email", None)
        problems.append(f"E-mail: {email} was not added to the contact, which this phone number matched: "
                        "check it is theirs before adding it. It is kept on the submission.")
    filled = [] if created else _fill(contact, data, actor, problems)
    filled += _custom_values(contact, answers, "contact", region, only_empty=not created, problems=problems)

    if not created and ContactRole.RANK[form.role] > ContactRole.RANK[contact.role]:
        change_role(contact, form.role, actor=actor)
    for circle_id in form.circle_ids or []:
        circle = db.session.get(Circle, int(circle_id))
        if circle is None or circle.archived_at is not None:
            problems.append("Circles: one of the form's circles was archived or deleted; it was skipped.")
            continue
        add_contact_to_circle(circle, contact, actor, check=False)
    for name in form.tags or []:
        try:
            with db.session.begin_nested():
                tag_contact(contact, name, actor, check=False)
        except ServiceError as exc:
            problems.append(f"Tag “{name}”: {exc.message} It was skipped.")
    problems += company_problems
    if company is not None:
        _attach(form, contact, company, answers.company.get("name", ""), actor, problems=problems)
    if contact.owner_id is None:
        # Last of the locks taken (person, contact, company, form: always in this order, so two
        # jobs never wait on each other), and held for the shortest time.
        owner = next_owner(form, problems)
        if owner is not None:
            assign_owner(contact, owner, actor=actor)

    _portal_login(form, submission, contact, actor, problems, created=created)
    # Dated when it was sent, so it sits before what processing it caused on the timeline.
    record_activity(TIMELINE_KIND, f"Submitted {form.title}", contact=contact, subject=submission, actor=actor,
                    occurred_at=submission.submitted_at, touch=False,
                    details={"form_id": form.id, "submission_id": submission.id, "created": created,
                             "answers": [[label, text] for label, text, _ in answers.rows if text],
                             "filled": filled, "problems": list(problems)})
    if not created:
        # What processing did is the latest activity, not the sending. (A new contact's latest
        # is already its creation or what followed it: no second write of the row.)
        contact.last_activity_at = utcnow()

    submission.state = SubmissionState.PROCESSED
    submission.contact_id = contact.id
    submission.company_id = company.id if company is not None else None
    submission.created_contact = created
    submission.processed_at = utcnow()
    submission.error = "\n".join(problems)
    record("form_submission.processed", submission, actor=actor, details={
        "contact_id": contact.id, "created_contact": created,
        "company_id": submission.company_id, "problems": problems})
    _emails(form, submission, contact, created)
