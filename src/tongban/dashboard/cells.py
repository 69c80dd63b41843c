"""Where the cells are kept, in set-based SQL on SQLite and PostgreSQL.

New facts are first written to `dash_stage` (grouped by key and histogram bucket: by an
INSERT … SELECT over the audit chain, or from cells in memory), then added to the daily
cells and their histograms by two upserts (`_add`: `INSERT … SELECT … GROUP BY … ON
CONFLICT DO UPDATE SET n = n + excluded.n`); the stage is grouped by month once per
roll-up level (from the stage, or from a finer level's rows when one keeps all of a
level's dimensions) and added to the monthly roll-ups and their histograms by two more, and the
stages are emptied — all in the caller's transaction, under the origin's lock
(`lock_origin`). When the origin holds no cell yet (a new install, `recompute`, a peer's
full snapshot), the four are plain `INSERT … SELECT`s: no key can be held. Adding is
associative and commutative, so folding in any number of batches gives the same
cells."""

from __future__ import annotations

import contextlib
import glob
import os
import uuid
import weakref
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Date,
    Integer,
    Select,
    Table,
    TableClause,
    and_,
    column,
    delete,
    false,
    func,
    insert,
    literal,
    literal_column,
    select,
    table,
    text,
    true,
    type_coerce,
)
from sqlalchemy import cast as sa_cast
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable

from tongban.dashboard.config import dashboard_settings
from tongban.dashboard.domain import DIMENSIONS, LEVELS, UNTIMED_LEVELS, Key, Value
from tongban.dashboard.models import (
    DashCell,
    DashHist,
    DashMonth,
    DashMonthHist,
    DashStage,
    DashStageMonth,
)
from tongban.db import DEFERRED_BEGIN

CELL = cast(Table, DashCell.__table__)
HIST = cast(Table, DashHist.__table__)
MONTH = cast(Table, DashMonth.__table__)
MONTH_HIST = cast(Table, DashMonthHist.__table__)
STAGE = cast(Table, DashStage.__table__)
STAGE_MONTH = cast(Table, DashStageMonth.__table__)
#: The key columns other than indicator and day.
REST = DIMENSIONS[2:]
#: The sums of a cell (the same in the stages and the roll-ups): added by every fold.
SUMS = ("n", "total", "extra", "ckey")


def dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def month_of(session: Session, day: Any) -> ColumnElement[Any]:
    """The first day of `day`'s month, in SQL (no bound parameter in it: PostgreSQL
    matches it in a GROUP BY)."""
    if dialect(session) == "postgresql":
        expr: Any = sa_cast(func.date_trunc(literal_column("'month'"), day), Date)
    else:
        expr = func.date(day, literal_column("'start of month'"))
    return type_coerce(expr, Date)


def lock_origin(session: Session, origin: str) -> None:
    """Hold, until the transaction ends, the right to change `origin`'s cells. The
    refresh takes it before it reads its watermarks: two refreshes at once would both
    read the same watermark and fold the same events twice (each adds; neither
    conflicts); a peer's publication is applied under it too (forget, then store).
    PostgreSQL: a transaction-scoped advisory lock per origin (this node's "" and each
    peer's code: different origins do not wait for each other); SQLite: nothing to do,
    every writing transaction begins IMMEDIATE (db.py), so writers are serialised by the
    database's own lock."""
    if dialect(session) == "postgresql":
        session.execute(
            select(func.pg_advisory_xact_lock(LOCK_CLASS, func.hashtext(literal(origin))))
        )


#: The first half of the dashboard's advisory lock keys (the second: the origin's hash).
LOCK_CLASS = 0x7DA5


def _add(
    session: Session,
    t: Table,
    cols: list[str],
    q: Any,
    key: list[str],
    add: Iterable[str],
    fresh: bool = False,
) -> int:
    """Add the rows of `q` (columns `cols`, unique by `key`) to `t`: insert the keys `t`
    does not hold, add the sums `add` to those it holds (INSERT … SELECT … ON CONFLICT
    (key) DO UPDATE SET c = t.c + excluded.c); the rows inserted or updated. `fresh`:
    the caller knows `t` holds none of the keys (`_holds_nothing`), so a plain INSERT …
    SELECT — no conflict arbitration (on PostgreSQL a speculative insertion per row).

    Session 10 measured, on PostgreSQL, an UPDATE … FROM for the keys held then an
    INSERT … WHERE NOT EXISTS for the others instead: 6–10 % less backend CPU for the
    refresh at 300,000 events, but its anti-join against the target is the planner's
    choice, and once (the third of a row of rolled-back refreshes in one database) the
    roll-ups' INSERT ran for over four minutes before it was cancelled; on SQLite the two
    passes cost 1.4× the refresh's CPU. So one statement, whose conflict check is always
    an index probe (docs/dashboard.md, "Session 10: refresh")."""
    if fresh:
        stmt: Any = insert(t).from_select(cols, q)
    else:
        make = postgresql.insert if dialect(session) == "postgresql" else sqlite.insert
        stmt = make(t).from_select(cols, q)
        stmt = stmt.on_conflict_do_update(
            index_elements=key, set_={c: t.c[c] + stmt.excluded[c] for c in add}
        )
    # SQLAlchemy reports an INSERT's row count only when asked to keep it (psycopg: -1).
    done = session.execute(stmt.execution_options(preserve_rowcount=True))
    return max(int(done.rowcount), 0)  # type: ignore[attr-defined]


