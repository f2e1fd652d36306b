"""Election-day load: 50 clerks checking voters in, 200 browsers on the live panels, 5 managers reading
reports, for 60 s, on 2 gunicorn workers, at 1,000,000 voters in an open election.

Set-up (a scratch database, dropped at the end): precincts and voters generated in SQL as in
bench/reports.py (voter g is "First<g> Last<g mod 5000>", state voter ID V<g, 8 digits>, 500 active
voters a precinct), one open election on every precinct counting Election Day, 10 contests of 4
candidates, no check-ins and no returns yet (the polls are open). The staff accounts are made through
the app's own `create_user` (scrypt as configured, one audit event each): clerk001..clerkNNN,
manager01..05 and one observer for the watchers. Everyone signs in through the real login form
(common.sign_in); CSRF stays on. Sign-in throttling counts failures only (config.toml: 5 failures
per account or address), so the bench server runs with the default settings: a failed sign-in is a
bench error, not something to configure away. The server is gunicorn with gunicorn.conf.py (gthread,
live_max_streams + 32 page threads a worker), PORTAL_WORKERS=2, the access log off.

The load generator is this process: asyncio with raw HTTP/1.1 keep-alive connections, one per
simulated browser (it honours Set-Cookie like a browser, so flashed messages travel as they would):

- clerks: each repeats, with no think time, search -> open voter -> check in, over its own voters
  (clerk c of C takes g = c, c + C, c + 2C, ...: no voter is searched by two clerks, so every check-in
  is a real new one). Search: the desk's htmx GET /check-in?election=E&q=last<g mod 5000> first<g>
  (HX-Request: true, as hx-get on #checkin-search sends it); the voter is the first row of the
  fragment (its state voter ID is checked) and the row's form gives the action and the CSRF token.
  Open voter: GET /voters/<id> (the voter's page; the desk itself has no link to it). Check in: the
  row's htmx POST (csrf_token, q, method=in_person; X-CSRFToken and HX-Request headers), which must
  answer 200 with the row saying "Checked in". Anything else is an error (with a sample kept).
- managers: each pages through GET /elections/E/reports/{summary,canvass,turnout} in turn, full
  pages, with BENCH_LOAD_MANAGER_THINK seconds (default 1) between pages.
- watchers: GET /live/elections/E/stream (SSE), one connection each, all signed in as one observer;
  every `turnout` event is timestamped on arrival and its figure ("Turnout <strong>N</strong>") read.

The clock starts once every watcher has its first turnout panel. After BENCH_LOAD_SECONDS no new
cycle starts (cycles in flight finish), then the watchers get up to 15 s to show the final figure.

live_update: the k-th check-in to complete (POST response read at t_k) is taken to be in a turnout
panel once that panel's figure, less the figure before the run, is >= k: the panel counts committed
check-ins, and the order responses complete in is the order the commits were made in, to within a
response's rendering. Its latency for one watcher is the arrival of the first such panel minus t_k
(0 if that panel came first: the commit precedes the response); "every watcher" takes the slowest
watcher for each check-in (live_update_p99_ms is the p99 of that). A bound that assumes nothing about
order is given too (live_update_conservative_*): a panel is surely after check-in k's commit once its
figure is >= the number of check-in POSTs *sent* before t_k (no snapshot taken before k committed can
count more than the others sent before k's response), so with 50 clerks it waits for ~50 more
commits and overstates the latency by about the time those take.

Measured besides: p50/p95/p99 of each step, cycles and requests per second (the clerks' and managers'
requests in the window; not the streams), report pages, CPU
seconds of each gunicorn worker, of the PostgreSQL backends serving the scratch database, of this
load generator and of the whole machine over the run window, peak RSS of each worker (sampled every
0.5 s), and every 0.5 s what the scratch database's backends were doing (pg_stat_activity: active,
waiting on which lock, idle in transaction): the evidence for what limits throughput.
Figures go to bench/results/load.json; machine_busy_with_others says other processes took over a
tenth of the machine's CPU in the window (then the figures say little about the portal). Everything talks to 127.0.0.1; the client shares the machine.

Sizes: BENCH_LOAD_SECONDS (60), BENCH_LOAD_CLERKS (50), BENCH_LOAD_WATCHERS (200),
BENCH_LOAD_MANAGERS (5), BENCH_LOAD_VOTERS (1,000,000), BENCH_LOAD_WORKERS (2),
BENCH_LOAD_MANAGER_THINK (1.0 s).
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import contextlib
import html
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import psutil
from common import ROOT, free_port, migrate, scratch_database, sign_in, write_results
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

SECONDS = float(os.environ.get("BENCH_LOAD_SECONDS", 60))
CLERKS = int(os.environ.get("BENCH_LOAD_CLERKS", 50))
WATCHERS = int(os.environ.get("BENCH_LOAD_WATCHERS", 200))
MANAGERS = int(os.environ.get("BENCH_LOAD_MANAGERS", 5))
VOTERS = int(os.environ.get("BENCH_LOAD_VOTERS", 1_000_000))
WORKERS = int(os.environ.get("BENCH_LOAD_WORKERS", 2))
MANAGER_THINK = float(os.environ.get("BENCH_LOAD_MANAGER_THINK", 1.0))
PER_PRECINCT = 500
PRECINCTS = max(1, VOTERS // PER_PRECINCT)
LAST_NAMES = 5000
CONTESTS, CANDIDATES = 10, 4
PASSWORD = "bench password 123"
REPORTS = ("summary", "canvass", "turnout")
DATABASE = "tally_bench_load"

SEED = [
    f"INSERT INTO precinct (code, name) SELECT 'P' || lpad(g::text, 5, '0'), 'Precinct ' || g"
    f" FROM generate_series(1, {PRECINCTS}) g",
    "INSERT INTO voter (state_voter_id, first_name, last_name, date_of_birth, birth_year, address,"
    " precinct_id, registration_date)"
    f" SELECT 'V' || lpad(g::text, 8, '0'), 'First' || g, 'Last' || (g % {LAST_NAMES}),"
    " date '1950-01-01' + (g % 20000), extract(year FROM date '1950-01-01' + (g % 20000)), g || ' Main St',"
    f" (SELECT min(id) FROM precinct) + (g - 1) % {PRECINCTS}, date '2010-01-01'"
    f" FROM generate_series(1, {VOTERS}) g",
    "INSERT INTO election (name, election_date, kind, status) VALUES ('County General 2026', '2026-11-03',"
    " 'general', 'open')",
    "INSERT INTO counting_group SELECT id, 'election_day' FROM election",
    "INSERT INTO election_precinct SELECT e.id, p.id FROM election e, precinct p",
    "INSERT INTO contest (election_id, office_title, vote_for, ballot_order)"
    f" SELECT e.id, 'Contest ' || g, 1, g FROM election e, generate_series(1, {CONTESTS}) g",
    "INSERT INTO contest_precinct SELECT c.id, p.id FROM contest c, precinct p",
    "INSERT INTO candidate (contest_id, election_id, code, ballot_name, ballot_order)"
    " SELECT c.id, c.election_id, 'C' || c.id || '-' || g, 'Candidate ' || c.id || '.' || g, g"
    f" FROM contest c, generate_series(1, {CANDIDATES}) g",
]

ROW = re.compile(rb'<tr id="checkin-voter-(\d+)"[^>]*>(.*?)</tr>', re.S)
ACTION = re.compile(rb'<form method="post" action="([^"]+)"')
CSRF = re.compile(rb'name="csrf_token" value="([^"]+)"')
TURNOUT = re.compile(rb'Turnout <strong class="font-monospace">([\d,]+)</strong>')


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(len(ordered) * p) - 1))]


def summary(seconds: list[float]) -> dict:
    ms = [s * 1000 for s in seconds]
    return {
        "count": len(ms),
        "p50_ms": round(statistics.median(ms), 1) if ms else None,
        "p95_ms": round(percentile(ms, 0.95), 1) if ms else None,
        "p99_ms": round(percentile(ms, 0.99), 1) if ms else None,
        "max_ms": round(max(ms), 1) if ms else None,
    }


# Set-up ---------------------------------------------------------------------------------------------


async def seed(url: str) -> int:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")  # VACUUM runs outside a transaction
    async with engine.connect() as conn:
        for statement in SEED:
            await conn.execute(text(statement))
        await conn.execute(text("VACUUM ANALYZE"))
        await conn.execute(text("CHECKPOINT"))
        election = await conn.scalar(text("SELECT id FROM election"))
    await engine.dispose()
    return election


def create_accounts(app, accounts: list[tuple[str, str]]) -> None:
    """Through the app's own create_user: the configured scrypt hash and an audit event each."""
    from portal import aio
    from portal.db import transaction
    from portal.users.queries import create_user

    async def go():
        for username, role in accounts:
            async with transaction() as db:
                await create_user(
                    db, actor=None, username=username, display_name=username, role=role, password=PASSWORD
                )

    with app.app_context():
        aio.run(go())


