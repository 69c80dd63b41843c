"""Fixtures shared by the clearing tests."""

from __future__ import annotations

import pytest

from builders import make_filing, make_hospital_staff, make_institution, make_insured


@pytest.fixture
def desks_people(session):
    """Hospital desks in 上海, 苏州 and 杭州, and insured persons of 合肥, 上海, 南京
    (resident scheme) and 杭州, each with a filing for anywhere."""
    desks = {
        city: make_hospital_staff(session, make_institution(session, city, level=3))
        for city in ("310000", "320500", "330100")
    }
    people = {
        "340100": make_insured(session, "340100", balance=100_000),
        "310000": make_insured(session, "310000", balance=0),
        "320100": make_insured(session, "320100", scheme="resident"),
        "330100": make_insured(session, "330100", balance=50_000),
    }
    for p in people.values():
        make_filing(session, p, city=None)  # anywhere
    return desks, people