def stage_cells(session: Session, cells: dict[Key, Value], stage: Any = None) -> None:
    """Put cells held in memory on the stage (dash_stage, or `stage`'s table: a row per
    cell, a row per histogram bucket)."""
    rows: list[dict[str, Any]] = []
    for k, v in cells.items():
        key = k._asdict()
        sums = {"n": v.n, "total": v.total, "extra": v.extra, "ckey": v.ckey}
        rows.append({**key, "bucket": None, **sums, "hn": 0})
        for b, c in (v.hist or {}).items():
            rows.append({**key, "bucket": b, "n": 0, "total": 0, "extra": 0, "ckey": 0, "hn": c})
    if rows:
        session.execute(insert(STAGE if stage is None else stage.table), rows)


#: Events folded by one refresh from which the pages' tables are ANALYZEd in its
#: transaction (PostgreSQL); the periodic refreshes fold far fewer.
ANALYZE_AFTER = 20_000


def tune(session: Session) -> None:
    """PostgreSQL, for the rest of the refresh's transaction: enough memory to group a
    batch in memory (the default 4 MB spills the hash aggregates to disk)."""
    if dialect(session) == "postgresql":
        mem = dashboard_settings().pg_work_mem
        session.execute(select(func.set_config("work_mem", mem, True)))


#: SQLite: auxiliary threads its sorter may use for the fold's large GROUP BYs (`PRAGMA
#: threads`; 0 by default). At 1 M events on 2 cores the fold took 4.42–5.13 s wall
#: with 1–4 of them against 5.72–6.22 s with none (identical rows; slightly more CPU),
#: docs/dashboard.md "Session 13: sorting threads".
SQLITE_SORT_THREADS = min(4, os.cpu_count() or 1)


@contextmanager
def sort_threads(session: Session) -> Iterator[None]:
    """SQLite, for the statements inside: its sorter may use SQLITE_SORT_THREADS worker
    threads. The pragma is the connection's, not the transaction's: put back after."""
    if dialect(session) != "sqlite":
        yield
        return
    before = session.execute(text("PRAGMA threads")).scalar()
    session.execute(text(f"PRAGMA threads = {int(SQLITE_SORT_THREADS)}"))
    try:
        yield
    finally:
        session.execute(text(f"PRAGMA threads = {int(before or 0)}"))


@contextmanager
def sorted_grouping(session: Session) -> Iterator[None]:
    """PostgreSQL, for the statements inside: group by sorting the input (Sort, then
    GroupAggregate), not by hashing it and then sorting the groups (HashAggregate, then
    Sort) — for a grouping whose rows must come out in key order anyway. The planner
    takes the second: it estimates a tenth of the groups there are (the stage's rows are
    nearly all distinct keys), so it expects a small sort after the hashing. At 1 M
    events the daily cells' statement took 0.5–0.7 s less backend CPU this way; the
    roll-ups' (their input is nearly three times their groups) 0.6 s more, so it keeps the hashing
    (docs/dashboard.md, "Session 13: the fold"). Restored after the statements, in the
    transaction."""
    if dialect(session) != "postgresql":
        yield
        return
    before = session.scalar(select(func.current_setting("enable_hashagg")))
    session.execute(select(func.set_config("enable_hashagg", "off", True)))
    # Not in a `finally`: after a failed statement the transaction is aborted (the
    # setting, local to it, goes with it) and a further statement would only raise
    # over the first error.
    yield
    session.execute(select(func.set_config("enable_hashagg", before, True)))


#: PostgreSQL's statistics target for the ANALYZE of the fold's own stages (a sample of
#: 300 × this rows): the planner needs their size and the rough number of distinct keys,
#: which a sample of 3,000 gives as well as the default 30,000 for these statements
#: (docs/dashboard.md, "Session 15"), at a fraction of the cost.
STAGE_STATISTICS = 10


def analyze(session: Session, t: TableClause, target: int | None = None) -> None:
    """PostgreSQL: statistics of a table just filled in this transaction (it was empty
    when autovacuum last looked), so that the next statements' plans fit its size. With
    `target`, on a sample of that statistics target: the transaction's setting lowered
    for this ANALYZE only."""
    if dialect(session) != "postgresql":
        return
    if target is None:
        session.execute(text(f"ANALYZE {t.name}"))
        return
    setting = "default_statistics_target"
    was = session.scalar(select(func.current_setting(setting)))
    session.execute(select(func.set_config(setting, str(int(target)), True)))
    session.execute(text(f"ANALYZE {t.name}"))
    session.execute(select(func.set_config(setting, str(was), True)))


# --- scratch tables (PostgreSQL): the refresh's large SELECTs on parallel workers --------


class _CreateTableAs(Executable, ClauseElement):
    """`CREATE UNLOGGED TABLE name AS <query>` (PostgreSQL; on SQLite `CREATE TABLE`)."""

    inherit_cache = False

    def __init__(self, name: str, query: Select[Any]) -> None:
        self.name = name
        self.query = query


