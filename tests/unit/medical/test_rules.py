"""Filing (备案), periods and reconciliation rules."""

from __future__ import annotations

from datetime import date

import pytest

from tongban.medical.domain import (
    FilingRecord,
    FilingType,
    Place,
    filing_decision,
    fingerprint,
    next_period,
    parse_period,
    period_bounds,
    period_of,
    reconcile,
)

ZONE = frozenset({"310118", "320509", "330421"})
HEFEI = Place("340100", "340000", "340102")
SHANGHAI_QP = Place("310000", "310000", "310118")
WUJIANG = Place("320500", "320000", "320509")
SUZHOU_CITY = Place("320500", "320000", "320505")
DAY = date(2026, 3, 15)


def filing(**kw):
    base = dict(
        type=FilingType.TEMPORARY,
        valid_from=date(2026, 1, 1),
        valid_to=date(2026, 6, 30),
        target_city="310000",
        target_jurisdiction="310000",
    )
    base.update(kw)
    return FilingRecord(**base)


def test_treatment_away_without_filing_is_refused_with_reason():
    d = filing_decision(HEFEI, SHANGHAI_QP, [], DAY, ZONE)
    assert d.required and not d.allowed
    assert "备案" in d.reason


def test_valid_filing_covering_the_city_allows():
    f = filing()
    d = filing_decision(HEFEI, SHANGHAI_QP, [f], DAY, ZONE)
    assert d.allowed and d.filing is f


@pytest.mark.parametrize(
    "f",
    [
        filing(valid_to=date(2026, 3, 14)),  # expired the day before
        filing(valid_from=date(2026, 3, 16)),  # not yet valid
        filing(target_city="320500", target_jurisdiction="320000"),  # another city
        filing(revoked=True),
    ],
)
def test_filing_that_does_not_cover_refuses(f):
    assert not filing_decision(HEFEI, SHANGHAI_QP, [f], DAY, ZONE).allowed


def test_filing_for_a_whole_jurisdiction_or_anywhere():
    whole = filing(target_city=None, target_jurisdiction="320000", valid_to=None)
    assert filing_decision(HEFEI, SUZHOU_CITY, [whole], DAY, ZONE).allowed
    assert not filing_decision(HEFEI, SHANGHAI_QP, [whole], DAY, ZONE).allowed
    anywhere = filing(target_city=None, target_jurisdiction=None)
    assert filing_decision(HEFEI, SHANGHAI_QP, [anywhere], DAY, ZONE).allowed


def test_demonstration_zone_both_sides_needs_no_filing():
    d = filing_decision(WUJIANG, SHANGHAI_QP, [], DAY, ZONE)
    assert not d.required and d.allowed and "示范区" in d.reason
    # Insured in the zone but treated outside it: a filing is needed.
    assert not filing_decision(WUJIANG, Place("310000", "310000", "310104"), [], DAY, ZONE).allowed
    # Treated in the zone but insured outside it: a filing is needed.
    assert not filing_decision(SUZHOU_CITY, SHANGHAI_QP, [], DAY, ZONE).allowed


def test_home_city_needs_no_filing():
    assert filing_decision(SUZHOU_CITY, WUJIANG, [], DAY, ZONE).allowed


def test_periods():
    assert period_of(date(2026, 12, 31)) == "2026-12"
    assert next_period("2026-12") == "2027-01"
    assert next_period("2026-01") == "2026-02"
    assert period_bounds("2026-02") == (date(2026, 2, 1), date(2026, 3, 1))
    for bad in ("2026-13", "2026-1", "26-01", "x"):
        with pytest.raises(ValueError):
            parse_period(bad)


def test_fingerprint_ignores_item_order_but_not_content():
    a = fingerprint("v1", [("X", 1, 100), ("Y", 2, 50)])
    assert a == fingerprint("v1", [("Y", 2, 50), ("X", 1, 100)])
    assert a != fingerprint("v1", [("X", 1, 101), ("Y", 2, 50)])
    assert a != fingerprint("v2", [("X", 1, 100), ("Y", 2, 50)])


def test_reconcile_lists_each_difference():
    centre = {
        "T1": {"total": 100, "fund": 50, "account": 0, "cash": 50},
        "T2": {"total": 200, "fund": 100, "account": 0, "cash": 100},
        "T3": {"total": 300, "fund": 0, "account": 0, "cash": 300},
    }
    hospital = {
        "T1": {"total": 100, "fund": 50, "account": 0, "cash": 50},
        "T2": {"total": 200, "fund": 90, "account": 0, "cash": 110},
        "T4": {"total": 10, "fund": 0, "account": 0, "cash": 10},
    }
    diffs = reconcile(centre, hospital)
    assert [(d.txn_id, d.kind) for d in diffs] == [
        ("T2", "amount_mismatch"),
        ("T3", "missing_at_hospital"),
        ("T4", "missing_at_centre"),
    ]
    assert diffs[0].fields == ("fund", "cash")
    assert reconcile(centre, centre) == []
