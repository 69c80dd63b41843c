"""One numbering service for human-readable numbers (case numbers, work-order numbers,
licence serials), counted per (scope, period) in the table ``number_counter``. The
format of a number is the caller's::

    from tongban.kernel import numbering

    seq = numbering.next_value(session, "case:310100", "20261128")   # 1, 2, 3 …
    number = f"310100{'20261128'}{seq:06d}"

    serial = numbering.next_value(session, "licence:LT01:91310000MA1K000000", gapless=True)

``scope`` names what is counted and for whom (prefix it with the context: ``case:``,
``ticket:``, ``licence:``); ``period`` restarts the count (a day ``YYYYMMDD``, a year,
or ``""`` for a counter that never restarts).

Two ways of counting (issue 14: no single row may be a queue for a whole city):

- **Blocks (the default, on PostgreSQL).** A process takes a block of numbers for
  (scope, period) in one statement of its own, in autocommit on a connection of its
  own (``INSERT … ON CONFLICT DO UPDATE SET last = last + n RETURNING last``): the
  counter row is locked only for that statement, not for the caller's transaction, and
  the process then hands the block out from memory (thread-safe). The block grows
  (1, 2, 4 … `BLOCK_MAX`) while a process uses its blocks up within `BLOCK_WINDOW`
  seconds and shrinks again when it does not, so a busy city's counter row is touched
  once every few dozen numbers and a quiet one's numbers stay close together.
  *Given up*: numbers are **not gap-free** and **not in time order across processes**.
  A rolled-back transaction does not give its number back; the unused rest of a block
  is lost when the process exits (or forks: a child never reuses its parent's block);
  two processes hand out interleaved blocks (process A 1–4, process B 5–8, A's 3 may be
  given after B's 6). Numbers stay **unique** (a block is never handed out twice: the
  counter row only grows, in committed statements) and **increase within a process**.
- **Gapless** (``gapless=True``, and every counter on SQLite): the counter row is
  bumped in the caller's transaction (one ``INSERT … ON CONFLICT DO UPDATE …
  RETURNING``) and stays locked until that transaction ends, so numbers follow commit
  order without gaps and a rolled-back transaction gives its number back — at the cost
  of serialising every taker of the scope for the length of its transaction. For
  numbers whose sequence means something: licence serials (GB/T 36904: an issuer's
  serials are counted and audited as a series), card numbers (printed, issued as a
  series), the sequences of published states (``kernel.replication.Published``: a
  receiver keeps only a newer one, so they must follow commit order) and version
  counters read back with `peek` (``card.revocations``). On SQLite (the embedded single
  node) every transaction holds the write lock from its start anyway (``BEGIN
  IMMEDIATE``), so blocks would gain nothing there.

A scope is always taken the same way: a transaction that took a scope gaplessly (and
so holds its row) and then asked for a block of it would wait for itself.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Integer, String, Table, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Mapped, Session, SessionTransaction, mapped_column

from tongban.db import Base
from tongban.kernel import lockstats, sidepool


class NumberCounter(Base):
    """Per scope and period, the last number handed out (gapless) or reserved (blocks)."""

    __tablename__ = "number_counter"
    scope: Mapped[str] = mapped_column(String(80), primary_key=True)
    period: Mapped[str] = mapped_column(String(16), primary_key=True, default="")
    last: Mapped[int] = mapped_column(Integer, default=0)


#: Blocks on PostgreSQL (True), or every counter gapless in the caller's transaction
#: (False: the path before issue 14, kept so that benchmarks/bench_write_locks.py can
#: measure both in one run).
BLOCKS = True
#: The largest block a process takes at once (its numbers lost at most, per scope and
#: period, when it exits).
BLOCK_MAX = 64
#: A block used up within this many seconds of being taken makes the next one twice as
#: large; one that lasted longer, half as large.
BLOCK_WINDOW = 1.0


def next_value(session: Session, scope: str, period: str = "", *, gapless: bool = False) -> int:
    """The next number of `scope` in `period` (1 for the first): from this process's
    block on PostgreSQL, or counted in the caller's transaction with `gapless` (and on
    SQLite). See the module's documentation for what blocks give up."""
    bind = session.get_bind()
    if gapless or not BLOCKS or bind.dialect.name != "postgresql":
        return _in_transaction(session, scope, period)
    engine = bind.engine if isinstance(bind, Connection) else bind
    return _from_block(engine, scope, period)


