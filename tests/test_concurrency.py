"""The persistent event loop and the pooled engine under concurrent requests on a real server."""

from __future__ import annotations

import http.cookiejar
import threading
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from tests.conftest import TEST_PASSWORD, LiveServer

CONCURRENT = 240


def test_concurrent_requests_against_postgresql_have_zero_errors(app_factory, create_user, create_precinct):
    for n in range(30):
        create_precinct(code=f"{n}-C")
    user = create_user("clerk")
    app = app_factory(DATABASE_POOL_SIZE=10, DATABASE_MAX_OVERFLOW=10)
    with LiveServer(app) as server:
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        body = urllib.parse.urlencode({"username": user.username, "password": TEST_PASSWORD}).encode()
        opener.open(f"{server.url}/login", data=body, timeout=10)
        cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
        start = threading.Barrier(CONCURRENT)

        def fetch(n: int) -> tuple[int, bool]:
            query = ["", "?q=1", "?sort=-name", "?q=C&page=1"][n % 4]
            request = urllib.request.Request(
                f"{server.url}/precincts{query}",
                headers={"Cookie": cookie, **({"HX-Request": "true"} if n % 2 else {})},
            )
            start.wait(30)
            with urllib.request.urlopen(request, timeout=60) as response:
                html = response.read().decode()
                return response.status, "0-C" in html or "precinct" in html

        with ThreadPoolExecutor(CONCURRENT) as pool:
            results = list(pool.map(fetch, range(CONCURRENT)))
    assert len(results) == CONCURRENT
    assert all(status == 200 and ok for status, ok in results), [r for r in results if r[0] != 200][:5]
