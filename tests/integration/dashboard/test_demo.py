"""The dashboard's demo month: `tongban demo` leaves a dashboard a leader can read —
headline figures, city pairs and a daily trend above the small-cell threshold — and
every case event it wrote is in the audit chain the dashboard reads."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select

from tongban.audit import service as audit
from tongban.dashboard import demo, service
from tongban.dashboard.domain import Indicator


def test_the_demo_month_fills_the_headlines_heat_map_and_trend(session):
    added = demo.load(session, cities=4)
    assert added >= 4 * 2 * demo.PER_PAIR[0] * 0.8  # its own city, capital, 上海
    assert demo.load(session, cities=4) == 0  # idempotent
    today = date.today()
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
