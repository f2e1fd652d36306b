"""Reports are served by a process of their own, so no page waits behind one.

Threads of a worker share one interpreter lock. A thread building a 3 MB canvass (or laying out a
cached one at 15 ms of CPU a copy) takes the lock from every other request of its worker: with two
clients fetching canvasses back to back, a cheap page's p95 rose 7-fold. Rendering off the event
loop (`rendering.Later`) keeps the loop free, but not the lock.

So each worker starts, at its first report request, a report process: a copy of the portal (the
same config, database and secret key, a small pool of its own) that listens on a Unix socket in a
private (0700) directory, at a lower CPU priority (nice 10: on a busy election night the screens
staff click through come first, a report waits a little). This WSGI middleware, in front of the
app, sends the GET and HEAD requests of `OFFLOADED` endpoints there and relays the answer, status,
headers and body as the app gave them. The report process runs the same views, so roles, sessions,
errors and the 503 of a database that is away all behave exactly as in the worker.

While the report process starts (1-2 s), after it died, or when it does not answer (connecting
within 5 s, answering within 120 s), a report is served by the worker itself, as before (a report
only reads, so serving it again is safe). A process that died or hung is replaced at the next
report; one that keeps ending before it listens is tried again after 5 s, then 10, 20, ... 5 min.
"""

from __future__ import annotations

import atexit
import io
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from multiprocessing.connection import Connection, Listener
from pathlib import Path
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.test import run_wsgi_app

log = logging.getLogger(__name__)

# Pages and downloads that build a whole election's canvass.
OFFLOADED = frozenset({"reports.report", "reports.report_csv", "reports.results_json"})
REPORTS_PATH = "/reports/"  # in every path of theirs (/elections/<id>/reports/...)
NICE = 10
START_SECONDS = 60  # a report process that is not listening by then is given up (and tried again)
# A report that takes longer is taken to hang (at 10,000,000 voters the heaviest took 2-3 s).
ANSWER_SECONDS = 120
CONNECT_SECONDS = 5
RETRY_MAX_SECONDS = 300  # a process that keeps failing to start is tried again at most this often


