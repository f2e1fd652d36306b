"""Field filters and small pieces every form shares."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm


def strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def form_version(form: FlaskForm) -> int | None:
    """The row version an edit form was loaded with (None when missing or not a number)."""
    raw = form.version.data
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None
