"""Audit as a property of the write path.

Importing this module plugs one ``after_insert`` hook into tongban.db's write path
(``db.on_insert``), for all mapped classes. It is imported by the audit context (its
service, and so its registry entry and its message handlers) and by tongban.models:
every process that runs the app, the worker, the CLI or the migrations has it;
``tests/integration/audit/test_hook_wiring.py`` keeps it so. When a row
of a class that declares ``__audit_kind__`` is INSERTed by a flush, the listener appends
an entry to the chain on the flush's own connection: inside the writer's transaction,
so a rollback leaves neither the row nor its entry, and after SQLAlchemy has set the
primary key and the Python-side defaults.

How a class opts in (see docs/audit.md)::

    class CaseEvent(Base):
        __audit_kind__ = "case.event"
        __audit_subject__ = ("case", "case_id")      # -> subject "case:<case_id>"
        __audit_actor__ = ("account", "actor_id")    # -> "account:<id>", or "system"
        __audit_fields__ = ("case_id", "seq", "action", "from_state", "to_state")
        __audit_digest__ = ("comment",)              # body gets "comment_digest"

or, for full control, a method ``__audit__(self) -> (subject, actor, body_dict)``.

Core inserts (issue 14): a Core ``insert(table)`` into an audited class's table run
through a Session (``session.execute``) is audited too, after it ran, one entry a row
it wrote: the rows come from its ``.values(...)`` (one or several) or executemany
parameters, by column; with a conflict clause (``ON CONFLICT DO NOTHING``) only the rows
it RETURNs by primary key were written, so such an insert must return the key (else
TypeError); an ``INSERT … SELECT`` or an upsert into an audited table is refused
(TypeError: which rows it inserted is not known). The exchange's batch inbox writes its
rows so. Not seen (so not audited):
ORM bulk inserts (``session.execute(insert(Model), [...])``, ``bulk_save_objects``),
statements run on a bare Connection, and UPDATEs and DELETEs — event tables are
append-only; write them as ORM objects.

One staging statement a flush (issue 14): the entries of a flush's inserts are buffered
and staged together by one INSERT when the flush ends (``after_flush``), in their order.

Staged, then chained at commit (issue 11): the listener does not lock the chain's head.
It *stages* the entry (an INSERT into ``audit_pending``, no lock) and marks the Session;
just before that Session commits (``before_commit``), or when it reads the chain itself
(``audit_entry``/``audit_head`` in a statement, or a service reader), `settle` chains the
staged rows: lock the head, append them in order, delete them. The head lock is thus
held from the chaining step to the COMMIT, not from the first audited insert to the end
of the transaction, and concurrent writers only queue for that short step. Once a
transaction has chained (it holds the lock), later entries in it are appended at once.
A staged row lives and dies with the writer's transaction (savepoints included): nothing
is lost if the process dies, nothing is chained for a rolled-back row. ``DEFERRED =
False`` restores the old path (lock at the first insert), kept for the benchmark.

Sealed after commit (issue 14, PostgreSQL, a Session that owns its transaction): the
staged rows commit with the writer's transaction, which never locks the head, and
`seal` chains them right after the COMMIT (``after_commit``) in one autocommit statement
that moves the head only from the head it read (compare-and-set), takes the staged rows
and inserts their entries; a sealer that lost the race reads again. The head is locked
for that one statement instead of from the chaining step to the writer's COMMIT. Every
seal takes every committed staged row (oldest first), so a seal that failed (the
process died after its commit) is made up by the next one or by the checkpoint job.
SQLite, Sessions joined to an outer transaction (tests) and a transaction that already
holds the head (it read the chain) chain before COMMIT as above; ``SEAL_AFTER_COMMIT =
False`` does so everywhere (kept for benchmarks/bench_write_locks.py).

Sealed in the background (issue 14, session 8): the writer does not wait for that seal
either. Its commit wakes the process's sealer thread (`tongban.audit.sealer`), which
seals everything committed and staged in one statement for all the wakes pending when it
starts, so many writers' seals coalesce; the writer's transaction costs its staging
INSERT and nothing more. A reader of the chain still sees every committed entry: a
Session that reads ``audit_entry``, ``audit_head`` or ``audit_pending`` (a SELECT), or a
service reader (`settle`), seals what is committed first, in its own statement on a
side connection (whoever staged it, this process or another). ``SEAL_IN_BACKGROUND =
False`` seals in the writer's thread right after its commit (the session-7 path).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from functools import lru_cache
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import (
    Table,
    TextClause,
    bindparam,
    delete,
    event,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Mapper, ORMExecuteState, Session, SessionTransaction, object_session
from sqlalchemy.sql import visitors

from tongban.audit import sealer
from tongban.audit.domain import (
    GENESIS,
    Entry,
    canonical_json,
    field_digest,
    make_entry,
    typed_fields,
)
from tongban.audit.models import AuditEntry, AuditHead, AuditPending
from tongban.db import on_insert, utcnow
from tongban.kernel import events, lockstats, sidepool
from tongban.kernel.node import settings_of

log = logging.getLogger(__name__)

HEAD_ID = 1

#: Stage entries and chain them at commit (True), or lock the head at the first audited
#: insert and hold it to the end of the transaction (False: the path before issue 11,
#: kept so that benchmarks/bench_audit_writers.py can measure both in one run).
DEFERRED = True

#: On PostgreSQL, with a Session that owns its transaction (bound to an engine): let the
#: staged rows commit with the writer's transaction and seal them right after the commit,
#: in one statement of their own (True); or chain them under the head lock just before
#: the commit, holding it through the COMMIT (False: the path of issue 11, kept so that
#: benchmarks/bench_write_locks.py can measure both in one run).
SEAL_AFTER_COMMIT = True
#: Seal in the process's background sealer thread, the writer not waiting (True); or in
#: the writer's thread right after its commit (False: session 7's path, kept so that a
#: benchmark can compare both).
SEAL_IN_BACKGROUND = True
#: Staged rows one sealing statement chains at most (it loops for more).
SEAL_BATCH = 500
#: Tries of the sealing statement when other sealers keep moving the head first; what
#: is left stays staged for the next sealer or the checkpoint job (never lost).
SEAL_TRIES = 50

#: Session.info keys: this transaction staged entries / this transaction chained (and so
#: holds the head lock until it ends).
_STAGED = "tongban.audit.staged"
_CHAINED = "tongban.audit.chained"
#: Session.info key: when this transaction locked the head (lock timing only).
_HELD_SINCE = "tongban.audit.held_since"
#: Session.info key: entries of the flush under way, staged in one INSERT when it ends.
_BUFFER = "tongban.audit.buffer"
#: Session.info key: entries of rows the caller wrote by a Core insert ahead of the next
#: flush (`buffer_rows`), staged first by the statement that stages that flush's entries.
_AHEAD = "tongban.audit.ahead"
#: Session.info key: [(savepoint, entries)] of `_AHEAD` entries staged inside a savepoint;
#: their rows were written outside it, so if it rolls back they are buffered again.
_AHEAD_STAGED_IN = "tongban.audit.ahead_staged_in"
_StagedIn = tuple[SessionTransaction, list[dict[str, Any]]]
#: Session.info key: a reader just sealed what was committed (`settle`), so the
#: statement it runs next need not seal again.
_READ_SEALED = "tongban.audit.read_sealed"
#: Tables whose reading needs the Session's staged entries chained first.
_CHAIN_TABLES = frozenset({"audit_entry", "audit_head"})
#: Tables whose reading (a SELECT) needs the committed staged entries sealed first, when
#: they are sealed in the background.
_SEALED_TABLES = _CHAIN_TABLES | {"audit_pending"}

#: (subject, actor, body) of an entry.
AuditRecord = tuple[str, str, dict[str, Any]]


def hash_alg(session: Session) -> str:
    """The hash new entries of `session`'s node use (TONGBAN_AUDIT_HASH: sha-256 or sm3)."""
    return settings_of(session).audit_hash


