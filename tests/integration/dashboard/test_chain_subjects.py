"""The refresh's read of the chain and the subjects of its entries (SQLite and
PostgreSQL): an entry names its record as "<prefix>:<uuid>"; entries whose subject is
not a canonical uuid name no record and are skipped — they never fail the refresh (on
PostgreSQL the subject is cast to uuid inside one statement per batch, so one bad
subject that passed the guard would abort the whole fold) — and every well-formed entry
is counted exactly once, whatever kind of record it names."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from integration.dashboard.kit import PLAN, build_cases
from integration.dashboard.test_settlement_indicators import _settle
from integration.dashboard.test_ticket_indicators import _loop
from tongban.audit import hook
from tongban.audit.models import AuditEntry
from tongban.calendar.service import local_date
from tongban.cases.models import CaseEvent, Rating
from tongban.dashboard import service
from tongban.db import utcnow
from tongban.evidence.models import DataAccess
from tongban.medical import settlement
from tongban.medical.models import SettlementEvent
from tongban.tickets.models import TicketEvent

from builders import make_filing, make_hospital_staff, make_institution, make_insured

ALL = service.owns_for("*")

#: Subjects of the right length for their prefix (41, 43, 47 characters) that are no
#: uuid, or a uuid in a form the record tables never hold.
HOSTILE_IDS = [
    "-" * 36,
    "x" * 36,
    "0" * 36,  # 36 hex digits, no hyphens
    "0123456-89abc-def0-1234-56789abcdef0",  # hyphens out of place
    "0f8fad5b-d9cb-469f-a165-70867728950-",
    "0f8fad5b-d9cb-469f-a165-7086772895 e",
    "0f8fad5b-d9cb-469f-a165-70867728950é",
    "0f8fad5b_d9cb_469f_a165_70867728950e",
    "'0f8fad5b-d9cb-469f-a165-7086772895'",
]
PREFIXES = {
    "case.event": "case",
    "ticket.event": "ticket",
    "medical.settlement.event": "settlement",
}


def _append(session, kind: str, subject: str, body: dict) -> None:
    hook.append(session.connection(), kind, subject, "system", body, alg=hook.hash_alg(session))


def _counts(session) -> Counter[tuple]:
    return Counter(
        {
            (k.indicator, k.day, k.from_city, k.to_city, k.category, k.authority): v.n
            for k, v in service.local_cells(session).items()
        }
    )


def test_entries_naming_no_record_are_skipped_and_never_fail_the_refresh(session):
    build_cases(session, PLAN)
    service.refresh(session, ALL, settle=timedelta(0))
    before = _counts(session)
    assert sum(before.values()) > 0
    bodies = {
        "case.event": {"action": "submit", "to_state": "submitted"},
        "ticket.event": {"action": "close", "to_state": "closed"},
        "medical.settlement.event": {"action": "settle", "to_state": "settled"},
    }
    appended = 0
    for kind, prefix in PREFIXES.items():
        for rid in [*HOSTILE_IDS, str(uuid.uuid4())]:  # the last: canonical, no such record
            _append(session, kind, f"{prefix}:{rid}", bodies[kind])
            appended += 1
        _append(session, kind, f"{prefix}:", bodies[kind])
        _append(session, kind, prefix, bodies[kind])
        appended += 2
    session.flush()
    result = service.refresh(session, ALL, settle=timedelta(0))
    assert result.events == appended  # read (and counted as read), not failed
    assert _counts(session) == before  # and no fact made of them


@pytest.mark.parametrize("copies", [1, 3])
def test_each_well_formed_entry_is_counted_once(session, copies):
    """Entries appended after a first refresh, among hostile ones: each well-formed
    case event adds exactly one to its cell (neither dropped nor doubled)."""
    cases = build_cases(session, PLAN)
    service.refresh(session, ALL, settle=timedelta(0))
    before = _counts(session)
    target = cases[0]
    for _ in range(copies):
        _append(session, "case.event", "case:" + "-" * 36, {"action": "deliver"})
        _append(session, "case.event", f"case:{target.id}", {"action": "deliver"})
    session.flush()
    service.refresh(session, ALL, settle=timedelta(0))
    added = _counts(session) - before
    assert sum(added.values()) == copies
    ((key, n),) = added.items()
    assert key[0] == "cases.delivered" and n == copies
    assert (key[2], key[3]) == (target.receiving_city, target.competent_city)


def _by_indicator(session) -> Counter[str]:
    out: Counter[str] = Counter()
    for k, v in service.local_cells(session).items():
        out[k.indicator] += v.n
    return out


def test_every_kind_of_entry_is_counted_once_whatever_the_batches(session, tmp_path):
    """Cases, work orders, settlements and evidence decisions interleaved in the chain,
    folded one entry per batch (most batches hold one kind only, so any kind of fact a
    batch skips or reads twice shows) and then all in one batch: each indicator's count
    equals the event rows that make it, counted in Python from the contexts' own tables."""
    cases = build_cases(session, PLAN)
    _loop(session, tmp_path, reopen=True)
    shanghai = make_institution(session, "310000")
    staff = make_hospital_staff(session, shanghai)
    hefei = make_insured(session, "340100", balance=5_000_000)
    make_filing(session, hefei, "310000")
    for i in range(3):
        _settle(session, staff, hefei, f"MIX-{i}", i + 1)
    settlement.reverse(session, staff, "MIX-1", reason="收费项目录入错误")
    now = utcnow()
    session.add_all(
        DataAccess(
            request_id=uuid.uuid4(),
            subject_identifier="0" * 18,
            subject_name="某某",
            requester_authority_code="320500-housing_fund",
            requester_authority_name="某局",
            requester_jurisdiction="320000",
            officer_name="某某",
            case_number=f"{i:020d}",
            matter_name="某事项",
            kind="hukou",
            purpose="case",
            provider_jurisdiction="310000",
            outcome="answered" if i % 2 else "refused",
            requested_at=now,
            at=now - timedelta(hours=i),
            source="provider" if i < 4 else "notice",
        )
        for i in range(6)
    )
    build_cases(session, PLAN[:2])  # more case events after the others
    session.flush()

    case_actions = Counter(a for (a,) in session.execute(select(CaseEvent.action)))
    ticket_events = session.execute(select(TicketEvent.action, TicketEvent.to_state)).all()
    settled = Counter(s for (s,) in session.execute(select(SettlementEvent.to_state)))
    expected = {
        "cases.received": case_actions["submit"],
        "cases.decided": case_actions["approve"] + case_actions["deny"],
        "cases.refused": case_actions["refuse"],
        "cases.delivered": case_actions["deliver"],
        "cases.rating": len(session.execute(select(Rating.case_id)).all()),
        "rectification.opened": sum(
            1 for (score,) in session.execute(select(Rating.score)) if score <= 2
        ),
        "tickets.closed": sum(1 for _, s in ticket_events if s == "closed"),
        "tickets.reopened": sum(1 for _, s in ticket_events if s == "reopened"),
        "tickets.satisfaction": sum(
            1 for a, _ in ticket_events if a in ("satisfied", "unsatisfied")
        ),
        "medical.settlement": settled["settled"],
        "medical.reversed": settled["reversed"],
        "evidence.access": sum(
            1 for (src,) in session.execute(select(DataAccess.source)) if src in (None, "provider")
        ),
    }
    assert all(expected.values()) and len(cases) == len(PLAN)

    service.refresh(session, ALL, settle=timedelta(0), batch=1)
    one_by_one = service.local_cells(session)
    got = _by_indicator(session)
    assert {i: got[i] for i in expected} == expected
    assert set(got) <= set(expected)

    service.recompute(session, ALL, settle=timedelta(0))  # every kind in one batch
    assert service.local_cells(session) == one_by_one