def panel_costs(app, election: int) -> dict:
    """After the run, in this process: what one render of the turnout panel costs (what each worker's
    hub does after every burst of check-ins), and the part of it that counts the roll."""
    from portal import aio
    from portal.db import reading
    from portal.live.panels import render_panels
    from portal.tally.queries import contest_tallies, election_turnout

    async def timed(make) -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            await make()
            times.append(time.perf_counter() - started)
        return round(statistics.median(times) * 1000, 1)

    async def read(query):
        async with reading() as db:
            return await query(db, election)

    async def go():
        return {
            "turnout_panel_render_ms": await timed(lambda: render_panels(election, {"turnout"})),
            "election_turnout_query_ms": await timed(lambda: read(election_turnout)),
            "contest_tallies_query_ms": await timed(lambda: read(contest_tallies)),
        }

    with app.app_context():
        return aio.run(go())


# A small HTTP/1.1 client: keep-alive, Content-Length or chunked bodies, a cookie jar -----------------


class HttpError(Exception):
    pass


class Browser:
    def __init__(self, port: int, cookie: str):
        self.port = port
        self.cookies = dict(part.split("=", 1) for part in cookie.split("; ") if "=" in part)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.requests = 0

    async def _connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port, limit=1 << 22)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(
        self, method: str, path: str, *, headers: dict | None = None, body: bytes = b""
    ) -> tuple[int, bytes]:
        if self.writer is None:
            await self._connect()
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Cookie: {cookie}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if method == "POST":
            lines += ["Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(body)}"]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        self.requests += 1
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
            status_line, *header_lines = head.decode("latin-1").split("\r\n")
            status = int(status_line.split(" ", 2)[1])
            length, chunked, close = None, False, False
            for line in header_lines:
                if not line:
                    continue
                name, value = line.split(":", 1)
                name, value = name.strip().lower(), value.strip()
                if name == "content-length":
                    length = int(value)
                elif name == "transfer-encoding" and "chunked" in value.lower():
                    chunked = True
                elif name == "connection" and value.lower() == "close":
                    close = True
                elif name == "set-cookie":
                    pair = value.split(";", 1)[0]
                    key, _, val = pair.partition("=")
                    if "max-age=0" in value.lower() or "expires=thu, 01 jan 1970" in value.lower():
                        self.cookies.pop(key.strip(), None)
                    else:
                        self.cookies[key.strip()] = val
            if chunked:
                parts = []
                while True:
                    size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    if size == 0:
                        await self.reader.readuntil(b"\r\n")
                        break
                    parts.append(await self.reader.readexactly(size))
                    await self.reader.readexactly(2)
                data = b"".join(parts)
            elif length is not None:
                data = await self.reader.readexactly(length)
            else:
                data, close = await self.reader.read(), True
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, IndexError) as error:
            self.close()
            raise HttpError(f"{method} {path}: {error!r}") from None
        if close:
            self.close()
        return status, data


