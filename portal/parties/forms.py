from wtforms import StringField
from wtforms.fields import ColorField
from wtforms.validators import DataRequired, Length, Regexp

from portal.forms import VersionedForm, code_field, lower, strip


class PartyForm(VersionedForm):
    name = StringField(
        "Name", filters=[strip], validators=[DataRequired("Enter the party's name."), Length(max=80)]
    )
    abbreviation = code_field(
        "Abbreviation",
        pattern=r"^[A-Z0-9-]{1,10}$",
        message="1 to 10 letters, digits or hyphens (e.g. DEM).",
        required="Enter an abbreviation.",
    )
    colour = ColorField(
        "Colour",
        default="#6c757d",
        filters=[strip, lower],
        validators=[DataRequired(), Regexp(r"^#[0-9a-f]{6}$", message="A colour like #1f5fbf.")],
        description="Used for the party's bars in tally panels.",
    )
