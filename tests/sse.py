"""A small Server-Sent Events client over a real socket, for tests."""

from __future__ import annotations

import http.client
import http.cookiejar
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request


def sign_in_cookie(base: str, username: str, password: str) -> str:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/login", timeout=10).read().decode()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    data = {"username": username, "password": password}
    if token:
        data["csrf_token"] = token.group(1)
    opener.open(f"{base}/login", data=urllib.parse.urlencode(data).encode(), timeout=10).read()
    return "; ".join(f"{c.name}={c.value}" for c in jar)


class EventStream:
    def __init__(self, base: str, path: str, cookie: str):
        host, port = urllib.parse.urlsplit(base).netloc.split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=10)
        self.connection.request("GET", path, headers={"Cookie": cookie, "Accept": "text/event-stream"})
        self.response = self.connection.getresponse()
        self.buffer = b""

    def next_event(self, timeout: float = 10) -> dict:
        """The next event as {"event", "id", "data"} (comments and retry lines are skipped)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if b"\n\n" in self.buffer:
                block, self.buffer = self.buffer.split(b"\n\n", 1)
                event = {"event": "message", "id": None, "data": []}
                for line in block.decode().splitlines():
                    if line.startswith("event: "):
                        event["event"] = line[7:]
                    elif line.startswith("id: "):
                        event["id"] = line[4:]
                    elif line.startswith("data: "):
                        event["data"].append(line[6:])
                if event["data"]:
                    event["data"] = "\n".join(event["data"])
                    return event
                continue
            chunk = (
                self.response.fp.read1(65536) if hasattr(self.response.fp, "read1") else self.response.read(1)
            )
            if not chunk:
                raise EOFError("the stream closed")
            self.buffer += chunk
        raise TimeoutError("no event in time")

    def wait_for(self, event: str, contains: str = "", timeout: float = 10) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            found = self.next_event(max(deadline - time.monotonic(), 0.01))
            if found["event"] == event and contains in found["data"]:
                return found

    def close(self) -> None:
        self.response.close()  # the response's file holds the socket open too
        self.connection.close()


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def flask_server(port: int, env: dict) -> subprocess.Popen:
    """The portal under `flask run` (threaded) in a process of its own, on 127.0.0.1:`port`."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flask",
            "--app",
            "wsgi",
            "run",
            "--port",
            str(port),
            "--no-reload",
            "--with-threads",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