# The load ------------------------------------------------------------------------------------------


class Run:
    def __init__(self):
        self.running = False
        self.stop_at = 0.0
        self.search: list[float] = []
        self.open_voter: list[float] = []
        self.checkin: list[float] = []
        self.cycles: list[float] = []
        self.report: dict[str, list[float]] = {name: [] for name in REPORTS}
        self.errors: list[str] = []
        self.error_count = 0
        self.sent: list[float] = []  # check-in POSTs that succeeded: when each was sent
        self.done: list[float] = []  # ... and when its response was read
        self.requests = 0
        self.watcher_ready = 0
        self.turnout: list[list[tuple[float, int]]] = []  # per watcher: (arrival, figure)
        self.watcher_trouble: collections.Counter = collections.Counter()

    def error(self, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < 20:
            self.errors.append(message[:300])


async def clerk(run: Run, port: int, cookie: str, election: int, index: int) -> None:
    browser = Browser(port, cookie)
    base_headers = {"HX-Request": "true", "HX-Current-URL": f"http://127.0.0.1:{port}/check-in"}
    status, body = await browser.request("GET", f"/check-in?election={election}")  # the desk, once
    if status != 200 or b'id="checkin-search"' not in body:
        run.error(f"clerk {index}: the desk answered {status} (not signed in?)")
        browser.close()
        return
    g = index + 1
    try:
        while time.perf_counter() < run.stop_at:
            if g > VOTERS:
                run.error(f"clerk {index}: ran out of voters")
                return
            q = f"last{g % LAST_NAMES} first{g}"
            voter_code = f"V{g:08d}".encode()
            g += CLERKS
            started = time.perf_counter()
            try:
                path = "/check-in?" + urllib.parse.urlencode({"election": election, "q": q})
                headers = {**base_headers, "HX-Target": "checkin-results", "HX-Trigger": "checkin-search"}
                status, body = await browser.request("GET", path, headers=headers)
                searched = time.perf_counter()
                run.requests += 1
                if status != 200:
                    run.error(f"search {status}: {body[:200]!r}")
                    continue
                run.search.append(searched - started)
                row = ROW.search(body)
                if row is None or voter_code not in row.group(2):
                    run.error(f"search {q!r}: the voter is not the first row")
                    continue
                voter_id = int(row.group(1))
                action, token = ACTION.search(row.group(2)), CSRF.search(row.group(2))
                if action is None or token is None:
                    run.error(f"search {q!r}: no check-in form in the row (already checked in?)")
                    continue
                status, body = await browser.request("GET", f"/voters/{voter_id}")
                opened = time.perf_counter()
                run.requests += 1
                if status != 200:
                    run.error(f"open voter {status}: {body[:200]!r}")
                    continue
                run.open_voter.append(opened - searched)
                csrf = html.unescape(token.group(1).decode())
                form = urllib.parse.urlencode({"csrf_token": csrf, "q": q, "method": "in_person"}).encode()
                headers = {
                    **base_headers,
                    "HX-Target": f"checkin-voter-{voter_id}",
                    "X-CSRFToken": csrf,
                }
                sent = time.perf_counter()
                status, body = await browser.request(
                    "POST", html.unescape(action.group(1).decode()), headers=headers, body=form
                )
                done = time.perf_counter()
                run.requests += 1
                if status != 200 or b"Checked in" not in body:
                    run.error(f"check-in {status}: {body[:300]!r}")
                    continue
                run.checkin.append(done - sent)
                run.sent.append(sent)
                run.done.append(done)
                run.cycles.append(done - started)
            except HttpError as error:
                run.error(str(error))
    finally:
        browser.close()


async def manager(run: Run, port: int, cookie: str, election: int, index: int) -> None:
    browser = Browser(port, cookie)
    n = index
    try:
        while time.perf_counter() < run.stop_at:
            name = REPORTS[n % len(REPORTS)]
            n += 1
            started = time.perf_counter()
            try:
                status, body = await browser.request("GET", f"/elections/{election}/reports/{name}")
            except HttpError as error:
                run.error(str(error))
                continue
            run.requests += 1
            if status != 200:
                run.error(f"report {name} {status}: {body[:200]!r}")
            else:
                run.report[name].append(time.perf_counter() - started)
            await asyncio.sleep(MANAGER_THINK)
    finally:
        browser.close()


async def watcher(run: Run, port: int, cookie: str, election: int, index: int) -> None:
    seen = run.turnout[index]
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
    writer.write(
        f"GET /live/elections/{election}/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n"
        "Accept: text/event-stream\r\nHX-Request: true\r\n\r\n".encode()
    )
    await writer.drain()
    try:
        while True:
            block = await reader.readuntil(b"\n\n")
            if b"event: turnout" in block:
                found = TURNOUT.search(block)
                if found is None:
                    run.watcher_trouble["turnout event without a figure"] += 1
                    continue
                if not seen:
                    run.watcher_ready += 1
                seen.append((time.perf_counter(), int(found.group(1).replace(b",", b""))))
            elif b"event: stale" in block or b"event: refused" in block or b"event: signed-out" in block:
                run.watcher_trouble[block.split(b"\n")[0].decode(errors="replace")[-40:]] += 1
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError) as error:
        run.watcher_trouble[f"stream ended: {type(error).__name__}"] += 1
    finally:
        writer.close()


