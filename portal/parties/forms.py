from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField
from wtforms.fields import ColorField
from wtforms.validators import DataRequired, Length, Regexp

from portal.forms import lower, strip, upper


class PartyForm(FlaskForm):
    name = StringField(
        "Name", filters=[strip], validators=[DataRequired("Enter the party's name."), Length(max=80)]
    )
    abbreviation = StringField(
        "Abbreviation",
        filters=[strip, upper],
        validators=[
            DataRequired("Enter an abbreviation."),
            Regexp(r"^[A-Z0-9-]{1,10}$", message="1 to 10 letters, digits or hyphens (e.g. DEM)."),
        ],
    )
    colour = ColorField(
        "Colour",
        default="#6c757d",
        filters=[strip, lower],
        validators=[DataRequired(), Regexp(r"^#[0-9a-f]{6}$", message="A colour like #1f5fbf.")],
        description="Used for the party's bars in tally panels.",
    )
    version = HiddenField()
