from datetime import date

from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, HiddenField, SelectField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]  # WTForms 3.3; types-wtforms is 3.2
from wtforms.validators import DataRequired, InputRequired, Length, ValidationError

from portal.forms import VersionedForm, strip
from portal.models import ELECTION_KINDS, VOTING_METHODS
from portal.returns.methods import LABELS


class MethodsField(SelectMultipleField):
    """Ticked voting methods; anything else is named in the message, not "not a valid choice"."""

    def pre_validate(self, form):
        unknown = [v for v in self.data or [] if v not in VOTING_METHODS]
        if unknown:
            raise ValidationError(
                f"Not a voting method: {', '.join(unknown)[:80]}. Choose from "
                + ", ".join(LABELS.values())
                + "."
            )


class ElectionForm(VersionedForm):
    name = StringField("Name", filters=[strip], validators=[DataRequired("Enter a name."), Length(max=160)])
    election_date = DateField(
        "Election date", validators=[DataRequired("Enter the election date (YYYY-MM-DD).")]
    )
    kind = SelectField("Kind", choices=[SelectChoice(k, k.capitalize()) for k in ELECTION_KINDS])
    all_precincts = BooleanField("Every precinct takes part", default=True)
    precincts = SelectMultipleField(
        "Participating precincts", coerce=int, description="Used when not every precinct takes part."
    )
    methods = MethodsField(
        "Voting methods counted",
        choices=[SelectChoice(m, LABELS[m]) for m in VOTING_METHODS],
        default=list(VOTING_METHODS),
        description="Returns are entered and reported separately for each.",
    )

    def validate_methods(self, field):
        if not field.data:
            raise ValidationError("Tick at least one voting method.")

    def validate_election_date(self, field):
        if field.data and not date(2000, 1, 1) <= field.data <= date(2100, 12, 31):
            raise ValidationError("Enter a date between 2000 and 2100.")

    def validate_precincts(self, field):
        if not self.all_precincts.data and not field.data:
            raise ValidationError("Choose the precincts that take part, or tick “Every precinct”.")


class StatusForm(VersionedForm):
    # Required as sent: a form without its target state must not move the election anywhere.
    to = HiddenField(validators=[InputRequired("The form did not say which state to move to; reload.")])


class ConfirmForm(FlaskForm):
    pass