@compiles(_CreateTableAs)
def _create_table_as(element: _CreateTableAs, compiler: SQLCompiler, **kw: Any) -> str:
    kind = "UNLOGGED TABLE" if compiler.dialect.name == "postgresql" else "TABLE"
    return f"CREATE {kind} {element.name} AS {compiler.process(element.query, **kw)}"


#: The planner's costs of a parallel plan while a scratch table is filled: with the
#: defaults (1000 to start the workers, 0.1 per row handed to the leader) it kept the
#: chain's copy (a million JSON bodies parsed) on one process, since the parse is not
#: in its cost model; at 0 it plans the SELECTs below on the server's parallel workers
#: (`max_parallel_workers_per_gather`, 2 by default), docs/dashboard.md "Session 14".
PARALLEL_COSTS = {"parallel_setup_cost": "0", "parallel_tuple_cost": "0"}
#: The prefix of the scratch tables' names (then the use and the backend's pid).
SCRATCH = "dash_stage_x_"


@contextmanager
def _parallel(session: Session) -> Iterator[None]:
    """PostgreSQL, for the statements inside: parallel plans costed as free to start (see
    PARALLEL_COSTS); the transaction's previous values restored after them."""
    names = list(PARALLEL_COSTS)
    before = session.execute(select(*(func.current_setting(n) for n in names))).one()
    session.execute(select(*(func.set_config(n, v, True) for n, v in PARALLEL_COSTS.items())))
    # Not in a `finally`: after a failed statement the transaction is aborted (see
    # sorted_grouping).
    yield
    session.execute(
        select(*(func.set_config(n, v, True) for n, v in zip(names, before, strict=True)))
    )


def scratch(session: Session, use: str, q: Select[Any], committed: bool = False) -> TableClause:
    """PostgreSQL: the rows of `q` written to a new UNLOGGED table of this transaction
    (`CREATE TABLE … AS`, whose SELECT PostgreSQL runs on parallel workers, where it runs
    an `INSERT … SELECT` on one process), as a table clause with `q`'s column names and
    types. Named after `use` and this backend's pid, so no other transaction's scratch
    table has its name (two origins' folds at once); the caller drops it (`drop`) before
    its transaction ends, and a transaction rolled back takes the table with it: none is
    left behind either way (a table created in a transaction exists only once it
    commits). With `committed`, the table of a committed stage (`Stage`): named
    `COMMITTED` + `use` + a random suffix, committed by its own transaction."""
    if committed:
        # A committed stage (`Stage`): a name no other table has had, so that its CREATE
        # never waits for the refresh's own uncommitted DROP of a leftover (`drop_leftovers`).
        name = f"{COMMITTED}{use}_{uuid.uuid4().hex[:12]}"
    else:
        pid = session.scalar(select(func.pg_backend_pid()))
        name = f"{SCRATCH}{use}_{int(pid or 0)}"
    with _parallel(session):
        session.execute(_CreateTableAs(name, q))
    _retire(session)
    return table(name, *(column(str(c.key), c.type) for c in q.selected_columns))


def _retire(session: Session) -> None:
    """Have the pool replace this transaction's connection at its next checkout (a soft
    invalidation: this transaction goes on, and the connection is closed when it is next
    taken). Measured: a backend that has led a large parallel `CREATE TABLE … AS` led the
    parallel reads of the pages after it ≈ 20 ms slower each (the same plans, buffers and
    workers' time; the drill-down pages 35–50 ms slower), while a new backend did not
    (docs/dashboard.md, "Lead's runs after session 14's changes"); where the refresh
    shares a pool with the pages (the embedded worker), they would get that backend. A
    new connection every large refresh costs a few milliseconds."""
    session.connection().connection.invalidate(soft=True)


def drop(session: Session, t: TableClause) -> None:
    """Drop a scratch table (`scratch`)."""
    session.execute(text(f"DROP TABLE {t.name}"))


#: The stage's columns a refresh's facts fill (its `id` aside).
STAGED = [*DIMENSIONS, "bucket", *SUMS, "hn"]


#: A refresh reading at least this many chain positions folds from a committed stage
#: (`Stage` with `committed`), so that the roll-ups' groupings run on a second connection
#: beside the daily cells' (`fold_stage`); smaller refreshes keep their stage in their
#: own transaction.
PIPELINE_AFTER = 20_000
#: PostgreSQL: the prefix of a committed stage's tables (then the use and a random suffix).
COMMITTED = "dash_stage_c_"
#: SQLite: a committed stage's tables are in database files of their own beside the
#: node's, named after it: `<database>` + SIDE + the use + a random suffix.
SIDE = ".dash-stage-"
#: PostgreSQL: how long a committed stage's own transactions wait for a lock before they
#: fail: they should never wait for the refresh's transaction (which waits for them).
AUX_LOCK_TIMEOUT = "60s"


def _database_file(session: Session) -> Path | None:
    """SQLite: the node's database file (None in memory or on PostgreSQL)."""
    db = session.get_bind().engine.url.database
    if dialect(session) != "sqlite" or not db or db == ":memory:" or db.startswith("file:"):
        return None
    return Path(db)


