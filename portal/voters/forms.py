from datetime import date

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import DateField, IntegerField, SelectField, StringField
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]  # WTForms 3.3; types-wtforms is 3.2
from wtforms.validators import DataRequired, Length, Optional, Regexp, ValidationError

from portal.clock import today  # the office's day, not UTC's
from portal.forms import VersionedForm, code_field, strip, upper
from portal.inputs import name_problem

VOTER_ID = r"^[A-Z0-9]{4,20}$"


def NAME(form, field) -> None:
    problem = name_problem(field.data)
    if problem:
        raise ValidationError(problem)


class VoterForm(VersionedForm):
    state_voter_id = code_field(
        "State voter ID",
        pattern=VOTER_ID,
        message="4 to 20 letters and digits, no spaces (e.g. V000123456).",
        required="Enter the state voter ID.",
    )
    first_name = StringField(
        "First name",
        filters=[strip],
        validators=[DataRequired("Enter the first name."), Length(max=80), NAME],
    )
    middle_name = StringField("Middle name", filters=[strip], validators=[Optional(), Length(max=80), NAME])
    last_name = StringField(
        "Last name", filters=[strip], validators=[DataRequired("Enter the last name."), Length(max=80), NAME]
    )
    date_of_birth = DateField(
        "Date of birth",
        validators=[Optional()],
        description="Where only the year is known, leave this blank and give the year.",
    )
    birth_year = IntegerField(
        "Birth year",
        validators=[Optional()],
        description="Filled from the date of birth when there is one.",
    )
    address = StringField(
        "Street address", filters=[strip], validators=[DataRequired("Enter the address."), Length(max=200)]
    )
    city = StringField("City", filters=[strip], validators=[Optional(), Length(max=80)])
    postal_code = StringField(
        "Postal code",
        filters=[strip],
        validators=[Optional(), Regexp(r"^[0-9A-Za-z -]{3,10}$", message="3 to 10 letters or digits.")],
    )
    precinct_code = StringField(
        "Precinct",
        filters=[strip, upper],
        validators=[DataRequired("Enter the precinct code.")],
        description="The precinct code, e.g. 111-C.",
    )
    party_id = SelectField("Party affiliation", coerce=int, default=0)
    status = SelectField(
        "Status",
        choices=[
            SelectChoice("active", "Active"),
            SelectChoice("inactive", "Inactive"),
            SelectChoice("removed", "Removed"),
        ],
    )
    registration_date = DateField(
        "Registered on", validators=[DataRequired("Enter the registration date (YYYY-MM-DD).")]
    )

    def validate_date_of_birth(self, field):
        if field.raw_data and field.raw_data[0].strip() and field.data is None:
            field.errors.clear()  # (one message, not WTForms' "Not a valid date value." as well)
            raise ValidationError(
                "Enter the date of birth as YYYY-MM-DD, or leave it blank and give the year."
            )
        if field.data and not date(1900, 1, 1) <= field.data <= today():
            raise ValidationError("Enter a date of birth between 1900 and today.")

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        neither = self.date_of_birth.data is None and self.birth_year.data is None
        if neither and not self.date_of_birth.errors and not self.birth_year.errors:
            self.birth_year.errors = ["Enter the date of birth, or at least the birth year."]
            return False
        return valid

    def validate_birth_year(self, field):
        born = self.date_of_birth.data
        if field.data is None:  # (not a number: WTForms said so)
            return
        this_year = today().year
        if not 1900 <= field.data <= this_year:
            raise ValidationError(f"Enter a birth year between 1900 and {this_year}.")
        if born and born.year != field.data:
            raise ValidationError(
                f"The date of birth says {born.year}; leave the year blank or make them agree."
            )

    def born_in(self) -> int:
        """The birth year: from the full date when there is one."""
        year = self.date_of_birth.data.year if self.date_of_birth.data else self.birth_year.data
        if year is None:  # validate() refuses a voter with neither
            raise ValidationError("Enter the date of birth, or at least the birth year.")
        return year

    def validate_registration_date(self, field):
        if not field.data:
            return
        if field.data > today():
            raise ValidationError("The registration date cannot be in the future.")
        born = self.date_of_birth.data
        if born and (field.data - born).days < 16 * 365:
            raise ValidationError("The voter would have been under 16 when registered.")
        year = self.birth_year.data
        if not born and year and field.data < date(year + 16, 1, 1):  # (even if born on 1 January)
            raise ValidationError("The voter would have been under 16 when registered.")


class ImportUploadForm(FlaskForm):
    file = FileField("Voter file (CSV)", validators=[FileRequired("Choose the CSV file to import.")])
    encoding = SelectField(
        "Encoding",
        choices=[
            SelectChoice("auto", "Detect (UTF-8, else Latin-1)"),
            SelectChoice("utf-8", "UTF-8"),
            SelectChoice("latin-1", "Latin-1"),
        ],
    )
    date_format = SelectField(
        "Dates in the file",
        choices=[
            SelectChoice("iso", "YYYY-MM-DD"),
            SelectChoice("us", "MM/DD/YYYY"),
            SelectChoice("dmy", "DD/MM/YYYY"),
        ],
    )


class ImportConfirmForm(FlaskForm):
    pass
