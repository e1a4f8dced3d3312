"""A kickoff form as the public sees it: a WTForms class built from the form's ordered fields.

The same builder serves the public page, the embed and the staff builder's live preview. The
preview renders a draft nobody has saved yet, so everything here works from field
*definitions* (FormField rows or plain dicts with the same keys), never from the database.

    specs = field_specs(form.fields)                  # or field_specs(draft_field_dicts)
    Kickoff = build_form_class(specs, region="DE", portal_login=form.portal_login)
    wtform = Kickoff(data=url_prefill(specs, request.args))
    ...
    if wtform.validate():
        answers = collect_answers(wtform, specs)

Template side: templates/forms/_form.html, `render_kickoff_form(wtform, specs, ...)`.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field as dc_field
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

from flask_wtf import FlaskForm
from wtforms import (BooleanField, EmailField, Form, HiddenField, PasswordField, RadioField, SelectChoice,
                     SelectField, SelectMultipleField, StringField, TelField, TextAreaField)
from wtforms.validators import EqualTo, InputRequired, Length, Optional, ValidationError
from wtforms.widgets import CheckboxInput, DateInput, ListWidget, NumberInput

from core.identity import normalize_email, password_problem
from crm.normalize import normalize_phone
from forms.models import FieldKind, PortalLogin

# Names of the inputs the public form carries besides the answers. Answer inputs are named by
# their field's key, so no key may start with this prefix (RESERVED_PREFIX, checked by
# build_form_class; the builder refuses such keys). A key that would shadow a name of the WTForms
# form itself (validate, meta, data, validate_<key>, …) is named input_name(key) instead.
RESERVED_PREFIX = "kf_"
TOKEN, SOURCE_URL, HONEYPOT = "kf_token", "kf_source_url", "kf_homepage"
PASSWORD, PASSWORD_CONFIRM = "kf_password", "kf_password_confirm"

YES, NO = "yes", "no"
TEXT_MAX = {FieldKind.SHORT_TEXT: 300, FieldKind.LONG_TEXT: 5000, FieldKind.EMAIL: 254,
            FieldKind.PHONE: 40, FieldKind.NUMBER: 40, FieldKind.HIDDEN: 500}
_SPEC_KEYS = ("key", "kind", "label", "help_text", "placeholder", "required", "choices", "display",
              "url_parameter", "terms_url")


@dataclass(frozen=True)
class FieldSpec:
    """What rendering needs to know of one field; built from a FormField or a draft dict."""

    key: str
    kind: str
    label: str = ""
    help_text: str = ""
    placeholder: str = ""
    required: bool = False
    choices: tuple[tuple[str, str], ...] = dc_field(default=())  # (value, label)
    display: str = "dropdown"
    url_parameter: str = ""
    terms_url: str = ""

    @property
    def name(self) -> str:
        """The field's attribute on the built form class and its input's name (see input_name)."""
        return input_name(self.key)

    @property
    def has_input(self) -> bool:
        return self.kind not in FieldKind.NO_ANSWER

    @property
    def is_group(self) -> bool:
        """Rendered as a fieldset of options (radios or checkboxes) with a legend."""
        return self.kind in (FieldKind.MULTI_CHOICE, FieldKind.YES_NO) or (
            self.kind == FieldKind.SINGLE_CHOICE and self.display == "radio")

    @property
    def safe_terms_url(self) -> str:
        """The terms link, only when it is a web address (never javascript: or data:)."""
        return self.terms_url if urlsplit(self.terms_url or "").scheme in ("http", "https") else ""


def _choices(raw) -> tuple[tuple[str, str], ...]:
    # Choices are stored as plain strings; a {"value", "label"} dict or a pair also reads.
    pairs = []
    for choice in raw or ():
        if isinstance(choice, Mapping):
            value = str(choice.get("value") or choice.get("label") or "")
            label = str(choice.get("label") or value)
        elif isinstance(choice, (list, tuple)) and len(choice) == 2:
            value, label = str(choice[0]), str(choice[1])
        else:
            value = label = str(choice)
        if value.strip():
            pairs.append((value.strip(), label.strip()))
    return tuple(pairs)


def field_spec(field) -> FieldSpec:
    """One FieldSpec from a FormField row, a dict of its attributes, or a FieldSpec."""
    if isinstance(field, FieldSpec):
        return field
    get = field.get if isinstance(field, Mapping) else (lambda name, default=None: getattr(field, name, default))
    kind = get("kind") or FieldKind.SHORT_TEXT
    if kind not in FieldKind.ALL:
        raise ValueError(f"Unknown field kind {kind!r}.")
    return FieldSpec(
        key=str(get("key") or ""), kind=kind, label=str(get("label") or ""),
        help_text=str(get("help_text") or ""), placeholder=str(get("placeholder") or ""),
        required=bool(get("required")), choices=_choices(get("choices")),
        display="radio" if get("display") == "radio" else "dropdown",
        url_parameter=str(get("url_parameter") or ""), terms_url=str(get("terms_url") or ""),
    )


def field_specs(fields: Iterable) -> list[FieldSpec]:
    """FieldSpecs in the order given (a form's `fields` relationship is already by position).
    Section headings need no key; fields with inputs must have distinct, unreserved keys."""
    specs, seen = [], set()
    for index, raw in enumerate(fields):
        spec = field_spec(raw)
        if not spec.has_input:
            specs.append(spec if spec.key else FieldSpec(**{**spec.__dict__, "key": f"section_{index}"}))
            continue
        if not spec.key or spec.key in seen or spec.key.startswith(RESERVED_PREFIX):
            raise ValueError(f"Field key {spec.key!r} is empty, repeated or reserved.")
        seen.add(spec.key)
        specs.append(spec)
    return specs


# --- validators ------------------------------------------------------------------------------

def _required(spec: FieldSpec):
    if spec.kind == FieldKind.CONSENT:
        return InputRequired("Tick this box to continue.")
    if spec.kind in (FieldKind.SINGLE_CHOICE, FieldKind.YES_NO):
        return InputRequired("Choose an answer.")
    if spec.kind == FieldKind.MULTI_CHOICE:
        return _AtLeastOne()
    return InputRequired("Please fill this in.")


class _AtLeastOne:
    # No "required" flag: on a checkbox it would mean *this* box must be ticked.
    def __call__(self, form, field):
        if not field.data:
            raise ValidationError("Choose at least one.")


class _NotBlank:
    """InputRequired accepts a lone space; an answer of white space is no answer."""

    def __call__(self, form, field):
        if isinstance(field.data, str) and not field.data.strip():
            field.errors[:] = []
            raise ValidationError("Please fill this in.")


def _email(form, field):
    try:
        normalize_email(field.data)
    except ValueError:
        raise ValidationError("Enter an e-mail address like name@example.com.") from None


def _phone(region: str):
    def check(form, field):
        try:
            normalize_phone(field.data, region)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
    return check


def _number(form, field):
    try:
        value = Decimal(field.data.strip())
    except InvalidOperation:
        raise ValidationError("Enter a number, like 42 or 3.5.") from None
    if not value.is_finite():
        raise ValidationError("Enter a number, like 42 or 3.5.")


def _date(form, field):
    try:
        dt.date.fromisoformat(field.data.strip())
    except ValueError:
        raise ValidationError("Enter a date, like 2025-03-31.") from None


# --- the form class ----------------------------------------------------------------------------

def _clip(value, limit: int):
    return value[:limit] if isinstance(value, str) else value


class KickoffForm(FlaskForm):
    """Base of every built form. No session CSRF token: the public form is protected by its own
    signed token (forms.public), which works in a third-party iframe without cookies."""

    class Meta:
        csrf = False

    kf_token = HiddenField()
    kf_source_url = HiddenField(filters=[lambda value: _clip(value, 2000)])
    # The honeypot: hidden from people (CSS and aria-hidden), filled in by bots.
    kf_homepage = StringField("Leave this empty", validators=[Optional()])


# Names a field may not take on the form class: WTForms keeps its own methods and state (validate,
# process, meta, data, errors, _fields, …) in the same namespace as the fields, and treats a
# `validate_<name>` attribute as an inline validator of field <name>.
_FORM_INSTANCE_NAMES = frozenset(vars(Form())) | {"csrf_token"}


def key_is_safe(key: str) -> bool:
    """Whether a field key can be an attribute (and input name) of the built form as it is."""
    return (bool(key) and not key.startswith(("_", "validate_", RESERVED_PREFIX))
            and key not in _FORM_INSTANCE_NAMES and not hasattr(KickoffForm, key))


def input_name(key: str) -> str:
    """The attribute and input name of the field with this key: the key itself, or for a key
    that would shadow the form's own names (stored before the builder refused them, or typed
    into a draft) the key behind the reserved prefix, which no field key can take. Answers
    stay stored under the key."""
    return key if key_is_safe(key) else f"{RESERVED_PREFIX}f_{key}"


def _text_validators(spec: FieldSpec, extra=()) -> list:
    checks = [_required(spec), _NotBlank()] if spec.required else [Optional()]
    maximum = TEXT_MAX.get(spec.kind)
    if maximum:
        checks.append(Length(max=maximum, message=f"Use at most {maximum} characters."))
    return [*checks, *extra]


def _render_kw(spec: FieldSpec, **extra) -> dict:
    kw = {"placeholder": spec.placeholder} if spec.placeholder else {}
    kw.update(extra)
    return kw


def _make_field(spec: FieldSpec, region: str):
    kind, label, help_text = spec.kind, spec.label or spec.key, spec.help_text
    # Ids carry a prefix so a key like "main" cannot clash with the page's own ids.
    common = {"label": label, "description": help_text, "id": f"f-{spec.key}"}
    if kind == FieldKind.SHORT_TEXT:
        return StringField(validators=_text_validators(spec), render_kw=_render_kw(spec), **common)
    if kind == FieldKind.LONG_TEXT:
        return TextAreaField(validators=_text_validators(spec), render_kw=_render_kw(spec, rows=5), **common)
    if kind == FieldKind.EMAIL:
        return EmailField(validators=_text_validators(spec, [_email]),
                          render_kw=_render_kw(spec, autocomplete="email", spellcheck="false"), **common)
    if kind == FieldKind.PHONE:
        return TelField(validators=_text_validators(spec, [_phone(region)]),
                        render_kw=_render_kw(spec, autocomplete="tel"), **common)
    if kind == FieldKind.NUMBER:
        return StringField(widget=NumberInput(step="any"), validators=_text_validators(spec, [_number]),
                           render_kw=_render_kw(spec, inputmode="decimal"), **common)
    if kind == FieldKind.DATE:
        return StringField(widget=DateInput(), validators=_text_validators(spec, [_date]),
                           render_kw=_render_kw(spec), **common)
    if kind == FieldKind.SINGLE_CHOICE:
        validators = [_required(spec)] if spec.required else [Optional()]
        if spec.display == "radio":
            return RadioField(choices=_select_choices(spec.choices), validators=validators,
                              validate_choice=True, **common)
        # A dropdown starts on an empty "Choose…" so nobody sends the first option by accident.
        choices = _select_choices([("", spec.placeholder or "Choose…"), *spec.choices])
        return SelectField(choices=choices, validators=[*validators, _known_choice(spec)],
                           validate_choice=False, **common)
    if kind == FieldKind.MULTI_CHOICE:
        validators = [_required(spec)] if spec.required else [Optional()]
        return _Checkboxes(choices=_select_choices(spec.choices), validators=validators,
                                   widget=ListWidget(prefix_label=False), option_widget=CheckboxInput(),
                                   **common)
    if kind == FieldKind.YES_NO:
        validators = [_required(spec)] if spec.required else [Optional()]
        return RadioField(choices=_select_choices([(YES, "Yes"), (NO, "No")]), validators=validators, **common)
    if kind == FieldKind.CONSENT:
        validators = [_required(spec)] if spec.required else [Optional()]
        return BooleanField(validators=validators, **common)
    if kind == FieldKind.HIDDEN:
        # Nobody can see, let alone correct, an error on a hidden input: clip it instead.
        return HiddenField(filters=[lambda value: _clip(value, TEXT_MAX[FieldKind.HIDDEN])], id=f"f-{spec.key}")
    raise ValueError(f"Field kind {kind!r} has no input.")


def _select_choices(pairs) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in pairs]


class _Checkboxes(SelectMultipleField):
    def pre_validate(self, form):
        values = {choice.value for choice in self.choices}
        if any(value not in values for value in self.data or ()):
            raise ValidationError("Choose from the options shown.")


def _known_choice(spec: FieldSpec):
    values = {value for value, _ in spec.choices}

    def check(form, field):
        if field.data and field.data not in values:
            raise ValidationError("Choose one of the options.")
    return check


def _password_field(form, field):
    problem = password_problem(field.data or "", email=_email_answer(form))
    if problem:
        raise ValidationError(problem)


def _email_answer(form) -> str:
    for name in getattr(form, "_email_keys", ()):
        value = getattr(form, name).data
        if value:
            return value
    return ""


def build_form_class(fields: Iterable, *, region: str = "US",
                     portal_login: str = PortalLogin.NONE) -> type[KickoffForm]:
    """A KickoffForm subclass with one input per field (section headings have none), in order,
    plus a password and its confirmation when the registrant chooses their portal password on
    the form. `fields`: FormField rows, field dicts or FieldSpecs; `region`: the tenant's
    default phone region (CrmSettings.default_region)."""
    specs = field_specs(fields)
    attrs = {"_specs": specs, "_email_keys": [s.name for s in specs if s.kind == FieldKind.EMAIL]}
    for spec in specs:
        if spec.has_input:
            attrs[spec.name] = _make_field(spec, region)
    if portal_login == PortalLogin.PASSWORD:
        attrs[PASSWORD] = PasswordField(
            "Choose a password for your account",
            validators=[InputRequired("Choose a password."), _password_field],
            render_kw={"autocomplete": "new-password"},
            description="You will sign in with your e-mail address and this password.")
        attrs[PASSWORD_CONFIRM] = PasswordField(
            "Repeat the password",
            validators=[InputRequired("Repeat the password."),
                        EqualTo(PASSWORD, "The two passwords are not the same.")],
            render_kw={"autocomplete": "new-password"})
    return type("BuiltKickoffForm", (KickoffForm,), attrs)


def url_prefill(fields: Iterable, args: Mapping) -> dict:
    """Initial data for hidden fields from the page's URL parameters (utm_source, …)."""
    data = {}
    for spec in field_specs(fields):
        if spec.kind == FieldKind.HIDDEN:
            name = spec.url_parameter or spec.key
            value = args.get(name)
            if value:
                data[spec.name] = value[:TEXT_MAX[FieldKind.HIDDEN]]
    return data


def collect_answers(wtform: KickoffForm, fields: Iterable | None = None) -> dict:
    """The answers of a validated form, by field key, as text (forms.submissions stores text):
    as typed (trimmed), multiple choice a list of texts, yes/no "yes"/"no", a ticked consent
    "yes"; "" when unanswered."""
    specs = field_specs(fields) if fields is not None else wtform._specs
    answers = {}
    for spec in specs:
        if not spec.has_input:
            continue
        data = getattr(wtform, spec.name).data
        if spec.kind == FieldKind.MULTI_CHOICE:
            answers[spec.key] = list(data or [])
        elif spec.kind == FieldKind.CONSENT:
            answers[spec.key] = YES if data else ""
        else:
            answers[spec.key] = (data or "").strip() if isinstance(data, str) or data is None else data
    return answers


def password_of(wtform: KickoffForm) -> str | None:
    field = getattr(wtform, PASSWORD, None)
    return field.data if field is not None and field.data else None
