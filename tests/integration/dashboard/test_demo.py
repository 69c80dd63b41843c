"""The dashboard's demo month: `tongban demo` leaves a dashboard a leader can read —
headline figures, city pairs and a daily trend above the small-cell threshold — and
every case event it wrote is in the audit chain the dashboard reads."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tongban.audit import service as audit
from tongban.calendar import service as calendar
from tongban.dashboard import demo, service
from tongban.dashboard.domain import Indicator
from tongban.db import utcnow


@pytest.mark.usefixtures("without_noise")
def test_the_demo_month_fills_the_headlines_heat_map_and_trend(session):
    added = demo.load(session, cities=4)
    assert added >= 4 * 2 * demo.PER_PAIR[0] * 0.8  # its own city, capital, 上海
    assert demo.load(session, cities=4) == 0  # idempotent
    today = calendar.local_date(utcnow())
    f = service.Filters(start=today - timedelta(days=demo.DAYS), end=today)
    received = service.total(session, f, Indicator.CASE_RECEIVED, threshold=10)
    assert received.n == added and not received.suppressed
    decided = service.decided_total(session, f, threshold=10)
    assert decided.n and decided.p50 is not None and decided.p90 is not None
    pairs = service.matrix(session, f, Indicator.CASE_RECEIVED, threshold=10)
    shown = [k for k, v in pairs.items() if not v.suppressed]
    assert len(shown) >= 6 and any(a != b for a, b in shown)
    days = [d for d, fig in service.trend(session, f, Indicator.CASE_RECEIVED, "day", 1) if fig.n]
    assert len(days) >= 20  # spread over the month, not stamped on one day
    # What the dashboard counted came from the chain: one entry per case event.
    events = session.scalar(
        select(func.count())
        .select_from(demo._event_class())
        .where(
            demo._event_class().case_id.in_(
                select(demo.cases.Case.id).where(demo.cases.Case.number.like("DEMO-DASH-%"))
            )
        )
    )
    head = audit.head(session)
    assert head is not None and head.seq >= events


@pytest.mark.usefixtures("without_noise")
def test_the_demo_plays_rectification_loops_in_the_chain(session):
    """Poor ratings open 差评整改 items; their loops (replies, 已解决, 未解决, escalations)
    are events of the cases, counted per pair above the threshold where the wave of
    poor ratings into 上海 is, with the rating-to-resolution time; the chain verifies."""
    added = demo.load(session, cities=demo.WAVE_CITIES)
    assert added
    today = calendar.local_date(utcnow())
    f = service.Filters(start=today - timedelta(days=demo.DAYS), end=today)
    opened = service.matrix(session, f, Indicator.RECT_OPENED, threshold=10)
    into_shanghai = [v for (a, b), v in opened.items() if b == demo.SHANGHAI and a != b]
    assert len([v for v in into_shanghai if not v.suppressed]) >= 2
    steps = service.grouped(session, f, [Indicator.RECT_STEP], ("category",), 1)
    assert {"replied", "resolved", "reopened"} <= {k[0] for k, v in steps.items() if v.n}
    resolved = service.total(
        session,
        service.Filters(start=f.start, end=f.end, category="resolved"),
        Indicator.RECT_STEP,
        threshold=1,
        timed=True,
    )
    assert resolved.n and resolved.p50 is not None and resolved.p50 >= 1
    # Each poor rating has its item, whose status is where the case's history left it.
    case_cls = demo.cases.Case
    items = session.execute(select(demo.rectification.c.case_id, demo.rectification.c.status)).all()
    total_opened = service.total(session, f, Indicator.RECT_OPENED, threshold=1).n
    assert len(items) == total_opened
    for case_id, status in items[:40]:
        case = session.get(case_cls, case_id)
        loop = demo.cases.rectification_of(session, case)
        assert loop is not None and loop.state == status
    assert audit.verify(session).ok


def test_the_demo_month_has_work_orders_above_the_threshold(session):
    """Work orders of the served cities with their histories: closed (some late), some
    reopened after a 不满意, some joint; their figures published for some cities."""
    demo.load(session, cities=4)
    today = calendar.local_date(utcnow())
    f = service.Filters(start=today - timedelta(days=demo.DAYS), end=today)
    closed = service.matrix(session, f, Indicator.TICKET_CLOSED, threshold=10)
    assert [v for v in closed.values() if not v.suppressed]
    every = service.total(session, f, Indicator.TICKET_CLOSED, threshold=1)
    assert every.n and every.total and every.total < every.n  # some closed late
    assert service.total(session, f, Indicator.TICKET_REOPENED, threshold=1).n
    verdicts = service.grouped(session, f, [Indicator.TICKET_SATISFACTION], ("category",), 1)
    assert {k[0] for k, v in verdicts.items() if v.n} == {"satisfied", "unsatisfied"}
    joint = service.grouped(session, f, [Indicator.TICKET_CLOSED], ("category",), 1)
    assert {k[0] for k, v in joint.items() if v.n} == {"joint", "single"}
    assert audit.verify(session).ok


@pytest.mark.usefixtures("without_noise")
def test_the_demo_month_has_settlements_and_a_closed_clearing_period(session):
    """The medical context's demo activity: settlements of several city pairs above the
    threshold (some reversed), chained as its records' events, and the previous month's
    clearing period closed, so the dashboard's clearing balances show; a rerun adds
    nothing; the chain verifies."""
    from tongban.medical import demo_activity, demo_data

    demo_data.load_medical_demo(session)
    added = demo_activity.load(session)
    assert added >= 4 * demo_activity.INSURED_CITIES * demo_activity.PER_PAIR[0]
    assert demo_activity.load(session) == 0  # idempotent
    demo.load(session, cities=1)  # the dashboard's refresh (its demo loader runs last)
    today = calendar.local_date(utcnow())
    last_month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    f = service.Filters(start=last_month - timedelta(days=1), end=today)
    settled = service.matrix(session, f, Indicator.SETTLEMENT, threshold=10)
    shown = [k for k, v in settled.items() if not v.suppressed]
    assert len(shown) >= 6 and all(a != b for a, b in shown)
    every = service.total(session, f, Indicator.SETTLEMENT, threshold=1)
    assert every.n == added and every.total and every.extra and every.extra < every.total
    assert service.total(session, f, Indicator.SETTLEMENT_REVERSED, threshold=1).n
    # The closed period's balances are filed under its first day (last month).
    balances = service.matrix(session, f, Indicator.CLEARING, threshold=10)
    assert [v for v in balances.values() if not v.suppressed]
    assert audit.verify(session).ok


def test_the_demo_month_has_licence_verifications_above_the_threshold(session):
    """The licences context's demo activity: cases of the demo licence holders whose
    materials their licences stood in for, each licence verified at submission and at
    the decision; the dashboard counts them per pair above the threshold; a rerun adds
    nothing; the chain verifies."""
    from tongban import demo as federation_demo
    from tongban.licences import demo_activity, demo_data

    federation_demo.load_accounts(session)
    demo_data.seed_demo_licences(session)
    added = demo_activity.load(session)
    assert added >= 3 * demo_activity.PER_PAIR[0]
    assert demo_activity.load(session) == 0  # idempotent
    demo.load(session, cities=1)
    today = calendar.local_date(utcnow())
    f = service.Filters(start=today - timedelta(days=demo.DAYS + 1), end=today)
    verified = service.matrix(session, f, Indicator.LICENCE_VERIFIED, threshold=10)
    assert len([v for v in verified.values() if not v.suppressed]) >= 2
    every = service.total(session, f, Indicator.LICENCE_VERIFIED, threshold=1)
    assert every.n >= 2 * added  # at submission and again at the decision
    assert audit.verify(session).ok
