"""Settlement services on a real database, on one node (it serves every jurisdiction, so
the insured side answers in-process through the same queries): filing refusal,
demonstration-zone exemption, idempotent settlement, conflicting reuse, reversal,
reconciliation."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import func, select

from tongban.calendar.service import local_date
from tongban.db import utcnow
from tongban.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from tongban.medical import service, settlement
from tongban.medical.domain import Totals
from tongban.medical.models import Accumulator, Settlement
from tongban.medical.service import ItemInput

from builders import (
    make_clerk,
    make_filing,
    make_hospital_staff,
    make_institution,
    make_insured,
)

# 上海 三级 hospital; an employee of 合肥 (安徽 policy: deductible 1000.00, 75%, cap 4000.00).
ITEMS = [ItemInput("T0001", 1, 2_500), ItemInput("D0005", 2, 5_001), ItemInput("D0011", 1, 3_000)]


@pytest.fixture
def desk(session):
    inst = make_institution(session, "310000", level=3, district="310104")
    staff = make_hospital_staff(session, inst)
    return inst, staff


def _visit(session, staff, person, no="V1", items=ITEMS):
    v = service.register_visit(session, staff, id_number=person.id_number, visit_no=no)
    return service.upload_items(session, staff, v.id, list(items))


def _reverse(session, staff, txn_id, **kw):
    """A reversal as the counter makes it: written here, then sent to the insured side."""
    s = settlement.reverse(session, staff, txn_id, **kw)
    settlement.sync_with_insured(session, s)
    return s


def _acc(session, person):
    session.refresh(person)
    row = session.get(Accumulator, (person.id, local_date(utcnow()).year))
    return (row.deductible_used if row else 0, row.fund_paid if row else 0, person.account_balance)


def test_claim_without_required_filing_is_refused_with_reason(session, desk):
    _, staff = desk
    person = make_insured(session, "340100")
    with pytest.raises(ValidationFailed) as e:
        service.register_visit(session, staff, id_number=person.id_number, visit_no="V1")
    assert e.value.type == "filing-required"
    assert "备案" in e.value.detail
    elig = service.eligibility(session, staff, person.id_number)
    assert elig.decision.required and not elig.decision.allowed


def test_filing_allows_and_expiry_between_registration_and_settlement_refuses(session, desk):
    _, staff = desk
    person = make_insured(session, "340100", balance=50_000)
    f = make_filing(session, person, "310000")
    visit = _visit(session, staff, person)
    assert service.eligibility(session, staff, person.id_number).filing.id == f.id
    f.valid_to = date(2001, 1, 1)  # the filing lapses before the claim is settled
    session.flush()
    with pytest.raises(ValidationFailed) as e:
        settlement.settle(session, staff, visit.id, "T-1")
    assert e.value.type == "filing-required"
    assert session.scalar(select(func.count()).select_from(Settlement)) == 0


def test_demonstration_zone_residents_need_no_filing(session):
    inst = make_institution(session, "310000", level=2, district="310118")  # 青浦
    staff = make_hospital_staff(session, inst)
    person = make_insured(session, "320500", scheme="resident", district="320509")  # 吴江
    elig = service.eligibility(session, staff, person.id_number)
    assert not elig.decision.required and "示范区" in elig.decision.reason
    visit = _visit(session, staff, person)
    s, created = settlement.settle(session, staff, visit.id, "T-ZONE")
    assert created and s.filing_id is None and s.account == 0
    # The same person insured outside the zone's district would need a filing.
    other = make_insured(session, "320500", scheme="resident", district="320505")
    with pytest.raises(ValidationFailed):
        service.register_visit(session, staff, id_number=other.id_number, visit_no="V2")


def test_presettle_changes_nothing_and_settle_moves_accumulators(session, desk):
    _, staff = desk
    person = make_insured(session, "340100", balance=20_000)
    make_filing(session, person, "310000")
    visit = _visit(session, staff, person)
    before = _acc(session, person)
    pre = settlement.presettle(session, staff, visit.id)
    assert _acc(session, person) == before == (0, 0, 20_000)
    # total 2500 + 10002 + 3000 = 15502; D0005 is 乙 with 5% in 上海's catalogue:
    # eligible 2500 + 10002 × 0.95 = 12001.9 → 12002, all of it filling 合肥's 1000.00
    # deductible → fund 0; the account pays all 15502 of its 20000.
    sp = pre.split
    assert (sp.total, sp.eligible, sp.deductible_part, sp.fund, sp.account, sp.cash) == (
        15_502,
        12_002,
        12_002,
        0,
        15_502,
        0,
    )
    s, created = settlement.settle(session, staff, visit.id, "T-100")
    assert created
    assert (s.total, s.fund, s.account, s.cash) == (sp.total, sp.fund, sp.account, sp.cash)
    assert _acc(session, person) == (12_002, 0, 20_000 - 15_502)


def test_settlement_is_idempotent_and_conflicting_reuse_is_refused(session, desk):
    _, staff = desk
    person = make_insured(session, "340100", balance=0)
    make_filing(session, person, "310000")
    visit = _visit(session, staff, person)
    s1, c1 = settlement.settle(session, staff, visit.id, "T-200")
    acc = _acc(session, person)
    s2, c2 = settlement.settle(session, staff, visit.id, "T-200")
    assert c1 and not c2 and s1.id == s2.id
    assert _acc(session, person) == acc  # the replay moved nothing
    other = _visit(session, staff, person, no="V2")
    with pytest.raises(Conflict) as e:
        settlement.settle(session, staff, other.id, "T-200")
    assert e.value.type == "txn-id-reused"
    # The settled visit cannot be settled again under another id.
    with pytest.raises(Conflict):
        settlement.settle(session, staff, visit.id, "T-201")
    assert session.scalar(select(func.count()).select_from(Settlement)) == 1


def test_reversal_restores_accumulators_exactly_and_is_idempotent(session, desk):
    _, staff = desk
    person = make_insured(session, "340100", balance=1_000_000)
    make_filing(session, person, "310000")
    big = [ItemInput("T0006", 1, 300_000)]  # CT, 乙 10%: beyond the deductible
    settlement.settle(session, staff, _visit(session, staff, person, "V0", big).id, "T-0")
    start = _acc(session, person)
    visit = _visit(session, staff, person, "V1", big)
    s, _ = settlement.settle(session, staff, visit.id, "T-1")
    assert s.fund > 0 and s.account > 0
    assert _acc(session, person) != start
    r = settlement.reverse(session, staff, "T-1", reversal_txn_id="R-1", reason="收费错误")
    assert r.status == "reversed" and r.reversal_period == s.period
    # Written here first; the amounts keep counting until the insured side has it.
    assert _acc(session, person) != start and r.insured_ack == "reserved"
    assert settlement.sync_with_insured(session, r) and r.insured_ack == "reversed"
    assert _acc(session, person) == start
    assert settlement.sync_with_insured(session, r)  # nothing owed: nothing moves
    assert _acc(session, person) == start
    again = _reverse(session, staff, "T-1", reversal_txn_id="R-1")
    assert again.id == r.id and _acc(session, person) == start
    with pytest.raises(Conflict):
        _reverse(session, staff, "T-1", reversal_txn_id="R-OTHER")
    # The visit is open again: corrected items can be settled under a new id.
    service.upload_items(session, staff, visit.id, [ItemInput("T0001", 1, 2_500)])
    s2, created = settlement.settle(session, staff, visit.id, "T-1B")
    assert created and s2.total == 2_500


def test_unknown_catalogue_code_is_refused(session, desk):
    _, staff = desk
    person = make_insured(session, "340100")
    make_filing(session, person, "310000")
    v = service.register_visit(session, staff, id_number=person.id_number, visit_no="V1")
    with pytest.raises(ValidationFailed) as e:
        service.upload_items(session, staff, v.id, [ItemInput("NOPE", 1, 100)])
    assert e.value.errors[0]["field"] == "items.0.code"


def test_treatment_region_catalogue_classifies(session):
    """D0005 is 甲 in 浙江 but 乙 (10%) by default, 乙 (5%) in 上海."""
    hz = make_institution(session, "330100", level=3)
    staff = make_hospital_staff(session, hz)
    person = make_insured(session, "340100")
    make_filing(session, person, "330100")
    v = _visit(session, staff, person, items=[ItemInput("D0005", 1, 1_000)])
    assert (v.items[0].item_class, v.items[0].self_pay_first_bp) == ("A", 0)


def test_only_the_institutions_staff_may_transact(session, desk):
    inst, staff = desk
    person = make_insured(session, "340100")
    make_filing(session, person, "310000")
    visit = _visit(session, staff, person)
    with pytest.raises(PermissionDenied):
        service.eligibility(session, make_clerk(session), person.id_number)
    other = make_hospital_staff(session, make_institution(session, "310000"))
    with pytest.raises(NotFound):
        settlement.settle(session, other, visit.id, "T-X")


def test_daily_reconciliation_lists_differences_item_by_item(session, desk):
    _, staff = desk
    person = make_insured(session, "340100", balance=0)
    make_filing(session, person, "310000")
    sa, _ = settlement.settle(session, staff, _visit(session, staff, person, "V1").id, "T-A")
    sb, _ = settlement.settle(session, staff, _visit(session, staff, person, "V2").id, "T-B")
    sc, _ = settlement.settle(session, staff, _visit(session, staff, person, "V3").id, "T-C")
    _reverse(session, staff, "T-C")  # reversed: not in the day's settlements
    today = local_date(utcnow())

    def amounts(s):
        return {"total": s.total, "fund": s.fund, "account": s.account, "cash": s.cash}

    ok = Totals(
        2, sa.total + sb.total, sa.fund + sb.fund, sa.account + sb.account, sa.cash + sb.cash
    )
    good = settlement.reconcile_day(
        session,
        staff,
        day=today,
        totals=ok,
        details=[{"txn_id": "T-A", **amounts(sa)}, {"txn_id": "T-B", **amounts(sb)}],
    )
    assert good.balanced and good.differences == []
    bad = settlement.reconcile_day(
        session,
        staff,
        day=today,
        totals=Totals(2, ok.total + 1, ok.fund, ok.account, ok.cash + 1),
        details=[
            {"txn_id": "T-A", **{**amounts(sa), "cash": sa.cash + 1, "total": sa.total + 1}},
            {"txn_id": "T-Z", "total": 5, "fund": 0, "account": 0, "cash": 5},
        ],
    )
    assert not bad.balanced
    assert [(d.txn_id, d.kind) for d in bad.differences] == [
        ("T-A", "amount_mismatch"),
        ("T-B", "missing_at_hospital"),
        ("T-Z", "missing_at_centre"),
    ]
    assert bad.differences[0].fields == ("total", "cash")
    assert bad.record.differences == 3 and bad.centre.count == 2


def test_settlement_and_reversal_are_in_the_audit_chain(session, desk):
    from tongban.audit.domain import field_digest
    from tongban.audit.models import AuditEntry

    _, staff = desk
    person = make_insured(session, "340100", balance=1_000_000)
    make_filing(session, person, "310000")
    s, _ = settlement.settle(session, staff, _visit(session, staff, person, "V9").id, "T-9")
    settlement.reverse(session, staff, "T-9", reversal_txn_id="R-9", reason="收费错误")
    entries = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.subject == f"settlement:{s.id}")
        .order_by(AuditEntry.seq)
    ).all()
    assert [e.kind for e in entries] == [
        "medical.settlement",
        "medical.settlement.event",
        "medical.settlement.event",
    ]
    assert json.loads(entries[0].body)["fund"] == s.fund
    assert all(e.actor == f"account:{staff.id}" for e in entries)
    bodies = [json.loads(e.body) for e in entries[1:]]
    assert [(b["seq"], b["action"], b["from_state"], b["to_state"]) for b in bodies] == [
        (1, "settle", None, "settled"),
        (2, "reverse", "settled", "reversed"),
    ]
    # The reversal's details are the event's payload, bound into the chain by digest.
    assert [(e.seq, e.action) for e in s.events] == [(1, "settle"), (2, "reverse")]
    reversal = s.events[1]
    assert reversal.payload is not None and reversal.payload["reversal_txn_id"] == "R-9"
    assert reversal.comment == "收费错误"
    assert bodies[1]["payload_digest"] == field_digest(entries[2].alg, reversal.payload)
