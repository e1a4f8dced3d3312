"""Forms and fields more than one blueprint shows: choosing a new password, asking for a link by
e-mail, a list of checkboxes."""
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectMultipleField, widgets
from wtforms.validators import DataRequired, Email, EqualTo


class NewPasswordForm(FlaskForm):
    password = PasswordField("New password", validators=[DataRequired("Choose a password.")],
                             render_kw={"autocomplete": "new-password"})
    confirm = PasswordField("Repeat the new password",
                            validators=[EqualTo("password", "The two passwords differ.")],
                            render_kw={"autocomplete": "new-password"})


class EmailAddressForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired("Enter your e-mail address."),
                                             Email("Enter a valid e-mail address.")],
                       render_kw={"autocomplete": "username", "autofocus": True})


class MultiCheckboxField(SelectMultipleField):
    """A multiple choice shown as checkboxes rather than a list box."""

    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()