@lru_cache(maxsize=1)
def _statements() -> tuple[Any, Any, Any, Any]:
    """The four statements of an append, built once (building Core statements costs
    more than running them)."""
    head_t = cast(Table, AuditHead.__table__)
    entry_t = cast(Table, AuditEntry.__table__)
    lock = select(head_t.c.seq, head_t.c.hash).where(head_t.c.id == HEAD_ID).with_for_update()
    create = insert(head_t).values(id=HEAD_ID, seq=0, hash=GENESIS)
    add = insert(entry_t)
    move = (
        update(head_t)
        .where(head_t.c.id == HEAD_ID)
        .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
    )
    return lock, create, add, move


def _row(entry: Entry) -> dict[str, Any]:
    """The `audit_entry` columns of `entry`, as the insert statement binds them: its
    stored fields and the typed columns derived from them (`typed_fields`)."""
    return {
        **typed_fields(entry.subject, entry.body),
        "seq": entry.seq,
        "at": entry.at,
        "kind": entry.kind,
        "subject": entry.subject,
        "actor": entry.actor,
        "body": entry.body,
        "alg": entry.alg,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }


def append(
    connection: Connection,
    kind: str,
    subject: str,
    actor: str,
    body: dict[str, Any] | str,
    *,
    alg: str,
    at: datetime | None = None,
) -> Entry:
    """Append one entry in the transaction of `connection`: lock the head row (FOR
    UPDATE on PostgreSQL; SQLite writers are serialised by BEGIN IMMEDIATE), insert the
    entry after it, move the head. The lock is held until that transaction ends, so
    concurrent appenders queue instead of forking the chain."""
    lock, create, add, move = _statements()
    row = connection.execute(lock).first()
    if row is None:  # a database made without the migrations (which insert the row)
        connection.execute(create)
        row = connection.execute(lock).first()
        assert row is not None
    entry = make_entry(
        int(row.seq),
        row.hash,
        at or utcnow(),  # taken under the lock: `at` follows seq
        kind,
        subject,
        actor,
        body,
        alg,
    )
    connection.execute(add, _row(entry))
    connection.execute(move, {"new_seq": entry.seq, "new_hash": entry.hash})
    return entry