def pipelined(session: Session, span: int) -> bool:
    """Whether a refresh of `span` chain positions on `session` folds from a committed
    stage: a large span, a session bound to an engine (its own transaction; one joined
    to a caller's connection — the tests' — cannot share its uncommitted rows with other
    connections), on SQLite a database in a file, and a transaction that has not written
    the working days already (an earlier refresh in it: on PostgreSQL the stage's
    session would wait for its rows)."""
    pg = dialect(session) == "postgresql"
    return (
        span >= PIPELINE_AFTER
        and isinstance(session.get_bind(), Engine)
        and (pg or _database_file(session) is not None)
        and not wrote_workdays(session)
    )


_WORKDAYS = "tongban.dashboard.workdays_written_in"


def note_workdays(session: Session) -> None:
    """Remember that this transaction of `session` wrote the working days."""
    session.info[_WORKDAYS] = weakref.ref(session.get_transaction() or session.begin())


def wrote_workdays(session: Session) -> bool:
    ref = session.info.get(_WORKDAYS)
    return ref is not None and ref() is not None and ref() is session.get_transaction()


@dataclass(frozen=True)
class Side:
    """SQLite: a database file of a committed stage, attached under `schema`."""

    schema: str
    path: Path

    def attach(self, session: Session) -> None:
        """Attach it to `session`'s connection (in its transaction: it only reads it)."""
        session.execute(text(f"ATTACH DATABASE :f AS {self.schema}"), {"f": str(self.path)})

    def attach_to_write(self, conn: Connection) -> None:
        """Attach it to `conn` before its transaction begins, journalled in memory and not
        synced (scratch data: a failure deletes the file)."""
        raw = conn.connection.dbapi_connection
        assert raw is not None
        raw.execute(f"ATTACH DATABASE ? AS {self.schema}", (str(self.path),))
        raw.execute(f"PRAGMA {self.schema}.journal_mode = MEMORY")
        raw.execute(f"PRAGMA {self.schema}.synchronous = OFF")

    def remove(self) -> None:
        """Delete the file (a connection that still has it open keeps reading it)."""
        for suffix in ("", "-journal", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)


def _side(session: Session, use: str) -> Side:
    db = _database_file(session)
    assert db is not None
    tag = uuid.uuid4().hex[:12]
    return Side(f"dash_{use}_{tag}", Path(f"{db}{SIDE}{use}-{tag}"))


def _aux(session: Session, *sides: Side) -> Session:
    """A session on a connection of its own of `session`'s engine, for a committed
    stage's transactions: on PostgreSQL with `lock_timeout` (AUX_LOCK_TIMEOUT); on SQLite
    beginning deferred (it writes only to the files `sides`, attached to it, and reads
    the node's database while the refresh holds its write lock). Closed by
    `_close_aux`."""
    bind = session.get_bind()
    assert isinstance(bind, Engine)
    if dialect(session) == "postgresql":
        aux = Session(bind=bind)
        aux.execute(select(func.set_config("lock_timeout", AUX_LOCK_TIMEOUT, True)))
        return aux
    conn = bind.connect().execution_options(**{DEFERRED_BEGIN: True})
    for side in sides:
        side.attach_to_write(conn)
    return Session(bind=conn)


def _close_aux(aux: Session) -> None:
    """Close a committed stage's session; on SQLite its connection too (its temporary
    tables and attached files go with it)."""
    bind = aux.get_bind()
    aux.close()
    if isinstance(bind, Connection):
        bind.invalidate()
        bind.close()


def _copy_table(session: Session, name: str, into: str) -> None:
    """SQLite: create `name`'s table (as the node's database declares it) in `into`:
    "temp" shadows it for this connection (unqualified names find temp first), an
    attached schema holds a stage."""
    ddl = session.scalar(
        text("SELECT sql FROM main.sqlite_master WHERE type = 'table' AND name = :n"),
        {"n": name},
    )
    head = f"CREATE TABLE {name} ("
    if not ddl or not str(ddl).startswith(head):
        raise RuntimeError(f"unexpected declaration of {name}")
    made = f"CREATE TEMP TABLE {name} (" if into == "temp" else f"CREATE TABLE {into}.{name} ("
    session.execute(text(made + str(ddl)[len(head) :]))


def drop_leftovers(session: Session) -> list[str]:
    """Drop, in the refresh's transaction, the committed stages' tables a refresh left
    behind (its process ended, or its transaction failed, between their commit and its
    own); which. Called under this node's lock (`lock_origin`; on SQLite the write lock
    the refresh's transaction holds), which every refresh that makes them holds until it
    ends: any such table then is a leftover. PostgreSQL: committed with the refresh (rolled
    back with it: then the next drops them); SQLite: their files deleted."""
    if dialect(session) != "postgresql":
        db = _database_file(session)
        if db is None:
            return []
        pattern = f"{glob.escape(db.name)}{SIDE}*"
        files = sorted(p for p in db.parent.glob(pattern) if p.is_file())
        for p in files:
            with contextlib.suppress(OSError):
                p.unlink()
        return [p.name for p in files]
    like = COMMITTED.replace("_", r"\_") + "%"
    q = text(
        "SELECT c.relname FROM pg_class c WHERE c.relkind = 'r' AND c.relname LIKE :p"
        " AND c.relnamespace = current_schema()::regnamespace ORDER BY 1"
    )
    names = [str(n) for n in session.scalars(q, {"p": like})]
    for name in names:
        session.execute(text(f'DROP TABLE IF EXISTS "{name}"'))
    return names


