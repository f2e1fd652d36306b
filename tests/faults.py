"""Election night with a database that goes away: the harness behind tests/test_faults.py and
bench/faults.py.

The portal is served by gunicorn (several worker processes, CSRF on, as in production) against a
private PostgreSQL cluster. Clerks check distinct voters in, in a loop; an observer holds live
streams; a prober asks /health. Meanwhile the cluster is restarted (`-m fast`) and stopped for a
while. Afterwards every answer is compared with what the database holds:

- lost: acknowledged (200) but not stored;
- phantom: stored, but the clerk was told "Nothing was saved" (or got no answer);
- saved: told "Your change was saved" after a failure past the commit (counts as acknowledged);
- uncertain: told the outcome is unknown (the connection died during COMMIT): either is honest.

Every request carries `X-Sent-At`; gunicorn's access log gives the worker (pid) and the time each
took, so recovery is measured per worker: database back -> first answer below 500 from that worker.
"""

from __future__ import annotations

import asyncio
import collections
import http.client
import http.cookiejar
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from tests.pgcluster import PrivateCluster, free_port

ROOT = Path(__file__).resolve().parent.parent
ACCESS_FORMAT = "%(p)s %(s)s %({x-sent-at}i)s %(D)s %(U)s"
TURNOUT = re.compile(r"Turnout <strong[^>]*>([\d,]+)</strong>")


@dataclass
class Answer:
    voter_id: int
    status: int | None  # None: no answer at all
    kind: str
    sent: float
    done: float


@dataclass
class StreamEvent:
    at: float
    event: str
    data: str


@dataclass
class Scenario:
    writers: int = 4
    voters: int = 3000
    precincts: int = 10
    workers: int = 2
    streams: int = 4
    pause: float = 0.02  # between one clerk's check-ins
    # (action, seconds to wait after it): restart -m fast, stop -m fast, start; quiet_restart
    # pauses the clerks and the prober first, so the pools hold connections the restart cut
    steps: tuple = (("run", 2.0), ("restart", 3.0), ("stop", 3.0), ("start", 4.0), ("quiet_restart", 3.0))


class Client:
    """A browser's worth of cookies; a new connection per request (so requests spread over the
    workers, as many browsers' would)."""

    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.token = ""

    def request(self, path: str, data: dict | None = None, headers: dict | None = None, timeout: float = 15):
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(f"{self.base}{path}", data=body, headers=headers or {})
        request.add_header("X-Sent-At", f"{time.time():.6f}")
        try:
            with self.opener.open(request, timeout=timeout) as response:
                return response.status, response.read().decode(errors="replace")
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")

    def sign_in(self, username: str, password: str) -> None:
        status, page = self.request("/login")
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        status, page = self.request(
            "/login", {"username": username, "password": password, "csrf_token": token}
        )
        assert status == 200 and "Sign out" in page, f"sign-in failed: {status}"
        status, page = self.request("/check-in")
        found = re.search(r'"X-CSRFToken": "([^"]+)"', page) or re.search(
            r'name="csrf_token" type="hidden" value="([^"]+)"', page
        )
        self.token = found.group(1)

    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)


def classify(status: int | None, body: str) -> str:
    if status is None:
        return "no-answer"
    if status == 200:
        return "acknowledged"
    if status == 503 and "Your change was saved" in body:
        return "saved"
    if status == 503 and "may or may not" in body:
        return "uncertain"
    if status == 503 and "Nothing was saved" in body:
        return "refused"
    if status == 409:
        return "conflict"
    return f"http-{status}"


