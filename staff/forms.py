from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField
from wtforms import BooleanField, EmailField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, Email, Length, Optional, Regexp

from core.forms import ChangePasswordForm, EmailAddressForm, LoginForm, NewPasswordForm  # noqa: F401
from core.identity import StaffRole

ROLE_CHOICES = [SelectChoice(role, StaffRole.LABELS[role]) for role in StaffRole.ALL]


ForgotPasswordForm = EmailAddressForm


class AcceptInvitationForm(NewPasswordForm):
    name = StringField("Your name", validators=[DataRequired("Enter your name."), Length(max=200)],
                       render_kw={"autocomplete": "name"})


class ProfileForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired("Enter your name."), Length(max=200)],
                       render_kw={"autocomplete": "name"})


class InviteForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired("Enter their e-mail address."),
                                             Email("Enter a valid e-mail address.")])
    name = StringField("Name", validators=[Optional(), Length(max=200)])
    role = SelectField("Role", choices=ROLE_CHOICES, default=StaffRole.STAFF)


class MemberForm(FlaskForm):
    role = SelectField("Role", choices=ROLE_CHOICES)
    active = BooleanField("Can sign in")


class BrandingForm(FlaskForm):
    display_name = StringField("Name shown to your users", validators=[Optional(), Length(max=200)],
                               description="Leave empty to use the business name.")
    primary_color = StringField(
        "Primary colour", validators=[DataRequired("Choose a colour."),
                                      Regexp(r"^#[0-9a-fA-F]{6}$", message="Use a colour like #1f6feb.")],
        render_kw={"type": "color"})
    logo = FileField("Logo", validators=[FileAllowed(["png", "jpg", "jpeg", "gif", "webp"],
                                                     "Upload a PNG, JPEG, GIF or WebP image.")],
                     description="PNG, JPEG, GIF or WebP, 512 KB at most.")
    remove_logo = BooleanField("Remove the current logo")
