"""Races with real threads, for the concurrency tests of every record with a lifecycle
(cases, work orders, settlements, licences): two callers released at one moment by a
barrier, each with its own database session (or HTTP client) and a real commit.

What every such test asserts is here once: exactly one caller wins, the other gets a
409 problem+json (never a 500), and the record's history has no gap and no two events
with one number. A race commits for real, so it runs on a database of its own
(`own_database`), or deletes what it made afterwards."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from conftest import PG_URL, _create_pg_database, _drop_pg_database, _seed
from tongban.config import Settings
from tongban.contexts import build_node
from tongban.db import make_engine
from tongban.kernel.node import Node
from tongban.migrate import upgrade

T = TypeVar("T")

#: The backends a race runs on (parameters of a module-scoped database fixture).
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
#: How the loser of a race on one record is refused: its version was gone when it wrote
#: (PostgreSQL, both read before either wrote), or it read after the winner's commit and
#: the state machine said no (always so on SQLite, which serialises writers at BEGIN).
LOSER_TYPES = ("concurrent-change", "illegal-transition")
PROBLEM = "application/problem+json"
#: Seconds a thread waits at the barrier for the other one.
BARRIER_TIMEOUT = 30


def own_database(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A migrated, seeded database that only the calling module writes to (its rows are
    committed, so they must not meet the other tests' rolled-back transactions), dropped
    at the end. Use it from a module-scoped fixture parametrised by BACKENDS."""
    name = None
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('race') / 'race.db'}"
    else:
        if not PG_URL:
            pytest.skip("PostgreSQL tier skipped: TONGBAN_TEST_PG_URL is not set")
        url, name = _create_pg_database()
    upgrade(url)
    engine = make_engine(url)
    _seed(engine)
    yield engine
    engine.dispose()
    if name:
        _drop_pg_database(name)


def node_on(engine: Engine, tmp_path: Path) -> Node:
    """A node whose sessions commit for real to `engine` (no test transaction around)."""
    settings = Settings(
        database_url=engine.url.render_as_string(hide_password=False),
        secret_key="test-secret",
        upload_dir=tmp_path / "uploads",
        max_upload_bytes=200_000,
        embedded_worker=False,
    )
    return build_node(settings, sessionmaker(bind=engine, expire_on_commit=False))


def _in_threads(run: Callable[[int, threading.Barrier], T], parties: int) -> list[T]:
    barrier = threading.Barrier(parties)
    with ThreadPoolExecutor(parties) as pool:
        return list(pool.map(lambda n: run(n, barrier), range(parties)))


def at_once(work: Callable[[int], T], parties: int = 2) -> list[T]:
    """`work(0)`, `work(1)` … in threads released together, in the order of n. `work`
    opens its own session: the barrier is passed before any statement (SQLite takes
    its write lock at BEGIN)."""

    def run(n: int, barrier: threading.Barrier) -> T:
        barrier.wait(timeout=BARRIER_TIMEOUT)
        return work(n)

    return _in_threads(run, parties)


@dataclass(frozen=True)
class Answer:
    """One HTTP answer of a race."""

    status: int
    content_type: str
    body: Any


def race(
    app: Any,
    tokens: list[str],
    call: Callable[[TestClient, dict[str, str], int], httpx.Response],
) -> list[Answer]:
    """Each of `tokens` makes `call(client, headers, n)` through a client of its own, all
    released together once every client has started; the answers by status, lowest first."""

    def run(n: int, barrier: threading.Barrier) -> Answer:
        with TestClient(app) as client:
            barrier.wait(timeout=BARRIER_TIMEOUT)
            r = call(client, {"Authorization": f"Bearer {tokens[n]}"}, n)
            return Answer(r.status_code, r.headers.get("content-type", ""), r.json())

    return sorted(_in_threads(run, len(tokens)), key=lambda a: a.status)


def one_wins(
    answers: list[Answer], ok: int = 200, types: Collection[str] | None = LOSER_TYPES
) -> tuple[Any, dict[str, Any]]:
    """The winner's body and the loser's problem, once asserted that exactly one caller
    got `ok` and the other a 409 problem+json (of one of `types`, unless None)."""
    won, lost = answers
    assert (won.status, lost.status) == (ok, 409), answers
    assert lost.content_type.startswith(PROBLEM), lost
    assert lost.body["status"] == 409 and lost.body["detail"], lost
    if types is not None:
        assert lost.body["type"].rsplit("/", 1)[-1] in types, lost
    return won.body, lost.body


def assert_numbered(seqs: Collection[int]) -> None:
    """A record's event numbers are 1..n: none missing, none twice."""
    assert sorted(seqs) == list(range(1, len(seqs) + 1)), sorted(seqs)
