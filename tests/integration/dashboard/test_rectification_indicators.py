"""差评整改 (rectification) indicators folded by the refresh from the case events in the
audit chain — items opened by a 1–2 star rating, the authority's replies, the applicant's
已解决 / 未解决, escalations, and the working days from the rating to 已解决 — against an
independent DuckDB computation over the case, event and rating tables; an incremental
refresh equals a recomputation; a node counts only the jurisdictions it serves."""

from __future__ import annotations

from datetime import UTC, date, timedelta
from typing import Any

import duckdb
from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.calendar import domain as calendar
from tongban.cases import service as cases
from tongban.cases.models import Case, CaseEvent, Rating
from tongban.dashboard import service
from tongban.dashboard.domain import Indicator, quantile
from tongban.db import utcnow

from builders import make_case, make_officer, make_resident

AUTH = "320500-housing_fund"
INDS = (Indicator.RECT_OPENED.value, Indicator.RECT_STEP.value)
STEPS = {
    "rectification_reply": "replied",
    "rectification_accepted": "resolved",
    "rectification_reopened": "reopened",
    "rectification_escalated": "escalated",
}

#: (applicant's city, score, days since the rating, the applicant's answers in turn:
#: True 已解决, False 未解决; None: the authority has not replied yet).
PLAN: list[tuple[str, int, int, list[bool] | None]] = [
    ("340100", 1, 9, [True]),
    ("340100", 2, 3, [False, True]),
    ("310000", 1, 20, [False, False, False]),  # reopened twice, then escalated
    ("310000", 2, 0, None),  # opened, no reply yet
    ("320500", 1, 1, []),  # replied, not answered
    ("330100", 4, 2, None),  # a good rating opens nothing
    ("330100", 2, 40, [True]),
]


def _loops(session: Session, plan: list[tuple[str, int, int, list[bool] | None]]) -> None:
    officer = make_officer(session, AUTH)
    for city, score, ago, answers in plan:
        resident = make_resident(session, city=city)
        case = make_case(session, resident)
        for action in ("accept", "start_review", "approve", "issue_result", "deliver"):
            cases.act(session, officer, case.id, action, "")
        cases.rate(session, resident, case.id, score, "办理太慢" if score <= 2 else "")
        rating = session.scalar(select(Rating).where(Rating.case_id == case.id))
        assert rating is not None
        rating.created_at = utcnow() - timedelta(days=ago)
        session.flush()
        if answers is None:
            continue
        (item,) = [
            i for i in cases.list_rectifications(session, officer, "all") if i.case_id == case.id
        ]
        if not answers:
            cases.reply_rectification(session, officer, item.id, "已整改")
        for resolved in answers:
            cases.reply_rectification(session, officer, item.id, "已整改")
            cases.answer_rectification(
                session, resident, case.id, resolved, "" if resolved else "仍未解决"
            )


def _cells(session: Session) -> dict[tuple[Any, ...], tuple[int, list[int]]]:
    out = {}
    for k, v in service.local_cells(session).items():
        if k.indicator in INDS:
            days = sorted(d for d, c in (v.hist or {}).items() for _ in range(c))
            out[
                (
                    k.indicator,
                    k.day,
                    k.from_city,
                    k.to_city,
                    k.jurisdiction,
                    k.category,
                    k.authority,
                    k.matter,
                )
            ] = (
                v.n,
                days,
            )
    return out


