"""Forms and fields more than one blueprint shows: signing in, choosing or changing a password,
asking for a link by e-mail, a list of checkboxes, the inputs of a tenant's custom fields."""
from flask_wtf import FlaskForm
from wtforms import (BooleanField, DateField, EmailField, PasswordField, SelectChoice, SelectField,
                     SelectMultipleField, StringField, TelField, TextAreaField, URLField, widgets)
from wtforms.validators import DataRequired, Email, EqualTo, Optional

# A custom field's input is named cf_<key> on every form; the services name it so beside an error.
CUSTOM_FIELD_PREFIX = "cf_"


def _new_password() -> PasswordField:
    return PasswordField("New password", validators=[DataRequired("Choose a password.")],
                         render_kw={"autocomplete": "new-password"})


def _repeat_password() -> PasswordField:
    return PasswordField("Repeat the new password", validators=[EqualTo("password", "The two passwords differ.")],
                         render_kw={"autocomplete": "new-password"})


class NewPasswordForm(FlaskForm):
    password = _new_password()
    confirm = _repeat_password()


class LoginForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired("Enter your e-mail address.")],
                       render_kw={"autocomplete": "username", "autofocus": True})
    password = PasswordField("Password", validators=[DataRequired("Enter your password.")],
                             render_kw={"autocomplete": "current-password"})
    remember = BooleanField("Keep me signed in on this device")


class ChangePasswordForm(FlaskForm):
    # The current password first, as people expect it; then the new one twice.
    current_password = PasswordField("Current password", validators=[DataRequired("Enter your current password.")],
                                     render_kw={"autocomplete": "current-password"})
    password = _new_password()
    confirm = _repeat_password()


class EmailAddressForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired("Enter your e-mail address."),
                                             Email("Enter a valid e-mail address.")],
                       render_kw={"autocomplete": "username", "autofocus": True})


class MultiCheckboxField(SelectMultipleField):
    """A multiple choice shown as checkboxes rather than a list box."""

    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


def _custom_input(definition):
    label, help_text = definition.label, definition.help_text or ""
    kinds = {
        "text": lambda: StringField(label, description=help_text),
        "long_text": lambda: TextAreaField(label, description=help_text, render_kw={"rows": 3}),
        "number": lambda: StringField(label, description=help_text, render_kw={"inputmode": "decimal"}),
        "date": lambda: DateField(label, description=help_text, validators=[Optional()]),
        "boolean": lambda: BooleanField(label, description=help_text),
        "choice": lambda: SelectField(label, description=help_text,
                                      choices=[SelectChoice("", "—")] + [SelectChoice(c, c) for c in definition.choices]),
        "multi_choice": lambda: MultiCheckboxField(label, description=help_text,
                                                   choices=[SelectChoice(c, c) for c in definition.choices]),
        "url": lambda: URLField(label, description=help_text, validators=[Optional()]),
        "email": lambda: EmailField(label, description=help_text),
        "phone": lambda: TelField(label, description=help_text),
    }
    return kinds[definition.field_type]()


def with_custom_fields(form_class, definitions):
    """A subclass of `form_class` with one input per custom field definition (crm.models.CustomField)."""
    attrs = {CUSTOM_FIELD_PREFIX + d.key: _custom_input(d) for d in definitions}
    attrs["CUSTOM_KEYS"] = tuple(CUSTOM_FIELD_PREFIX + d.key for d in definitions)
    return type(form_class.__name__, (form_class,), attrs)


def custom_values_of(form) -> dict:
    values = {}
    for name in getattr(form, "CUSTOM_KEYS", ()):
        data = form[name].data
        values[name[len(CUSTOM_FIELD_PREFIX):]] = data.isoformat() if hasattr(data, "isoformat") else data
    return values


def fill_custom(form, record) -> None:
    """Put a record's custom values into the form (GET of an edit page)."""
    from datetime import date

    for name in getattr(form, "CUSTOM_KEYS", ()):
        value = (record.custom_fields or {}).get(name[len(CUSTOM_FIELD_PREFIX):])
        if value is not None and isinstance(form[name], DateField):
            value = date.fromisoformat(value)
        form[name].data = value