class Meter:
    """CPU and memory of the workers, PostgreSQL's backends for our database, this process, the
    machine; and what those backends are doing."""

    def __init__(self, master: psutil.Process, url: str):
        self.master = master
        self.url = url
        self.workers = master.children()
        self.me = psutil.Process()
        self.rss_peak = {p.pid: 0.0 for p in self.workers}
        self.backend_cpu: dict[int, tuple[float, float]] = {}  # pid -> (first seen, last seen)
        self.activity: collections.Counter = collections.Counter()
        self.audit_lock_holder: collections.Counter = collections.Counter()  # what the holder does
        self.samples = 0

    def backends(self) -> list[psutil.Process]:
        found = []
        for p in psutil.process_iter(["name", "cmdline"]):
            cmd = " ".join(p.info["cmdline"] or [])
            if cmd.startswith("postgres:") and f" {DATABASE} " in cmd:
                found.append(p)
        return found

    def cpu(self, p: psutil.Process) -> float:
        t = p.cpu_times()
        return t.user + t.system

    def connections(self, port: int) -> list[int]:
        """Client connections each worker holds on the portal's port (the kernel hands each new
        connection to whichever worker accepts first)."""
        counts = []
        for p in self.workers:
            try:
                held = p.net_connections(kind="tcp")
            except psutil.Error:
                held = []
            counts.append(
                sum(1 for c in held if c.laddr and c.laddr.port == port and c.status == "ESTABLISHED")
            )
        return counts

    def start(self) -> None:
        self.t0 = time.perf_counter()
        self.workers_cpu0 = [self.cpu(p) for p in self.workers]
        self.helpers_cpu0 = {p.pid: self.cpu(p) for p in self.helpers()}
        self.me0 = self.cpu(self.me)
        self.machine0 = psutil.cpu_times()
        self.sample_backends(first=True)

    def sample_backends(self, first: bool = False) -> None:
        for p in self.backends():
            try:
                now = self.cpu(p)
            except psutil.Error:
                continue
            before = self.backend_cpu.get(p.pid)
            # a backend that started during the run counts from 0
            self.backend_cpu[p.pid] = (before[0] if before else (now if first else 0.0), now)

    def helpers(self) -> list[psutil.Process]:
        """The workers' own processes: their report processes (portal/offload.py)."""
        found = []
        for worker in self.workers:
            with contextlib.suppress(psutil.Error):
                found.extend(worker.children(recursive=True))
        return found

    def sample(self) -> None:
        for p in self.workers:
            with contextlib.suppress(psutil.Error):
                self.rss_peak[p.pid] = max(self.rss_peak[p.pid], p.memory_info().rss / (1 << 20))
        self.sample_backends()

    def stop(self) -> dict:
        seconds = time.perf_counter() - self.t0
        self.sample()
        workers = [round(self.cpu(p) - c, 2) for p, c in zip(self.workers, self.workers_cpu0, strict=True)]
        postgres = sum(last - first for first, last in self.backend_cpu.values())
        helpers = 0.0
        helpers_rss = []
        for p in self.helpers():
            with contextlib.suppress(psutil.Error):
                helpers += self.cpu(p) - self.helpers_cpu0.get(p.pid, 0.0)  # (one started since: from 0)
                helpers_rss.append(round(p.memory_info().rss / (1 << 20), 1))
        me = self.cpu(self.me) - self.me0
        m1 = psutil.cpu_times()
        busy = (
            sum(m1) - m1.idle - m1.iowait - (sum(self.machine0) - self.machine0.idle - self.machine0.iowait)
        )
        return {
            "window_seconds": round(seconds, 2),
            "worker_cpu_seconds": workers,
            "worker_cpu_percent": [round(100 * w / seconds, 1) for w in workers],
            "worker_peak_rss_mb": [round(self.rss_peak[p.pid], 1) for p in self.workers],
            "report_process_cpu_seconds": round(helpers, 2),
            "report_process_rss_mb": helpers_rss,
            "postgres_cpu_seconds": round(postgres, 2),
            "postgres_backends": len(self.backend_cpu),
            "loadgen_cpu_seconds": round(me, 2),
            "machine_busy_cpu_seconds": round(busy, 2),
            "machine_cpu_capacity_seconds": round(seconds * psutil.cpu_count(), 1),
            "other_processes_cpu_seconds": round(busy - sum(workers) - helpers - postgres - me, 2),
        }