def _ref(obj: Any, spec: str | tuple[str, str]) -> str | None:
    prefix, attr = (spec, spec) if isinstance(spec, str) else spec
    if isinstance(spec, str) and prefix.endswith("_id"):
        prefix = prefix[: -len("_id")]
    value = getattr(obj, attr)
    return None if value is None else f"{prefix}:{value}"


def audit_record(obj: Any, alg: str, cls: type[Any] | None = None) -> AuditRecord:
    """(subject, actor, body) for a new row of an audited class (`cls`, by default the
    type of `obj`; `obj` may then be any object carrying the row's attributes)."""
    cls = cls or type(obj)
    custom = getattr(cls, "__audit__", None)
    if callable(custom):
        subject, actor, custom_body = custom(obj)
        return str(subject), str(actor), dict(custom_body)
    mapper = inspect(cls)
    pk_keys = [mapper.get_property_by_column(c).key for c in mapper.primary_key]
    pk = {key: getattr(obj, key) for key in pk_keys}
    subject_spec = getattr(cls, "__audit_subject__", None)
    if subject_spec is None:
        subject = f"{mapper.local_table.name}:{','.join(str(v) for v in pk.values())}"
    else:
        subject = _ref(obj, subject_spec) or "none"
    actor_spec = getattr(cls, "__audit_actor__", None)
    actor = (_ref(obj, actor_spec) if actor_spec else None) or "system"
    body: dict[str, Any] = dict(pk)
    for name in getattr(cls, "__audit_fields__", ()):
        body[name] = getattr(obj, name)
    for name in getattr(cls, "__audit_digest__", ()):
        body[f"{name}_digest"] = field_digest(alg, getattr(obj, name))
    return subject, actor, body


@lru_cache(maxsize=1)
def _pending_statements() -> tuple[Any, Any, Any]:
    """Stage one row; read the staged rows in order; take them (delete, returning what
    they hold)."""
    t = cast(Table, AuditPending.__table__)
    cols = (t.c.id, t.c.kind, t.c.subject, t.c.actor, t.c.body, t.c.alg)
    stage_one = insert(t)
    staged = select(*cols).order_by(t.c.id)
    take = delete(t).returning(*cols)
    return stage_one, staged, take


def stage(
    session: Session,
    kind: str,
    subject: str,
    actor: str,
    body: dict[str, Any] | str,
    *,
    alg: str | None = None,
) -> None:
    """Add an entry to the chain as part of `session`'s transaction: staged without a
    lock and chained when the transaction commits (at once when it already holds the
    head lock, or with DEFERRED off)."""
    alg = alg or hash_alg(session)
    connection = session.connection()
    write_buffered(session)  # (entries buffered by a flush under way come first)
    if not DEFERRED or session.info.get(_CHAINED):
        _mark_chained(session)
        append(connection, kind, subject, actor, body, alg=alg)
        return
    stage_one, _, _ = _pending_statements()
    body_text = body if isinstance(body, str) else canonical_json(body)
    connection.execute(
        stage_one,
        {"kind": kind, "subject": subject, "actor": actor, "body": body_text, "alg": alg},
    )
    session.info[_STAGED] = True


def chain_pending(connection: Connection) -> int:
    """Chain every staged row this transaction sees (its own, and any left committed by
    another), in staging order: lock the head, take the staged rows (one DELETE …
    RETURNING), insert their entries (one executemany) and move the head once: four
    statements under the lock whatever the number of entries. Returns how many were
    chained. The lock is held until the transaction ends."""
    lock, create, add, move = _statements()
    _, _, take = _pending_statements()
    head = connection.execute(lock).first()
    if head is None:  # a database made without the migrations (which insert the row)
        connection.execute(create)
        head = connection.execute(lock).first()
        assert head is not None
    rows = sorted(connection.execute(take).all(), key=lambda r: r.id)
    if not rows:
        return 0
    seq, prev, at = int(head.seq), head.hash, utcnow()  # taken under the lock
    params: list[dict[str, Any]] = []
    for row in rows:
        entry = make_entry(seq, prev, at, row.kind, row.subject, row.actor, row.body, row.alg)
        params.append(_row(entry))
        seq, prev = entry.seq, entry.hash
    connection.execute(add, params)
    connection.execute(move, {"new_seq": seq, "new_hash": prev})
    return len(rows)