class Portal:
    """gunicorn serving wsgi:app against `database_url`."""

    def __init__(self, database_url: str, workers: int, log_dir: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.access_log = log_dir / "access.log"
        self.error_log = log_dir / "gunicorn.log"
        self.stderr = log_dir / "server.stderr"  # the portal's own log lines
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")},
            "PORTAL_DATABASE_URL": database_url,
            "PORTAL_SESSION_COOKIE_SECURE": "false",
            "PORTAL_BIND": f"127.0.0.1:{self.port}",
            "PORTAL_WORKERS": str(workers),
            "PORTAL_LIVE_MAX_STREAMS": "40",
            "PORTAL_PAGE_THREADS": "24",
            "PORTAL_LIVE_HEARTBEAT_SECONDS": "1",
            "PORTAL_PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        }
        self.process: subprocess.Popen | None = None

    def flask(self, *args: str) -> None:
        subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", *args],
            cwd=ROOT,
            env=self.env,
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=600,
        )

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "gunicorn.conf.py",
                "--access-logfile",
                str(self.access_log),
                "--access-logformat",
                ACCESS_FORMAT,
                "--error-logfile",
                str(self.error_log),
                "wsgi:app",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=self.stderr.open("wb"),
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.base}/health", timeout=5) as response:
                    if response.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not come up; see {self.error_log}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def served(self) -> list[tuple[str, int, float, float, str]]:
        """(pid, status, sent at, finished at, path) of every logged request that carried X-Sent-At."""
        rows = []
        for line in self.access_log.read_text().splitlines():
            parts = line.split(" ")
            if len(parts) != 5 or parts[2] == "-":
                continue
            pid, status, sent, micros, path = parts
            rows.append((pid, int(status), float(sent), float(sent) + int(micros) / 1e6, path))
        return rows


class Stream:
    """An observer's live stream, read in a thread; reconnects as a browser's EventSource does."""

    def __init__(self, base: str, path: str, cookie: str):
        self.host, self.port = urllib.parse.urlsplit(base).netloc.split(":")
        self.path, self.cookie = path, cookie
        self.events: list[StreamEvent] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Stream:
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                connection = http.client.HTTPConnection(self.host, int(self.port), timeout=5)
                connection.request(
                    "GET", self.path, headers={"Cookie": self.cookie, "Accept": "text/event-stream"}
                )
                response = connection.getresponse()
                buffer = b""
                while not self.stopping.is_set():
                    try:
                        chunk = response.fp.read1(65536)
                    except TimeoutError:
                        continue
                    if not chunk:
                        break
                    buffer += chunk
                    while b"\n\n" in buffer:
                        block, buffer = buffer.split(b"\n\n", 1)
                        self._event(block.decode(errors="replace"))
                connection.close()
            except OSError:
                pass
            self.stopping.wait(1.0)  # the browser's retry delay (shorter than the server's 3 s)

    def _event(self, block: str) -> None:
        name, data = "message", []
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
        if data:
            self.events.append(StreamEvent(time.time(), name, "\n".join(data)))

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(10)


@dataclass
class FaultRun:
    scenario: Scenario
    answers: list[Answer] = field(default_factory=list)
    probes: list[tuple[float, int | None]] = field(default_factory=list)
    downs: list[float] = field(default_factory=list)  # when a restart or stop began
    backs: list[float] = field(default_factory=list)  # when the database answered again
    stored_at_back: list[int] = field(default_factory=list)
    new_stream_stale_seconds: list[float] = field(default_factory=list)
    streams: list[Stream] = field(default_factory=list)
    stored: set[int] = field(default_factory=set)
    audited: int = 0
    audit_intact: bool = False
    served: list = field(default_factory=list)
    workers: set[str] = field(default_factory=set)


async def _fetch(url: str, sql: str):
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"), timeout=10)
    try:
        return await connection.fetch(sql)
    finally:
        await connection.close()


def query(url: str, sql: str):
    return asyncio.run(_fetch(url, sql))


def run_scenario(scenario: Scenario, work_dir: Path) -> FaultRun:
    cluster = PrivateCluster().init()
    cluster.start()
    portal = None
    try:
        url = cluster.url("tally_faults")
        portal = Portal(url, scenario.workers, work_dir)
        logins = work_dir / "logins.txt"
        portal.flask("db-upgrade")
        portal.flask(
            "seed-demo", "--no-election-night", "--voters", str(scenario.voters),
            "--precincts", str(scenario.precincts), "--logins-file", str(logins),
        )  # fmt: skip
        password = re.search(r"password: (\S+)", logins.read_text()).group(1)
        [election] = query(url, "SELECT id FROM election WHERE status = 'open'")
        election_id = election["id"]
        voter_ids = [
            r["id"]
            for r in query(
                url,
                "SELECT v.id FROM voter v JOIN election_precinct ep ON ep.precinct_id = v.precinct_id "
                f"WHERE ep.election_id = {int(election_id)} AND v.status = 'active' ORDER BY v.id",
            )
        ]
        portal.start()
        return _exercise(scenario, cluster, portal, url, election_id, voter_ids, password)
    finally:
        if portal is not None:
            portal.stop()
        cluster.destroy()