ACTIVITY = text(
    "SELECT state, coalesce(wait_event_type, '') AS type, coalesce(wait_event, '') AS event,"
    " EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'advisory' AND l.granted)"
    " FROM pg_stat_activity a WHERE datname = :db AND pid <> pg_backend_pid()"
)


async def sampler(run: Run, meter: Meter) -> None:
    engine = create_async_engine(meter.url, pool_size=1)
    try:
        async with engine.connect() as conn:
            while run.running:
                meter.sample()
                rows = (await conn.execute(ACTIVITY, {"db": DATABASE})).all()
                for state, kind, event, holds_audit_lock in rows:
                    what = f"active {kind}:{event}".rstrip(": ") if state == "active" else state
                    if state != "idle":
                        meter.activity[what] += 1
                    if holds_audit_lock:
                        meter.audit_lock_holder[what] += 1
                meter.samples += 1
                await conn.rollback()
                await asyncio.sleep(0.5)
    finally:
        await engine.dispose()


def live_latencies(run: Run, baseline: int) -> dict:
    done = sorted(run.done)
    sent = sorted(run.sent)
    n = len(done)
    need_conservative = [bisect.bisect_right(sent, t) for t in done]  # POSTs sent before response k
    every, every_conservative, pairs = [0.0] * n, [0.0] * n, []
    missing = []
    for index, seen in enumerate(run.turnout):
        times = [t for t, _ in seen]
        figures = [f - baseline for _, f in seen]
        # figures only grow (nothing is voided): the first panel showing >= k is a bisection
        final = figures[-1] if figures else None
        if final is None or final < n:
            missing.append((index, final))
        for k in range(n):
            i = bisect.bisect_left(figures, k + 1)
            latency = max(0.0, times[i] - done[k]) if i < len(figures) else float("inf")
            every[k] = max(every[k], latency)
            if index % 10 == 0:
                pairs.append(latency)
            j = bisect.bisect_left(figures, need_conservative[k])
            late = max(0.0, times[j] - done[k]) if j < len(figures) else float("inf")
            every_conservative[k] = max(every_conservative[k], late)
    ms = [x * 1000 for x in every if x != float("inf")]
    conservative = [x * 1000 for x in every_conservative if x != float("inf")]
    pairs_ms = [x * 1000 for x in pairs if x != float("inf")]
    return {
        "live_update_p50_ms": round(statistics.median(ms), 1) if ms else None,
        "live_update_p99_ms": round(percentile(ms, 0.99), 1) if ms else None,
        "live_update_max_ms": round(max(ms), 1) if ms else None,
        "live_update_per_watcher_p99_ms": round(percentile(pairs_ms, 0.99), 1) if pairs_ms else None,
        "live_update_conservative_p50_ms": round(statistics.median(conservative), 1)
        if conservative
        else None,
        "live_update_conservative_p99_ms": round(percentile(conservative, 0.99), 1) if conservative else None,
        "live_checkins_never_shown": sum(1 for x in every if x == float("inf")),
        "watchers_missing_checkins": len(missing),
        "watchers_missing_sample": missing[:5],
    }


