"""SQLite's fold may sort with worker threads (cells.sort_threads): set for the fold's
statements only, and put back afterwards — also when a statement inside fails — since
the pragma belongs to the pooled connection, not to the transaction."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from tongban.dashboard import cells


def _threads(session: Session) -> int:
    return int(session.execute(text("PRAGMA threads")).scalar() or 0)


def test_the_fold_sorts_with_threads_and_puts_the_pragma_back(session: Session) -> None:
    if cells.dialect(session) != "sqlite":
        pytest.skip("a SQLite pragma")
    session.execute(text("PRAGMA threads = 0"))
    with cells.sort_threads(session):
        assert _threads(session) == min(cells.SQLITE_SORT_THREADS, 8) > 0
    assert _threads(session) == 0

    with pytest.raises(RuntimeError), cells.sort_threads(session):
        raise RuntimeError("a statement of the fold failed")
    assert _threads(session) == 0
