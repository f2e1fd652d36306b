from flask_wtf import FlaskForm
from wtforms import SelectField
from wtforms.fields.choices import SelectChoice

from portal.checkin.queries import METHOD_LABELS


class CheckInForm(FlaskForm):
    method = SelectField(
        "How the ballot is issued",
        choices=[SelectChoice(k, v.capitalize()) for k, v in METHOD_LABELS.items()],
    )
