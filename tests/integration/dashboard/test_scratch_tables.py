"""PostgreSQL's refresh runs its large SELECTs on parallel workers by writing them to
scratch tables of its own transaction (cells.scratch: `CREATE UNLOGGED TABLE … AS`):
none outlives the refresh — each is dropped after use, and a refresh that fails takes
them with it when it is rolled back — and two transactions' scratch tables never share
a name (two origins' folds at once: the refresh and a peer's import). SQLite creates
none: its stage is dash_stage."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, false, select, text
from sqlalchemy.orm import Session, sessionmaker

from integration.dashboard.kit import PLAN, build_cases
from tongban.dashboard import cells, service, sources

ALL = service.owns_for("*")


def _scratch_tables(session: Session) -> list[str]:
    """The scratch tables this session can see (its own uncommitted ones included)."""
    like = cells.SCRATCH.replace("_", r"\_") + "%"
    if cells.dialect(session) == "postgresql":
        q = text("SELECT relname FROM pg_class WHERE relname LIKE :p")
    else:
        q = text(r"SELECT name FROM sqlite_master WHERE name LIKE :p ESCAPE '\'")
    return sorted(session.scalars(q, {"p": like}))


def _created(session: Session) -> tuple[list[str], object]:
    made: list[str] = []

    def record(conn, cursor, statement, *a):  # type: ignore[no-untyped-def]
        if statement.startswith("CREATE UNLOGGED TABLE"):
            made.append(statement.split()[3])

    event.listen(session.get_bind(), "before_cursor_execute", record)
    return made, record


def test_a_refresh_leaves_no_scratch_table(session: Session) -> None:
    pg = cells.dialect(session) == "postgresql"
    if pg:  # the parallel costs are the scratch statements' only: put back after them
        session.execute(text("SET LOCAL parallel_setup_cost = 1234"))
        # and so is the stages' small ANALYZE sample (cells.STAGE_STATISTICS)
        session.execute(text("SET LOCAL default_statistics_target = 123"))
    build_cases(session, PLAN)
    made, record = _created(session)
    try:
        r = service.refresh(session, ALL, settle=timedelta(0))
    finally:
        event.remove(session.get_bind(), "before_cursor_execute", record)
    assert r.events > 0 and r.cells > 0
    if pg:
        assert session.scalar(text("SHOW parallel_setup_cost")) == "1234"
        assert session.scalar(text("SHOW default_statistics_target")) == "123"
        # The chain's facts (the stage the fold reads); since session 15 the entries are
        # read from the chain's typed columns in that statement, not copied first.
        uses = {name.removeprefix(cells.SCRATCH).rsplit("_", 1)[0] for name in made}
        assert uses == {"facts"}
    else:
        assert made == []
    assert _scratch_tables(session) == []


def test_a_failed_refresh_leaves_no_scratch_table_and_the_next_one_folds(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_cases(session, PLAN)
    session.flush()

    def fail(*a: object, **k: object) -> None:
        raise RuntimeError("the fold failed half-way")

    with monkeypatch.context() as m:
        m.setattr(cells, "_fold_months", fail)  # after the scratch stage is made
        with pytest.raises(RuntimeError), session.begin_nested():
            service.refresh(session, ALL, settle=timedelta(0))
    assert _scratch_tables(session) == []
    assert service.local_cells(session) == {}

    # The same names again, in the same transaction: nothing of the failed one is left.
    r = service.refresh(session, ALL, settle=timedelta(0))
    assert r.cells > 0 and service.local_cells(session)
    assert _scratch_tables(session) == []


def test_two_transactions_scratch_tables_do_not_collide(
    committing_factory: sessionmaker[Session],
) -> None:
    staged = select(*(cells.STAGE.c[c] for c in cells.STAGED)).where(false())
    with committing_factory() as one, committing_factory() as two:
        if cells.dialect(one) != "postgresql":
            stage = cells.Stage(one)
            stage.put(one, staged)
            assert stage.table is cells.STAGE  # SQLite: dash_stage itself
            one.rollback()
            return
        first, second = cells.Stage(one), cells.Stage(two)
        first.put(one, staged)
        # A second transaction making the same kind of scratch table while the first
        # holds its own, uncommitted: had they the same name, the second would wait for
        # the first's catalog row (and fail here, after the lock timeout).
        two.execute(text("SET LOCAL lock_timeout = '5s'"))
        second.put(two, staged)
        assert first.table.name != second.table.name
        assert _scratch_tables(one) == [first.table.name]
        assert _scratch_tables(two) == [second.table.name]
        one.rollback()
        two.rollback()
    with committing_factory() as three:
        assert _scratch_tables(three) == []


def test_a_large_span_of_a_chain_grown_since_its_statistics_is_analyzed_first(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL plans the copy of the chain on its statistics: before a large span, a
    chain that holds more entries than they know of (beyond what autovacuum lets them
    miss: a bulk of new entries) is ANALYZEd, or the copy is planned for a few rows (no
    parallel workers); before a small span it is not."""
    build_cases(session, PLAN)
    seen: list[str] = []

    def record(conn, cursor, statement, *a):  # type: ignore[no-untyped-def]
        if statement.startswith("ANALYZE"):
            seen.append(statement.split()[1])

    event.listen(session.get_bind(), "before_cursor_execute", record)
    try:
        service.refresh(session, ALL, settle=timedelta(0))  # the plan's few events
        small = list(seen)
        seen.clear()
        build_cases(session, PLAN)
        with monkeypatch.context() as m:
            m.setattr(cells, "ANALYZE_AFTER", 1)  # these few events count as a large span
            m.setattr(sources, "_chain_rows_known", lambda s: 0.0)  # statistics of none
            service.refresh(session, ALL, settle=timedelta(0))
    finally:
        event.remove(session.get_bind(), "before_cursor_execute", record)
    assert "audit_entry" not in small
    assert ("audit_entry" in seen) == (cells.dialect(session) == "postgresql")


