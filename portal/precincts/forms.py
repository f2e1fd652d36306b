from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from portal.forms import BulkLinesForm, VersionedForm, code_field, strip


class PrecinctForm(VersionedForm):
    code = code_field(
        "Code",
        pattern=r"^[A-Z0-9][A-Z0-9-]{0,15}$",
        message="Use 1 to 16 letters, digits or hyphens (e.g. 111-C).",
        required="Enter the precinct code.",
        description="As printed on the ballot style, e.g. 111-C.",
    )
    name = StringField("Name", filters=[strip], validators=[DataRequired("Enter a name."), Length(max=120)])
    polling_place = StringField("Polling place", filters=[strip], validators=[Optional(), Length(max=200)])


class BulkPrecinctsForm(BulkLinesForm):
    lines = TextAreaField(
        "Precinct lines",
        validators=[Optional(), Length(max=1_000_000)],
        description="One per line: code, name, polling place (optional). A header line starting with "
        "“code” is skipped. Up to 5,000 at a time: all of them are added, or none.",
        render_kw={"rows": 10, "spellcheck": "false"},
    )
