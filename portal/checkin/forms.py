from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectField, TextAreaField
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]  # WTForms 3.3; types-wtforms is 3.2
from wtforms.validators import DataRequired, Length

from portal.checkin.queries import METHOD_LABELS, VOID_REASON_MAX


class CheckInForm(FlaskForm):
    method = SelectField(
        "How the ballot is issued",
        choices=[SelectChoice(k, v.capitalize()) for k, v in METHOD_LABELS.items()],
    )


class VoidForm(FlaskForm):
    reason = TextAreaField(
        "Why is this check-in voided?",
        validators=[
            DataRequired("Say why the check-in is voided."),
            Length(max=VOID_REASON_MAX, message=f"Keep the reason within {VOID_REASON_MAX} characters."),
        ],
    )


class DecideForm(FlaskForm):
    """Accept or reject the ticked provisional ballots; the ticked ids are read from the form
    (`check_in`, one value per box) by the view, ASCII digits only."""

    decision = SelectField(
        "Decision", choices=[SelectChoice("accept", "Accept"), SelectChoice("reject", "Reject")]
    )
    reason = SelectField("Reason", validate_choice=False)

    def offer(self, reasons: list[str], *, prompt: bool = True) -> DecideForm:
        """The configured reasons as the choices (with a first "Choose a reason" for the page)."""
        first = [SelectChoice("", "Choose a reason…")] if prompt else []
        self.reason.choices = first + [SelectChoice(r, r) for r in reasons]
        return self
