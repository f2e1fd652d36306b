"""`flask --app wsgi ...` commands."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import text
from sqlalchemy.engine import make_url

from portal import aio, migrate
from portal.db import database, reading, transaction
from portal.embedded_pg import server_answers
from portal.formatting import number


def init_app(app: Flask) -> None:
    from portal.voters.cli import import_voters  # (it reads dispose_database from here)

    app.cli.add_command(db_upgrade)
    app.cli.add_command(create_user)
    app.cli.add_command(seed_demo)
    app.cli.add_command(audit_cli)
    app.cli.add_command(import_voters)
    app.cli.add_command(export_results)


def dispose_database() -> None:
    """Close the database pool on the portal's loop: a command's last step."""
    aio.run(database().dispose())


@click.command("db-upgrade")
@with_appcontext
def db_upgrade() -> None:
    """Create the database if it is missing and apply every migration."""
    url = current_app.config["DATABASE_URL"]
    if not server_answers(url):
        raise click.ClickException(
            f"PostgreSQL at {make_url(url).render_as_string(hide_password=True)} is not answering. Start it "
            "(or set PORTAL_DATABASE_URL); `make run` and `make test` may use an embedded one instead."
        )
    if migrate.create_database(url):
        click.echo(f"created database {url.rsplit('/', 1)[-1].split('?')[0]}")
    migrate.upgrade(url)
    click.echo("database is at the newest migration")


@click.command("create-user")
@with_appcontext
@click.argument("username")
@click.option("--role", type=click.Choice(["admin", "manager", "clerk", "observer"]), default="clerk")
@click.option("--display-name", default=None, help="Defaults to the username.")
@click.password_option(help="Prompted for (twice, hidden) when not given.")
def create_user(username: str, role: str, display_name: str | None, password: str) -> None:
    """Create a staff account."""
    from portal.errors import FieldError
    from portal.users.forms import UserCreateForm
    from portal.users.queries import create_user as create

    username = username.strip().lower()
    with current_app.test_request_context():
        form = UserCreateForm(
            meta={"csrf": False},
            data={
                "username": username,
                "display_name": display_name or username,
                "role": role,
                "password": password,
                "confirm": password,
            },
        )
        if not form.validate():
            for field, errors in form.errors.items():
                click.echo(f"{field}: {' '.join(errors)}", err=True)
            sys.exit(2)

    async def go():
        async with transaction() as db:
            return await create(
                db,
                actor=None,
                username=username,
                display_name=display_name or username,
                role=role,
                password=password,
            )

    try:
        user = aio.run(go())
    except FieldError:  # (the only field the data layer checks here: the username is taken)
        click.echo(f"username {username} is taken", err=True)
        sys.exit(1)
    finally:
        dispose_database()
    click.echo(f"created {user.role} {user.username}")


@click.command("seed-demo")
@with_appcontext
@click.option("--voters", default=20_000, show_default=True, type=click.IntRange(0, 5_000_000))
@click.option("--precincts", default=40, show_default=True, type=click.IntRange(1, 20_000))
@click.option("--if-empty", is_flag=True, help="Do nothing when the database already has precincts.")
@click.option("--seed", default=2026, show_default=True, help="Random seed (same seed, same data).")
@click.option(
    "--logins-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Where to write the demo sign-ins [default: instance/demo-logins.txt].",
)
@click.option(
    "--election-night/--no-election-night",
    default=True,
    show_default=True,
    help="Give the open election check-ins, returns by method and incidents (benches and fault "
    "tests want it untouched).",
)
def seed_demo(
    voters: int, precincts: int, if_empty: bool, seed: int, logins_file: str | None, election_night: bool
) -> None:
    """Load realistic demo data: accounts, parties, precincts, voters, elections."""
    from portal.demo.seed import has_data, load_demo

    async def go():
        async with reading() as db:
            if if_empty and await has_data(db):
                return None
        async with transaction() as db:
            result = await load_demo(
                db, voters=voters, precincts=precincts, seed=seed, election_night=election_night
            )
        # After a bulk COPY: statistics, and the visibility map that index-only scans need.
        async with database().engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE voter"))
        return result

    try:
        result = aio.run(go())
    finally:
        dispose_database()
    if result is None:
        click.echo("demo data already loaded; nothing to do")
        return
    click.echo(
        f"loaded {number(result.precincts)} precincts, {number(result.voters)} voters, "
        f"{result.elections} elections in {result.seconds:.1f} s"
    )
    path = Path(logins_file or Path(current_app.instance_path) / "demo-logins.txt")
    result.write_credentials(path)
    click.echo(f"demo sign-ins written to {path}")


audit_cli = AppGroup("audit", help="The audit trail.")


@audit_cli.command("verify")
@click.option(
    "--head",
    "heads",
    multiple=True,
    metavar="N:HASH",
    help="A head written down earlier (printed on every report, kept in every certified record): "
    "prove it is still in the chain. May be given more than once.",
)
@with_appcontext
def audit_verify(heads: tuple[str, ...]) -> None:
    """Recompute the hash chain of every audit event, and the SHA-256 of every certified canvass
    against its content, its certification event and the chain head it recorded; check each
    --head; exit 1 on any break."""
    from portal.audit.queries import Head, chain_head, head_problem, verify_chain
    from portal.reports.queries import certified_results_intact

    try:
        wanted = [Head.parse(head) for head in heads]
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--head") from None

    async def go():
        async with reading() as db:
            report = await verify_chain(db)
            problems = await certified_results_intact(db)
            held = []
            for head in wanted:
                problem = await head_problem(db, head)
                if problem:
                    problems.append(problem)
                else:
                    held.append(head)
            return report, problems, held, await chain_head(db)

    try:
        report, problems, held, head = aio.run(go())
    finally:
        dispose_database()
    if report.intact:
        click.echo(f"audit chain intact: {number(report.events)} events; head {head or 'none'}")
    else:
        click.echo(f"audit chain BROKEN at event {report.broken_at}: {report.reason}", err=True)
    for problem in problems:
        click.echo(problem, err=True)
    for found in held if report.intact else []:
        click.echo(f"head {found.event} is in the chain, and nothing before it changed")
    if not report.intact or problems:
        sys.exit(1)


@click.command("export-results")
@click.argument("election_id", type=int)
@click.option("--format", "form", type=click.Choice(["nist", "csv"]), default="nist", show_default=True)
@click.option(
    "--output", type=click.Path(dir_okay=False, writable=True), default="-", help="File, or - for stdout."
)
@with_appcontext
def export_results(election_id: int, form: str, output: str) -> None:
    """Results of an election as NIST SP 1500-100 JSON or canvass CSV."""
    from portal.reports import exports, nist
    from portal.reports.queries import canvass

    async def go():
        async with reading() as db:
            from portal.models import Election

            if await db.get(Election, election_id) is None:
                raise click.ClickException(f"no election {election_id}")
            return await canvass(db, election_id)

    try:
        data = aio.run(go())
    finally:
        dispose_database()
    body = nist.dumps(nist.configured_report(data)) if form == "nist" else exports.canvass_csv(data)
    with click.open_file(output, "w", encoding="utf-8") as out:
        out.write(body)
