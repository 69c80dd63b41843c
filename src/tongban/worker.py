"""`tongban worker`: message dispatch and the periodic jobs of every context.

In the embedded default it runs in a thread beside `tongban serve`; in production as
separate processes, several of which can share one PostgreSQL database (outbox rows
are claimed with FOR UPDATE SKIP LOCKED)."""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy.orm import Session, sessionmaker

from tongban.cases import service as _cases_handlers  # noqa: F401  (registers message handlers)
from tongban.cases.tasks import mark_deadlines
from tongban.config import Settings
from tongban.exchange.service import dispatch_pending

log = logging.getLogger(__name__)

#: Seconds between runs of the slower periodic jobs.
DEADLINE_INTERVAL = 300.0


def run_once(factory: sessionmaker[Session], settings: Settings, *, deadlines: bool = True) -> int:
    """One pass: deliver due messages, then (optionally) refresh deadline flags."""
    delivered = dispatch_pending(factory, settings.served_jurisdictions)
    if deadlines:
        mark_deadlines(factory, settings)
    return delivered


def run_forever(
    factory: sessionmaker[Session], settings: Settings, stop: threading.Event | None = None
) -> None:
    stop = stop or threading.Event()
    last_deadlines = 0.0
    log.info("worker started (node %s)", settings.node_id)
    while not stop.is_set():
        try:
            due = time.monotonic() - last_deadlines >= DEADLINE_INTERVAL
            delivered = run_once(factory, settings, deadlines=due)
            if due:
                last_deadlines = time.monotonic()
            if delivered:
                continue  # more may be waiting
        except Exception:  # noqa: BLE001 - the worker must survive a bad pass
            log.exception("worker pass failed")
        stop.wait(settings.worker_interval)
    log.info("worker stopped")
