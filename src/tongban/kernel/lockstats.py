"""How long the node-wide and city-wide locks of the write path are held, for the
benchmark (benchmarks/bench_write_locks.py): off unless ``TONGBAN_LOCK_TIMING`` names a
file, then every hold is appended to it as one line ``<lock>\\t<seconds>``.

The locks timed (see docs/performance.md, "Locks of the write path"):

- ``number.block``: a block of numbers taken for a (scope, period) on PostgreSQL: the
  one autocommit statement that locks, bumps and releases the counter row, timed by the
  server (``clock_timestamp() - statement_timestamp()`` when the row is returned; the
  commit right after it is not included). ``number.block.wall``: the same statement's
  wall time seen by the process (round trip and scheduling included: an upper bound).
- ``number.row``: a gapless counter row (or any counter on SQLite), from the statement
  that locks it to the end of the caller's transaction.
- ``audit.seal`` / ``audit.seal.wall``: the chain's head moved by the sealer after
  commit: the one statement that moves it, timed as ``number.block``.
- ``audit.head``: the chain's head locked inside a writer's transaction (``SELECT … FOR
  UPDATE``), from that statement to the end of the transaction.

Each line is written with one ``write`` on a file opened for appending, so several
processes can share the file."""

from __future__ import annotations

import os
import threading

_ENV = "TONGBAN_LOCK_TIMING"
_lock = threading.Lock()
_fd: int | None = None
_path: str | None = None


def enabled() -> bool:
    """Whether holds are recorded (``TONGBAN_LOCK_TIMING`` is set)."""
    return bool(os.environ.get(_ENV))


def record(lock: str, seconds: float) -> None:
    """Append one hold of `lock` to the timing file (nothing when timing is off)."""
    path = os.environ.get(_ENV)
    if not path:
        return
    global _fd, _path
    line = f"{lock}\t{seconds:.9f}\n".encode()
    with _lock:
        if _fd is None or _path != path:
            _fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            _path = path
        os.write(_fd, line)