def test_an_events_day_is_its_bodys_instant_and_a_hostile_one_never_fails_the_refresh(session):
    """The day of a case event is the Beijing day of its body's `at` (the chain's typed
    `occurred_at`, migration 0058), else of the time it was chained: an `at` that is no
    instant (on PostgreSQL the body's text was cast inside the refresh's one statement,
    so one such entry failed the whole fold) counts the event on the chaining day."""
    cases = build_cases(session, PLAN)
    service.refresh(session, ALL, settle=timedelta(0))
    before = _counts(session)
    target = cases[0]
    # 23:30 in Beijing on 1 March is 15:30 UTC: the Beijing day, not the UTC one.
    _append(
        session,
        "case.event",
        f"case:{target.id}",
        {"action": "deliver", "at": "2026-03-01T15:30:00Z"},
    )
    for at in ("2026-13-45T00:00:00Z", "yesterday", 20260301):
        _append(session, "case.event", f"case:{target.id}", {"action": "deliver", "at": at})
    session.flush()
    chained = session.scalar(select(func.max(AuditEntry.at)))
    service.refresh(session, ALL, settle=timedelta(0))
    added = _counts(session) - before
    by_day = Counter()
    for key, n in added.items():
        assert key[0] == "cases.delivered"
        by_day[key[1]] += n
    assert by_day == Counter({date(2026, 3, 1): 1, local_date(chained): 3})