class Stage:
    """Where a refresh puts its facts for the fold (`fold_stage`): dash_stage, or on
    PostgreSQL a scratch table (`scratch`) made by the first facts put on it — their
    SELECT (the chain's facts: a join of every new entry to its record) on parallel
    workers — to which the rest are added. The refresh drops it (`close`) after the fold,
    in its transaction.

    With `committed` (a large refresh, `pipelined`), the stage is built on a session of
    its own (`writer`: the working days, the chain's facts, the facts held in memory)
    and committed before the fold (`seal`), so that a second connection can group the
    roll-ups from it while the refresh's own adds the daily cells. On PostgreSQL its
    tables are then dropped in the refresh's transaction: committed with it, or left
    behind when it fails and dropped by the next refresh (`drop_leftovers`). On SQLite
    the stage is a table in a database file of its own (`Side`), attached to the
    stage's session and then to the refresh's, the working days and the entries' copy
    that session's temporary tables (the refresh holds the node's database's write
    lock); the file is deleted after the fold, or by the next refresh."""

    def __init__(self, session: Session, committed: bool = False) -> None:
        self.table: Any = STAGE
        self.pg = dialect(session) == "postgresql"
        self.aux: Session | None = None
        self.side: Side | None = None
        #: Whether the stage was committed (`seal`) with a table to fold from.
        self.sealed = False
        if not committed:
            return
        if self.pg:
            self.aux = _aux(session)
            return
        self.side = _side(session, "facts")
        try:
            self.aux = _aux(session, self.side)
            for name in ("dash_workday", "dash_entry"):
                _copy_table(self.aux, name, "temp")
            _copy_table(self.aux, STAGE.name, self.side.schema)
        except BaseException:
            self.abandon()
            raise
        cols = (column(c.name, c.type) for c in STAGE.c)
        self.table = table(STAGE.name, *cols, schema=self.side.schema)

    def writer(self, session: Session) -> Session:
        """The session that writes the stage (and what its facts read that the refresh
        writes: the working days)."""
        return self.aux if self.aux is not None else session

    def put(self, session: Session, q: Any) -> None:
        """Add the rows of `q` (the columns STAGED, so named) to the stage."""
        w = self.writer(session)
        if self.pg and self.table is STAGE:
            self.table = scratch(w, "facts", q, committed=self.aux is not None)
        else:
            w.execute(insert(self.table).from_select(STAGED, q))

    def put_cells(self, session: Session, held: dict[Key, Value]) -> None:
        """Put cells held in memory on the stage."""
        if held and self.aux is not None and self.table is STAGE:
            self.put(session, select(*(STAGE.c[c] for c in STAGED)).where(false()))
        stage_cells(self.writer(session), held, self)

    def seal(self, session: Session) -> None:
        """A committed stage: ANALYZE its table, commit its session's transaction (the
        working days, the stage) and, on SQLite, attach its file to `session`'s
        connection (which is then replaced at its next checkout: `_retire`). Nothing
        otherwise."""
        if self.aux is None:
            return
        if self.table is not STAGE:
            analyze(self.aux, self.table, STAGE_STATISTICS)
        self.aux.commit()
        _close_aux(self.aux)
        self.aux = None
        self.sealed = self.table is not STAGE
        if self.side is not None:
            self.side.attach(session)
            _retire(session)

    def abandon(self) -> None:
        """The refresh failed before `seal`: roll the stage's own transaction back."""
        if self.aux is not None:
            self.aux.rollback()
            _close_aux(self.aux)
            self.aux = None
        if self.side is not None:
            self.side.remove()

    def discard(self) -> None:
        """The fold failed: on SQLite delete the stage's file now (PostgreSQL's tables
        cannot be dropped in a failed transaction: the next refresh drops them)."""
        if self.side is not None:
            self.side.remove()

    def close(self, session: Session) -> None:
        if self.side is not None:
            self.side.remove()
        elif self.table is not STAGE:
            drop(session, self.table)
        self.table = STAGE


def _level_order() -> list[tuple[str, tuple[str, ...], str | None]]:
    """Each roll-up level with what it is grouped from: the level with the fewest
    dimensions among those already grouped that keep all of its own, or the stage
    (None) when none does; the levels keeping the most dimensions come first."""
    done: list[tuple[str, tuple[str, ...]]] = []
    out: list[tuple[str, tuple[str, ...], str | None]] = []
    for level, kept in sorted(LEVELS.items(), key=lambda lk: -len(lk[1])):
        # A level with histograms only from one that has them too.
        finer = [
            (len(k), name)
            for name, k in done
            if set(kept) <= set(k) and (level in UNTIMED_LEVELS or name not in UNTIMED_LEVELS)
        ]
        out.append((level, kept, min(finer)[1] if finer else None))
        done.append((level, kept))
    return out


