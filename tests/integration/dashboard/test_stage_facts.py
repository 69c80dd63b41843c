"""What one slice of the chain puts on the stage (SQLite and PostgreSQL): facts whose
keys repeat within the slice — the same case's events again and again — are each on the
stage exactly once, one row per fact (the fold groups them), whether the stage is
dash_stage (SQLite) or the refresh's scratch table (PostgreSQL: cells.Stage)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import func, select

from integration.dashboard.kit import PLAN, build_cases
from tongban.audit import hook
from tongban.calendar.service import local_date
from tongban.dashboard import cellkey, cells, service, sources
from tongban.db import utcnow

ALL = service.owns_for("*")


def _append(session, kind: str, subject: str, body: dict) -> None:
    hook.append(session.connection(), kind, subject, "system", body, alg=hook.hash_alg(session))


def _stage(session, s) -> tuple[Counter[tuple], int]:
    """The stage `s` summed by key and bucket (n, total, hn per key), and its row count."""
    keys = [s.c[d] for d in (*sources.DIMENSIONS, "bucket")]
    sums: Counter[tuple] = Counter()
    for *key, n, total, hn in session.execute(
        select(*keys, func.sum(s.c.n), func.sum(s.c.total), func.sum(s.c.hn)).group_by(*keys)
    ):
        sums[(*key, "n")] += int(n)
        sums[(*key, "total")] += int(total)
        sums[(*key, "hn")] += int(hn)
    return +sums, int(session.scalar(select(func.count()).select_from(s)))


def test_facts_sharing_a_key_within_a_slice_are_each_staged_once(session):
    cases = build_cases(session, PLAN)
    service.refresh(session, ALL, settle=timedelta(0))  # the plan's events folded; stage empty
    assert _stage(session, cells.STAGE) == (Counter(), 0)
    after = sources.committed_head(session)[0]
    delivered, decided = cases[0], cases[3]
    for _ in range(3):
        _append(session, "case.event", f"case:{delivered.id}", {"action": "deliver"})
    for _ in range(2):
        _append(session, "case.event", f"case:{decided.id}", {"action": "approve"})
    _append(session, "case.event", f"case:{decided.id}", {"action": "start_review"})  # no fact
    session.flush()
    upto = sources.committed_head(session)[0]
    sources.fill_workdays(
        session, sources.working_days(session), local_date(utcnow()) + timedelta(1)
    )

    stage = cells.Stage(session)
    assert sources.stage_audit(session, after, upto, ALL, stage, cellkey.secret(session)) == 6

    staged, rows = _stage(session, stage.table)
    by_indicator: Counter[str] = Counter()
    for key, v in staged.items():
        if key[-1] == "n":
            by_indicator[key[0]] += v
    assert by_indicator == {"cases.delivered": 3, "cases.decided": 2}
    # Each indicator's facts share one key here (same case, same day, same bucket): a
    # fact dropped or doubled changes its count, and the decided ones each carry their
    # handling time (hn) and on-time flag (total) once.
    ((decided_key, n),) = [
        (k, v) for k, v in staged.items() if k[0] == "cases.decided" and k[-1] == "n"
    ]
    assert n == 2 and decided_key[8] is not None
    assert staged[(*decided_key[:-1], "hn")] == 2
    assert staged[(*decided_key[:-1], "total")] in (0, 2)
    assert rows == 5

    # Folded, the stage adds to the cells the plan's events made: 3 and 2 more.
    before = {k: v.n for k, v in service.local_cells(session).items()}
    cells.fold_stage(session, "", stage.table)
    stage.close(session)
    after_fold = {k: v.n for k, v in service.local_cells(session).items()}
    added: Counter[str] = Counter()
    for k, n in after_fold.items():
        added[k.indicator] += n - before.get(k, 0)
    assert +added == {"cases.delivered": 3, "cases.decided": 2}