def _exercise(scenario, cluster, portal, url, election_id, voter_ids, password) -> FaultRun:
    run = FaultRun(scenario)
    observer = Client(portal.base)
    observer.sign_in("observer", password)
    stream_path = f"/live/elections/{election_id}/stream"
    run.streams = [
        Stream(portal.base, stream_path, observer.cookie_header()).start() for _ in range(scenario.streams)
    ]
    clerks = []
    for n in range(scenario.writers):
        clerk = Client(portal.base)
        clerk.sign_in("clerk" if n % 2 == 0 else "clerk2", password)
        clerks.append(clerk)
    next_voter = iter(voter_ids).__next__
    voter_lock = threading.Lock()
    stopping = threading.Event()
    running = threading.Event()  # cleared: clerks and prober pause
    running.set()
    answers_lock = threading.Lock()

    def write(clerk: Client) -> None:
        while not stopping.is_set():
            running.wait()
            with voter_lock:
                try:
                    voter_id = next_voter()
                except StopIteration:
                    return
            sent = time.time()
            try:
                status, body = clerk.request(
                    f"/check-in/{election_id}/voters/{voter_id}",
                    {"method": "in_person", "csrf_token": clerk.token},
                    {"HX-Request": "true", "X-CSRFToken": clerk.token},
                )
            except OSError:
                status, body = None, ""
            with answers_lock:
                run.answers.append(Answer(voter_id, status, classify(status, body), sent, time.time()))
            stopping.wait(scenario.pause)

    def probe() -> None:
        while not stopping.is_set():
            running.wait()
            try:
                with urllib.request.urlopen(
                    urllib.request.Request(
                        f"{portal.base}/health", headers={"X-Sent-At": f"{time.time():.6f}"}
                    ),
                    timeout=10,
                ) as response:
                    status = response.status
            except urllib.error.HTTPError as error:
                status = error.code
            except OSError:
                status = None
            run.probes.append((time.time(), status))
            stopping.wait(0.05)

    threads = [threading.Thread(target=write, args=(c,), daemon=True) for c in clerks]
    threads.append(threading.Thread(target=probe, daemon=True))
    for thread in threads:
        thread.start()
    try:
        for action, wait in scenario.steps:
            if action in ("restart", "stop"):
                run.downs.append(time.time())
            if action == "restart":
                cluster.restart("fast")
                _came_back(run, url)
            elif action == "stop":
                cluster.stop("fast")
                run.new_stream_stale_seconds.append(
                    _new_stream_is_told_to_retry(portal, stream_path, observer)
                )
            elif action == "start":
                cluster.start()
                _came_back(run, url)
            elif action == "quiet_restart":
                running.clear()
                time.sleep(1.0)  # what is in flight finishes
                run.downs.append(time.time())
                cluster.restart("fast")
                _came_back(run, url)
                running.set()
            time.sleep(wait)
    finally:
        stopping.set()
        for thread in threads:
            thread.join(30)
        for stream in run.streams:
            stream.stop()
    run.stored = {
        r["voter_id"]
        for r in query(url, f"SELECT voter_id FROM check_in WHERE election_id = {int(election_id)}")
    }
    [audited] = query(url, "SELECT count(*) AS n FROM audit_event WHERE action = 'check_in'")
    run.audited = audited["n"]
    verify = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "audit", "verify"],
        cwd=ROOT, env=portal.env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    run.audit_intact = verify.returncode == 0
    time.sleep(0.5)  # the access log is written after each response
    run.served = portal.served()
    run.workers = {row[0] for row in run.served}
    return run


