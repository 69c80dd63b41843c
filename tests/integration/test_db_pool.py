"""The engine's pool (tongban.db.make_engine, issue 14): a connection used a moment ago
is handed out without a ping (no extra round trip per request), one that sat idle is
pinged, and a dead idle connection is replaced before anyone uses it."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from conftest import PG_URL
from tongban import db


@pytest.fixture
def engine() -> Engine:  # type: ignore[misc]
    if not PG_URL:
        pytest.skip("needs PostgreSQL (TONGBAN_TEST_PG_URL)")
    eng = db.make_engine(PG_URL)
    yield eng
    eng.dispose()


def _pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = engine.dialect.do_ping

    def counting(dbapi_conn):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(dbapi_conn)

    monkeypatch.setattr(engine.dialect, "do_ping", counting)
    return calls


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as c:
        return int(c.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _age_pool(engine: Engine, seconds: float) -> None:
    """Make every pooled connection look idle for `seconds` more."""
    for record in list(engine.pool._pool.queue):  # type: ignore[attr-defined]
        record.info["tongban_idle_since"] -= seconds


def test_a_connection_used_a_moment_ago_is_not_pinged(engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    pings = _pings(engine, monkeypatch)
    first = _backend_pid(engine)
    for _ in range(5):
        assert _backend_pid(engine) == first
    assert pings == []


def test_an_idle_dead_connection_is_replaced_before_use(engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    pings = _pings(engine, monkeypatch)
    dead = _backend_pid(engine)
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")  # type: ignore[arg-type]
    with admin.connect() as c:
        c.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": dead})
    admin.dispose()
    _age_pool(engine, db.IDLE_PING_SECONDS + 1)
    assert _backend_pid(engine) != dead  # no error: the pool reconnected
    assert pings, "the idle connection was not pinged"