def sequence(session: Session) -> int:
    """Chain every staged row visible to `session` (its own and any committed but not
    chained: a writer that bypassed the Session's commit); for the audit job and
    checkpoints. Takes the head lock for the rest of the transaction."""
    if session.info.get(_AHEAD):
        write_buffered(session)
    session.info.pop(_STAGED, None)
    _mark_chained(session)
    return chain_pending(session.connection())


def settle(session: Session) -> int:
    """Chain what `session`'s transaction staged, so that it can read its own entries
    (and before it commits); with background sealing, seal what others committed first.
    Returns how many of its own it chained."""
    if session.info.get(_AHEAD):
        write_buffered(session)
    if seal_for_reader(session):
        session.info[_READ_SEALED] = True
    if not session.info.get(_STAGED):
        return 0
    session.info.pop(_STAGED, None)
    _mark_chained(session)
    return chain_pending(session.connection())


def _mark_chained(session: Session) -> None:
    """`session`'s transaction is about to lock the head and keeps it to its end."""
    if not session.info.get(_CHAINED):
        session.info[_CHAINED] = True
        if lockstats.enabled():
            session.info.setdefault(_HELD_SINCE, time.perf_counter())


# --- sealing after commit (PostgreSQL) ----------------------------------------------------

_SEAL_READ = text(
    "SELECT h.seq AS head_seq, h.hash AS head_hash, "
    "p.id, p.kind, p.subject, p.actor, p.body, p.alg "
    "FROM audit_head AS h LEFT JOIN LATERAL "
    "(SELECT * FROM audit_pending ORDER BY id LIMIT :limit) AS p ON true "
    "WHERE h.id = :head ORDER BY p.id"
)
# One statement moves the head (only from the head the sealer read: a compare-and-set),
# takes the staged rows and inserts their entries; if another sealer moved the head
# first, it changes nothing and the sealer reads again.
_SEAL_MOVE = text(
    "WITH moved AS ("
    " UPDATE audit_head SET seq = :new_seq, hash = :new_hash"
    " WHERE id = :head AND seq = :old_seq AND hash = :old_hash RETURNING id"
    "), taken AS ("
    " DELETE FROM audit_pending"
    " WHERE id = ANY(CAST(:ids AS bigint[])) AND EXISTS (SELECT 1 FROM moved) RETURNING id"
    ") "
    "INSERT INTO audit_entry (seq, at, kind, subject, actor, body, alg, prev_hash, hash,"
    " action, to_state, occurred_at, subject_id) "
    "SELECT e.seq, e.at, e.kind, e.subject, e.actor, e.body, e.alg, e.prev_hash, e.hash,"
    " e.action, e.to_state, e.occurred_at, e.subject_id "
    "FROM unnest(CAST(:seqs AS bigint[]), CAST(:ats AS timestamptz[]),"
    " CAST(:kinds AS text[]), CAST(:subjects AS text[]), CAST(:actors AS text[]),"
    " CAST(:bodies AS text[]), CAST(:algs AS text[]), CAST(:prevs AS text[]),"
    " CAST(:hashes AS text[]), CAST(:actions AS text[]), CAST(:to_states AS text[]),"
    " CAST(:occurreds AS timestamptz[]), CAST(:subject_ids AS uuid[]))"
    " AS e(seq, at, kind, subject, actor, body, alg, prev_hash, hash,"
    " action, to_state, occurred_at, subject_id) "
    "WHERE EXISTS (SELECT 1 FROM moved) "
    # how long the server has been at it when the last entry is in: the head's hold
    # (but for the commit just after), for the lock timing
    "RETURNING seq, extract(epoch FROM clock_timestamp() - statement_timestamp()) AS held"
)
#: The typed columns (`typed_fields`) and the arrays _SEAL_MOVE binds them as.
_SEAL_TYPED = (
    ("action", "actions"),
    ("to_state", "to_states"),
    ("occurred_at", "occurreds"),
    ("subject_id", "subject_ids"),
)
#: The sealing connections' server settings: ``synchronous_commit`` off. A seal lost in
#: a crash loses nothing, since it is one transaction whose staged rows come back with it
#: and are sealed again; and any later transaction that commits durably flushes the WAL
#: past it (the WAL is flushed in order), so no durable checkpoint or message can name a
#: seal that was lost.
_SEALER_OPTIONS = "-c synchronous_commit=off"
#: A reader's seal (`seal_for_reader`) gives up after waiting this long for a lock: the
#: reader's own transaction may hold one that the seal needs (it deleted chain rows, say),
#: and it must not wait for itself. What it leaves is the next seal's.
_READER_OPTIONS = _SEALER_OPTIONS + " -c lock_timeout=2000"
#: The first staged row, if any (the same index order the seal reads them in).
_ANY_STAGED = text("SELECT id FROM audit_pending ORDER BY id LIMIT 1")


