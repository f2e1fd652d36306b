"""Live panels: 1,000 SSE subscribers, a return saved, time until all of them have the new panel.

gunicorn (gunicorn.conf.py: gthread, threads sized for live streams) serves a scratch database with
the demo election; 1,000 asyncio connections in this process subscribe to the election's stream
(the kernel spreads them over the workers). Then 5 returns are saved here (commit -> NOTIFY); for
each, the latency of a subscriber is the time from just before the commit until it has read the
updated contest panel (rendered at once: the leading edge). Then a burst of 100 returns of that
contest within a second: how many times each subscriber received its panel (the renders). RSS,
threads and CPU of each worker are read while the streams are held. Then the same with one worker. Figures go to
bench/results/tally.json. Everything runs on 127.0.0.1; the client shares the machine's 2 cores.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from common import ROOT, flask_cli, free_port, migrate, scratch_database, sign_in, write_results

SUBSCRIBERS = int(os.environ.get("BENCH_SUBSCRIBERS", 1000))
ROUNDS = 5
BURST, BURST_SECONDS = 100, 1.0
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(len(ordered) * p) - 1))]


async def subscriber(port: int, path: str, cookie: str, event: bytes, state: dict, index: int = 0) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n\r\n".encode())
    await writer.drain()
    ready = False
    try:
        while True:
            block = await reader.readuntil(b"\n\n")
            if event not in block:
                continue
            if not ready:
                ready = True
                state["ready"] += 1
            if state.get("counting"):
                state["counts"][index] += 1
            marker = state.get("marker")
            if marker and marker in block:
                state["latencies"].append(time.perf_counter() - state["t0"])
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


def workers_of(master: psutil.Process) -> list[psutil.Process]:
    return master.children()


def measure(url: str, workers: int) -> dict:
    from sqlalchemy import text

    from portal import aio, create_app
    from portal.db import transaction
    from portal.returns.forms import Figures
    from portal.returns.queries import precinct_ballot, save_return
    from portal.users.queries import get_user

    port = free_port()
    env = {
        **os.environ,
        "PORTAL_DATABASE_URL": url,
        "PORTAL_SESSION_COOKIE_SECURE": "false",
        "PORTAL_BIND": f"127.0.0.1:{port}",
        "PORTAL_WORKERS": str(workers),
        "PORTAL_ACCESS_LOG": "/dev/null",
        "PORTAL_LIVE_MAX_STREAMS": str(SUBSCRIBERS // workers + 200),
    }
    master = psutil.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                cookie = sign_in(f"http://127.0.0.1:{port}", "bench", "bench password 123")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        app = create_app({"DATABASE_URL": url, "DATABASE_URL_FROM_ENV": True})

        async def setting():
            async with transaction() as db:
                election = await db.scalar(
                    text("SELECT id FROM election WHERE status = 'open' ORDER BY id LIMIT 1")
                )
                precinct = await db.scalar(
                    text(
                        "SELECT precinct_id FROM election_precinct WHERE election_id = :e"
                        " ORDER BY precinct_id LIMIT 1"
                    ),
                    {"e": election},
                )
                clerk_id = await db.scalar(text("SELECT id FROM user_account WHERE username = 'clerk'"))
                ballot = (await precinct_ballot(db, election, precinct))[0]
                return election, precinct, await get_user(db, clerk_id), ballot.contest.id

        with app.app_context():
            election_id, precinct_id, clerk, contest_id = aio.run(setting())

        async def save(lead: int) -> None:
            async with transaction() as db:
                ballot = next(
                    b
                    for b in await precinct_ballot(db, election_id, precinct_id)
                    if b.contest.id == contest_id
                )
                votes = [lead] + [100 + n for n in range(len(ballot.candidates) - 1)]
                counts = {c.id: v for c, v in zip(ballot.candidates, votes, strict=True)}
                await save_return(
                    db,
                    actor=clerk,
                    election_id=election_id,
                    precinct_id=precinct_id,
                    ballot=ballot,
                    figures=Figures(counts, sum(votes), 0, 0),
                )

        def save_in_app(lead: int) -> None:
            with app.app_context():
                aio.run(save(lead))

        async def main() -> dict:
            state = {"ready": 0, "latencies": []}
            path = f"/live/elections/{election_id}/stream"
            event = f"event: contest-{contest_id}".encode()
            tasks = []
            state["counts"] = [0] * SUBSCRIBERS
            for batch in range(SUBSCRIBERS // 100):  # open in batches: a listen backlog of 2048 is plenty
                tasks += [
                    asyncio.create_task(subscriber(port, path, cookie, event, state, batch * 100 + n))
                    for n in range(100)
                ]
                await asyncio.sleep(0.05)
            started = time.monotonic()
            while state["ready"] < SUBSCRIBERS and time.monotonic() - started < 120:
                await asyncio.sleep(0.1)
            connected = state["ready"]
            await asyncio.sleep(2)  # hold them: idle cost
            held = [
                (p.memory_info().rss / (1 << 20), p.num_threads(), sum(p.cpu_times()[:2]))
                for p in workers_of(master)
            ]
            idle_start = time.monotonic()
            await asyncio.sleep(3)
            idle_cpu = [sum(p.cpu_times()[:2]) for p in workers_of(master)]
            idle_seconds = time.monotonic() - idle_start
            rounds = []
            for n in range(ROUNDS):
                lead = 10_000 + 7 * n
                state["latencies"] = []
                state["marker"] = f"{lead:,} · ".encode()
                state["t0"] = time.perf_counter()
                await asyncio.to_thread(save_in_app, lead)
                deadline = time.monotonic() + 15
                while len(state["latencies"]) < connected and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
                rounds.append(list(state["latencies"]))
                await asyncio.sleep(0.5)
            after = [sum(p.cpu_times()[:2]) for p in workers_of(master)]
            # A burst: 100 returns of the same contest within about a second; how many times did each
            # subscriber get that contest's panel (= renders of it reaching the browsers)?
            state["marker"], state["counts"], state["counting"] = None, [0] * SUBSCRIBERS, True
            burst_started = time.perf_counter()
            for n in range(BURST):
                await asyncio.to_thread(save_in_app, 20_000 + n)
                pause = burst_started + (n + 1) * BURST_SECONDS / BURST - time.perf_counter()
                if pause > 0:
                    await asyncio.sleep(pause)
            burst_seconds = time.perf_counter() - burst_started
            await asyncio.sleep(2)  # the trailing render arrives
            state["counting"] = False
            received = sorted(state["counts"][:connected])
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            latencies = [ms * 1000 for round_ in rounds for ms in round_]
            delivered = [len(r) for r in rounds]
            return {
                "subscribers": SUBSCRIBERS,
                "connected": connected,
                "workers": workers,
                "fanout_p50_ms": round(statistics.median(latencies), 1),
                "fanout_p99_ms": round(percentile(latencies, 0.99), 1),
                "fanout_max_ms": round(max(latencies), 1),
                "delivered_per_round": delivered,
                "burst_returns": BURST,
                "burst_seconds": round(burst_seconds, 2),
                "burst_renders_per_panel": received[-1] if received else None,
                "burst_renders_per_panel_median": statistics.median(received) if received else None,
                "rss_mb_per_worker": [round(rss, 1) for rss, _, _ in held],
                "threads_per_worker": [threads for _, threads, _ in held],
                "idle_cpu_percent_per_worker": [
                    round(100 * (c - h[2]) / idle_seconds, 1) for c, h in zip(idle_cpu, held, strict=False)
                ],
                "cpu_seconds_per_worker_for_5_fanouts": [
                    round(a - c, 2) for a, c in zip(after, idle_cpu, strict=False)
                ],
            }

        return asyncio.run(main())
    finally:
        master.terminate()
        master.wait(30)


def main() -> None:
    url = scratch_database("tally_bench_live")
    try:
        logins = str(Path(tempfile.mkdtemp()) / "logins.txt")
        flask_cli(
            url,
            "seed-demo",
            "--no-election-night",
            "--voters",
            "2000",
            "--precincts",
            "20",
            "--logins-file",
            logins,
        )
        flask_cli(url, "create-user", "bench", "--role", "observer", "--password", "bench password 123")
        two = measure(url, 2)
        print(json.dumps(two, indent=2))
        one = measure(url, 1)
        print(json.dumps(one, indent=2))
    finally:
        migrate.drop_database(url)
    figures = {
        **{k: v for k, v in two.items()},
        "one_worker": one,
        "measured": "5 saved returns x all subscribers; latency from just before the commit to the updated "
        "panel read by each asyncio client on the same 2-core machine; change window 250 ms (leading edge: "
        "a lone change renders at once); burst: 100 returns of one contest paced over 1 s, panels received "
        "per subscriber",
    }
    print(f"written to {write_results('tally', figures)}")


if __name__ == "__main__":
    main()
