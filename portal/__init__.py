"""Tally Portal: the application factory."""

from __future__ import annotations

import functools
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from portal import aio, clock
from portal.config import ROOT, instance_secret_key, load_config
from portal.rendering import Later

__version__ = "0.1.0"


class Portal(Flask):
    """Flask with every async view, hook and handler run on the process's persistent event loop."""

    def async_to_sync(self, func):
        """The coroutine runs on the process loop; a response it left to build later (a rendered
        template, an export: `rendering.Later`) is built here, in the request's thread, so the loop
        never waits behind a page being rendered."""
        if self.config.get("ASYNC_LOOP") == "per-request":  # stock Flask: a new loop per call
            run = super().async_to_sync(func)
        else:

            def run(*args, **kwargs):
                return aio.run(func(*args, **kwargs))

        @functools.wraps(func)
        def call(*args, **kwargs):
            result = run(*args, **kwargs)
            return result.finish() if isinstance(result, Later) else result

        return call


def create_app(config: Mapping[str, Any] | None = None) -> Portal:
    app = Portal(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(ROOT / "instance"),
    )
    app.config.update(load_config(config))
    clock.init_app(app)  # first: a time zone that does not exist stops start-up here
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = instance_secret_key(Path(app.instance_path))
    app.config.update(
        BOOTSTRAP_SERVE_LOCAL=True,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_NAME="tally_session",
        REMEMBER_COOKIE_SECURE=True,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        VERSION=__version__,
    )

    from portal.db import make_database

    app.extensions["portal.db"] = make_database(app)

    from portal import errors, formatting, inputs, rendering, security
    from portal.extensions import bootstrap, csrf, htmx, login_manager
    from portal.returns import methods

    # The body rule first: an upload view's own size limit must be in force before CSRFProtect
    # reads the form (else every upload is held to max_content_length: a 16 MB voter file failed).
    security.init_app(app)
    bootstrap.init_app(app)
    csrf.init_app(app)
    htmx.init_app(app)
    login_manager.init_app(app)

    inputs.init_app(app)  # before any route is added: the id converters
    errors.init_app(app)
    rendering.init_app(app)
    formatting.init_app(app)  # |number and |percent, for every page and print
    methods.init_app(app)  # |method and |method_short

    from portal.account.routes import bp as account_bp
    from portal.audit.routes import bp as audit_bp
    from portal.auth.routes import bp as auth_bp
    from portal.checkin.routes import bp as checkin_bp
    from portal.checkin.routes import provisionals_bp
    from portal.contests.routes import bp as contests_bp
    from portal.dashboard.routes import bp as dashboard_bp
    from portal.elections.routes import bp as elections_bp
    from portal.health.routes import bp as health_bp
    from portal.incidents.routes import bp as incidents_bp
    from portal.live.routes import bp as live_bp
    from portal.parties.routes import bp as parties_bp
    from portal.precincts.routes import bp as precincts_bp
    from portal.reports.routes import bp as reports_bp
    from portal.returns.routes import bp as returns_bp
    from portal.users.routes import bp as users_bp
    from portal.voters.routes import bp as voters_bp

    blueprints = (
        auth_bp,
        dashboard_bp,
        elections_bp,
        contests_bp,
        parties_bp,
        precincts_bp,
        voters_bp,
        returns_bp,
        live_bp,
        incidents_bp,
        reports_bp,
        checkin_bp,
        provisionals_bp,
        users_bp,
        audit_bp,
        account_bp,
        health_bp,
    )
    for bp in blueprints:
        app.register_blueprint(bp)

    # The domain's signals reach their listeners: the audit trail, and the live panels' NOTIFY.
    from portal.audit import receivers as audit_receivers
    from portal.live import receivers as live_receivers

    audit_receivers.connect()
    live_receivers.connect()

    from portal.auth import session_user

    session_user.init_app(app)

    from portal import cli

    cli.init_app(app)
    if app.config.get("REPORT_PROCESS"):  # reports in a process of their own (portal/offload.py)
        from portal.offload import ReportProcess

        app.wsgi_app = app.extensions["portal.report_process"] = ReportProcess(app, config or {})  # type: ignore[method-assign]
    _tune_garbage_collector()
    sys.setswitchinterval(float(app.config.get("THREAD_SWITCH_MS", 5)) / 1000)
    return app


# CPython's cyclic garbage collector runs a young collection every 700 new container objects and a
# full one every 100 of those. Building a large report (80,000 returns, millions of small lists and
# tuples, almost none of them cyclic) then spends a third of its time in the collector: the open
# canvass at 2,000 precincts x 4 methods took 3.5 s with the default thresholds and 1.7 s with these
# (1.3 s with the collector off; bench/reports.py). Memory is still reclaimed by reference counting;
# only cycles wait a little longer. Objects alive after start-up are moved out of its sight.
GC_THRESHOLDS = (50_000, 20, 100)


def _tune_garbage_collector() -> None:
    import gc

    if gc.get_threshold() != GC_THRESHOLDS:
        gc.set_threshold(*GC_THRESHOLDS)
        gc.freeze()
