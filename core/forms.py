"""Forms and fields more than one blueprint shows: signing in, choosing or changing a password,
asking for a link by e-mail, a list of checkboxes."""
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectMultipleField, widgets
from wtforms.validators import DataRequired, Email, EqualTo


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
