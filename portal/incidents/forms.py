from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, Regexp

from portal.forms import strip, upper


class IncidentForm(FlaskForm):
    precinct_id = SelectField("Precinct", coerce=int, default=0)
    state_voter_id = StringField(
        "Voter ID (optional)",
        filters=[strip, upper],
        validators=[Optional(), Regexp(r"^[A-Z0-9]{4,20}$", message="4 to 20 letters and digits.")],
    )
    body = TextAreaField(
        "What happened",
        filters=[strip],
        validators=[DataRequired("Describe the incident."), Length(max=2000)],
        render_kw={"rows": 4},
    )


class ResolveForm(FlaskForm):
    pass
