from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from portal.users.forms import PASSWORD_RULE


class PasswordChangeForm(FlaskForm):
    current_password = PasswordField(
        "Current password",
        validators=[DataRequired("Enter your current password."), Length(max=200)],
        render_kw={"autocomplete": "current-password"},
    )
    new_password = PasswordField(
        "New password",
        validators=[DataRequired("Enter a new password."), PASSWORD_RULE],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        "Repeat the new password",
        validators=[DataRequired(), EqualTo("new_password", "The passwords differ.")],
        render_kw={"autocomplete": "new-password"},
    )


class PasswordConfirmForm(FlaskForm):
    password = PasswordField(
        "Your password",
        validators=[DataRequired("Enter your password."), Length(max=200)],
        render_kw={"autocomplete": "current-password"},
    )


class EnrolForm(PasswordConfirmForm):
    """The code from the app, with the account's password (a stolen session cannot enrol)."""

    code = StringField(
        "Code from the app",
        validators=[DataRequired("Enter the 6-digit code the app shows."), Length(max=10)],
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric"},
    )


class ConfirmForm(FlaskForm):
    pass
