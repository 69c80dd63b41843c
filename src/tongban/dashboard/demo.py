"""Demo activity for the dashboard (run by `tongban demo`, idempotent): a month of
cross-border cases between the cities this node serves and their neighbours, so that a
leader opening /dashboard sees headlines, a heat map and a trend instead of empty or
withheld cells; then a refresh.

Every city receives cases for itself, for its province's capital and for 上海 (the
flows a leader would expect to see), about a dozen to twenty per pair over the last 30
days, with realistic steps (submitted, accepted, decided within or beyond the time
limit, delivered, rated). The cases are written as the case context's own records —
`Case` rows with their events as ORM objects, so the audit hook chains every event
exactly as in production (the dashboard reads the chain); nothing is faked in the
chain. Deterministic (seeded), marked by their numbers (DEMO-DASH-…)."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Integer, String, Uuid, column, func, insert, inspect, select, table
from sqlalchemy.orm import Session

from tongban.cases import service as cases
from tongban.catalog import service as catalog
from tongban.dashboard import service
from tongban.db import UTCDateTime, utcnow
from tongban.kernel.node import settings_of
from tongban.regions import service as regions

PREFIX = "DEMO-DASH-"
DAYS = 30
#: Cases per (receiving city, competent city) pair: at least the default threshold.
PER_PAIR = (12, 22)
SHANGHAI = "310000"

rating = table(
    "rating",
    column("id", Uuid),
    column("case_id", Uuid),
    column("score", Integer),
    column("comment", String),
    column("created_at", UTCDateTime),
)

#: (mode, channel) of the demo's cases, weighted towards online handling.
MODES = [("online", "online")] * 5 + [("proxy", "window")] * 3 + [("joint", "online")]


def _event_class() -> Any:
    """The case context's event class, reached through its public `Case` (its events
    relationship) rather than its models module."""
    return inspect(cases.Case).relationships["events"].mapper.class_


def load(session: Session, *, cities: int | None = None) -> int:
    """Write the month of demo cases (unless there already are some) and refresh the
    dashboard; how many cases were added. `cities`: only the first so many receiving
    cities (for tests)."""
    done = session.scalar(
        select(func.count()).select_from(cases.Case).where(cases.Case.number.like(f"{PREFIX}%"))
    )
    if done:
        return 0
    served = settings_of(session).served_jurisdictions
    owns = service.owns_for(served)
    every = regions.list_cities(session)
    by_code = {c.code: c for c in every}
    capitals = {c.jurisdiction_code: c.code for c in every if c.code.endswith("0100")}
    capitals.setdefault(SHANGHAI, SHANGHAI)
    matters = [m for m in catalog.list_matters(session) if m.authority_level == "city"][:12]
    if not matters or SHANGHAI not in by_code:
        return 0
    authorities: dict[tuple[str, str], Any] = {}
    for a in regions.list_authorities(session):
        if a.city_code:
            authorities.setdefault((a.city_code, a.type), a)
    rng = random.Random(20261129)
    event_cls = _event_class()
    now = utcnow()
    start = now - timedelta(days=DAYS)
    added = 0
    ratings: list[dict[str, Any]] = []
    for rc in every[:cities]:
        targets = {rc.code, capitals.get(rc.jurisdiction_code, rc.code), SHANGHAI}
        for tc_code in sorted(targets):
            tc = by_code[tc_code]
            if not owns(tc.jurisdiction_code):
                continue
            for _ in range(rng.randint(*PER_PAIR)):
                m = rng.choice(matters)
                auth = authorities.get((tc.code, m.authority_type))
                if auth is None:
                    continue
                added += 1
                ratings += _case(session, event_cls, rng, added, rc, tc, m, auth, start)
    if ratings:
        session.execute(insert(rating), ratings)
    session.flush()
    service.refresh(session, owns, settle=timedelta(0))
    return added


def _case(
    session: Session,
    event_cls: Any,
    rng: random.Random,
    n: int,
    rc: Any,
    tc: Any,
    m: Any,
    auth: Any,
    start: datetime,
) -> list[dict[str, Any]]:
    """One demo case with its events (ORM objects: the audit hook chains them); its
    rating row, if rated."""
    mode, channel = rng.choice(MODES)
    submitted = start + timedelta(seconds=rng.randrange(DAYS * 86400 - 3600))
    limit = int(m.time_limit_days or 10)
    # Most decided within the limit, some late; the newest still open.
    steps: list[tuple[str, str, datetime]] = [("submit", "submitted", submitted)]
    at = submitted + timedelta(hours=rng.randint(1, 30))
    now = utcnow()
    if at < now:
        steps.append(("accept", "accepted", at))
        took = rng.choice([1, 2, 2, 3, 3, 4, 5, 6, 8] + [limit + 2, limit + 5])
        at = at + timedelta(days=took, hours=rng.randint(0, 6))
        if at < now:
            steps.append(("start_review", "under_review", at - timedelta(hours=2)))
            denied = rng.random() < 0.06
            steps.append(("deny" if denied else "approve", "denied" if denied else "approved", at))
            if not denied:
                at = at + timedelta(hours=rng.randint(2, 30))
                if at < now:
                    steps.append(("issue_result", "result_issued", at))
                    steps.append(("deliver", "delivered", at + timedelta(hours=1)))
                    at = at + timedelta(hours=rng.randint(3, 48))
                    if at < now and rng.random() < 0.6:
                        steps.append(("rate", "rated", at))
    elif rng.random() < 0.05:
        steps.append(("refuse", "refused", at))
    cid = uuid.uuid4()
    case = cases.Case(
        id=cid,
        number=f"{PREFIX}{n:06d}",
        matter_code=m.code,
        matter_name=m.name[:120],
        applicant_type="resident",
        applicant_name="演示申请人",
        applicant_identifier="0" * 18,
        channel=channel,
        mode=mode,
        receiving_jurisdiction=rc.jurisdiction_code,
        receiving_city=rc.code,
        identity_verified=True,
        competent_jurisdiction=tc.jurisdiction_code,
        competent_city=tc.code,
        authority_id=auth.id,
        authority_name=auth.name,
        state=steps[-1][1],
        handoff="done",
        form_data={},
        consent=True,
        time_limit_days=limit,
        submitted_at=submitted,
        accepted_at=steps[1][2] if len(steps) > 1 and steps[1][0] == "accept" else None,
        closed_at=steps[-1][2] if steps[-1][0] in ("deliver", "rate", "deny", "refuse") else None,
        event_seq=len(steps),
    )
    session.add(case)
    previous: str | None = None
    for i, (action, state, when) in enumerate(steps, start=1):
        session.add(
            event_cls(
                case_id=cid,
                seq=i,
                action=action,
                from_state=previous,
                to_state=state,
                actor_name="演示" if action != "submit" else "演示申请人",
                actor_role="officer" if action not in ("submit", "rate") else "resident",
                at=when.astimezone(UTC),
            )
        )
        previous = state
    if steps[-1][0] == "rate":
        score = rng.choice([5, 5, 5, 4, 4, 4, 3, 2, 1])
        return [
            {
                "id": uuid.uuid4(),
                "case_id": cid,
                "score": score,
                "comment": "" if score > 2 else "办理太慢",
                "created_at": steps[-1][2],
            }
        ]
    return []
