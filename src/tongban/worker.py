"""`tongban worker`: message dispatch and the periodic jobs of every context.

In the embedded default it runs in a thread beside `tongban serve`; in production as
separate processes, several of which can share one PostgreSQL database (outbox rows
are claimed with FOR UPDATE SKIP LOCKED)."""

from __future__ import annotations

import logging
import threading
import time

from tongban.exchange.service import deliver_due
from tongban.kernel.node import Node
from tongban.kernel.registry import Job as Job  # re-exported: contexts' tasks used it here
from tongban.kernel.registry import Registry

log = logging.getLogger(__name__)


def periodic_jobs(registry: Registry | None = None) -> list[Job]:
    """Every context's declared jobs (`CONTEXT.jobs`), in the registry's order."""
    if registry is None:
        from tongban.contexts import registry as every_context

        registry = every_context()
    return registry.jobs()


def run_jobs(node: Node, last_run: dict[str, float], *, force: bool = False) -> None:
    """Run every periodic job that is due (all of them with `force`); one failing job
    does not stop the others."""
    for job in node.registry.jobs():
        if not force and time.monotonic() - last_run.get(job.name, float("-inf")) < job.interval:
            continue
        try:
            job.run(node.session_factory, node.settings)
        except Exception:  # noqa: BLE001 - logged; retried at its next interval
            log.exception("job %s failed", job.name)
        last_run[job.name] = time.monotonic()


def run_once(node: Node, *, last_run: dict[str, float] | None = None) -> int:
    """One pass: deliver due messages and run the periodic jobs — those due since
    `last_run`, or every one when it is not given."""
    delivered = deliver_due(node.session_factory, node.settings)
    run_jobs(node, {} if last_run is None else last_run, force=last_run is None)
    return delivered


def run_forever(node: Node, stop: threading.Event | None = None) -> None:
    """Poll until `stop` is set; the node's registry has imported every context, so
    every message handler and job is known."""
    stop = stop or threading.Event()
    last_run: dict[str, float] = {}
    log.info("worker started (node %s)", node.settings.node_id)
    while not stop.is_set():
        try:
            delivered = run_once(node, last_run=last_run)
            if delivered:
                continue  # more may be waiting
        except Exception:  # noqa: BLE001 - the worker must survive a bad pass
            log.exception("worker pass failed")
        stop.wait(node.settings.worker_interval)
    log.info("worker stopped")
