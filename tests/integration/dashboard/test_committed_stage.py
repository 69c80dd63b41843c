"""A large refresh builds its stage on a session of its own and commits it (cells.Stage
with `committed`), so that a second connection groups the roll-ups while the refresh's
own adds the daily cells: the same cells, histograms and roll-ups as a refresh that keeps
its stage in its own transaction. On PostgreSQL the stage's tables are committed tables
that never outlive a refresh that succeeds; a failure before the stage's commit leaves
none, and one that fails after it leaves them to the next refresh, which drops them and
folds. On SQLite they are in database files of their own beside the node's, deleted
after the fold and when it fails.

These refreshes commit for real, so they run on a database of their own."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from concurrency import BACKENDS, node_on, own_database
from integration.dashboard.kit import PLAN, build_cases, duckdb_case_indicators
from tongban.dashboard import cells, service
from tongban.dashboard.domain import LEVELS
from tongban.kernel.node import Node

ALL = service.owns_for("*")


@pytest.fixture(scope="module", params=BACKENDS)
def own_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    yield from own_database(request.param, tmp_path_factory)


@pytest.fixture
def node(own_db: Engine, tmp_path: Path) -> Node:
    return node_on(own_db, tmp_path)


def _pg(session: Session) -> bool:
    return cells.dialect(session) == "postgresql"


def _committed_tables(session: Session) -> list[str]:
    """What of committed stages is there: their tables (PostgreSQL), the files beside the
    database (SQLite) — by use."""
    if _pg(session):
        like = cells.COMMITTED.replace("_", r"\_") + "%"
        q = text("SELECT relname FROM pg_class WHERE relkind = 'r' AND relname LIKE :p")
        names = [str(n).removeprefix(cells.COMMITTED) for n in session.scalars(q, {"p": like})]
    else:
        db = Path(str(session.get_bind().engine.url.database))
        names = [p.name.removeprefix(db.name + cells.SIDE) for p in db.parent.iterdir()]
        names = [n for n in names if not n.startswith(db.name)]
        names = [n.replace("-", "_") for n in names]
    return sorted(n.rsplit("_", 1)[0] for n in names)


def _everything(session: Session) -> dict[str, Any]:
    """This node's daily cells and its roll-ups at every level."""
    out: dict[str, Any] = {"daily": service.local_cells(session)}
    for level in LEVELS:
        out[level] = cells.read(session, "", monthly=True, level=level)
    return out


def _recomputed(node: Node, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Every event folded again with the stage in the refresh's own transaction (rolled
    back after)."""
    with monkeypatch.context() as m, node.session_factory() as s:
        m.setattr(cells, "PIPELINE_AFTER", 10**12)
        service.recompute(s, ALL, settle=timedelta(0))
        got = _everything(s)
        assert _committed_tables(s) == []
        s.rollback()
    return got


def _connection(conn: Any) -> int:
    """Which connection to the database: the backend's pid (PostgreSQL), the SQLite
    connection object's id."""
    raw = conn.connection.dbapi_connection
    info = getattr(raw, "info", None)
    return int(info.backend_pid) if info is not None else id(raw)


def _creators(engine: Engine) -> tuple[list[tuple[str, int]], Any]:
    """(use, connection) of every CREATE of a committed stage's table on `engine`."""
    made: list[tuple[str, int]] = []

    def record(conn, cursor, statement, *a):  # type: ignore[no-untyped-def]
        words = statement.split()
        if statement.startswith("CREATE UNLOGGED TABLE " + cells.COMMITTED):
            use = words[3].removeprefix(cells.COMMITTED).rsplit("_", 1)[0]
        elif statement.startswith("CREATE TABLE dash_") and "." in words[2]:
            use = words[2].split(".")[1]
            use = "facts" if use == cells.STAGE.name else use
        else:
            return
        made.append((use, _connection(conn)))

    event.listen(engine, "before_cursor_execute", record)
    return made, record


