"""Clearing on a real database: the gross matrices, net positions summing to zero,
determinism, closed periods and reversals landing in the next period, the agencies'
confirmations and disputes, and the CSV/XLSX statements."""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict

import polars as pl
import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from tongban.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from tongban.medical import claim_lines, clearing, exports, service, settlement
from tongban.medical import clearing_service as cs
from tongban.medical.models import Settlement
from tongban.medical.service import ItemInput

from builders import (
    make_medical_officer,
    make_officer,
)

PERIOD = "2020-03"
CT = [ItemInput("T0006", 1, 250_000), ItemInput("T0001", 1, 2_500)]


@pytest.fixture
def world(session, desks_people):
    """Claims of 2020-03 between 上海, 江苏 (苏州, 南京), 浙江 (杭州) and 安徽 (合肥)."""
    desks, people = desks_people
    plan = [  # (insured city, treatment city)
        ("340100", "310000"),
        ("340100", "310000"),
        ("340100", "320500"),
        ("310000", "320500"),
        ("310000", "330100"),
        ("320100", "320500"),  # inside 江苏: city matrix only
        ("320100", "310000"),
        ("330100", "310000"),
    ]
    txns = []
    for n, (home, where) in enumerate(plan):
        staff = desks[where]
        v = service.register_visit(
            session, staff, id_number=people[home].id_number, visit_no=f"V{n}"
        )
        service.upload_items(session, staff, v.id, CT)
        s, _ = settlement.settle(session, staff, v.id, f"T{n}")
        s.period = PERIOD
        # As the counter does after its commit: the insured side confirms the claim in
        # the hospital's period (its side of the statement).
        assert settlement.sync_with_insured(session, s)
        txns.append((staff, s))
    session.flush()
    return desks, txns


def _expected(session, period, level):
    rows = session.scalars(select(Settlement)).all()
    out: dict[tuple[str, str], int] = defaultdict(int)
    for s in rows:
        d, c = (
            (s.insured_jurisdiction, s.treatment_jurisdiction)
            if level == "jurisdiction"
            else (s.insured_city, s.treatment_city)
        )
        if d == c:
            continue
        if s.period == period and not (s.status == "reversed" and s.reversal_period == period):
            out[(d, c)] += s.fund
        if s.reversal_period == period and s.period != period:
            out[(d, c)] -= s.fund
    return dict(out)


def test_matrix_nets_statements_and_determinism(session, world):
    run = cs.clear_period(session, PERIOD)
    assert run.claim_count == 8 and run.reversal_count == 0
    j = {(g.debtor, g.creditor): g.amount for g in cs.gross(session, run)}
    c = {(g.debtor, g.creditor): g.amount for g in cs.gross(session, run, "city")}
    assert j == _expected(session, PERIOD, "jurisdiction")
    assert c == _expected(session, PERIOD, "city")
    assert ("320000", "320000") not in j and ("320100", "320500") in c
    nets = cs.nets(session, run)
    assert sum(n.net for n in nets) == 0
    assert {n.jurisdiction_code: n.net for n in nets}["340000"] == -(
        j[("340000", "310000")] + j[("340000", "320000")]
    )
    pairs = {(s.side_a, s.side_b): s for s in session.scalars(select(cs.ClearingStatement))}
    assert set(pairs) == {tuple(sorted(k)) for k in j}
    st = pairs[("310000", "320000")]
    assert (st.a_owes_b, st.b_owes_a) == (j[("310000", "320000")], j[("320000", "310000")])
    digest = run.digest
    again = cs.clear_period(session, PERIOD)
    assert again.digest == digest
    assert {(g.debtor, g.creditor): g.amount for g in cs.gross(session, again)} == j


def test_reversal_in_open_period_is_excluded_and_resets_changed_statements(session, world):
    desks, txns = world
    cs.clear_period(session, PERIOD)
    sh = make_medical_officer(session, "310000")
    ah = make_medical_officer(session, "340000")
    st = next(s for s in cs.statements(session, sh, PERIOD) if s.side_b == "340000")
    zj = next(s for s in cs.statements(session, sh, PERIOD) if s.side_b == "330000")
    cs.confirm_statement(session, sh, st.id)
    cs.confirm_statement(session, sh, zj.id)
    staff, s0 = txns[0]  # 合肥 insured in 上海
    settlement.reverse(session, staff, s0.txn_id)
    assert s0.reversal_period == PERIOD
    run = cs.clear_period(session, PERIOD)
    assert run.claim_count == 7
    j = {(g.debtor, g.creditor): g.amount for g in cs.gross(session, run)}
    assert j == _expected(session, PERIOD, "jurisdiction")
    session.refresh(st)
    session.refresh(zj)
    assert st.a_status == "pending"  # amounts changed: confirmation dropped
    assert zj.a_status == "confirmed"  # unchanged pair keeps it
    del ah


