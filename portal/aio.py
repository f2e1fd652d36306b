"""One persistent asyncio event loop per process, shared by every request.

Stock Flask runs each `async def` view on a new event loop, which breaks a pooled AsyncEngine
(pooled connections belong to the loop that opened them). Instead the app overrides
`Flask.async_to_sync` to submit each coroutine to this loop and wait for it in the request's thread.
`asyncio.run_coroutine_threadsafe` schedules the task from a copy of the calling thread's context, so
Flask's request and app contexts (context variables) are visible inside the coroutine.

The loop thread starts lazily and is started again in a forked child (gunicorn forks workers after
importing the app; threads do not survive a fork).
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class DeadlockError(RuntimeError):
    """Raised instead of hanging when code on the loop waits synchronously for the loop."""


class LoopThread:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid: int | None = None

    def loop(self) -> asyncio.AbstractEventLoop:
        pid = os.getpid()
        if self._loop is None or self._pid != pid:
            with self._lock:
                if self._loop is None or self._pid != pid:
                    self._loop = self._start()
                    self._pid = pid
        return self._loop

    @staticmethod
    def _start() -> asyncio.AbstractEventLoop:
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        threading.Thread(target=serve, name="portal-event-loop", daemon=True).start()
        ready.wait()
        return loop

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the process loop and wait for its result in the calling thread."""
        loop = self.loop()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            coro.close()
            raise DeadlockError(
                "synchronous wait for the portal event loop from inside it; await the coroutine"
            )
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # (a Ctrl-C in the waiting thread stops the coroutine: it ran on unseen)
            raise

    def owns_current_thread(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False


process_loop = LoopThread()
run = process_loop.run
_detached: set = set()


def run_detached(coro: Coroutine[Any, Any, Any]) -> Any:
    """Start `coro` on the process loop without waiting, in a fresh context (not the request's),
    keeping a reference until it ends. For background jobs that outlive the request."""
    future = contextvars.Context().run(asyncio.run_coroutine_threadsafe, coro, process_loop.loop())
    _detached.add(future)
    future.add_done_callback(_detached.discard)
    return future
