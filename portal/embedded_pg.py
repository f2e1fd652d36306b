"""A project-local PostgreSQL for machines that have none (pgserver bundles PostgreSQL 16).

Used only when asked for (`embedded_database = true`, which `make run` and `make test` set through
PORTAL_EMBEDDED_DATABASE), PORTAL_DATABASE_URL is not set, and the configured server does not
answer, so a newcomer's `make run` and `make test` need nothing but Python. Production (`make
serve`, gunicorn, any configured URL) never switches: a server that is down is waited for. The
embedded server listens on a Unix socket under instance/pgdata and keeps running between commands
(as root, pgserver runs it as a system user `pgserver` that it creates).
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path

from sqlalchemy.engine import URL, make_url

log = logging.getLogger(__name__)


def server_answers(url: str | URL, timeout: float = 1.0) -> bool:
    url = make_url(url)
    host = url.query.get("host") or url.host
    if isinstance(host, tuple):
        host = host[0]
    if not host or str(host).startswith("/"):
        directory = Path(host or "/var/run/postgresql")
        return (directory / f".s.PGSQL.{url.port or 5432}").exists()
    try:
        with socket.create_connection((host, url.port or 5432), timeout=timeout):
            return True
    except OSError:
        return False


def embedded_url(configured: str | URL, instance_path: Path) -> URL:
    """Start (or reuse) the embedded server and return `configured` pointed at its socket."""
    try:
        import pgserver  # imported here: only the embedded install has it (pyproject's `embedded` extra)
    except ModuleNotFoundError as missing:
        raise RuntimeError(
            f"No PostgreSQL answers at {make_url(configured).render_as_string(hide_password=True)} and the "
            "embedded one is not installed: `make install-embedded` (or `pip install -r "
            "requirements/embedded.lock`), or set PORTAL_DATABASE_URL to a server that answers."
        ) from missing

    server = pgserver.get_server(instance_path / "pgdata", cleanup_mode=None)
    socket_dir = make_url(server.get_uri()).query["host"]
    log.warning("no PostgreSQL answered; using the embedded server at %s", socket_dir)
    configured = make_url(configured)
    return URL.create(
        configured.drivername, username="postgres", database=configured.database, query={"host": socket_dir}
    )


def embedded_wanted(configured: str, *, from_env: bool, embedded: bool) -> bool:
    """Whether the embedded server is to be used: it was asked for, no URL came from the
    environment, and the configured server does not answer."""
    return embedded and not from_env and not server_answers(configured)


def resolve_database_url(configured: str, *, from_env: bool, embedded: bool, instance_path: Path) -> str:
    """The URL to use: the configured one, unless the embedded server is wanted (embedded_wanted)."""
    if not embedded_wanted(configured, from_env=from_env, embedded=embedded):
        return configured
    return embedded_url(configured, instance_path).render_as_string(hide_password=False)
