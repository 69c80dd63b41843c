"""The demo's year of evidence requests and card uses: `tongban demo` leaves the dashboard's
数据调取 and 社保卡用卡 figures filled (not zero), spread over the year and across
cities, answered and refused, admitted and refused, above the small-cell threshold once
added up — each counted from the context's own records (the chained `evidence.access`
entries, the uploaded `card_use` rows)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tongban.calendar import service as calendar
from tongban.card import demo_activity as card_demo
from tongban.card.models import CardGate, CardUse
from tongban.dashboard import service
from tongban.dashboard.domain import Indicator
from tongban.db import utcnow
from tongban.evidence import demo_activity as evidence_demo
from tongban.evidence.models import DataAccess

TODAY = calendar.local_date(utcnow())
YEAR = service.Filters(start=TODAY - timedelta(days=365), end=TODAY)


def _refresh(session) -> None:
    service.refresh(session, service.owns_for("*"))


def _months(session, indicator: str) -> int:
    trend = service.trend(session, YEAR, indicator, "month", 1)
    return len([d for d, fig in trend if fig.n])


@pytest.mark.usefixtures("without_noise")
def test_the_demo_year_of_evidence_requests_fills_the_dashboard(session):
    added = evidence_demo.load(session)
    assert added >= 1000  # every provider jurisdiction, every other city, twelve months
    assert evidence_demo.load(session) == 0  # idempotent
    _refresh(session)
    shown = service.total(session, YEAR, Indicator.EVIDENCE, threshold=10)
    assert shown.n == added and not shown.suppressed
    assert _months(session, Indicator.EVIDENCE) >= 12
    outcomes = service.grouped(session, YEAR, [Indicator.EVIDENCE], ("category",), 10)
    counted = {k[0]: v.n for k, v in outcomes.items() if not v.suppressed}
    assert counted["answered"] > 8 * counted["refused"] > 0
    refused = session.scalar(
        select(func.count()).select_from(DataAccess).where(DataAccess.outcome == "refused")
    )
    assert refused == counted["refused"]
    providers = service.grouped(session, YEAR, [Indicator.EVIDENCE], ("jurisdiction",), 10)
    assert len([k for k, v in providers.items() if v.n and not v.suppressed]) >= 4


@pytest.mark.usefixtures("without_noise")
def test_the_demo_year_of_card_uses_fills_the_dashboard(session):
    added = card_demo.load(session)
    assert added >= 19 * 12 * 8  # every demo venue, twelve months
    assert card_demo.load(session) == 0  # idempotent
    gates = session.scalar(
        select(func.count())
        .select_from(CardGate)
        .where(CardGate.gate_id.like(f"{card_demo.GATE_PREFIX}%"))
    )
    assert gates == 19  # one registered gate per demo venue
    late = session.scalar(
        select(func.count()).select_from(CardUse).where(CardUse.received_at < CardUse.used_at)
    )
    assert late == 0  # uploaded after each use, not before
    _refresh(session)
    shown = service.total(session, YEAR, Indicator.CARD_USE, threshold=10)
    assert shown.n == added and not shown.suppressed
    assert _months(session, Indicator.CARD_USE) >= 12
    kinds = service.grouped(session, YEAR, [Indicator.CARD_USE], ("category",), 1)
    counted = {k[0]: v.n for k, v in kinds.items()}
    assert counted["admitted"] > 10 * sum(n for c, n in counted.items() if c != "admitted") > 0
    where = service.grouped(session, YEAR, [Indicator.CARD_USE], ("to_city",), 10)
    cities = {k[0] for k, v in where.items() if v.n and not v.suppressed}
    assert {"310000", "320100", "320500", "330100", "340100"} <= cities
