"""The background sealer's bookkeeping (issue 14): wakes that arrive while a seal runs
are served by one more seal, `drain` waits for every wake asked before it, and a seal
that raises does not stop the thread."""

from __future__ import annotations

import threading
from typing import Any

from tongban.audit.sealer import Sealer


class _Engine:
    url = None


def test_wakes_during_a_seal_coalesce_into_one_more() -> None:
    started, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def run(_engine: Any) -> int:
        calls.append(1)
        started.set()
        release.wait(10)
        return 0

    s = Sealer(_Engine(), run)  # type: ignore[arg-type]
    s.wake()
    assert started.wait(10)
    for _ in range(20):  # all while the first seal runs
        s.wake()
    assert not s.drain(0.1)  # the first seal is still running
    release.set()
    assert s.drain(10)
    assert len(calls) == 2  # the first, and one for the twenty that came during it


def test_a_failing_seal_is_served_and_the_next_wake_seals_again() -> None:
    calls: list[int] = []

    def run(_engine: Any) -> int:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("connection lost")
        return 0

    s = Sealer(_Engine(), run)  # type: ignore[arg-type]
    s.wake()
    assert s.drain(10) and calls == [1]
    s.wake()
    assert s.drain(10) and calls == [1, 1]


def test_drain_with_nothing_asked_returns_at_once() -> None:
    s = Sealer(_Engine(), lambda _e: 0)  # type: ignore[arg-type]
    assert s.drain(0)


def test_wakes_within_the_linger_share_one_seal_and_a_drain_cuts_it_short() -> None:
    # One writer committing transaction after transaction: its wakes arrive one by one,
    # not during a seal; the thread gathers them before sealing (issue 14, session 10).
    calls: list[int] = []
    s = Sealer(_Engine(), lambda _e: calls.append(1) or 0, linger=600.0)  # type: ignore[arg-type]
    for _ in range(10):
        s.wake()
    assert calls == []  # still gathering
    assert s.drain(300)  # the drain does not wait out the linger's 600 s
    assert calls == [1]  # one seal for the ten commits