def test_closed_period_is_immutable_and_later_reversal_lands_in_next(session, world):
    _, txns = world
    run = cs.close_period(session, PERIOD, by="运维")
    assert run.status == "closed"
    digest = run.digest
    staff, s = txns[2]  # 合肥 insured treated in 苏州
    settlement.reverse(session, staff, s.txn_id, reason="重复收费")
    assert s.reversal_period == "2020-04"
    assert cs.clear_period(session, PERIOD).digest == digest  # closed: unchanged
    nxt = cs.clear_period(session, "2020-04")
    assert nxt.claim_count == 0 and nxt.reversal_count == 1
    gross = {(g.debtor, g.creditor): g.amount for g in cs.gross(session, nxt)}
    assert gross == {("340000", "320000"): -s.fund}
    assert sum(n.net for n in cs.nets(session, nxt)) == 0
    nets = {n.jurisdiction_code: n.net for n in cs.nets(session, nxt)}
    assert nets == {"320000": -s.fund, "340000": s.fund}
    # Statements of a closed period cannot change any more.
    officer = make_medical_officer(session, "320000")
    closed_st = next(x for x in cs.statements(session, officer, PERIOD) if x.side_a == "320000")
    with pytest.raises(Conflict):
        cs.confirm_statement(session, officer, closed_st.id)


def test_confirm_dispute_authorisation_and_auto_close(session, world):
    cs.clear_period(session, PERIOD)
    sh = make_medical_officer(session, "310000")
    ah = make_medical_officer(session, "340000")
    js = make_medical_officer(session, "320000")
    st = next(s for s in cs.statements(session, sh, PERIOD) if s.side_b == "340000")
    # 浙江 is no side of 上海–安徽: it does not even see the statement.
    with pytest.raises(NotFound):
        cs.get_statement(session, make_medical_officer(session, "330000"), st.id)
    with pytest.raises(PermissionDenied):
        cs.statements(session, make_officer(session, "310000-public_security"), PERIOD)
    with pytest.raises(ValidationFailed):
        cs.dispute_statement(session, ah, st.id, "  ")
    cs.dispute_statement(session, ah, st.id, "第3笔费用存疑")
    assert (st.status, st.b_status, st.b_reason) == ("disputed", "disputed", "第3笔费用存疑")
    cs.confirm_statement(session, ah, st.id)  # resolved: 安徽 confirms after all
    for officer in (sh, ah, js, make_medical_officer(session, "330000")):
        for x in cs.statements(session, officer, PERIOD):
            cs.confirm_statement(session, officer, x.id)
    assert cs.get_run(session, PERIOD).status == "closed"


def test_csv_and_xlsx_statements(session, world):
    run = cs.clear_period(session, PERIOD)
    sh = make_medical_officer(session, "310000")
    sts = cs.statements(session, sh, PERIOD)
    assert {(s.side_a, s.side_b) for s in sts} == {
        ("310000", "320000"),
        ("310000", "330000"),
        ("310000", "340000"),
    }
    data = exports.to_csv(session, PERIOD, sts)
    assert data.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == exports.HEADER
    by_pair = {(r[1], r[3]): r for r in rows[1:]}
    j = {(g.debtor, g.creditor): g.amount for g in cs.gross(session, run)}
    r = by_pair[("310000", "340000")]
    assert r[2] == "上海市" and r[4] == "安徽省"
    assert int(r[6]) == j.get(("310000", "340000"), 0)
    assert int(r[8]) == j[("340000", "310000")]
    assert int(r[9]) == int(r[6]) - int(r[8])
    assert r[10] == exports.yuan(int(r[9])) and r[11] == "待确认"
    wb = load_workbook(io.BytesIO(exports.to_xlsx(session, PERIOD, sts)))
    assert wb.sheetnames == ["对账单", "城市明细"]
    sheet = [list(x) for x in wb["对账单"].iter_rows(values_only=True)]
    assert sheet[0] == exports.HEADER and len(sheet) == 4
    # The workbook holds the same statements as the CSV, cell for cell.
    assert [["" if v is None else str(v) for v in x] for x in sheet[1:]] == rows[1:]
    detail = [list(x) for x in wb["城市明细"].iter_rows(values_only=True)][1:]
    c = {(g.debtor, g.creditor): g.amount for g in cs.gross(session, run, "city")}
    assert Counter((d[1], d[3]) for d in detail) == Counter(k for k in c if "310000" in k)
    assert all(d[6] == c[(d[1], d[3])] for d in detail)


def test_yuan_formatting():
    assert [exports.yuan(v) for v in (0, 5, 12_345, -101)] == ["0.00", "0.05", "123.45", "-1.01"]


def test_the_database_group_by_clears_as_polars_over_the_claim_rows(session, world):
    """The city-pair GROUP BY in the database gives what polars gives over the claim
    rows themselves (fetched one by one here): the same digest, to the fen."""
    _, txns = world
    staff, first = txns[0]
    settlement.reverse(session, staff, first.txn_id)  # reversed in its own period: left out
    rows = [
        tuple(r) for q in claim_lines.clearing_queries(session, PERIOD) for r in session.execute(q)
    ]
    frame = pl.DataFrame(rows, schema=clearing.SCHEMA, orient="row")
    seen: list[tuple[int, int | None]] = []
    grouped = clearing.finish(
        cs.load_aggregate(session, PERIOD, progress=lambda d, t: seen.append((d, t)), rescan=True)
    )
    assert grouped.digest == clearing.compute(frame).digest
    assert grouped.claim_count == sum(1 for r in rows if r[5] > 0)
    # The progress counts what was read (no COUNT beforehand), the total once known.
    assert seen[-1] == (len(rows), len(rows))
    assert all(t is None for _, t in seen[:-1])