def measure(
    url: str, election: int, cookies: dict[str, list[str]], port: int, master: psutil.Process
) -> dict:
    async def main() -> dict:
        run = Run()
        run.turnout = [[] for _ in range(WATCHERS)]
        watchers = []
        for n in range(WATCHERS):
            watchers.append(asyncio.create_task(watcher(run, port, cookies["watcher"][0], election, n)))
            if n % 50 == 49:
                await asyncio.sleep(0.05)
        deadline = time.monotonic() + 60
        while run.watcher_ready < WATCHERS and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        connected = run.watcher_ready
        baseline = max((seen[-1][1] for seen in run.turnout if seen), default=0)
        meter = Meter(master, url)
        run.running = True
        meter.start()
        sampling = asyncio.create_task(sampler(run, meter))
        started = time.perf_counter()
        run.stop_at = started + SECONDS
        tasks = [
            asyncio.create_task(clerk(run, port, cookies["clerk"][n], election, n)) for n in range(CLERKS)
        ]
        tasks += [
            asyncio.create_task(manager(run, port, cookies["manager"][n], election, n))
            for n in range(MANAGERS)
        ]
        await asyncio.sleep(min(2.0, SECONDS / 2))
        connections = meter.connections(port)
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
        run.running = False
        usage = meter.stop()
        usage["worker_http_connections"] = connections
        await sampling
        # The watchers get the final figure (or do not, within 15 s).
        final = baseline + len(run.done)
        settle = time.monotonic() + 15
        while time.monotonic() < settle and any(
            not seen or seen[-1][1] < final for seen in run.turnout[:connected]
        ):
            await asyncio.sleep(0.1)
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        finals = [seen[-1][1] if seen else None for seen in run.turnout]
        live = live_latencies(run, baseline)
        cycles = len(run.cycles)
        reports_all = [x for values in run.report.values() for x in values]
        activity = {
            k: round(v / max(1, meter.samples), 2)
            for k, v in sorted(meter.activity.items(), key=lambda kv: -kv[1])
        }
        return {
            "voters": VOTERS,
            "precincts": PRECINCTS,
            "clerks": CLERKS,
            "watchers": WATCHERS,
            "watchers_connected": connected,
            "managers": MANAGERS,
            "manager_think_seconds": MANAGER_THINK,
            "workers": WORKERS,
            "seconds": round(elapsed, 2),
            "cycles": cycles,
            "cycles_per_second": round(cycles / elapsed, 1),
            "requests": run.requests,
            "requests_per_second": round(run.requests / elapsed, 1),
            "search_p95_ms": summary(run.search)["p95_ms"],
            "open_voter_p95_ms": summary(run.open_voter)["p95_ms"],
            "checkin_p95_ms": summary(run.checkin)["p95_ms"],
            "report_page_p95_ms": summary(reports_all)["p95_ms"],
            "errors": run.error_count,
            "sample_errors": run.errors[:10],
            **live,
            "every_checkin_in_every_watcher": (
                connected == WATCHERS
                and all(f == final for f in finals)
                and live["live_checkins_never_shown"] == 0
            ),
            "turnout_before": baseline,
            "turnout_expected_after": final,
            "watcher_final_figures": dict(collections.Counter(str(f) for f in finals)),
            "watcher_trouble": dict(run.watcher_trouble),
            "turnout_events_per_watcher_median": statistics.median(len(seen) for seen in run.turnout),
            "steps": {
                "search": summary(run.search),
                "open_voter": summary(run.open_voter),
                "checkin": summary(run.checkin),
                "cycle": summary(run.cycles),
                **{f"report_{name}": summary(values) for name, values in run.report.items()},
            },
            **usage,
            "db_backends_by_state_mean": activity,
            "audit_lock_holder_state_share": {
                k: round(v / max(1, meter.samples), 2)
                for k, v in sorted(meter.audit_lock_holder.items(), key=lambda kv: -kv[1])
            },
        }

    return asyncio.run(main())