def seal(engine: Engine, options: str = _SEALER_OPTIONS) -> int:
    """Chain the staged rows committed on `engine`'s database (PostgreSQL), oldest
    first, up to `SEAL_BATCH` per statement: read the head and the staged rows (one
    statement, no lock), compute the entries, then move the head, take the rows and
    insert the entries in one autocommit statement that does so only if the head is
    still the one read. The head row is locked for that one statement. Returns how many
    were chained; rows still staged when `SEAL_TRIES` runs out wait for the next seal
    or the checkpoint job (`sequence`)."""
    sealed = 0
    with sidepool.side_engine(engine, options).connect() as conn:
        for _ in range(SEAL_TRIES):
            rows = conn.execute(_SEAL_READ, {"head": HEAD_ID, "limit": SEAL_BATCH}).all()
            pending = [r for r in rows if r.id is not None]
            if not pending:  # (no head row at all: the in-transaction path creates it)
                return sealed
            seq, prev, at = int(rows[0].head_seq), rows[0].head_hash, utcnow()
            old_seq, old_hash = seq, prev
            entries: list[Entry] = []
            for r in pending:
                entry = make_entry(seq, prev, at, r.kind, r.subject, r.actor, r.body, r.alg)
                entries.append(entry)
                seq, prev = entry.seq, entry.hash
            params = {
                "head": HEAD_ID,
                "new_seq": seq,
                "new_hash": prev,
                "old_seq": old_seq,
                "old_hash": old_hash,
                "ids": [r.id for r in pending],
                "seqs": [e.seq for e in entries],
                "ats": [e.at for e in entries],
                "kinds": [e.kind for e in entries],
                "subjects": [e.subject for e in entries],
                "actors": [e.actor for e in entries],
                "bodies": [e.body for e in entries],
                "algs": [e.alg for e in entries],
                "prevs": [e.prev_hash for e in entries],
                "hashes": [e.hash for e in entries],
            }
            typed = [typed_fields(e.subject, e.body) for e in entries]
            for column, name in _SEAL_TYPED:
                params[name] = [t[column] for t in typed]
            t0 = time.perf_counter()
            moved = conn.execute(_SEAL_MOVE, params).all()
            if not moved:  # another sealer moved the head first: read again
                continue
            if lockstats.enabled():
                lockstats.record("audit.seal", float(max(r.held for r in moved)))
                lockstats.record("audit.seal.wall", time.perf_counter() - t0)
            sealed += len(pending)
            if len(pending) < SEAL_BATCH:
                return sealed
    log.warning("audit: staged entries left for the next seal after %d tries", SEAL_TRIES)
    return sealed


def _seals_after_commit(session: Session) -> Engine | None:
    """The engine to seal on after `session` commits, or None to chain before."""
    if not (DEFERRED and SEAL_AFTER_COMMIT) or session.info.get(_CHAINED):
        return None
    bind = session.get_bind()
    # A Session joined to a transaction it does not own (tests) never really commits.
    if not isinstance(bind, Engine) or bind.dialect.name != "postgresql":
        return None
    return bind


def _seal_in_background(engine: Engine) -> int:
    return seal(engine)  # (looked up when called: tests replace `seal`)


def seal_for_reader(session: Session) -> bool:
    """Before `session` reads the chain: seal what is committed and staged, when entries
    are sealed in the background (else the writers sealed theirs before their commit
    returned). A failed seal is logged, not raised: the reader then sees the chain as
    the last seal left it. Whether the chain is sealed for the reader (a seal ran, or
    nothing staged was there to seal)."""
    if not SEAL_IN_BACKGROUND:
        return False
    engine = _seals_after_commit(session)
    if engine is None:
        return False
    # Nothing staged that the reader sees (one indexed read on its own connection, no
    # lock): nothing committed to seal, and no side connection to open for it. A short
    # command (the clearing's fold) otherwise paid a second connection's set-up (issue 14).
    if session.connection().execute(_ANY_STAGED).first() is None:
        return True
    try:
        seal(engine, _READER_OPTIONS)
    except Exception:
        log.exception("audit: sealing before a read failed; the next seal takes the rows")
    return True


