"""How far an import is: the job row's phase and progress (for the page, any worker), and how long
each phase took (in the log)."""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update

from portal.db import transaction
from portal.models import ImportJob

log = logging.getLogger(__name__)


@contextmanager
def timed(job_id: int, phase: str):
    """Log how long a phase of an import took (INFO: where an import's time goes)."""
    began = time.perf_counter()
    yield
    log.info("import %s: %s took %.2f s", job_id, phase, time.perf_counter() - began)


class Progress:
    """Writes the job's phase and progress at most every half second, in its own transactions."""

    def __init__(self, job_id: int):
        self.job_id = job_id
        self.last = 0.0

    async def __call__(
        self,
        *,
        status: str | None = None,
        phase: str | None = None,
        progress: float | None = None,
        rows_done: int | None = None,
        force: bool = False,
        **extra: Any,
    ) -> None:
        now = time.monotonic()
        if not force and now - self.last < 0.5:
            return
        self.last = now
        values: dict[str, Any] = {"heartbeat_at": datetime.now(UTC), **extra}
        for name, value in (
            ("status", status),
            ("phase", phase),
            ("progress", progress),
            ("rows_done", rows_done),
        ):
            if value is not None:
                values[name] = value
        async with transaction() as db:
            await db.execute(update(ImportJob).where(ImportJob.id == self.job_id).values(**values))
