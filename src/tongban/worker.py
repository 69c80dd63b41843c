"""`tongban worker`: message dispatch and the periodic jobs of every context.

In the embedded default it runs in a thread beside `tongban serve`; in production as
separate processes, several of which can share one PostgreSQL database (outbox rows
are claimed with FOR UPDATE SKIP LOCKED)."""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from tongban.cases import service as _cases_handlers  # noqa: F401  (registers message handlers)
from tongban.cases.tasks import mark_deadlines
from tongban.config import Settings
from tongban.exchange.service import deliver_due

log = logging.getLogger(__name__)

#: Seconds between runs of the slower periodic jobs.
DEADLINE_INTERVAL = 300.0

#: Contexts whose `tasks` module may declare periodic jobs in a module-level `JOBS` list.
JOB_CONTEXTS = ("identity", "licences", "evidence", "audit", "medical", "tickets")


@dataclass(frozen=True)
class Job:
    """A periodic job of a context: `run(factory, settings)` every `interval` seconds."""

    name: str
    interval: float
    run: Callable[[sessionmaker[Session], Settings], object]


def periodic_jobs() -> list[Job]:
    """Every context's declared jobs (`tongban.<context>.tasks.JOBS`)."""
    jobs: list[Job] = []
    for context in JOB_CONTEXTS:
        try:
            module = importlib.import_module(f"tongban.{context}.tasks")
        except ModuleNotFoundError as exc:
            if exc.name != f"tongban.{context}.tasks":
                raise
            continue
        jobs.extend(getattr(module, "JOBS", []))
    return jobs


def run_jobs(
    factory: sessionmaker[Session],
    settings: Settings,
    last_run: dict[str, float],
    *,
    force: bool = False,
) -> None:
    """Run every periodic job that is due (all of them with `force`); one failing job
    does not stop the others."""
    for job in periodic_jobs():
        if not force and time.monotonic() - last_run.get(job.name, float("-inf")) < job.interval:
            continue
        try:
            job.run(factory, settings)
        except Exception:  # noqa: BLE001 - logged; retried at its next interval
            log.exception("job %s failed", job.name)
        last_run[job.name] = time.monotonic()


def run_once(
    factory: sessionmaker[Session],
    settings: Settings,
    *,
    deadlines: bool = True,
    last_run: dict[str, float] | None = None,
) -> int:
    """One pass: deliver due messages, (optionally) refresh deadline flags, and run the
    periodic jobs — those due since `last_run`, or every one when it is not given."""
    delivered = deliver_due(factory, settings)
    if deadlines:
        mark_deadlines(factory, settings)
    run_jobs(factory, settings, {} if last_run is None else last_run, force=last_run is None)
    return delivered


def run_forever(
    factory: sessionmaker[Session], settings: Settings, stop: threading.Event | None = None
) -> None:
    stop = stop or threading.Event()
    last_deadlines = 0.0
    last_run: dict[str, float] = {}
    log.info("worker started (node %s)", settings.node_id)
    from tongban.exchange.service import load_handlers

    load_handlers()  # every context's message handlers, not only those imported so far
    while not stop.is_set():
        try:
            due = time.monotonic() - last_deadlines >= DEADLINE_INTERVAL
            delivered = run_once(factory, settings, deadlines=due, last_run=last_run)
            if due:
                last_deadlines = time.monotonic()
            if delivered:
                continue  # more may be waiting
        except Exception:  # noqa: BLE001 - the worker must survive a bad pass
            log.exception("worker pass failed")
        stop.wait(settings.worker_interval)
    log.info("worker stopped")
