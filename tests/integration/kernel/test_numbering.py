"""kernel.numbering: blocks of numbers taken in a short statement of their own (on
PostgreSQL), gapless counters in the caller's transaction, and case numbers on them.
Uniqueness is checked with threads and with separate processes on both backends."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from tongban.cases.models import Case
from tongban.kernel import numbering
from tongban.kernel.numbering import NumberCounter

from builders import make_case


def _blocks(session: Session) -> bool:
    """Whether this backend hands out blocks (PostgreSQL) or counts in the transaction."""
    return session.get_bind().dialect.name == "postgresql"


def _drop(factory: sessionmaker[Session], scope: str) -> None:
    with factory() as s:
        s.execute(delete(NumberCounter).where(NumberCounter.scope == scope))
        s.commit()


def test_gapless_numbers_count_per_scope_and_period(session):
    scope = f"test:{uuid.uuid4().hex[:8]}"
    take = [numbering.next_value(session, scope, "20260101", gapless=True) for _ in range(3)]
    assert take == [1, 2, 3]
    assert numbering.next_value(session, scope, "20260102", gapless=True) == 1
    assert numbering.next_value(session, f"{scope}b", gapless=True) == 1
    assert numbering.peek(session, scope, "20260101") == 3
    assert numbering.peek(session, "test:none") == 0


def test_numbers_increase_per_scope_and_period(committing_factory):
    scope = f"test:{uuid.uuid4().hex[:8]}"
    try:
        with committing_factory() as s:
            got = [numbering.next_value(s, scope, "20260101") for _ in range(40)]
            # Unique and increasing in one process; a new period or scope starts at 1.
            assert got == sorted(set(got)) and got[0] == 1
            assert numbering.next_value(s, scope, "20260102") == 1
            assert numbering.next_value(s, f"{scope}b") == 1
            s.commit()
        with committing_factory() as s:
            # Every number handed out is covered by the counter row (reserved).
            reserved = numbering.peek(s, scope, "20260101")
        if _blocks(s):
            # Taken quickly one after another, the blocks grew: far fewer bumps of the
            # city's row than numbers (1 + 2 + 4 + 8 + 16 + 32 >= 40: six blocks).
            assert 40 <= reserved <= 63
        else:
            assert got == list(range(1, 41)) and reserved == 40
    finally:
        _drop(committing_factory, scope)
        _drop(committing_factory, f"{scope}b")


def test_a_block_is_taken_outside_the_callers_transaction(session, committing_factory):
    """On PostgreSQL the counter row is bumped and released at once: another
    transaction takes numbers while the first is still open, without waiting."""
    if not _blocks(session):
        pytest.skip("SQLite counts in the caller's transaction (BEGIN IMMEDIATE)")
    scope = f"test:{uuid.uuid4().hex[:8]}"
    numbering.forget()
    try:
        first = numbering.next_value(session, scope, "p")  # the test's transaction stays open
        numbering.forget()  # as another process would: no block in memory
        with committing_factory() as other:
            other.execute(select(1))
            second = numbering.next_value(other, scope, "p")  # would wait on a held row
            other.commit()
        assert second > first
    finally:
        _drop(committing_factory, scope)


def test_a_rollback_does_not_give_a_block_number_back(committing_factory):
    scope = f"test:{uuid.uuid4().hex[:8]}"
    try:
        with committing_factory() as s:
            first = numbering.next_value(s, scope, "p")
            s.rollback()
        with committing_factory() as s:
            again = numbering.next_value(s, scope, "p")
            s.commit()
            if _blocks(s):
                assert again > first  # never reused, even though it was rolled back
            else:
                assert again == first  # SQLite: counted in the transaction, given back
    finally:
        _drop(committing_factory, scope)


def test_a_rollback_gives_a_gapless_number_back(committing_factory):
    scope = f"test:{uuid.uuid4().hex[:8]}"
    try:
        with committing_factory() as s:
            assert numbering.next_value(s, scope, gapless=True) == 1
            s.rollback()
        with committing_factory() as s:
            assert numbering.next_value(s, scope, gapless=True) == 1
            s.commit()
        with committing_factory() as s:
            assert numbering.peek(s, scope) == 1
    finally:
        _drop(committing_factory, scope)


def test_forgotten_blocks_are_never_handed_out_again(committing_factory):
    """After a fork (or `forget`) the rest of a block is lost, not reused."""
    scope = f"test:{uuid.uuid4().hex[:8]}"
    try:
        with committing_factory() as s:
            got = [numbering.next_value(s, scope, "p") for _ in range(8)]
            numbering.forget()
            numbering._after_fork()  # what a forked child runs
            after = numbering.next_value(s, scope, "p")
            s.commit()
        assert after > max(got)
    finally:
        _drop(committing_factory, scope)


def test_case_numbers_keep_their_format_and_count_on(session):
    first, second = make_case(session), make_case(session)
    # the receiving city (the applicant's), the local day, the city's sequence that day
    assert re.fullmatch(rf"{first.receiving_city}\d{{8}}\d{{6}}", first.number), first.number
    day = first.number[6:14]
    assert int(second.number[-6:]) > int(first.number[-6:])
    assert numbering.peek(session, f"case:{first.receiving_city}", day) >= int(second.number[-6:])
    if not _blocks(session):  # SQLite: gapless, in the caller's transaction
        assert int(second.number[-6:]) == int(first.number[-6:]) + 1
    numbers = session.scalars(select(Case.number).where(Case.id.in_([first.id, second.id]))).all()
    assert sorted(numbers) == sorted([first.number, second.number])


@pytest.mark.parametrize("gapless", [False, True], ids=["blocks", "gapless"])
def test_concurrent_threads_never_get_one_number(committing_factory, gapless):
    """Four threads with their own sessions take numbers of one scope at once and
    commit: every number is handed out exactly once."""
    factory = committing_factory
    scope = f"test:{uuid.uuid4().hex[:8]}"
    barrier = threading.Barrier(4)

    def take(_: int) -> list[int]:
        barrier.wait(timeout=30)
        got = []
        for _ in range(25):
            with factory() as s:
                got.append(numbering.next_value(s, scope, "p", gapless=gapless))
                s.commit()
        return got

    try:
        with ThreadPoolExecutor(4) as pool:
            numbers = [n for chunk in pool.map(take, range(4)) for n in chunk]
        assert len(set(numbers)) == 100
        with factory() as s:
            assert max(numbers) <= numbering.peek(s, scope, "p")
        if gapless:
            assert sorted(numbers) == list(range(1, 101))
    finally:
        _drop(factory, scope)


#: A child process: its own engine, sessions and blocks; starts at a given instant (so
#: that the three overlap) and prints the numbers of committed and of rolled-back
#: transactions.
_CHILD = """
import json, sys, time
from tongban.db import make_engine, session_factory
from tongban.kernel import numbering
url, scope, count, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
factory = session_factory(make_engine(url))
time.sleep(max(0.0, start - time.time()))
committed, rolled_back = [], []
for i in range(count):
    with factory() as s:
        n = numbering.next_value(s, scope, "p")
        if i % 5 == 4:
            s.rollback()  # a submission that failed
            rolled_back.append(n)
        else:
            s.commit()
            committed.append(n)
print(json.dumps([committed, rolled_back]))
"""


def test_concurrent_processes_never_get_one_number(db_url, committing_factory):
    """Three processes (nothing shared but the database) take numbers of one scope at
    once, some in transactions that roll back: no number twice."""
    scope = f"test:{uuid.uuid4().hex[:8]}"
    start = time.time() + 8  # after the three have imported tongban
    argv = [sys.executable, "-c", _CHILD, db_url, scope, "40", str(start)]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _ in range(3)]
    try:
        chunks = []
        for p in procs:
            stdout, _ = p.communicate(timeout=240)
            assert p.returncode == 0
            chunks.append(json.loads(stdout.strip().splitlines()[-1]))
        numbers = [n for committed, _ in chunks for n in committed]
        assert len(numbers) == 96 and len(set(numbers)) == 96
        with committing_factory() as s:
            assert max(numbers) <= numbering.peek(s, scope, "p")
            if _blocks(s):  # not even a rolled-back transaction's number is reused
                every = [n for c, r in chunks for n in c + r]
                assert len(set(every)) == 120
                for c, r in chunks:  # increasing within each process
                    assert sorted(c + r) == sorted(set(c + r))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        _drop(committing_factory, scope)