def drain(timeout: float | None = 30.0) -> bool:
    """Wait until this process's background seals asked so far have run (tests,
    benchmarks); False on timeout."""
    return sealer.drain(timeout)


def _after_insert(mapper: Mapper[Any], connection: Connection, target: Any) -> None:
    kind = getattr(mapper.class_, "__audit_kind__", None)
    if not kind:
        return
    session = object_session(target)
    assert session is not None  # a flushed object belongs to the flushing Session
    alg = hash_alg(session)
    subject, actor, body = audit_record(target, alg)
    if not DEFERRED or session.info.get(_CHAINED):
        _mark_chained(session)
        append(connection, kind, subject, actor, body, alg=alg)
        return
    # Buffered: one INSERT stages every entry of this flush when it ends (_after_flush).
    session.info.setdefault(_BUFFER, []).append(
        {"kind": kind, "subject": subject, "actor": actor, "body": canonical_json(body), "alg": alg}
    )


def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    # What an earlier flush that failed had buffered went with its rollback.
    session.info.pop(_BUFFER, None)


def _after_flush(session: Session, _context: Any) -> None:
    write_buffered(session)


def write_buffered(session: Session) -> int:
    """Stage the entries buffered by this flush's inserts (or by `stage_rows`) in one
    statement, in their order, after those `buffer_rows` holds (rows written before
    this flush); how many."""
    rows: list[dict[str, Any]] | None = session.info.pop(_BUFFER, None)
    ahead: list[dict[str, Any]] | None = session.info.pop(_AHEAD, None)
    if ahead:
        savepoint = session.get_nested_transaction()
        if savepoint is not None:  # buffered again if it rolls back (_after_soft_rollback)
            session.info.setdefault(_AHEAD_STAGED_IN, []).append((savepoint, ahead))
        rows = [*ahead, *rows] if rows else ahead
    if not rows:
        return 0
    stage_one, _, _ = _pending_statements()
    session.connection().execute(stage_one, rows)
    session.info[_STAGED] = True
    return len(rows)


def stage_rows(session: Session, cls: type[Any], values: list[dict[str, Any]]) -> int:
    """Audit rows of `cls` written by a Core ``insert()`` (which no flush sees): the same
    entries as if each had been inserted by a flush, staged in one statement. `values`
    are the rows' column values by attribute name. How many."""
    kind = getattr(cls, "__audit_kind__", None)
    if not kind or not values:
        return 0
    alg = hash_alg(session)
    chained = not DEFERRED or bool(session.info.get(_CHAINED))
    connection = session.connection()
    out = []
    for v in values:
        subject, actor, body = audit_record(SimpleNamespace(**v), alg, cls)
        if chained:
            _mark_chained(session)
            append(connection, kind, subject, actor, body, alg=alg)
            continue
        out.append(_pending(kind, subject, actor, body, alg))
    if out:
        session.info.setdefault(_BUFFER, []).extend(out)
        write_buffered(session)
    return len(values)


def _pending(kind: str, subject: str, actor: str, body: Any, alg: str) -> dict[str, Any]:
    """An entry waiting to be staged (the columns of its staging row)."""
    return {
        "kind": kind,
        "subject": subject,
        "actor": actor,
        "body": canonical_json(body),
        "alg": alg,
    }


def buffer_rows(session: Session, cls: type[Any], values: list[dict[str, Any]]) -> int:
    """Audit rows of `cls` that the caller has just written by a Core ``insert()`` on
    `session`'s connection (which no flush and no `do_orm_execute` hook sees): the same
    entries as if each row had been inserted by a flush, held until the next statement
    that stages entries — the next flush's (they come first in it), `stage`, a read of
    the chain, or the commit — so that they cost no statement of their own (issue 14).
    `values` are the rows' column values by attribute name. A transaction that already
    holds the head, or a savepoint, gets them at once (`stage_rows`): inside a savepoint
    the rows and their entries then stay or go together. How many."""
    if not values or not getattr(cls, "__audit_kind__", None):
        return 0
    if not DEFERRED or session.info.get(_CHAINED) or session.get_nested_transaction() is not None:
        return stage_rows(session, cls, values)
    kind = cls.__audit_kind__
    alg = hash_alg(session)
    out = session.info.setdefault(_AHEAD, [])
    for v in values:
        subject, actor, body = audit_record(SimpleNamespace(**v), alg, cls)
        out.append(_pending(kind, subject, actor, body, alg))
    return len(values)


