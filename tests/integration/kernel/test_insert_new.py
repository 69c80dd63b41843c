"""`history.insert_new`: a brand-new record and its first event by Core INSERTs (issue 14).
The submission's tests (tests/integration/cases/test_submission_flush.py) cover what it
writes and what the session holds afterwards; here what it refuses."""

from __future__ import annotations

import pytest

from tongban.cases.models import Case
from tongban.kernel import history

from builders import make_case


def test_a_record_already_in_the_session_is_refused(session):  # type: ignore[no-untyped-def]
    case = make_case(session)
    with pytest.raises(ValueError):
        history.insert_new(session, case, "submit", None, "submitted")
    assert case.event_seq == len(case.events)  # nothing recorded


def test_a_column_with_only_a_server_default_is_refused(monkeypatch):  # type: ignore[no-untyped-def]
    col = Case.__table__.c.state
    monkeypatch.setattr(col, "server_default", object())
    monkeypatch.delitem(history._COLUMNS, Case, raising=False)
    try:
        with pytest.raises(TypeError):
            history._columns_of(Case)
    finally:
        history._COLUMNS.pop(Case, None)
