"""The audit chain's background sealer (issue 14): one thread per process and database
that seals what the process's writers committed, so that no writer waits for the seal
after its COMMIT.

A writer whose transaction staged entries calls `wake` after its commit and returns at
once. The thread runs one seal (`audit.hook.seal`: every committed staged row, oldest
first, whoever staged it) for all the wakes it finds pending when it starts, so many
writers' seals coalesce into one statement while one is under way; before each seal it
gathers wakes for `LINGER` (cut short by a drain), so that one writer committing
transaction after transaction also shares seals. Nothing is lost if
the thread or the process dies between a commit and its seal: the staged rows are
committed and the next seal (any process's, a reader's, or the checkpoint job's
``sequence``) takes them. `drain` waits until every wake asked so far has been served
(tests, benchmarks, and the process's exit, which drains for a few seconds)."""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable

from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

#: How long the process's exit waits for the seals its writers asked for (seconds).
EXIT_DRAIN = 10.0
#: How long the thread gathers wakes before it seals (seconds), unless someone drains:
#: a writer committing one transaction after another (an outbox message each) then
#: costs one seal for every few commits instead of one each, whose statements and
#: Python work competed with it (issue 14, session 10: ~0.85 seals a commit → ~0.18).
#: Session 16: 50 ms instead of 10 — case submissions at ~100/s, concurrency 4, went
#: from ~0.46 seals a submission to ~0.2 (docs/performance.md, "Session 16").
#: Readers seal for themselves, so nothing they see waits for it.
LINGER = 0.05


class Sealer:
    """One background thread sealing one database's committed staged entries."""

    def __init__(
        self, engine: Engine, run: Callable[[Engine], int], linger: float | None = None
    ) -> None:
        self.engine = engine
        self._run = run
        self._cond = threading.Condition()
        self._asked = 0  # wakes asked
        self._served = 0  # wakes whose seal has run (sealed or failed)
        self._thread: threading.Thread | None = None
        self._linger = LINGER if linger is None else linger
        self._draining = 0  # callers waiting in drain: seal without lingering

    def wake(self) -> None:
        """A transaction staging entries committed: seal (soon, in the thread)."""
        inline = False
        with self._cond:
            self._asked += 1
            if self._thread is None or not self._thread.is_alive():
                thread = threading.Thread(target=self._loop, name="audit-sealer", daemon=True)
                try:
                    thread.start()
                except RuntimeError:  # no new thread at interpreter shutdown: seal here
                    self._asked -= 1
                    inline = True
                else:
                    self._thread = thread
            self._cond.notify_all()
        if inline:
            self._run(self.engine)

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until the wakes asked so far are served; False on timeout."""
        with self._cond:
            target = self._asked
            self._draining += 1
            self._cond.notify_all()
            try:
                return self._cond.wait_for(lambda: self._served >= target, timeout)
            finally:
                self._draining -= 1

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._asked > self._served)
                # Gather the wakes of the next few commits (cut short by a drain).
                self._cond.wait_for(lambda: self._draining > 0, self._linger)
                target = self._asked  # every wake so far: one seal serves them all
            try:
                self._run(self.engine)
            except Exception:  # the rows stay staged for the next seal
                log.exception("audit: background seal failed; left staged for the next seal")
            with self._cond:
                self._served = max(self._served, target)
                self._cond.notify_all()


_lock = threading.Lock()
_sealers: dict[str, Sealer] = {}


def sealer_for(engine: Engine, run: Callable[[Engine], int]) -> Sealer:
    """The process's sealer for `engine`'s database (made on first use)."""
    key = engine.url.render_as_string(hide_password=False)
    with _lock:
        sealer = _sealers.get(key)
        if sealer is None:
            sealer = _sealers[key] = Sealer(engine, run)
    return sealer


def drain(timeout: float | None = 30.0) -> bool:
    """Wait until every sealer of this process has served the wakes asked so far."""
    with _lock:
        sealers = list(_sealers.values())
    return all(s.drain(timeout) for s in sealers)


def _at_exit() -> None:
    if not drain(EXIT_DRAIN):
        log.warning("audit: exiting with seals pending; the next seal takes their rows")


def _after_fork() -> None:
    # The parent's threads are not in the child; the parent still serves its own wakes.
    global _lock
    _lock = threading.Lock()
    _sealers.clear()


atexit.register(_at_exit)
os.register_at_fork(after_in_child=_after_fork)
