from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime

from flask import Blueprint, Response, current_app, render_template, request
from markupsafe import Markup

from portal import __version__
from portal.audit.queries import chain_head
from portal.auth.roles import EVERY_ROLE, allow
from portal.clock import date_time
from portal.db import read, reading
from portal.elections.queries import get_election
from portal.errors import NotFound
from portal.rendering import later, render
from portal.reports import exports, nist
from portal.reports.queries import canvass
from portal.returns.methods import LABELS as METHOD_LABELS

bp = Blueprint("reports", __name__, url_prefix="/elections/<int:election_id>/reports")


def _download(build: Callable[[], str], mimetype: str, filename: str) -> Response:
    """A file built by `build()` off the event loop (rendering.later): a 20 MB export holds up no
    other request."""
    return later(
        build, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


async def _canvass_of(election_id: int, **parts: bool):
    """The election's canvass (404 for no such election)."""
    async with reading() as db:
        await get_election(db, election_id)
        return await canvass(db, election_id, **parts)


# A certified election's NIST export is the same bytes every time (for the same issuer settings):
# each worker builds it once (20 MB and 1.2 s at 2,000 precincts x 40 candidates x 4 methods).
_CERTIFIED_EXPORTS: OrderedDict[tuple, str] = OrderedDict()


def _nist_body(data) -> str:
    if data.sha256 is None:
        return nist.dumps(nist.configured_report(data))
    config = current_app.config
    key = (
        data.election.id,
        data.sha256,
        config["REPORT_ISSUER"],
        config["REPORT_ISSUER_ABBREVIATION"],
        config["JURISDICTION_NAME"],
        __version__,
    )
    body = _CERTIFIED_EXPORTS.get(key)
    if body is None:
        body = _CERTIFIED_EXPORTS[key] = nist.dumps(nist.configured_report(data))
        while len(_CERTIFIED_EXPORTS) > 2:
            _CERTIFIED_EXPORTS.popitem(last=False)
    return body


@bp.get("/results.json")
@allow(*EVERY_ROLE)
async def results_json(election_id: int):
    data = await _canvass_of(election_id)
    return _download(lambda: _nist_body(data), "application/json", f"election-{election_id}-results.json")


CSV_REPORTS = {
    "canvass": exports.canvass_csv,
    "summary": exports.summary_csv,
    "turnout": exports.turnout_csv,
    "reconciliation": exports.reconciliation_csv,
}
TURNOUT_ONLY = {"turnout"}  # every other report prints the results
WITH_TURNOUT = {"turnout", "reconciliation"}  # and these the check-ins


def _parts(name: str) -> dict[str, bool]:
    """What a live report needs collected: counting the roll and the check-ins is wasted on a report of
    votes (0.3 s at a million voters), reading the votes on the turnout report."""
    return {"results": name not in TURNOUT_ONLY, "turnout": name in WITH_TURNOUT}


@bp.get("/<name>.csv")
@allow(*EVERY_ROLE)
async def report_csv(election_id: int, name: str):
    if name not in CSV_REPORTS:
        raise NotFound("CSV report")
    data = await _canvass_of(election_id, **_parts(name))
    return _download(lambda: CSV_REPORTS[name](data), "text/csv", f"election-{election_id}-{name}.csv")


REPORTS = {
    "summary": "Summary of results",
    "canvass": "Statement of votes cast by precinct",
    "turnout": "Turnout by precinct",
    "certification": "Certification of results",
    "reconciliation": "Reconciliation of check-ins and ballots cast",
}
CANVASS_COLUMNS = 8  # candidates per canvass table: wider contests continue in another table
# A contest of up to this many table rows is kept whole on one printed page (a page holds about 58
# at print size, A4 or Letter); a longer one starts where the last ended, its title repeated on each
# page (asked to stay whole, Chromium would first leave a page blank).
KEEP_WHOLE_ROWS = 45


def _chunks(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)] or [[]]


