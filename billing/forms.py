"""The staff pages' forms for payments: Stripe keys, the portal's payment rule, access plans, and
the actions on a contact's payments (complimentary access, cancelling, refunding)."""
from __future__ import annotations

from flask_wtf import FlaskForm
import secrets

from wtforms import (BooleanField, DateField, DecimalField, HiddenField, IntegerField, PasswordField, RadioField,
                     SelectChoice, SelectField, SelectMultipleField, StringField, TextAreaField)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from billing.models import Interval, PlanKind


class KeysForm(FlaskForm):
    secret_key = PasswordField("Stripe secret key", validators=[Optional(), Length(max=255)],
                               render_kw={"autocomplete": "off", "placeholder": "sk_live_… or sk_test_…"},
                               description="From Stripe's dashboard, Developers → API keys. "
                                           "Leave empty to keep the stored key.")
    webhook_secret = PasswordField("Webhook signing secret", validators=[Optional(), Length(max=255)],
                                   render_kw={"autocomplete": "off", "placeholder": "whsec_…"},
                                   description="Shown by Stripe when you add the webhook endpoint below. "
                                               "Leave empty to keep the stored secret.")


class AccessRulesForm(FlaskForm):
    required_plan_id = SelectField("Portal access requires", coerce=int,
                                   description="Prospects and clients sign in to the portal only while they hold "
                                               "this plan. A kickoff form may set its own rule for those who "
                                               "register through it, on its On submit page.")
    grace_days = IntegerField("Grace period after a failed renewal (days)", default=3,
                              validators=[InputRequired("Enter a number of days (0 for none)."),
                                          NumberRange(0, 60, "Between 0 and 60 days.")],
                              description="A subscription whose renewal failed keeps access this long while "
                                          "Stripe retries the payment.")


class PlanForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired("Give the plan a name."), Length(max=120)])
    description = TextAreaField("Description", validators=[Optional(), Length(max=2000)])
    kind = SelectField("Paid", choices=[SelectChoice(k, PlanKind.LABELS[k]) for k in PlanKind.ALL], default=PlanKind.RECURRING)
    amount = DecimalField("Price", places=2, validators=[DataRequired("Enter the price."),
                                                         NumberRange(0.01, 999999.99, "Enter a price above zero.")],
                          description="For a subscription, the price of each period.")
    currency = StringField("Currency", default="eur", validators=[DataRequired("Enter a currency."), Length(3, 3)],
                           description="Three letters: eur, usd, gbp…")
    interval = SelectField("Renews every", choices=[SelectChoice(i, i) for i in Interval.ALL], default=Interval.MONTH)
    interval_count = IntegerField("Number of periods", default=1, validators=[Optional(), NumberRange(1, 52)],
                                  description="2 with “month” renews every two months.")
    initial_fee = DecimalField("Initial fee", places=2, validators=[Optional(), NumberRange(0.01, 999999.99)],
                               description="Only for “Initial fee and subscription”: paid with the first period.")
    trial_days = IntegerField("Free trial (days)", default=0, validators=[Optional(), NumberRange(0, 730)])
    circle_ids = SelectMultipleField("Circles granted while the plan is paid", coerce=int,
                                     validators=[Optional()])
    active = BooleanField("Offered (untick to archive the plan)", default=True)


class ActionForm(FlaskForm):
    """A confirmed action: `attempt` is drawn when the confirmation page is shown, so sending it
    twice (a double click, a retry) makes one change in Stripe (its idempotency key)."""

    attempt = HiddenField(default=lambda: secrets.token_hex(12), validators=[Length(8, 40)])


class ComplimentaryForm(ActionForm):
    plan_id = SelectField("Plan", coerce=int, validators=[InputRequired("Choose a plan.")])
    ends_on = DateField("Until (optional)", validators=[Optional()],
                        description="Access ends after this day. Leave empty to grant it until revoked.")


class CancelForm(ActionForm):
    when = RadioField("When", choices=[SelectChoice("period_end", "At the end of the current period"),
                                       SelectChoice("now", "Now: access closes at once")],
                      default="period_end", validators=[InputRequired("Choose when it ends.")])


class RefundForm(ActionForm):
    amount = DecimalField("Amount to refund", places=2,
                          validators=[InputRequired("Enter the amount to refund."),
                                      NumberRange(0.01, 999999.99, "Enter an amount above zero.")])


def minor_units(amount) -> int | None:
    return None if amount is None else int((amount * 100).to_integral_value())