def peek(session: Session, scope: str, period: str = "") -> int:
    """The last number taken (0 if none), without taking one: for a gapless scope the
    last handed out (as this transaction sees it); for blocks the end of the last block
    any process reserved."""
    row = session.get(NumberCounter, (scope, period))
    return row.last if row else 0


# --- gapless: the counter row in the caller's transaction -------------------------------


def _in_transaction(session: Session, scope: str, period: str) -> int:
    name = session.get_bind().dialect.name
    dialect_insert = postgresql.insert if name == "postgresql" else sqlite.insert
    table = cast(Table, NumberCounter.__table__)
    stmt = (
        dialect_insert(table)
        .values(scope=scope, period=period, last=1)
        .on_conflict_do_update(
            index_elements=[table.c.scope, table.c.period],
            set_={"last": table.c.last + 1},
        )
        .returning(table.c.last)
    )
    if lockstats.enabled():  # held from here to the end of the transaction
        session.info.setdefault(_HELD, {}).setdefault((scope, period), time.perf_counter())
    return int(session.execute(stmt).scalar_one())


_HELD = "tongban.numbering.held"


@event.listens_for(Session, "after_transaction_end")
def _released(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None and _HELD in session.info:
        now = time.perf_counter()
        for t0 in session.info.pop(_HELD).values():
            lockstats.record("number.row", now - t0)


# --- blocks: taken in a short statement of their own, handed out from memory -----------


@dataclass
class _Block:
    next: int = 1
    end: int = 0  # the block is used up when next > end
    size: int = 0  # the size of the last block taken (0: none yet)
    taken: float = 0.0  # when it was taken (time.monotonic)


_guard = threading.Lock()
_blocks: dict[tuple[str, str, str], _Block] = {}
_key_locks: dict[tuple[str, str, str], threading.Lock] = {}
#: Blocks kept in memory before the used-up ones are dropped.
_KEEP = 4096
_TAKE = text(
    "INSERT INTO number_counter (scope, period, last) VALUES (:scope, :period, :n) "
    "ON CONFLICT (scope, period) DO UPDATE SET last = number_counter.last + :n "
    # how long the server has been at it: the row's hold but for the commit just after
    "RETURNING last, extract(epoch FROM clock_timestamp() - statement_timestamp()) AS held"
)


def _from_block(engine: Engine, scope: str, period: str) -> int:
    side = sidepool.side_engine(engine)
    key = (engine.url.render_as_string(hide_password=False), scope, period)
    with _guard:
        block = _blocks.get(key)
        if block is not None and block.next <= block.end:
            block.next += 1
            return block.next - 1
        if len(_blocks) > _KEEP:  # periods gone by: their rests are lost, never reused
            for k in [k for k, b in _blocks.items() if b.next > b.end]:
                del _blocks[k]
                _key_locks.pop(k, None)
        key_lock = _key_locks.setdefault(key, threading.Lock())
    with key_lock:  # one thread of this process takes the next block; the others wait
        with _guard:
            block = _blocks.setdefault(key, _Block())
            if block.next <= block.end:  # another thread took one meanwhile
                block.next += 1
                return block.next - 1
            now = time.monotonic()
            if block.size == 0:
                size = 1
            elif now - block.taken <= BLOCK_WINDOW:
                size = min(BLOCK_MAX, block.size * 2)
            else:
                size = max(1, block.size // 2)
        with side.connect() as conn:
            t0 = time.perf_counter()
            row = conn.execute(_TAKE, {"scope": scope, "period": period, "n": size}).one()
            last = int(row.last)
            if lockstats.enabled():
                lockstats.record("number.block", float(row.held))
                lockstats.record("number.block.wall", time.perf_counter() - t0)
        with _guard:
            _blocks[key] = _Block(next=last - size + 2, end=last, size=size, taken=now)
            return last - size + 1


def forget() -> None:
    """Drop this process's blocks (their numbers are lost, never reused): after a fork,
    and for a process that recreated its database under the same URL."""
    with _guard:
        _blocks.clear()
        _key_locks.clear()


def _after_fork() -> None:
    # The child must not hand out its parent's numbers.
    global _guard
    _guard = threading.Lock()
    _blocks.clear()
    _key_locks.clear()


os.register_at_fork(after_in_child=_after_fork)