def _duckdb(
    session: Session, served: set[str] | None
) -> dict[tuple[Any, ...], tuple[int, list[int]]]:
    """The same cells by plain SQL: every rating ≤ 2 opens an item on the day of its
    `rate` event; each loop step counts on its own day; 已解决 carries the working days
    from the rating's day to its own."""
    con = duckdb.connect()
    con.execute("CREATE TABLE ev (case_id VARCHAR, action VARCHAR, ts TIMESTAMP)")
    con.executemany(
        "INSERT INTO ev VALUES (?, ?, ?)",
        [
            (str(e.case_id), e.action, e.at.astimezone(UTC).replace(tzinfo=None))
            for e in session.scalars(
                select(CaseEvent).where(CaseEvent.action.in_(["rate", *STEPS]))
            )
        ],
    )
    con.execute(
        "CREATE TABLE c (id VARCHAR, rc VARCHAR, cc VARCHAR, cj VARCHAR, auth VARCHAR, matter VARCHAR)"
    )
    con.executemany(
        "INSERT INTO c VALUES (?, ?, ?, ?, ?, ?)",
        [
            (
                str(c.id),
                c.receiving_city,
                c.competent_city,
                c.competent_jurisdiction,
                c.authority_name,
                c.matter_code,
            )
            for c in session.scalars(select(Case))
        ],
    )
    con.execute("CREATE TABLE r (case_id VARCHAR, score INTEGER, ts TIMESTAMP)")
    con.executemany(
        "INSERT INTO r VALUES (?, ?, ?)",
        [
            (str(r.case_id), r.score, r.created_at.astimezone(UTC).replace(tzinfo=None))
            for r in session.scalars(select(Rating))
        ],
    )
    lo = date.today() - timedelta(days=400)
    con.execute("CREATE TABLE cal (d DATE, work BOOLEAN)")
    con.executemany(
        "INSERT INTO cal VALUES (?, ?)",
        [(lo + timedelta(i), calendar.is_workday(lo + timedelta(i))) for i in range(410)],
    )
    con.execute("CREATE TABLE step (action VARCHAR, cat VARCHAR)")
    con.executemany("INSERT INTO step VALUES (?, ?)", [("rate", "opened"), *STEPS.items()])
    where = "" if served is None else f"AND c.cj IN ({', '.join(repr(j) for j in sorted(served))})"
    rows = con.execute(
        f"""
        WITH e AS (
          SELECT step.cat, r.score, CAST(ev.ts + INTERVAL 8 HOUR AS DATE) AS day, c.*,
                 CAST(r.ts + INTERVAL 8 HOUR AS DATE) AS rated
          FROM ev JOIN step USING (action) JOIN c ON c.id = ev.case_id
          JOIN r ON r.case_id = ev.case_id
          WHERE (ev.action <> 'rate' OR r.score <= 2) {where}
        ), t AS (
          SELECT e.*, CASE WHEN cat = 'resolved' THEN (
                   SELECT count(*) FROM cal WHERE work AND d > e.rated AND d <= e.day) END AS wd
          FROM e
        )
        SELECT CASE WHEN cat = 'opened' THEN 'rectification.opened'
                    ELSE 'rectification.steps' END,
               day, rc, cc, cj,
               CASE WHEN cat = 'opened' THEN CAST(score AS VARCHAR) ELSE cat END,
               auth, matter, count(*),
               list(wd ORDER BY wd) FILTER (WHERE wd IS NOT NULL)
        FROM t GROUP BY ALL
        """
    ).fetchall()
    return {tuple(r[:8]): (int(r[8]), list(r[9] or [])) for r in rows}


def test_rectification_steps_equal_a_duckdb_computation(session: Session) -> None:
    _loops(session, PLAN)
    service.refresh(session, service.owns_for("*"), settle=timedelta(0))
    got = _cells(session)
    assert got == _duckdb(session, None)
    by_step: dict[str, int] = {}
    for key, (n, _) in got.items():
        step = "opened" if key[0] == "rectification.opened" else key[5]
        by_step[step] = by_step.get(step, 0) + n
    # 6 poor ratings; 1 + 2 + 3 + 1 + 1 replies; 3 resolved; 1 + 2 reopened; 1 escalated.
    assert by_step == {"opened": 6, "replied": 8, "resolved": 3, "reopened": 3, "escalated": 1}
    opened = {key[5]: n for key, (n, _) in got.items() if key[0] == "rectification.opened"}
    assert set(opened) == {"1", "2"}  # by the score that opened the item
    resolved = sorted(d for key, (_, days) in got.items() if key[5] == "resolved" for d in days)
    assert len(resolved) == 3 and resolved[-1] >= 20  # the rating 40 days ago
    hist: dict[int, int] = {}
    for d in resolved:
        hist[d] = hist.get(d, 0) + 1
    assert quantile(hist, 0.5) == resolved[1]


def test_incremental_refresh_equals_recompute_and_a_node_counts_its_own(session: Session) -> None:
    _loops(session, PLAN[:3])
    service.refresh(session, service.owns_for("*"), settle=timedelta(0))
    _loops(session, PLAN[3:])
    service.refresh(session, service.owns_for("*"), settle=timedelta(0))
    incremental = _cells(session)
    service.recompute(session, service.owns_for("*"), settle=timedelta(0))
    assert _cells(session) == incremental == _duckdb(session, None)
    # A node serving only 上海 counts none of these (all handled in 江苏).
    service.recompute(session, service.owns_for("310000"), settle=timedelta(0))
    assert _cells(session) == {} == _duckdb(session, {"310000"})
    service.recompute(session, service.owns_for("320000"), settle=timedelta(0))
    assert _cells(session) == incremental