def _pids_in_pool(factory: sessionmaker[Session], extra: int = 1) -> set[int]:
    """The backends of every idle connection of the pool, and one new one beside
    them: as many sessions as the pool holds idle connections, plus `extra`, held at
    once (whatever order the pool keeps them in, and however many other tests left
    in it)."""
    bind = factory.kw["bind"]
    n = bind.pool.checkedin() + extra
    sessions = [factory() for _ in range(n)]
    try:
        return {int(s.scalar(text("SELECT pg_backend_pid()")) or 0) for s in sessions}
    finally:
        for s in sessions:
            s.close()


def test_the_connection_that_made_a_scratch_table_is_not_handed_out_again(
    committing_factory: sessionmaker[Session],
) -> None:
    """A backend that has led a large parallel CREATE … AS is slower at leading the
    pages' parallel reads after it: the pool replaces the connection of a transaction
    that made a scratch table at its next checkout (soft invalidation; that transaction
    goes on and commits). A transaction that made none keeps its connection."""
    staged = select(*(cells.STAGE.c[c] for c in cells.STAGED)).where(false())
    pid = text("SELECT pg_backend_pid()")
    with committing_factory() as s:
        if cells.dialect(s) != "postgresql":
            return  # SQLite makes no scratch table
    _pids_in_pool(committing_factory, extra=8)  # idle connections queued, as other tests leave
    with committing_factory() as s:
        plain = int(s.scalar(pid) or 0)
        s.commit()
    assert plain in _pids_in_pool(committing_factory)
    with committing_factory() as s:
        stage = cells.Stage(s)
        stage.put(s, staged)
        made = int(s.scalar(pid) or 0)  # the transaction goes on on its connection
        stage.close(s)
        s.commit()
    assert made not in _pids_in_pool(committing_factory)
    with committing_factory() as s:
        assert _scratch_tables(s) == []
