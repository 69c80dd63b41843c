"""Small pools of autocommit connections beside a node's engine, for the write path's
one-statement steps outside the caller's transaction (a block of numbers, the audit
seal): such a step never waits for the caller's pool, whose connections may all be held
by requests that each want it. One pool per (database URL, server options), made on
first use; a forked child drops its parent's (it must not use its connections)."""

from __future__ import annotations

import os
import threading

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

_lock = threading.Lock()
_pools: dict[tuple[str, str], Engine] = {}


def side_engine(engine: Engine, options: str = "") -> Engine:
    """Autocommit connections to `engine`'s database; `options` are server settings for
    the session (libpq ``options``, e.g. ``-c synchronous_commit=off``)."""
    key = (engine.url.render_as_string(hide_password=False), options)
    with _lock:
        side = _pools.get(key)
        if side is None:
            side = create_engine(
                engine.url,
                isolation_level="AUTOCOMMIT",
                pool_size=1,
                max_overflow=8,
                pool_pre_ping=True,
                connect_args={"options": options} if options else {},
            )
            _pools[key] = side
    return side


def forget() -> None:
    """Drop every pool (its connections are closed when no longer used)."""
    with _lock:
        pools = list(_pools.values())
        _pools.clear()
    for side in pools:
        side.dispose(close=False)


def _after_fork() -> None:
    global _lock
    _lock = threading.Lock()
    for side in _pools.values():
        side.dispose(close=False)
    _pools.clear()


os.register_at_fork(after_in_child=_after_fork)
