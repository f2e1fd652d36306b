"""Gunicorn for Tally Portal (`make serve`, `make run`).

Live panels are Server-Sent Events, and with the gthread worker every open stream holds one thread
for as long as the browser watches (Flask streams a sync generator; the thread sleeps on a queue
and costs no CPU until a panel changes). So each worker gets threads for its live streams *plus*
threads reserved for ordinary pages: with live_max_streams = 500 (config.toml), a worker holds up to
500 live panels and still has PAGE_THREADS threads for pages; a 501st browser is told to retry in
30 s instead of taking a page thread. Two workers hold 1,000 live browsers.

Each worker also starts, at its first report request, a report process of its own that builds the
printed reports and exports at a lower CPU priority (portal/offload.py; report_process in
config.toml), so no page of the worker waits behind a report.
"""

import os

from portal.config import load_config

_config = load_config()
PAGE_THREADS = int(os.environ.get("PORTAL_PAGE_THREADS", 32))

bind = os.environ.get("PORTAL_BIND", "127.0.0.1:5000")
workers = int(os.environ.get("PORTAL_WORKERS", 2))
worker_class = "gthread"
threads = _config["LIVE_MAX_STREAMS"] + PAGE_THREADS
worker_connections = threads + 64
keepalive = 5
timeout = 60
graceful_timeout = 10
accesslog = os.environ.get("PORTAL_ACCESS_LOG", "-")
