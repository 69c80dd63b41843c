"""kernel.numbering: one counter per (scope, period), atomic, and case numbers on it."""

from __future__ import annotations

import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import delete

from tongban.kernel import numbering
from tongban.kernel.numbering import NumberCounter

from builders import make_case


def test_numbers_count_per_scope_and_period(session):
    scope = f"test:{uuid.uuid4().hex[:8]}"
    assert [numbering.next_value(session, scope, "20260101") for _ in range(3)] == [1, 2, 3]
    assert numbering.next_value(session, scope, "20260102") == 1
    assert numbering.next_value(session, f"{scope}b") == 1
    assert numbering.peek(session, scope, "20260101") == 3
    assert numbering.peek(session, "test:none") == 0


def test_case_numbers_keep_their_format_and_count_on(session):
    first, second = make_case(session), make_case(session)
    # the receiving city (the applicant's), the local day, the city's sequence that day
    assert re.fullmatch(rf"{first.receiving_city}\d{{8}}\d{{6}}", first.number), first.number
    day = first.number[6:14]
    assert int(second.number[-6:]) == int(first.number[-6:]) + 1
    assert numbering.peek(session, f"case:{first.receiving_city}", day) == int(second.number[-6:])


def test_concurrent_takers_never_get_one_number(committing_factory):
    """Eight threads with their own sessions take numbers of one scope at once and
    commit: every number is handed out exactly once."""
    factory = committing_factory
    scope = f"test:{uuid.uuid4().hex[:8]}"
    barrier = threading.Barrier(4)

    def take(_: int) -> list[int]:
        barrier.wait(timeout=30)
        got = []
        for _ in range(5):
            with factory() as s:
                got.append(numbering.next_value(s, scope, "p"))
                s.commit()
        return got

    try:
        with ThreadPoolExecutor(4) as pool:
            numbers = [n for chunk in pool.map(take, range(4)) for n in chunk]
        assert sorted(numbers) == list(range(1, 21))
    finally:
        with factory() as s:
            s.execute(delete(NumberCounter).where(NumberCounter.scope == scope))
            s.commit()
