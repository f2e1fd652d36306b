"""The voter-file import's pages, on the voters blueprint (/voters/import, /voters/imports/...):
upload, the job's page with its progress, check again, load, the issues and rejected rows, missing
reference data, saving a preset. The import itself is portal/voters/importing/."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from flask import Response, abort, current_app, flash, request, send_file, url_for
from werkzeug.wrappers import Response as BaseResponse

from portal.auth.current import current_actor
from portal.auth.roles import allow
from portal.csvfiles import csv_text
from portal.db import reading, transaction
from portal.errors import NotFound
from portal.formatting import number
from portal.inputs import whole_number
from portal.rendering import go_to, render
from portal.security import upload_limit
from portal.voters import importing
from portal.voters.forms import ImportConfirmForm, ImportUploadForm
from portal.voters.routes import bp

IMPORTERS = ("admin", "manager")


def _imports_dir() -> Path:
    return Path(current_app.instance_path) / "imports"


@bp.route("/import", methods=["GET", "POST"])
@allow(*IMPORTERS)
@upload_limit("VOTER_IMPORT_MAX_BYTES")
async def import_upload() -> BaseResponse:
    form = ImportUploadForm()
    problems: list[str] = []
    if form.validate_on_submit():
        upload = form.file.data
        path = _imports_dir() / f"{uuid.uuid4().hex}.csv"
        try:
            size, digest = await asyncio.to_thread(
                importing.save_upload, upload.stream, path, current_app.config["VOTER_IMPORT_MAX_BYTES"]
            )
            analysis = await asyncio.to_thread(importing.analyse, path, encoding=form.encoding.data)
        except importing.ImportFailed as failure:
            problems = [str(failure)]
        else:
            problems = analysis.problems
            if problems:
                path.unlink(missing_ok=True)
            else:
                async with transaction() as db:
                    await importing.choose_preset(db, analysis)
                    job = await importing.create_job(
                        db,
                        actor=current_actor(),
                        filename=upload.filename or "upload.csv",
                        path=path,
                        size=size,
                        sha256=digest,
                        analysis=analysis,
                        date_format=form.date_format.data,
                    )
                return go_to(url_for(".import_job", job_id=job.id))
    return render(
        "voters/import.html",
        form=form,
        problems=problems,
        limit_mb=current_app.config["VOTER_IMPORT_MAX_BYTES"] // (1 << 20),
        status=422 if problems or form.errors else 200,
    )


async def _job_or_404(job_id: int):
    async with reading() as db:
        job = await importing.get_job(db, job_id)
        if job is None:
            raise NotFound("import")
        errors = await importing.issues(db, job_id, kind="error") if job.status == "invalid" else []
        duplicates = await importing.issues(db, job_id, kind="duplicate") if job.counts else []
    return job, errors, duplicates


@bp.get("/imports/<int:job_id>")
@allow(*IMPORTERS)
async def import_job(job_id: int):
    job, errors, duplicates = await _job_or_404(job_id)
    preview = []
    if job.status in ("uploaded", "invalid", "validated") and Path(job.path).exists():
        analysis = await asyncio.to_thread(importing.analyse, Path(job.path), encoding=job.encoding)
        preview = analysis.preview
    async with reading() as db:
        missing = await importing.missing_reference(db, job)
        known = await importing.known_reference(db, missing)
        roll = await importing.roll_size(db)
    return render(
        "voters/import_job.html",
        "voters/_import_status.html",
        bulk=importing.bulk_load(job.counts.get("new", 0), roll),
        missing=missing,
        known=known,
        preset_title=importing.preset_title(job.preset),
        job=job,
        errors=errors,
        duplicates=duplicates,
        preview=preview,
        fields=importing.FIELDS,
        date_formats=importing.DATE_FORMATS,
        form=ImportConfirmForm(),
        partial_possible=importing.partial_possible(job),
    )


@bp.post("/imports/<int:job_id>/check")
@allow(*IMPORTERS)
async def import_check(job_id: int):
    form = ImportConfirmForm()
    if not form.validate_on_submit():
        abort(400, "The form expired; reload the page.")
    job, _, _ = await _job_or_404(job_id)
    # A first check, or a check again with another mapping or date format (from the same upload).
    if job.status not in ("uploaded", "invalid", "validated"):
        abort(409, f"This import is {job.status}.")
    if not Path(job.path).exists():
        abort(409, "The uploaded file is no longer kept (a check expires after a day); upload it again.")
    mapping: dict[str, int | list[int]] = {}
    for key in importing.FIELDS:
        # One column, or several joined (a layout's address in parts: "7,9,12").
        value = request.form.get(f"map_{key}", "")
        parts = [whole_number(part, maximum=len(job.header) - 1) for part in value.split(",")[:12]]
        columns = [part for part in parts if part is not None]
        if columns and len(columns) == len(parts):
            mapping[key] = columns if len(columns) > 1 else columns[0]
    missing = importing.missing_fields(mapping)
    used = [i for v in mapping.values() for i in (v if isinstance(v, list) else [v])]
    twice = {i for i in used if used.count(i) > 1}
    date_format = request.form.get("date_format", "iso")
    if missing or twice or date_format not in importing.DATE_FORMATS:
        message = (
            f"Map the required columns: {', '.join(missing)}."
            if missing
            else "A file column can feed only one field."
            if twice
            else "Choose the date format."
        )
        abort(422, message)
    return await _check_again(job_id, mapping, date_format)


async def _check_again(job_id: int, mapping: dict, date_format: str) -> BaseResponse:
    """Check the staged upload (again) in the background; the job page shows its progress."""
    await importing.drop_stage(job_id)  # (a check that passed kept its tables)
    async with transaction() as db:
        await importing.prepare_check(db, job_id, mapping=mapping, date_format=date_format)
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # current_app is a LocalProxy
    importing.start(app, importing.check_file, job_id)
    return go_to(url_for(".import_job", job_id=job_id))


@bp.post("/imports/<int:job_id>/load")
@allow(*IMPORTERS)
async def import_load(job_id: int):
    form = ImportConfirmForm()
    if not form.validate_on_submit():
        abort(400, "The form expired; reload the page.")
    job, _, _ = await _job_or_404(job_id)
    partial = request.form.get("partial") == "1"
    if partial and not importing.partial_possible(job):
        abort(409, f"This import is {job.status}; only a checked file with some valid rows loads partly.")
    if not partial and job.status != "validated":
        abort(409, f"This import is {job.status}; only a checked file without errors can be loaded.")
    async with transaction() as db:
        await importing.mark_loading(db, job_id)
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # current_app is a LocalProxy
    importing.start(app, importing.load_file, job_id, current_actor(), partial)
    return go_to(url_for(".import_job", job_id=job_id))


@bp.get("/imports/<int:job_id>/issues.csv")
@allow(*IMPORTERS)
async def import_issues(job_id: int):
    kind = "duplicate" if request.args.get("kind") == "duplicate" else "error"
    async with reading() as db:
        found = await importing.issues(db, job_id, kind=kind, limit=None)
    return Response(
        csv_text(importing.ISSUES_CSV_HEADER, importing.issues_csv_rows(found)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="import-{job_id}-{kind}s.csv"'},
    )


@bp.get("/imports/<int:job_id>/rejected.csv")
@allow(*IMPORTERS)
async def import_rejected(job_id: int):
    """The rows a partial load left out, with their reasons: fix them and import the file again."""
    await _job_or_404(job_id)
    path = importing.rejected_path(job_id)
    if not path.exists():
        raise NotFound("rejected rows", "This import set no rows aside.")
    name = f"import-{job_id}-rejected.csv"
    return send_file(path, mimetype="text/csv", as_attachment=True, download_name=name)


@bp.post("/imports/<int:job_id>/reference")
@allow(*IMPORTERS)
async def import_reference(job_id: int):
    """For each precinct, party and status the file names and the portal lacks: create it, or
    read it as an existing one (kept in the job's code lists); then check again."""
    if not ImportConfirmForm().validate_on_submit():
        abort(400, "The form expired; reload the page.")
    job, _, _ = await _job_or_404(job_id)
    if job.status != "invalid":
        abort(409, f"This import is {job.status}.")
    try:
        async with transaction() as db:
            made = await importing.resolve_reference(db, job, current_actor(), request.form)
    except importing.ImportFailed as failure:
        abort(422, str(failure))
    flash(
        f"Created {number(made['precincts'])} precincts and {number(made['parties'])} parties; "
        f"{number(made['mapped'])} codes read as existing ones. Checking again.",
        "success",
    )
    return await _check_again(job_id, job.mapping, job.date_format)


@bp.post("/imports/<int:job_id>/preset")
@allow(*IMPORTERS)
async def import_save_preset(job_id: int):
    """Save this job's mapping, date format and code lists under a name, for next time."""
    if not ImportConfirmForm().validate_on_submit():
        abort(400, "The form expired; reload the page.")
    job, _, _ = await _job_or_404(job_id)
    name = request.form.get("name", "").strip()
    problem = importing.preset_name_problem(name)
    if problem:
        abort(422, problem)
    async with transaction() as db:
        replaced = await importing.save_preset(db, job, name, current_actor())
    flash(
        f"Preset “{name}” {'replaced' if replaced else 'saved'}: files with these columns map themselves.",
        "success",
    )
    return go_to(url_for(".import_job", job_id=job_id))