def _holds_nothing(session: Session, origin: str) -> bool:
    """Whether `origin` holds no daily cell and no monthly roll-up. Then no key of the
    stage is held, nor any histogram bucket or roll-up of one, since those belong to the
    origin's cells and roll-ups. Asked under the origin's lock, so it stays true until
    the commit.

    One probe of the smallest roll-up level (`SMALLEST`): the fold writes a cell and its
    row at every level in one transaction and `forget_origin` deletes them together, so
    the origin holds a cell exactly when it holds a row of that level. The unique keys
    begin with the level (roll-ups) and the indicator and day (cells), not the origin
    (session 12: they serve the pages' range reads instead of a second index), so the
    probe reads that level's index range up to the origin's first row — a few rows per
    indicator, jurisdiction and month, where a probe of `dash_cell` by origin would scan
    the table."""
    t = MONTH
    q = select(t.c.id).where(t.c.level == SMALLEST, t.c.origin == origin).limit(1)
    return session.scalar(q) is None


#: The roll-up level with the fewest dimensions (the fewest rows).
SMALLEST = min(LEVELS, key=lambda name: len(LEVELS[name]))


def _group_levels(session: Session, s: Any, sm: Any) -> None:
    """Group the stage `s` by month once per roll-up level into `sm` (dash_stage_month,
    or a committed stage's table of its columns: `_levels_apart`): from the stage, or
    from a finer level's rows when one keeps all of a level's dimensions."""
    cols = ["level", "indicator", "month", *REST, "bucket", *SUMS, "hn"]
    adds = [func.sum(c) for c in (*(s.c[x] for x in SUMS), s.c.hn)]
    analysed = False
    for level, kept, source in _level_order():
        if source is not None and not analysed:
            # Coarser levels are grouped from the rows of the finer ones already in:
            # without statistics the planner takes the freshly filled table for a few
            # hundred rows and sorts it whole for each level (EXPLAIN at 1 M events: 450
            # rows estimated, 427,394 read). Once, before the first of them.
            analyze(session, sm, STAGE_STATISTICS)
            analysed = True
        # A level without histograms (UNTIMED_LEVELS) is grouped without the bucket:
        # one row per key, and no histogram row is written for it.
        timed = level not in UNTIMED_LEVELS
        if source is None:
            month = month_of(session, s.c.day)
            dims = [s.c[d] if d in kept else literal("") for d in REST]
            group = [s.c.indicator, month, *(s.c[d] for d in REST if d in kept)]
            bucket: Any = s.c.bucket if timed else literal(None, Integer)
            q = select(literal(level), s.c.indicator, month, *dims, bucket, *adds)
            if timed:
                group.append(s.c.bucket)
        else:
            dims = [sm.c[d] if d in kept else literal("") for d in REST]
            group = [sm.c.indicator, sm.c.month, *(sm.c[d] for d in REST if d in kept)]
            bucket = sm.c.bucket if timed else literal(None, Integer)
            sums = [func.sum(sm.c[c]) for c in (*SUMS, "hn")]
            q = select(literal(level), sm.c.indicator, sm.c.month, *dims, bucket, *sums)
            q = q.where(sm.c.level == source)
            if timed:
                group.append(sm.c.bucket)
        session.execute(insert(sm).from_select(cols, q.group_by(*group)))
    analyze(session, sm, STAGE_STATISTICS)


def _levels_apart(
    session: Session, s: Any, stage: Side | None
) -> tuple[TableClause, TableClause, Side | None]:
    """A committed stage's roll-up groupings (`_group_levels`) on a session of their own,
    into a new table of dash_stage_month's columns, and the roll-ups' sums grouped from
    it (`_month_sums`) into another, committed; the two tables, and on SQLite the file
    they are in (`stage`: the stage's, attached to read it). The refresh drops them in
    its transaction (SQLite: deletes the file), or the next refresh does
    (`drop_leftovers`). Run on a thread beside the daily cells' fold (`fold_stage`)."""
    side = None if stage is None else _side(session, "months")
    aux = _aux(session, *(x for x in (stage, side) if x is not None))
    tag = uuid.uuid4().hex[:12]

    def made(use: str, q: Select[Any]) -> TableClause:
        """A committed table of `q`'s rows: `dash_stage_c_<use>_<tag>` (PostgreSQL), or
        `<use>` in the groupings' file (SQLite)."""
        name, schema = (f"{COMMITTED}{use}_{tag}", None) if side is None else (use, side.schema)
        aux.execute(_CreateTableAs(name if schema is None else f"{schema}.{name}", q))
        cols = (column(str(c.key), c.type) for c in q.selected_columns)
        return table(name, *cols, schema=schema)

    try:
        tune(aux)
        cols = [STAGE_MONTH.c[c] for c in ("level", "indicator", "month", *REST, "bucket")]
        sm = made(
            "months", select(*cols, *(STAGE_MONTH.c[c] for c in (*SUMS, "hn"))).where(false())
        )
        _group_levels(aux, s, sm)
        sums = made("sums", _month_sums(sm))
        aux.commit()
        return sm, sums, side
    except BaseException:
        if side is not None:
            side.remove()
        raise
    finally:
        _close_aux(aux)


#: The roll-ups' key columns but the origin, in uq_dash_month_key's order.
MDIMS = ["level", "indicator", "month", *REST]


