"""Shared benchmark plumbing: a scratch database, a gunicorn server, a signed-in HTTP load."""

from __future__ import annotations

import http.client
import http.cookiejar
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))

from portal import migrate  # noqa: E402
from portal.config import load_config  # noqa: E402
from portal.embedded_pg import resolve_database_url  # noqa: E402


def scratch_database(name: str) -> str:
    base = os.environ.get("PORTAL_DATABASE_URL") or load_config()["DATABASE_URL"]
    base = resolve_database_url(
        base, from_env="PORTAL_DATABASE_URL" in os.environ, embedded=True, instance_path=ROOT / "instance"
    )
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    migrate.drop_database(url)
    migrate.create_database(url)
    migrate.upgrade(url)
    return url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def flask_cli(url: str, *args: str) -> str:
    env = {**os.environ, "PORTAL_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@contextmanager
def gunicorn(url: str, *, workers: int = 1, threads: int = 8, env: dict | None = None):
    port = free_port()
    environment = {
        **os.environ,
        "PORTAL_DATABASE_URL": url,
        "PORTAL_SESSION_COOKIE_SECURE": "false",
        **(env or {}),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--worker-class",
            "gthread",
            "--threads",
            str(threads),
            "--log-level",
            "warning",
            "wsgi:app",
        ],
        cwd=ROOT,
        env=environment,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{base}/login", timeout=1).read()
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError("gunicorn did not start")
        yield base, process
    finally:
        process.terminate()
        process.wait(15)


def sign_in(base: str, username: str, password: str) -> str:
    """Sign in through the real form (with its CSRF token); return the Cookie header."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/login", timeout=10).read().decode()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    body = urllib.parse.urlencode({"username": username, "password": password, "csrf_token": token})
    opener.open(f"{base}/login", data=body.encode(), timeout=10).read()
    return "; ".join(f"{c.name}={c.value}" for c in jar)


def load(base: str, paths: list[str], *, cookie: str, total: int, concurrency: int, headers=None) -> dict:
    """`total` GETs over `concurrency` keep-alive connections; latency of each, errors counted."""
    host, port = urllib.parse.urlsplit(base).netloc.split(":")
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(total))

    def worker():
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        mine = []
        for n in counter:
            path = paths[n % len(paths)]
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers={"Cookie": cookie, **(headers or {})})
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    errors.append(f"{response.status} {path}")
            except (OSError, http.client.HTTPException) as error:
                errors.append(repr(error))
                conn = http.client.HTTPConnection(host, int(port), timeout=60)
                continue
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "seconds": round(elapsed, 3),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p95_ms": round(latencies[int(len(latencies) * 0.95) - 1] * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
        "sample_errors": errors[:5],
    }


def write_results(area: str, figures: dict, *, merge: bool = False) -> Path:
    """bench/results/<area>.json: `figures`, or with `merge` the file's figures updated with them
    (several benches write one area)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{area}.json"
    if merge and path.exists():
        figures = {**json.loads(path.read_text()), **figures}
    path.write_text(json.dumps(figures, indent=2) + "\n")
    return path


def bench_app(url: str):
    """The portal in this process on the bench's database, for timing requests through the whole
    Flask stack (plain HTTP session cookies; CSRF off: the benches time reads and measured writes)."""
    from portal import create_app

    return create_app(
        {
            "DATABASE_URL": url,
            "DATABASE_URL_FROM_ENV": True,
            "SESSION_COOKIE_SECURE": False,
            "WTF_CSRF_ENABLED": False,
        }
    )


def signed_in(app, username: str, password: str = "bench password 123"):
    """A test client of `app` signed in as `username`."""
    client = app.test_client()
    assert client.post("/login", data={"username": username, "password": password}).status_code == 302
    return client


async def search_samples(db) -> tuple[list, list[str]]:
    """What `search_params` draws from: 400 voters of the roll (last, first, voter id, address)
    and 50 precinct codes, at random."""
    from sqlalchemy import text

    columns = "SELECT last_name, first_name, state_voter_id, address FROM voter"
    names = (await db.execute(text(f"{columns} TABLESAMPLE SYSTEM (1) LIMIT 400"))).all()
    if len(names) < 100:  # (a small roll: 1% of its pages may hold none)
        names = (await db.execute(text(f"{columns} ORDER BY random() LIMIT 400"))).all()
    precincts = list(await db.scalars(text("SELECT code FROM precinct ORDER BY random() LIMIT 50")))
    return names, precincts


def search_params(rng: random.Random, names, precincts, count: int) -> list[dict]:
    """The voter searches of bench/voters.py and bench/scale.py: ten kinds in fixed proportions
    (prefixes, "last first", ids, addresses, a precinct, status, party, sorts), drawn from `names`
    ((last, first, voter id, address) samples of the roll) and `precincts` (ids)."""
    searches = []
    for n in range(count):
        last, first, voter_id, address = rng.choice(names)
        kind = n % 10
        if kind in (0, 1, 2):
            params = {"q": last[: rng.randint(1, 4)].lower()}
        elif kind == 3:
            params = {"q": f"{last.lower()} {first[:2].lower()}"}
        elif kind == 4:
            params = {"q": voter_id[: rng.randint(5, 9)]}
        elif kind == 5:
            params = {"q": " ".join(address.split()[:2])[: rng.randint(3, 8)]}
        elif kind == 6:
            params = {"precinct": rng.choice(precincts), "sort": rng.choice(["name", "-registered"])}
        elif kind == 7:
            params = {"q": last[:2].lower(), "status": rng.choice(["active", "inactive", "removed"])}
        elif kind == 8:
            params = {
                "party": rng.choice(["DEM", "REP", "LIB", "GRN", "IND", "none"]),
                "sort": rng.choice(["name", "voter_id"]),
            }
        else:
            params = {"sort": rng.choice(["name", "-name", "voter_id", "registered", "-registered"])}
        searches.append(params)
    return searches