def main() -> None:
    began = time.perf_counter()
    url = scratch_database(DATABASE)
    master = None
    server_log = tempfile.TemporaryFile()  # noqa: SIM115 (read and closed in the finally)
    try:
        election = asyncio.run(seed(url))
        seeded = time.perf_counter() - began
        print(f"seeded {VOTERS:,} voters over {PRECINCTS:,} precincts in {seeded:.1f} s", flush=True)
        roles = {
            "clerk": [f"clerk{n:03d}" for n in range(1, CLERKS + 1)],
            "manager": [f"manager{n:02d}" for n in range(1, MANAGERS + 1)],
            "watcher": ["watcher"],
        }
        role_of = {"clerk": "clerk", "manager": "manager", "watcher": "observer"}
        from portal import create_app

        app = create_app({"DATABASE_URL": url, "DATABASE_URL_FROM_ENV": True})
        create_accounts(app, [(name, role_of[kind]) for kind, names in roles.items() for name in names])
        port = free_port()
        env = {
            **os.environ,
            "PORTAL_DATABASE_URL": url,
            "PORTAL_SESSION_COOKIE_SECURE": "false",
            "PORTAL_BIND": f"127.0.0.1:{port}",
            "PORTAL_WORKERS": str(WORKERS),
            "PORTAL_ACCESS_LOG": "/dev/null",
        }
        master = psutil.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=server_log,
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                first = sign_in(base, roles["watcher"][0], PASSWORD)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        with ThreadPoolExecutor(4) as pool:
            cookies = {
                kind: list(pool.map(lambda name: sign_in(base, name, PASSWORD), names))
                for kind, names in roles.items()
                if kind != "watcher"
            }
        cookies["watcher"] = [first]
        for kind, values in cookies.items():
            if not all("tally_session=" in c for c in values):
                raise RuntimeError(f"a {kind} could not sign in")
        print(
            f"signed in {sum(len(v) for v in cookies.values())} accounts; load for {SECONDS:.0f} s",
            flush=True,
        )
        figures = measure(url, election, cookies, port, master)
        figures["setup_seconds"] = round(seeded, 1)
        figures.update(panel_costs(app, election))
    finally:
        if master is not None:
            master.terminate()
            try:
                master.wait(30)
            except psutil.TimeoutExpired:
                master.kill()
        migrate.drop_database(url)
        server_log.seek(0)
        log = server_log.read().decode(errors="replace")
        server_log.close()
    figures["server_log_errors"] = len(re.findall(r"Traceback|\[ERROR\]|CRITICAL", log))
    figures["server_log_sample"] = [
        line[:300] for line in log.splitlines() if "ERROR" in line or "Error" in line
    ][:5]
    busy = figures["other_processes_cpu_seconds"] / figures["machine_cpu_capacity_seconds"]
    figures["machine_busy_with_others"] = busy > 0.1  # other processes took over a tenth of the CPU
    figures["measured"] = (
        "one run on the shared 2-core machine; load generator = this asyncio process (raw HTTP/1.1); "
        "see the docstring of bench/checkin_load.py for the live_update method"
    )
    print(json.dumps(figures, indent=2))
    print(f"written to {write_results('load', figures)}")


if __name__ == "__main__":
    main()
