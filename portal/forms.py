"""Field filters and small pieces every form shares."""

from __future__ import annotations

from typing import Any

from flask import abort
from flask_wtf import FlaskForm

from portal.inputs import INT4_MAX, whole_number


def strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


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