def _before_commit(session: Session) -> None:
    if session.info.get(_AHEAD):  # rows written by Core with no flush after them
        write_buffered(session)
    if _seals_after_commit(session) is not None:
        return  # sealed after the commit: the staged rows commit with the transaction
    if not (session.info.get(_STAGED) or session.new):
        return
    session.flush()  # the last flush (the only one, after add + commit) may stage more
    settle(session)


def _after_commit(session: Session) -> None:
    if not session.info.get(_STAGED) or session.get_nested_transaction() is not None:
        return  # nothing staged, or only a savepoint was released
    engine = _seals_after_commit(session)
    if engine is None:
        return
    session.info.pop(_STAGED, None)
    if SEAL_IN_BACKGROUND:  # the writer goes on; the process's sealer thread seals
        sealer.sealer_for(engine, _seal_in_background).wake()
        return
    try:
        seal(engine)
    except Exception:  # the commit happened: the rows stay staged for the next seal
        log.exception("audit: sealing after commit failed; left staged for the next seal")


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the Session's outermost transaction ended
        session.info.pop(_BUFFER, None)
        session.info.pop(_AHEAD, None)
        session.info.pop(_AHEAD_STAGED_IN, None)
        session.info.pop(_STAGED, None)
        session.info.pop(_CHAINED, None)
        session.info.pop(_READ_SEALED, None)
        since = session.info.pop(_HELD_SINCE, None)
        if since is not None:
            lockstats.record("audit.head", time.perf_counter() - since)


def _after_soft_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    # A rolled-back savepoint takes its staged rows with it, but may also have taken
    # rows it chained (and its head lock, on PostgreSQL): chain again from the staging
    # table at commit, and lock again before appending directly.
    session.info.pop(_BUFFER, None)
    if session.info.pop(_CHAINED, None):
        session.info[_STAGED] = True
    # Entries of rows written outside a savepoint that were staged inside it, which has
    # now been rolled back (or an outer one that holds it): their rows stay, so they
    # wait for the next staging statement again, ahead of anything buffered since.
    staged_in: list[_StagedIn] | None = session.info.get(_AHEAD_STAGED_IN)
    if staged_in and previous_transaction.nested:
        undone: list[_StagedIn] = []
        kept: list[_StagedIn] = []
        for savepoint, entries in staged_in:
            t: SessionTransaction | None = savepoint
            while t is not None and t is not previous_transaction:
                t = t.parent
            (undone if t is not None else kept).append((savepoint, entries))
        if undone:
            session.info[_AHEAD_STAGED_IN] = kept
            back = [e for _, entries in undone for e in entries]
            session.info[_AHEAD] = [*back, *session.info.get(_AHEAD, [])]


def _touches_chain(statement: Any, tables: frozenset[str] = _CHAIN_TABLES) -> bool:
    if isinstance(statement, TextClause):
        return any(name in statement.text for name in tables)
    return any(
        isinstance(element, Table) and element.name in tables
        for element in visitors.iterate(statement)
    )


def _selects_from(statement: Any, tables: frozenset[str]) -> bool:
    """Whether a SELECT reads one of `tables` in its columns or its FROM list (joins,
    aliases and subqueries there included; a table only in its WHERE clause is not
    seen). Cheap (~10 µs): it runs before every SELECT of a Session on PostgreSQL,
    where a full traversal of the statement cost ~10 times more."""
    if isinstance(statement, TextClause):
        return any(name in statement.text for name in tables)
    todo = [*getattr(statement, "columns_clause_froms", ()), *getattr(statement, "_from_obj", ())]
    for join in getattr(statement, "_setup_joins", ()):  # .join(target, …): a table or a class
        todo.append(getattr(join[0], "__table__", join[0]))
    while todo:
        f = todo.pop()
        if getattr(f, "name", None) in tables:
            return True
        todo.extend(
            x for x in (getattr(f, "left", None), getattr(f, "right", None)) if x is not None
        )
        inner = getattr(f, "element", None)
        if inner is not None:
            todo.append(inner)
        todo.extend(getattr(f, "columns_clause_froms", ()))
    return False


def _reads(state: ORMExecuteState) -> bool:
    if isinstance(state.statement, TextClause):
        return state.statement.text.lstrip()[:6].upper() in ("SELECT", "WITH")
    return bool(state.is_select)


@lru_cache(maxsize=256)
def _audited_class(table: Table) -> type[Any] | None:
    """The mapped class of `table` that declares an audit kind, if any."""
    from tongban.db import Base

    for mapper in Base.registry.mappers:
        if mapper.local_table is table and getattr(mapper.class_, "__audit_kind__", None):
            return mapper.class_
    return None


