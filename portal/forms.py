"""Field filters and small pieces every form shares."""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from flask import Response, abort, request
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import Field, HiddenField, StringField
from wtforms.validators import DataRequired, Regexp

from portal.errors import FieldError, StaleEdit
from portal.formatting import number
from portal.inputs import INT4_MAX, whole_number
from portal.rendering import render_form

F = TypeVar("F", bound=FlaskForm)


def strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def code_field(
    label: str, *, pattern: str, message: str, required: str, case: Callable = upper, **options: Any
) -> StringField:
    """A short identifier typed by hand (a precinct's or a candidate's code, a state voter ID, a
    party's abbreviation, a username): trimmed and cased (`upper` or `lower`), required, and
    matching `pattern` (else `message`)."""
    return StringField(
        label,
        filters=[strip, case],
        validators=[DataRequired(required), Regexp(pattern, message=message)],
        **options,
    )


class VersionedForm(FlaskForm):
    """A form about one versioned row: it carries the version it was loaded with (`form_version`).
    On its own, the form of a dialog that only confirms (a precinct's deletion, a voter's removal)."""

    version = HiddenField()


def sent(field: Field) -> str:
    """A required text field's value, once its form is validated. WTForms types it `str | None`
    (None for a field not sent at all, which DataRequired refuses before a view reads it)."""
    return field.data or ""


def form_version(form: FlaskForm) -> int:
    """The row version an edit, delete or status form was loaded with, as the browser sent it. A
    form without one is refused (400): saving it could overwrite a newer change unseen. (Read from
    what was sent, not `.data`: a form built with `version=` falls back to that for a missing field.)"""
    raw = form.version.raw_data[0] if form.version.raw_data else None
    version = whole_number(raw, minimum=1, maximum=INT4_MAX)
    if version is None:
        abort(
            400,
            "The form did not say which version of the record it was loaded with, so saving it "
            "could overwrite a newer change. Reload the page; nothing was saved.",
        )
    return version


def edit_form(form_class: type[F], row: Any, **shown: Any) -> F:
    """The form to edit `row`: for a GET, filled from the row at its current version (and `shown`,
    values of fields the row does not hold as they are); for a POST, what was sent."""
    if request.method != "GET":
        return form_class()
    form = form_class(obj=row)
    form.version.data = str(row.version)  # (a hidden field renders str(data))
    for name, value in shown.items():
        form[name].data = value
    return form


def show_field_error(form: FlaskForm, error) -> None:
    """Put a data-layer FieldError on its field (or on the form when there is no such field)."""
    field = getattr(form, error.field, None)
    if field is not None:
        field.errors = [*field.errors, str(error)]
    else:
        form.form_errors.append(str(error))


def stale_conflict(form: FlaskForm, stale, fields: tuple[str, ...]) -> dict:
    """The conflict notice for a refused stale edit; the form takes the newest version, so saving
    again is a deliberate overwrite."""
    current = stale.current
    form.version.data = current["version"]
    return {
        "message": stale.description,
        "fields": [
            (form[name].label.text, current[name], form[name].data)
            for name in fields
            if name in form
            and name in current
            and current[name] != _comparable(form[name].data, current[name])
        ],
    }


def _comparable(value: Any, like: Any) -> Any:
    """Form data in the snapshot's terms (dates as ISO text), for comparison."""
    if hasattr(value, "isoformat") and isinstance(like, str):
        return value.isoformat()
    return value


async def form_view(
    form: FlaskForm,
    save: Callable[[], Awaitable[Response | None]],
    form_template: str,
    *,
    stale_fields: tuple[str, ...] = (),
    **context: Any,
) -> Response:
    """A create or edit form's round trip, written once. On a valid POST, `save()` writes (in its
    own transaction) and returns the response to a success (flash, then `saved` or `go_to`), or None
    when it refused the input, having put the reason on the form or in `context`. A stale edit is
    shown as the conflict notice over `stale_fields`, the form taking the newest version (409), and
    a FieldError goes on its field (422). Otherwise the form is rendered (`render_form`, with
    `context`): 409 after a conflict, 422 for refused input, 200 for a GET."""
    conflict = None
    refused = False
    if form.validate_on_submit():
        try:
            response = await save()
        except StaleEdit as stale:
            conflict = stale_conflict(form, stale, stale_fields)
        except FieldError as error:
            show_field_error(form, error)
        else:
            if response is not None:
                return response
            refused = True
    status = 409 if conflict else 422 if refused or form.errors else 200
    return render_form(form_template, form=form, conflict=conflict, status=status, **context)


async def confirm_view(
    form: FlaskForm,
    act: Callable[[], Awaitable[Response]],
    *,
    refusals: tuple[type[Exception], ...] = (),
    **context: Any,
) -> Response:
    """A confirm dialog's round trip (`_confirm_delete.html`), written once. On a confirmed POST,
    `act()` does the deed (in its own transaction) and returns the response to its success; a
    refusal of a kind in `refusals` is shown in the dialog (409). Otherwise the dialog is rendered
    with `context` (200)."""
    error = None
    if form.validate_on_submit():
        try:
            return await act()
        except refusals as refusal:
            error = getattr(refusal, "description", None) or str(refusal)
    return render_form(
        "_confirm_delete.html", form=form, error=error, status=409 if error else 200, **context
    )


# Bulk forms (candidates, precincts): pasted lines or a small UTF-8 CSV file -----------------------


class BulkLinesForm(FlaskForm):
    """Many rows at once: the `lines` a subclass defines, pasted, or a CSV `file` (see `bulk_text`)."""

    file = FileField("…or a CSV file (UTF-8)")


def decode_upload(data: bytes) -> str:
    """UTF-8 (with or without BOM); anything else is refused rather than guessed."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise FieldError("file", "The file is not UTF-8 text. Save it as CSV UTF-8 and try again.") from error


def bulk_text(form: FlaskForm, limit: int) -> str:
    """A bulk form's lines: the chosen file's (at most `limit` bytes), else the pasted text."""
    upload = form.file.data
    if not (upload and upload.filename):
        return form.lines.data or ""
    data = upload.read(limit + 1)
    if len(data) > limit:
        size = f"{limit >> 20} MB" if limit >= 1 << 20 else f"{limit >> 10} KB"
        raise FieldError("file", f"The file is larger than {size}.")
    return decode_upload(data)


def content_lines(text: str, *, limit: int, noun: str) -> tuple[list[tuple[int, list[str]]], list[str]]:
    """(line number, cells) of every line with something in it, and what is wrong with the whole
    (none given, too many). A first line whose first cell is "code" is a header and left out;
    CR, LF and CRLF all end a line."""
    lines = list(csv.reader(io.StringIO(text, newline="")))
    content = [(n, cells) for n, cells in enumerate(lines, start=1) if any(c.strip() for c in cells)]
    if content and content[0][1][0].strip().lower() == "code":
        content = content[1:]
    if not content:
        return [], [f"No {noun} lines were given."]
    if len(content) > limit:
        return [], [f"At most {number(limit)} lines at a time ({number(len(content))} given)."]
    return content, []