def _came_back(run: FaultRun, url: str) -> None:
    run.backs.append(time.time())
    [row] = query(url, "SELECT count(*) AS n FROM check_in")
    run.stored_at_back.append(row["n"])


def _new_stream_is_told_to_retry(portal: Portal, path: str, observer: Client) -> float:
    """While the database is down, a new live stream must be answered (stale, retry), not hang."""
    started = time.time()
    host, port = urllib.parse.urlsplit(portal.base).netloc.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=15)
    try:
        connection.request(
            "GET", path, headers={"Cookie": observer.cookie_header(), "Accept": "text/event-stream"}
        )
        response = connection.getresponse()
        body = b""
        while b"event: stale" not in body:
            chunk = response.fp.read1(65536)
            if not chunk:
                break
            body += chunk
        return time.time() - started if b"event: stale" in body else float("inf")
    except OSError:
        return float("inf")
    finally:
        connection.close()


# Figures ---------------------------------------------------------------------------------------------


def summary(run: FaultRun) -> dict:
    acknowledged = {a.voter_id for a in run.answers if a.kind in ("acknowledged", "saved")}
    uncertain = {a.voter_id for a in run.answers if a.kind == "uncertain"}
    status_counts = collections.Counter(str(a.status) if a.status else "no answer" for a in run.answers)
    kinds = collections.Counter(a.kind for a in run.answers)
    probe_counts = collections.Counter(str(s) if s else "no answer" for _, s in run.probes)
    return {
        "requests": len(run.answers),
        "acknowledged": len(acknowledged),
        "lost": len(acknowledged - run.stored),
        "phantom": len(run.stored - acknowledged - uncertain),
        "saved_after_failure": kinds.get("saved", 0),
        "uncertain": len(uncertain),
        "uncertain_stored": len(uncertain & run.stored),
        "stored": len(run.stored),
        "audit_check_in_events": run.audited,
        "audit_chain_intact": run.audit_intact,
        "status_counts": dict(sorted(status_counts.items())),
        "answer_kinds": dict(sorted(kinds.items())),
        "health_status_counts": dict(sorted(probe_counts.items())),
        "server_errors": sum(
            n for code, n in (status_counts + probe_counts).items() if code.startswith("5") and code != "503"
        ),
        "workers": len(run.workers),
        "recovery_seconds_max": _recovery(run),
        "failed_after_back": _failed_after_back(run),
        "live_recovery_seconds_max": _live_recovery(run),
        "new_stream_stale_seconds_max": round(max(run.new_stream_stale_seconds, default=0.0), 3),
        "database_outages": len(run.backs),
    }


def _recovery(run: FaultRun) -> float | None:
    """For each time the database came back and each worker: back -> first answer below 500."""
    worst = 0.0
    for back in run.backs:
        for worker in run.workers:
            first = min(
                (
                    done
                    for pid, code, _, done, _ in run.served
                    if pid == worker and code < 500 and done >= back
                ),
                default=None,
            )
            if first is None:
                return float("inf")
            worst = max(worst, first - back)
    return round(worst, 3)


def _failed_after_back(run: FaultRun) -> int:
    """Check-ins refused although sent after the database was back and answered before it went
    again: what stale pooled connections would cost."""
    failed = 0
    for back in run.backs:
        until = min((d for d in run.downs if d > back), default=float("inf"))
        answered = [a for a in run.answers if back <= a.sent and a.done < until]
        failed += sum(1 for a in answered if (a.status or 599) >= 500)
    return failed


def _live_recovery(run: FaultRun) -> float | None:
    """For each time the database came back and each stream: back -> the first turnout panel that
    counts a check-in stored after the database returned."""
    worst = 0.0
    for back, before in zip(run.backs, run.stored_at_back, strict=True):
        for stream in run.streams:
            seen = next(
                (
                    e.at
                    for e in stream.events
                    if e.at >= back and e.event == "turnout" and _turnout(e.data) > before
                ),
                None,
            )
            if seen is None:
                return float("inf")
            worst = max(worst, seen - back)
    return round(worst, 3)


def _turnout(html: str) -> int:
    found = TURNOUT.search(html)
    return int(found.group(1).replace(",", "")) if found else -1
