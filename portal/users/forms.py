from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]  # WTForms 3.3; types-wtforms is 3.2
from wtforms.validators import DataRequired, EqualTo, Length, Optional

from portal.forms import VersionedForm, code_field, lower, strip
from portal.models import ROLES

ROLE_CHOICES = [
    SelectChoice("admin", "Admin: users and everything else"),
    SelectChoice("manager", "Manager: elections and certification"),
    SelectChoice("clerk", "Clerk: voters, check-in, returns entry"),
    SelectChoice("observer", "Observer: read only"),
]
assert [choice.value for choice in ROLE_CHOICES] == list(ROLES)

PASSWORD_RULE = Length(min=12, max=200, message="Use at least 12 characters.")


class UserCreateForm(FlaskForm):
    username = code_field(
        "Username",
        pattern=r"^[a-z0-9._-]{3,40}$",
        message="3 to 40 letters, digits, dots, dashes or underscores.",
        required="Enter a username.",
        case=lower,
    )
    display_name = StringField("Display name", filters=[strip], validators=[DataRequired(), Length(max=120)])
    role = SelectField("Role", choices=ROLE_CHOICES, default="clerk")
    password = PasswordField(
        "Password", validators=[DataRequired(), PASSWORD_RULE], render_kw={"autocomplete": "new-password"}
    )
    confirm = PasswordField(
        "Repeat password",
        validators=[DataRequired(), EqualTo("password", "The passwords differ.")],
        render_kw={"autocomplete": "new-password"},
    )


class UserEditForm(VersionedForm):
    display_name = StringField("Display name", filters=[strip], validators=[DataRequired(), Length(max=120)])
    role = SelectField("Role", choices=ROLE_CHOICES)
    active = BooleanField("Active (may sign in)")
    new_password = PasswordField(
        "New password",
        validators=[Optional(), PASSWORD_RULE],
        description="Leave empty to keep the current one.",
        render_kw={"autocomplete": "new-password"},
    )