@bp.get("")
@allow(*EVERY_ROLE)
async def index(election_id: int):
    election = await read(get_election, election_id)
    return render("reports/index.html", election=election, reports=REPORTS, csv_reports=CSV_REPORTS)


# A certified election's report tables are the same for everyone and forever (the record never
# changes): each worker renders them once (3 MB for a canvass of 2,000 precincts x 40 candidates,
# 0.3 s) and every later page only lays them out with who is printing, when, and the audit head.
_CERTIFIED_BODIES: OrderedDict[tuple, Markup] = OrderedDict()
_CERTIFIED_BODIES_LOCK = threading.Lock()


def _report_page(name: str, data, context: dict) -> str:
    template = f"reports/{name}.html"
    if data.sha256 is None:
        return render_template(template, **context)
    config = current_app.config
    settings = (
        context["board"],
        config.get("JURISDICTION_NAME"),
        config.get("TIME_ZONE"),
        request.script_root,
    )
    key = (id(current_app), data.election.id, data.sha256, name, repr(settings))
    with _CERTIFIED_BODIES_LOCK:
        body = _CERTIFIED_BODIES.get(key)
    if body is None:
        # The report block alone, with the page's own context (url_for, filters, config).
        jinja = current_app.jinja_env.get_or_select_template(template)
        values = dict(context)
        current_app.update_template_context(values)
        body = Markup("".join(jinja.blocks["report"](jinja.new_context(values))))  # noqa: S704 - the template's own autoescaped output
        with _CERTIFIED_BODIES_LOCK:
            _CERTIFIED_BODIES[key] = body
            while len(_CERTIFIED_BODIES) > 12:  # a few reports of one or two elections in canvass
                _CERTIFIED_BODIES.popitem(last=False)
    return render_template(template, report_body=body, **context)


@bp.get("/<name>")
@allow(*EVERY_ROLE)
async def report(election_id: int, name: str):
    if name not in REPORTS:
        raise NotFound("report")
    data = await _canvass_of(election_id, **_parts(name))
    async with reading() as db:
        head = await chain_head(db)  # printed on the report: a paper anchor for the audit chain
    context = dict(
        audit_head=head,
        election=data.election,
        canvass=data,
        title=REPORTS[name],
        chunks=_chunks,
        columns=CANVASS_COLUMNS,
        keep_whole_rows=KEEP_WHOLE_ROWS,
        name=name,
        csv_reports=CSV_REPORTS,
        printed_at=datetime.now(UTC),
        method_labels=METHOD_LABELS,
        board=current_app.config.get("CANVASS_BOARD", []),
    )
    return later(lambda: _report_page(name, data, context))


# The page margin boxes do not inherit the body's font; without this they print in a serif.
MARGIN_FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'


CSS_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,-_()·:/")


def _css_string(value: str) -> str:
    """A CSS string literal from user text (an election's name): every character outside a small
    safe set becomes a CSS hex escape (`\\HHHHHH`, six digits, so no following character can
    extend it). A form feed, a quote or a brace can then never end the string or the rule."""
    return '"' + "".join(c if c in CSS_SAFE else f"\\{ord(c):06x}" for c in value) + '"'


@bp.get("/<name>/page.css")
@allow(*EVERY_ROLE)
async def page_css(election_id: int, name: str):
    """The running header of a printed report, in @page margin boxes on every page (a stylesheet,
    because the Content-Security-Policy allows no inline style)."""
    if name not in REPORTS:
        raise NotFound("report")
    election = await read(get_election, election_id)
    state = "CERTIFIED" if election.status == "certified" else "UNOFFICIAL"
    left = f"{REPORTS[name]} · {election.name}"
    right = f"{state} · printed {date_time(datetime.now(UTC))}"
    css = (
        f"@page {{ @top-left {{ content: {_css_string(left)}; font: 8pt {MARGIN_FONT}; }}"
        f" @top-right {{ content: {_css_string(right)}; font: bold 8pt {MARGIN_FONT}; }} }}\n"
    )
    return Response(css, mimetype="text/css", headers={"Cache-Control": "no-store"})