def _month_sums(sm: Any) -> Select[Any]:
    """The roll-ups' sums from their per-level groupings `sm` (a row per bucket of a
    roll-up: grouped again by the roll-up's key), in key order."""
    keys = [sm.c[d] for d in MDIMS]
    sums = [func.sum(sm.c[c]).label(c) for c in SUMS]
    return select(*keys, *sums).where(true()).group_by(*keys).order_by(*keys)


def _add_months(
    session: Session, origin: str, fresh: bool, sm: Any, sums: Any | None = None
) -> None:
    """Add the stage's roll-ups, grouped into `sm` per level (`_group_levels`), to the
    monthly roll-ups: one upsert for the roll-ups of every level, one for their
    histograms. `sums`: the roll-ups' sums already grouped from `sm` (`_levels_apart`),
    one row per roll-up, written in key order: read as they lie (no ORDER BY — the order
    is the inserts' locality, not their result)."""
    if sums is None:
        q = _month_sums(sm).add_columns(literal(origin).label("origin"))
    else:
        # WHERE true: SQLite reads an upsert's ON CONFLICT after a bare FROM as a join's ON.
        q = select(*(sums.c[d] for d in MDIMS), *(sums.c[c] for c in SUMS), literal(origin))
        q = q.where(true())
    cols = [*MDIMS, *SUMS, "origin"]
    mkey = ["level", "indicator", "month", "origin", *REST]  # uq_dash_month_key's order
    _add(session, MONTH, cols, q, mkey, SUMS, fresh)
    # The grouped stage is unique by (level, month key, bucket): one row per bucket of a
    # roll-up, so no grouping is needed here.
    on = and_(MONTH.c.origin == origin, *(MONTH.c[d] == sm.c[d] for d in MDIMS))
    q = select(MONTH.c.id, sm.c.bucket, sm.c.hn).select_from(sm.join(MONTH, on))
    q = q.where(sm.c.bucket.is_not(None))
    if dialect(session) == "postgresql":
        # Not on SQLite: there this SELECT has no GROUP BY to sort it, so the ORDER BY
        # adds a sort (EXPLAIN QUERY PLAN), and the stage's rows, grouped level by
        # level, come in the roll-ups' key order within each level already.
        q = q.order_by(MONTH.c.id, sm.c.bucket)
    _add(session, MONTH_HIST, ["month_id", "bucket", "n"], q, ["month_id", "bucket"], ["n"], fresh)


def _fold_months(session: Session, origin: str, fresh: bool, s: Any) -> None:
    """Add the stage to the monthly roll-ups: group it by month once per level into
    dash_stage_month (`_group_levels`), add those to the roll-ups (`_add_months`), and
    empty dash_stage_month."""
    _group_levels(session, s, STAGE_MONTH)
    _add_months(session, origin, fresh, STAGE_MONTH)
    session.execute(delete(STAGE_MONTH))


def fold_stage(
    session: Session, origin: str, stage: Any = STAGE, committed: Stage | None = None
) -> int:
    """Add what is on the stage (dash_stage, or the refresh's scratch stage: `Stage`) to
    `origin`'s cells, histograms and monthly roll-ups, and empty dash_stage; how many
    cells it touched. The caller holds the origin's lock
    (`lock_origin`; the fold's choice of plain inserts relies on it): `service.refresh`
    takes it before it reads its watermarks, `store` takes it, and the federation's
    import of a peer's cells takes it before it calls `store`.

    `committed`: the stage is that committed stage's table (`Stage.seal`, already
    ANALYZEd). Then the roll-ups' groupings run on a second connection (`_levels_apart`,
    on a thread) while this one adds the daily cells and their histograms; the roll-ups
    are then added here from what it grouped, and its tables dropped in this
    transaction (SQLite: its file attached here, then deleted)."""
    s = stage
    if session.scalar(select(literal(1)).select_from(s).limit(1)) is None:
        return 0
    tune(session)
    if not committed:  # a committed stage was ANALYZEd before its commit (`Stage.seal`)
        analyze(session, s, STAGE_STATISTICS)
    fresh = _holds_nothing(session, origin)
    if committed is None:
        touched = _fold_cells(session, origin, s, fresh)
        with sort_threads(session):
            _fold_months(session, origin, fresh, s)
    else:
        touched = _fold_apart(session, origin, s, fresh, committed.side)
    if s is STAGE:
        session.execute(delete(s))
    return touched


def _fold_apart(session: Session, origin: str, s: Any, fresh: bool, side: Side | None) -> int:
    """`fold_stage` from a committed stage `s` (on SQLite in the file `side`): the
    roll-ups' groupings on a thread's connection (`_levels_apart`) while this one adds
    the daily cells, then the roll-ups added here and the groupings' tables dropped
    (SQLite: their file deleted); how many cells it touched."""
    with ThreadPoolExecutor(1) as pool:
        # The thread's statements run on a connection of their own: the GIL is released
        # while the driver waits for each (or SQLite runs one), as it is here.
        apart = pool.submit(_levels_apart, session, s, side)
        try:
            touched = _fold_cells(session, origin, s, fresh)
        except BaseException:
            # The pool waits for the thread before it goes: PostgreSQL's committed
            # tables are left to the next refresh, SQLite's file is deleted.
            left = apart.result()[2] if apart.exception() is None else None
            if left is not None:
                left.remove()
            raise
        sm, month_sums, months_side = apart.result()
    if months_side is not None:
        months_side.attach(session)
    try:
        _add_months(session, origin, fresh, sm, month_sums)
    finally:
        if months_side is not None:
            months_side.remove()
    if months_side is None:
        drop(session, sm)
        drop(session, month_sums)
    return touched


