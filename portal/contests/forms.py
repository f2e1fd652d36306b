from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]  # WTForms 3.3; types-wtforms is 3.2
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp, ValidationError

from portal.forms import BulkLinesForm, VersionedForm, code_field, strip

CANDIDATE_CODE = r"^[A-Z0-9][A-Z0-9-]{0,23}$"


class ContestForm(VersionedForm):
    office_title = StringField(
        "Office or measure title",
        filters=[strip],
        validators=[DataRequired("Enter the title."), Length(max=160)],
    )
    vote_for = IntegerField(
        "Vote for",
        default=1,
        validators=[
            DataRequired("Enter how many candidates each voter may choose (1 or more)."),
            NumberRange(1, 99, "Vote for must be between 1 and 99."),
        ],
    )
    is_measure = BooleanField("Ballot measure (choices Yes and No)")
    all_precincts = BooleanField("On every participating precinct's ballot", default=True)
    precincts = SelectMultipleField("Precincts", coerce=int)

    def validate_precincts(self, field):
        if not self.all_precincts.data and not field.data:
            raise ValidationError("Choose the precincts whose ballot carries this contest.")


class CandidateForm(VersionedForm):
    code = code_field(
        "Code",
        pattern=CANDIDATE_CODE,
        message="Use 1 to 24 letters, digits or hyphens (e.g. PHL-101).",
        required="Enter the candidate code.",
        description="Unique within the election.",
    )
    ballot_name = StringField(
        "Ballot name",
        filters=[strip],
        validators=[DataRequired("Enter the name as printed."), Length(max=160)],
    )
    party_id = SelectField("Party", coerce=int, default=0)
    status = SelectField(
        "Status", choices=[SelectChoice("qualified", "Qualified"), SelectChoice("withdrawn", "Withdrawn")]
    )
    write_in = BooleanField("Write-in candidate")


class BulkCandidatesForm(BulkLinesForm):
    lines = TextAreaField(
        "Candidate lines",
        validators=[Optional(), Length(max=100_000)],
        description="One per line: code, ballot name, party abbreviation (optional), write-in yes/no "
        "(optional). A header line starting with “code” is skipped.",
        render_kw={"rows": 8, "spellcheck": "false"},
    )


class MoveForm(FlaskForm):
    direction = HiddenField(validators=[DataRequired(), Regexp("^(up|down)$")])