def test_a_large_refresh_folds_from_a_committed_stage_the_same_cells(
    node: Node, own_db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with node.transaction() as s:
        build_cases(s, PLAN)
    monkeypatch.setattr(cells, "PIPELINE_AFTER", 1)
    made, record = _creators(own_db)
    try:
        with node.transaction() as s:
            refresher = _connection(s.connection())
            r = service.refresh(s, ALL, settle=timedelta(0))
    finally:
        event.remove(own_db, "before_cursor_execute", record)
    assert r.events > 0 and r.cells > 0
    # The stage and the roll-ups' groupings were made, each by a connection other than
    # the refresh's: the stage committed before the fold, the groupings beside it.
    assert sorted(use for use, _ in made) == ["facts", "months", "sums"]
    assert all(conn != refresher for _, conn in made)
    with node.session_factory() as s:
        assert _committed_tables(s) == []
        got = _everything(s)
        duck = duckdb_case_indicators(s)
    assert got == _recomputed(node, monkeypatch)
    assert got["daily"] and all(got[level] for level in LEVELS)
    daily = {
        (k.indicator, k.day, k.from_city, k.to_city, k.jurisdiction, k.category, k.authority)
        + (k.matter,): v.n
        for k, v in got["daily"].items()
        if k.indicator.startswith("cases.")
    }
    assert daily == {k: n for k, (n, _, _) in duck.items()}


def test_a_refresh_failing_before_its_stage_is_committed_leaves_nothing(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    with node.transaction() as s:
        build_cases(s, PLAN[:3])
    with node.session_factory() as s:
        before = _everything(s)

    def fail(*a: object, **k: object) -> None:
        raise RuntimeError("the facts held in memory could not be staged")

    with monkeypatch.context() as m:
        m.setattr(cells, "PIPELINE_AFTER", 1)
        m.setattr(cells.Stage, "put_cells", fail)
        with pytest.raises(RuntimeError), node.transaction() as s:
            service.refresh(s, ALL, settle=timedelta(0))
    with node.session_factory() as s:
        assert _committed_tables(s) == []  # the stage's own transaction rolled back
        assert _everything(s) == before


@pytest.mark.parametrize("where", ["cells", "groupings", "roll-ups"])
def test_a_refresh_failing_after_its_stage_is_committed_leaves_it_to_the_next(
    node: Node, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    with node.transaction() as s:
        build_cases(s, PLAN[3:])
    with node.session_factory() as s:
        before = _everything(s)
        assert _committed_tables(s) == []

    def fail(*a: object, **k: object) -> None:
        raise RuntimeError(f"the fold failed in the {where}")

    target = {"cells": "_fold_cells", "groupings": "_group_levels", "roll-ups": "_add_months"}
    monkeypatch.setattr(cells, "PIPELINE_AFTER", 1)
    with monkeypatch.context() as m:
        m.setattr(cells, target[where], fail)
        with pytest.raises(RuntimeError, match=where), node.transaction() as s:
            service.refresh(s, ALL, settle=timedelta(0))
    with node.session_factory() as s:
        left = _committed_tables(s)
        assert _everything(s) == before  # nothing folded: the refresh rolled back whole
        pg = _pg(s)
    if pg:  # the stage was committed; the groupings' tables too unless they failed
        assert left == (["facts"] if where == "groupings" else ["facts", "months", "sums"])
    else:  # the files are deleted when the fold fails
        assert left == []

    with node.transaction() as s:
        r = service.refresh(s, ALL, settle=timedelta(0))
    assert r.events > 0
    with node.session_factory() as s:
        assert _committed_tables(s) == []
        got = _everything(s)
    assert got == _recomputed(node, monkeypatch)
    assert got != before


def test_a_second_refresh_in_a_transaction_that_wrote_the_working_days_keeps_its_stage(
    node: Node, own_db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stage's session rewrites the working days: after a refresh that wrote them in
    the same transaction it would wait for that transaction's rows (which waits for it),
    so that refresh keeps its stage in its own transaction instead."""
    if own_db.dialect.name != "postgresql":
        pytest.skip("SQLite: no other transaction can add events while this one writes")
    monkeypatch.setattr(cells, "AUX_LOCK_TIMEOUT", "2s")  # a wait fails fast, not in 60 s
    with node.transaction() as s:
        build_cases(s, PLAN[2:4])
    made, record = _creators(own_db)
    try:
        with node.transaction() as s:
            with monkeypatch.context() as m:
                m.setattr(cells, "PIPELINE_AFTER", 10**12)
                service.refresh(s, ALL, settle=timedelta(0))
            assert cells.wrote_workdays(s)
            with node.transaction() as other:
                build_cases(other, PLAN[:2])
            monkeypatch.setattr(cells, "PIPELINE_AFTER", 1)
            r = service.refresh(s, ALL, settle=timedelta(0))
            assert r.events > 0
    finally:
        event.remove(own_db, "before_cursor_execute", record)
    assert made == []
    with node.session_factory() as s:
        assert not cells.wrote_workdays(s)  # a new transaction
        assert _everything(s) == _recomputed(node, monkeypatch)


def test_what_a_refresh_whose_process_ended_left_is_removed_by_the_next(
    node: Node, own_db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that ended between the stage's commit and the refresh's own leaves the
    stage behind: the next large refresh removes it, under the node's lock."""
    with node.transaction() as s:
        build_cases(s, PLAN[:2])
        if _pg(s):
            s.execute(text(f"CREATE UNLOGGED TABLE {cells.COMMITTED}facts_0123456789ab (n int)"))
        else:
            db = str(s.get_bind().engine.url.database)
            Path(f"{db}{cells.SIDE}facts-0123456789ab").write_bytes(b"")
            Path(f"{db}{cells.SIDE}months-0123456789ab").write_bytes(b"")
    with node.session_factory() as s:
        assert _committed_tables(s) in (["facts"], ["facts", "months"])
    monkeypatch.setattr(cells, "PIPELINE_AFTER", 1)
    with node.transaction() as s:
        assert service.refresh(s, ALL, settle=timedelta(0)).events > 0
    with node.session_factory() as s:
        assert _committed_tables(s) == []