def _fold_cells(session: Session, origin: str, s: Any, fresh: bool) -> int:
    """Add the stage `s` to `origin`'s daily cells and their histograms; how many cells
    it touched."""
    keys = [s.c[d] for d in DIMENSIONS]
    sums = [func.sum(s.c[c]) for c in SUMS]
    # Each upsert's rows come in its table's unique-key order (ORDER BY): PostgreSQL
    # groups by hashing, so unordered they came in hash order — B-tree inserts at random
    # places of indexes larger than shared_buffers, and the rows a page reads together
    # (one indicator, one roll-up level) scattered over the heap. In key order a year's
    # heat map reads 273 heap blocks, not 8,378 (docs/dashboard.md, "Session 11:
    # refresh"). SQLite's GROUP BY sorts in that order already: no sort is added.
    q = select(literal(origin), *keys, *sums).where(true()).group_by(*keys).order_by(*keys)
    cols = ["origin", *DIMENSIONS, *SUMS]
    key = ["indicator", "day", "origin", *REST]  # uq_dash_cell_key's order
    with sort_threads(session):
        with sorted_grouping(session):
            touched = _add(session, CELL, cols, q, key, SUMS, fresh)
        on = and_(CELL.c.origin == origin, *(CELL.c[d] == s.c[d] for d in DIMENSIONS))
        q = (
            select(CELL.c.id, s.c.bucket, func.sum(s.c.hn))
            .select_from(s.join(CELL, on))
            .where(s.c.bucket.is_not(None))
            .group_by(CELL.c.id, s.c.bucket)
            .order_by(CELL.c.id, s.c.bucket)
        )
        _add(session, HIST, ["cell_id", "bucket", "n"], q, ["cell_id", "bucket"], ["n"], fresh)
    return touched


def analyze_read_tables(session: Session) -> None:
    """PostgreSQL: statistics of the tables the pages read, after a large refresh (the
    first after an install or a rebuild, a backlog) changed them by a large share:
    autovacuum would ANALYZE them some tens of seconds after the commit, and the pages
    until then would be planned on the old sizes."""
    for t in (CELL, HIST, MONTH, MONTH_HIST):
        analyze(session, t)


def store(session: Session, cells: dict[Key, Value], origin: str) -> None:
    """Add `cells` to the stored cells of `origin` (insert new keys, add to known ones),
    under the origin's lock."""
    if cells:
        lock_origin(session, origin)
        stage_cells(session, cells)
        fold_stage(session, origin)


def forget_origin(session: Session, origin: str) -> None:
    """Delete `origin`'s cells, histograms and roll-ups."""
    lock_origin(session, origin)
    ids = select(CELL.c.id).where(CELL.c.origin == origin).scalar_subquery()
    session.execute(delete(HIST).where(HIST.c.cell_id.in_(ids)))
    session.execute(delete(CELL).where(CELL.c.origin == origin))
    mids = select(MONTH.c.id).where(MONTH.c.origin == origin).scalar_subquery()
    session.execute(delete(MONTH_HIST).where(MONTH_HIST.c.month_id.in_(mids)))
    session.execute(delete(MONTH).where(MONTH.c.origin == origin))


def read(
    session: Session,
    origin: str,
    jurisdiction: str | None = None,
    monthly: bool = False,
    level: str | None = None,
) -> dict[Key, Value]:
    """`origin`'s stored cells (of one jurisdiction when given) with their histograms;
    with `monthly`, the monthly roll-ups of `level` (default: the level keeping the most
    dimensions) keyed by their month's first day, "" in the dimensions it leaves out."""
    t, h, owner, day = (
        (MONTH, MONTH_HIST, "month_id", "month") if monthly else (CELL, HIST, "cell_id", "day")
    )
    cond = [t.c.origin == origin]
    if monthly:
        cond.append(t.c.level == (level or FINEST))
    if jurisdiction is not None:
        cond.append(t.c.jurisdiction == jurisdiction)
    cols = [t.c.indicator, t.c[day], *(t.c[d] for d in REST)]
    by_id: dict[int, Value] = {}
    out: dict[Key, Value] = {}
    sums = [t.c[c] for c in SUMS]
    for row in session.execute(select(t.c.id, *sums, *cols).where(*cond)):
        v = by_id[row.id] = Value(row.n, row.total, row.extra, ckey=row.ckey)
        out[Key(*row[1 + len(sums) :])] = v
    q = (
        select(h.c[owner], h.c.bucket, h.c.n)
        .select_from(h.join(t, t.c.id == h.c[owner]))
        .where(*cond)
    )
    for oid, bucket, n in session.execute(q):
        v = by_id[oid]
        if v.hist is None:
            v.hist = {}
        v.hist[int(bucket)] = int(n)
    return out


#: The roll-up level keeping the most dimensions.
FINEST = max(LEVELS, key=lambda name: len(LEVELS[name]))


def first_of_month(d: date) -> date:
    return d.replace(day=1)