class ReportProcess:
    """WSGI middleware: `OFFLOADED` endpoints are answered by the worker's report process."""

    def __init__(self, app, overrides: Mapping[str, Any]) -> None:
        self.app = app
        self.wsgi_app = app.wsgi_app
        self.overrides = dict(overrides)
        self.served = 0  # requests the report process answered (for tests and logs)
        self.answer_seconds = ANSWER_SECONDS
        self._lock = threading.Lock()
        self._pid: int | None = None  # the worker that started the process (gunicorn forks workers)
        self._process: Any = None
        self._ready: Any = None
        self._generation = 0  # which process the idle connections and a hung answer belong to
        self._address = ""
        self._idle: list[Connection] = []
        self._started_at = 0.0
        self._failures = 0  # processes in a row that ended before they listened
        self._retry_at = 0.0

    def __call__(self, environ: dict, start_response):
        if environ.get("REQUEST_METHOD") in ("GET", "HEAD") and self._offloaded(environ):
            answer = self._forward(environ)
            if answer is not None:
                status, headers, body = answer
                start_response(status, headers)
                return [body]
        return self.wsgi_app(environ, start_response)

    def _offloaded(self, environ: dict) -> bool:
        if REPORTS_PATH not in environ.get("PATH_INFO", ""):  # (every other page: no second routing)
            return False
        try:
            endpoint, _ = self.app.url_map.bind_to_environ(environ).match()
        except HTTPException:
            return False
        return endpoint in OFFLOADED

    @property
    def pid(self) -> int | None:
        """The report process's pid, once it is listening."""
        process, ready = self._process, self._ready
        return process.pid if process is not None and ready is not None and ready.is_set() else None

    def wait_ready(self, timeout: float = START_SECONDS) -> bool:
        """Start the report process if need be and wait until it listens (tests, warm-up)."""
        self._checkout()  # (starts it)
        return self._ready is not None and self._ready.wait(timeout)

    def close(self) -> None:
        """Stop the report process (tests; a worker's own ends with it)."""
        with self._lock:
            self._drop_idle()
            if self._process is not None and self._pid == os.getpid():
                self._process.terminate()
                self._process.join(10)
            self._process = None

    def _forward(self, environ: dict) -> tuple[str, list[tuple[str, str]], bytes] | None:
        found = self._checkout()
        if found is None:
            return None
        conn, generation = found
        try:
            conn.send({k: v for k, v in environ.items() if isinstance(v, str)})
            if not conn.poll(self.answer_seconds):
                raise TimeoutError(f"no answer in {self.answer_seconds} s")
            status, headers = conn.recv()
            body = conn.recv_bytes()
        except (OSError, EOFError) as error:  # the process died or hangs: serve it here
            conn.close()
            log.warning("report process did not answer (%r); serving the report in the worker", error)
            if isinstance(error, TimeoutError):
                self._stop_hung(generation)
            return None
        with self._lock:
            if generation == self._generation:
                self._idle.append(conn)
            else:  # (the process was replaced meanwhile)
                conn.close()
            self.served += 1
        return status, headers, body

    def _stop_hung(self, generation: int) -> None:
        """A report process that does not answer holds a worker thread per report sent to it: it
        is stopped (if it is still the one that did not answer), and the next report starts another."""
        with self._lock:
            process = self._process
            if generation == self._generation and process is not None and self._pid == os.getpid():
                process.kill()
                process.join(5)

    def _checkout(self) -> tuple[Connection, int] | None:
        """An idle connection to the listening report process, or a new one, with the process's
        generation; None while it starts (or waits to be started again)."""
        with self._lock:
            if self._pid != os.getpid():  # a forked worker: its own process, not its parent's
                self._pid, self._process, self._ready, self._idle = os.getpid(), None, None, []
            process = self._process
            if process is None or (not process.is_alive() and process.exitcode is not None):
                if time.monotonic() >= self._retry_at:
                    self._start()
                return None
            if not self._ready.is_set():
                if time.monotonic() - self._started_at > START_SECONDS:  # stuck starting
                    process.kill()
                    process.join(5)
                return None
            self._failures = 0
            generation = self._generation
            if self._idle:
                return self._idle.pop(), generation
        try:
            return _connect(self._address), generation
        except OSError as error:
            log.warning("report process refused a connection (%r)", error)
            return None

    def _drop_idle(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle = []

    def _start(self) -> None:
        self._drop_idle()
        if self._address:  # (a process that died left its socket)
            shutil.rmtree(os.path.dirname(self._address), ignore_errors=True)
        if self._process is not None:
            if self._ready is not None and not self._ready.is_set():
                self._failures += 1
            log.warning(
                "report process %s ended (exit code %s); starting another",
                self._process.pid,
                self._process.exitcode,
            )
            if self._failures:  # it ended before it listened: if this one does too, wait a while
                self._retry_at = time.monotonic() + min(RETRY_MAX_SECONDS, 5 * 2 ** (self._failures - 1))
        context = multiprocessing.get_context("spawn")  # (a fork would copy this worker's threads' state)
        directory = tempfile.mkdtemp(prefix="tally-reports-")  # 0700: only this user reaches the socket
        self._address = str(Path(directory) / "socket")
        atexit.register(shutil.rmtree, directory, ignore_errors=True)  # (a worker's exit stops it)
        self._ready = context.Event()
        self._started_at = time.monotonic()
        self._generation += 1
        config = {
            **self.overrides,
            "DATABASE_URL": self.app.config["DATABASE_URL"],  # as resolved (the embedded server too)
            "DATABASE_URL_FROM_ENV": True,
            "EMBEDDED_DATABASE": False,
            "SECRET_KEY": self.app.config["SECRET_KEY"],
            "REPORT_PROCESS": False,
            # A few reports at a time: a small pool (the worker keeps its own).
            "DATABASE_POOL_SIZE": 2,
            "DATABASE_MAX_OVERFLOW": 4,
        }
        self._process = context.Process(
            target=serve,
            args=(self._address, config, os.getpid(), self._ready),
            name="portal-reports",
            daemon=True,
        )
        self._process.start()


def _connect(address: str) -> Connection:
    """A connection to the report process, given up after CONNECT_SECONDS (a frozen process's
    listen queue fills up, and connecting would wait for ever)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(CONNECT_SECONDS)
        sock.connect(address)
        sock.setblocking(True)
    except OSError:
        sock.close()
        raise
    return Connection(sock.detach())


def serve(address: str, config: dict, parent: int, ready) -> None:
    """The report process: the portal, answering forwarded requests, until its worker ends."""
    signal.signal(signal.SIGTERM, lambda *_: _end(address))  # (the worker stopping it)
    os.nice(NICE)
    from portal import create_app

    app = create_app(config)
    # No key exchange: only this user can reach the socket's directory, and whoever can could read
    # the secret key and the database's address anyway. (An exchange runs in accept(), one peer at
    # a time, and one that stalled or failed would block or end the process.)
    listener = Listener(address, family="AF_UNIX", backlog=64)
    threading.Thread(target=_exit_with, args=(parent, address), daemon=True).start()
    ready.set()
    while True:
        try:
            conn = listener.accept()
        except OSError:
            continue
        threading.Thread(target=_answer, args=(app, conn), daemon=True).start()


def _answer(app, conn: Connection) -> None:
    """Answer one worker thread's requests, one after another, until it closes the connection."""
    with conn:
        while True:
            try:
                environ = conn.recv()
            except Exception:  # (closed, or not a request from a worker)
                return
            environ.update(
                {
                    "wsgi.input": io.BytesIO(b""),
                    "wsgi.errors": sys.stderr,
                    "wsgi.version": (1, 0),
                    "wsgi.multithread": True,
                    "wsgi.multiprocess": True,
                    "wsgi.run_once": False,
                }
            )
            app_iter, status, headers = run_wsgi_app(app.wsgi_app, environ, buffered=True)
            try:
                body = b"".join(app_iter)
            finally:
                close = getattr(app_iter, "close", None)
                if close is not None:
                    close()
            try:
                conn.send((status, headers.to_wsgi_list()))
                conn.send_bytes(body)
            except OSError:
                return


def _exit_with(parent: int, address: str) -> None:
    """End with the worker that started this process (gunicorn may kill it without notice)."""
    while os.getppid() == parent:
        time.sleep(1)
    _end(address)


def _end(address: str) -> None:
    shutil.rmtree(os.path.dirname(address), ignore_errors=True)
    os._exit(0)