def _core_insert_rows(state: ORMExecuteState, cls: type[Any]) -> list[dict[str, Any]]:
    """The rows a Core ``insert()`` writes, by attribute name: from ``.values(...)`` (one
    row or several) or from the executemany parameters."""
    stmt: Any = state.statement
    mapper = inspect(cls)
    by_column = {c.key: mapper.get_property_by_column(c).key for c in mapper.columns}

    def named(d: dict[Any, Any]) -> dict[str, Any]:
        out = {}
        for k, v in d.items():
            key = k if isinstance(k, str) else k.key
            out[by_column.get(key, key)] = v
        return out

    if stmt._multi_values:
        return [named(d) for group in stmt._multi_values for d in group]
    base = named(dict(stmt._values or {}))
    params: Any = state.parameters
    if isinstance(params, list):
        return [{**base, **named(dict(p))} for p in params]
    return [{**base, **named(dict(params or {}))}]


def _audited_core_insert(state: ORMExecuteState, cls: type[Any]) -> Any:
    """A Core ``insert()`` into an audited table, seen as a flush's inserts are: its rows'
    entries are staged after it ran. With a conflict clause (``ON CONFLICT DO NOTHING``)
    only the rows it RETURNs (by primary key) were written, so it must return the key."""
    stmt: Any = state.statement
    rows = _core_insert_rows(state, cls)
    mapper = inspect(cls)
    pk = [mapper.get_property_by_column(c).key for c in mapper.primary_key]
    returned = {c.key for c in stmt._returning} if stmt._returning else set()
    clause = getattr(stmt, "_post_values_clause", None)
    conflict = clause is not None
    if getattr(stmt, "select", None) is not None or (
        conflict and "DoNothing" not in type(clause).__name__
    ):  # INSERT … SELECT, or an upsert: which rows it inserted is not known here
        raise TypeError(f"an audited table ({cls.__name__}) takes no INSERT … SELECT or upsert")
    if conflict and not set(pk) <= returned:
        raise TypeError(
            f"an audited insert into {cls.__name__} with a conflict clause must return its key"
        )
    result = state.invoke_statement()
    if not conflict:  # every row was written (or the statement raised)
        stage_rows(state.session, cls, rows)
        return result
    frozen = result.freeze()  # the caller still gets the rows returned
    written = {tuple(r[k] for k in pk) for r in frozen().mappings()}
    stage_rows(state.session, cls, [r for r in rows if tuple(r.get(k) for k in pk) in written])
    return frozen()


def _do_orm_execute(state: ORMExecuteState) -> Any:
    # A reader of the chain sees what others committed (sealed in the background) …
    if (
        SEAL_IN_BACKGROUND
        and not state.session.info.pop(_READ_SEALED, None)
        and _reads(state)
        and _selects_from(state.statement, _SEALED_TABLES)
    ):
        seal_for_reader(state.session)
    # … and its own entries: a transaction reading the chain chains its staged rows first.
    info = state.session.info
    if (info.get(_STAGED) or info.get(_AHEAD)) and _touches_chain(state.statement):
        settle(state.session)
        state.session.info.pop(_READ_SEALED, None)
    # A Core insert into an audited table: no flush sees it, so it is audited here.
    if state.is_insert and not state.is_orm_statement:
        table = getattr(state.statement, "table", None)
        cls = _audited_class(table) if isinstance(table, Table) else None
        if cls is not None:
            return _audited_core_insert(state, cls)
    return None


on_insert(_after_insert)


@events.subscribe(events.RowsWritten)
def _rows_written(session: Session, event: events.RowsWritten) -> None:
    """Rows written by a Core INSERT on the session's connection (`history.insert_new`):
    their entries held for the next staging statement (`buffer_rows`)."""
    buffer_rows(session, event.cls, list(event.rows))


@events.subscribe(events.Changed)
def _record_changed(session: Session, event: events.Changed) -> None:
    """A change announced through kernel.events: the same entry as
    audit.service.record_change writes (kind "change")."""
    body: dict[str, Any] = {"what": event.what, "before": event.before, "after": event.after}
    if event.reason:
        body["reason"] = event.reason
    body.update(event.detail)
    stage(session, "change", event.subject, event.actor, body)


for _name, _fn in (
    ("before_flush", _before_flush),
    ("after_flush", _after_flush),
    ("before_commit", _before_commit),
    ("after_commit", _after_commit),
    ("after_transaction_end", _after_transaction_end),
    ("after_soft_rollback", _after_soft_rollback),
    ("do_orm_execute", _do_orm_execute),
):
    if not event.contains(Session, _name, _fn):
        event.listen(Session, _name, _fn)
