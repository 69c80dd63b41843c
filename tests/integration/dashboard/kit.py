"""A known set of events for the dashboard's tests: cases through their steps (some
accepted days ago, some refused, some rated), and an independent DuckDB computation of
the same indicators from the event and case tables."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import duckdb
from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.calendar import domain as calendar
from tongban.cases import service
from tongban.cases.models import Case, CaseEvent, Rating
from tongban.db import utcnow

from builders import make_case, make_officer, make_resident

OFFICER_AUTH = "320500-housing_fund"


def build_cases(session: Session, plan: list[tuple[str, str, int, int | None]]) -> list[Case]:
    """One case per (applicant city, outcome, days since accepted, score): outcome is
    submitted | refused | decided | delivered | rated."""
    reviewer = make_officer(session, OFFICER_AUTH, duty="reviewer")
    approver = make_officer(session, OFFICER_AUTH, duty="approver")
    cases = []
    for city, outcome, ago, score in plan:
        resident = make_resident(session, city=city)
        case = make_case(session, resident)
        if outcome == "refused":
            service.act(session, approver, case.id, "refuse", "不属于本部门职责")
        elif outcome != "submitted":
            service.act(session, reviewer, case.id, "accept", "材料齐全")
            case.accepted_at = utcnow() - timedelta(days=ago)
            session.flush()
            service.act(session, reviewer, case.id, "start_review")
            service.act(session, approver, case.id, "approve", "符合条件")
            if outcome in ("delivered", "rated"):
                service.act(session, approver, case.id, "issue_result")
                service.act(session, approver, case.id, "deliver")
            if outcome == "rated" and score is not None:
                service.rate(session, resident, case.id, score, "办理太慢" if score < 3 else "")
        cases.append(case)
    return cases


PLAN = [
    ("340100", "rated", 3, 5),
    ("340100", "rated", 12, 1),
    ("310000", "delivered", 25, None),
    ("310000", "decided", 0, None),
    ("320500", "refused", 0, None),
    ("320500", "submitted", 0, None),
    ("330100", "rated", 40, 4),
]

ACTIONS = {
    "submit": "cases.received",
    "approve": "cases.decided",
    "deny": "cases.decided",
    "deliver": "cases.delivered",
    "refuse": "cases.refused",
    "rate": "cases.rating",
}


def duckdb_case_indicators(session: Session) -> dict[tuple[Any, ...], tuple[int, int, list[int]]]:
    """(indicator, day, from, to, jurisdiction, category, authority, matter) →
    (events, on time, sorted handling days), by plain SQL over the same rows."""
    events = session.execute(
        select(CaseEvent.case_id, CaseEvent.action, CaseEvent.at).where(
            CaseEvent.action.in_(list(ACTIONS))
        )
    ).all()
    cases = session.execute(
        select(
            Case.id,
            Case.mode,
            Case.channel,
            Case.receiving_city,
            Case.competent_city,
            Case.competent_jurisdiction,
            Case.authority_name,
            Case.matter_code,
            Case.time_limit_days,
            Case.submitted_at,
            Case.accepted_at,
        )
    ).all()
    ratings = session.execute(select(Rating.case_id, Rating.score)).all()
    lo = min(c.submitted_at for c in cases).date() - timedelta(days=60)
    days = [lo + timedelta(days=i) for i in range((date.today() - lo).days + 3)]
    con = duckdb.connect()
    con.execute("CREATE TABLE ev (case_id VARCHAR, action VARCHAR, ts TIMESTAMP)")
    con.executemany(
        "INSERT INTO ev VALUES (?, ?, ?)",
        [(str(e.case_id), e.action, e.at.replace(tzinfo=None)) for e in events],
    )
    con.execute(
        "CREATE TABLE c (id VARCHAR, mode VARCHAR, channel VARCHAR, rc VARCHAR, cc VARCHAR,"
        " cj VARCHAR, auth VARCHAR, matter VARCHAR, lim INTEGER, sub TIMESTAMP, acc TIMESTAMP)"
    )
    con.executemany(
        "INSERT INTO c VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        [
            (
                str(c.id),
                c.mode,
                c.channel,
                c.receiving_city,
                c.competent_city,
                c.competent_jurisdiction,
                c.authority_name,
                c.matter_code,
                c.time_limit_days,
                c.submitted_at.replace(tzinfo=None),
                c.accepted_at.replace(tzinfo=None) if c.accepted_at else None,
            )
            for c in cases
        ],
    )
    con.execute("CREATE TABLE r (case_id VARCHAR, score INTEGER)")
    con.executemany("INSERT INTO r VALUES (?, ?)", [(str(r.case_id), r.score) for r in ratings])
    con.execute("CREATE TABLE cal (d DATE, work BOOLEAN)")
    con.executemany("INSERT INTO cal VALUES (?, ?)", [(d, calendar.is_workday(d)) for d in days])
    con.execute("CREATE TABLE act (action VARCHAR, ind VARCHAR)")
    con.executemany("INSERT INTO act VALUES (?, ?)", list(ACTIONS.items()))
    rows = con.execute(
        """
        WITH e AS (
          SELECT act.ind, CAST(ev.ts + INTERVAL 8 HOUR AS DATE) AS day, c.*, ev.action,
                 CASE WHEN c.channel = 'virtual' OR c.mode = 'virtual' THEN 'virtual'
                      WHEN c.mode = 'joint' THEN 'joint'
                      WHEN c.mode = 'proxy' OR c.channel = 'window' THEN 'window'
                      ELSE 'online' END AS m,
                 r.score
          FROM ev JOIN act USING (action) JOIN c ON c.id = ev.case_id
          LEFT JOIN r ON r.case_id = ev.case_id
        ), t AS (
          SELECT e.*,
                 CASE WHEN ind = 'cases.decided' THEN (
                   SELECT count(*) FROM cal
                   WHERE work AND d > CAST(coalesce(acc, sub) + INTERVAL 8 HOUR AS DATE)
                     AND d <= e.day) END AS wd
          FROM e
        )
        SELECT ind, day, coalesce(rc, ''), coalesce(cc, ''), cj,
               CASE WHEN ind = 'cases.rating' THEN CAST(score AS VARCHAR) ELSE m END,
               auth, matter,
               count(*), sum(CASE WHEN wd IS NOT NULL AND wd <= lim THEN 1 ELSE 0 END),
               list(wd ORDER BY wd) FILTER (WHERE wd IS NOT NULL)
        FROM t GROUP BY ALL
        """
    ).fetchall()
    return {tuple(r[:8]): (int(r[8]), int(r[9]), list(r[10] or [])) for r in rows}
