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
chain. Deterministic (seeded), marked by their numbers (DEMO-DASH-…).

A 差评 (1–2 stars) opens a rectification item (差评整改) as the case context does, and
the demo plays its loop on: the authority replies, the applicant says 已解决 or 未解决
(reopened, and after two reopenings escalated to the supervisors), each step an event
of the case in the chain and the item following it. A few pairs into 上海 carry a wave
of poor ratings of one matter, so the rectification indicators rise above the
small-cell threshold for them as they would after a service went wrong.

Work orders (工单) too, in the cities this node serves among the receiving ones: routed
by the work-order context's own routing to their lead authority, each with its history
(dispatched, accepted, handled, fixed, verified, the reporter's verdict), some fixed
late, some reopened after a 不满意, some joint orders across a border — again the
context's records with their events, chained by the audit hook."""

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
from tongban.tickets import service as tickets

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
rectification = table(
    "rectification",
    column("id", Uuid),
    column("case_id", Uuid),
    column("authority_id", Uuid),
    column("rating_id", Uuid),
    column("status", String),
    column("reason", String),
    column("response", String),
    column("created_at", UTCDateTime),
    column("closed_at", UTCDateTime),
)

#: Receiving cities (the first so many) whose cases into 上海 carry a wave of 差评, and
#: how many such cases each.
WAVE_CITIES = 3
WAVE_CASES = 14

#: How a rectification loop goes on after the 差评: the steps taken, in turn (each a
#: few days after the previous one; the newest stop where "now" is).
LOOPS = [
    (),
    ("reply",),
    ("reply", "accept"),
    ("reply", "accept"),
    ("reply", "accept"),
    ("reply", "reopen", "reply", "accept"),
    ("reply", "reopen", "reply", "reopen", "reply", "escalate"),
]
_LOOP_ACTIONS = {
    "reply": ("rectification_reply", "officer", "已优化办理流程，缩短等候时间"),
    "accept": ("rectification_accepted", "resident", "已解决"),
    "reopen": ("rectification_reopened", "resident", "仍需多次往返"),
    "escalate": ("rectification_escalated", "resident", "问题仍未解决"),
}
_LOOP_STATUS = {
    "reply": "replied",
    "accept": "resolved",
    "reopen": "open",
    "escalate": "escalated",
}

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
    # The wave's matter: one that 上海 handles at city level.
    wave = next((m for m in matters if (SHANGHAI, m.authority_type) in authorities), None)
    rng = random.Random(20261129)
    event_cls = _event_class()
    now = utcnow()
    start = now - timedelta(days=DAYS)
    added = 0
    ratings: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    for i, rc in enumerate(every[:cities]):
        targets = {rc.code, capitals.get(rc.jurisdiction_code, rc.code), SHANGHAI}
        for tc_code in sorted(targets):
            tc = by_code[tc_code]
            if not owns(tc.jurisdiction_code):
                continue
            plan = [(rng.choice(matters), False) for _ in range(rng.randint(*PER_PAIR))]
            if wave is not None and tc_code == SHANGHAI and i < WAVE_CITIES:
                plan += [(wave, True)] * WAVE_CASES
            for m, poor in plan:
                auth = authorities.get((tc.code, m.authority_type))
                if auth is None:
                    continue
                added += 1
                r, item = _case(session, event_cls, rng, added, rc, tc, m, auth, start, poor)
                ratings += r
                items += item
    if ratings:
        session.execute(insert(rating), ratings)
    if items:
        session.execute(insert(rectification), items)
    for i, rc in enumerate(every[:cities]):
        if owns(rc.jurisdiction_code):
            _work_orders(session, rng, i, rc, start)
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
    poor: bool = False,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One demo case with its events (ORM objects: the audit hook chains them); its
    rating row, if rated, and its rectification item if the rating was poor. `poor`: a
    case of the wave of 差评 (delivered in the month's first half and rated 1–2)."""
    mode, channel = rng.choice(MODES)
    span = DAYS * 86400 - 3600
    submitted = start + timedelta(seconds=rng.randrange(span // 2 if poor else span))
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
                    if at < now and (poor or rng.random() < 0.6):
                        steps.append(("rate", "rated", at))
    elif rng.random() < 0.05:
        steps.append(("refuse", "refused", at))
    score = rng.choice([1, 2] if poor else [5, 5, 5, 4, 4, 4, 3, 2, 1])
    loop: list[tuple[str, datetime]] = []
    if steps[-1][0] == "rate" and score <= 2:
        at = steps[-1][2]
        for step in rng.choice(LOOPS):
            at = at + timedelta(days=rng.randint(1, 4), hours=rng.randint(0, 8))
            if at >= now:
                break
            loop.append((step, at))
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
        event_seq=len(steps) + len(loop),
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
    for i, (step, when) in enumerate(loop, start=len(steps) + 1):
        action, role, comment = _LOOP_ACTIONS[step]
        session.add(
            event_cls(
                case_id=cid,
                seq=i,
                action=action,
                from_state="rated",
                to_state="rated",
                actor_name="演示" if role == "officer" else "演示申请人",
                actor_role=role,
                comment=comment,
                at=when.astimezone(UTC),
            )
        )
    if steps[-1][0] != "rate":
        return [], []
    rated = {
        "id": uuid.uuid4(),
        "case_id": cid,
        "score": score,
        "comment": "" if score > 2 else "办理太慢",
        "created_at": steps[-1][2],
    }
    if score > 2:
        return [rated], []
    last = loop[-1] if loop else None
    status = _LOOP_STATUS[last[0]] if last else "open"
    item = {
        "id": uuid.uuid4(),
        "case_id": cid,
        "authority_id": auth.id,
        "rating_id": rated["id"],
        "status": status,
        "reason": "办理太慢",
        "response": _LOOP_ACTIONS["reply"][2] if loop else None,
        "created_at": steps[-1][2],
        "closed_at": last[1] if last and status in ("resolved", "escalated") else None,
    }
    return [rated], [item]


#: Work orders per city over the month, and their categories (handled by the city's
#: own authorities).
TICKETS = (12, 18)
TICKET_CATEGORIES = ("sanitation", "road_damage", "street_light", "noise_construction")
_TICKET_PATH = [
    ("dispatch", "dispatched", "dispatcher"),
    ("accept", "accepted", "authority"),
    ("start", "in_progress", "authority"),
    ("fix", "fixed", "authority"),
    ("verify", "verified", "dispatcher"),
]


def _mapped(name: str) -> Any:
    """The mapped class of table `name` (a context's record, reached without importing
    its models module)."""
    for m in inspect(cases.Case).registry.mappers:
        if getattr(m.local_table, "name", None) == name:
            return m.class_
    raise LookupError(name)


def _work_orders(session: Session, rng: random.Random, i: int, rc: Any, start: datetime) -> int:
    """The month's work orders of city `rc`: routed, handled, verified and judged by
    their reporters; about one in six fixed late, one in eight reopened after a 不满意
    (then fixed again), one in five a joint order across a border."""
    order_cls, event_cls = _mapped("ticket"), _mapped("ticket_event")
    now = utcnow()
    made = 0
    for n in range(rng.randint(*TICKETS)):
        category = TICKET_CATEGORIES[n % len(TICKET_CATEGORIES)]
        try:
            routing = tickets.route(session, category, city_code=rc.code)
        except Exception:  # noqa: BLE001 - a city without a routed authority: none there
            continue
        created = start + timedelta(seconds=rng.randrange(DAYS * 86400 // 2))
        late = rng.random() < 0.17
        reopened = rng.random() < 0.12
        steps: list[tuple[str, str, str, datetime]] = [("report", "reported", "reporter", created)]
        at = created
        for round_ in range(2 if reopened else 1):
            for action, state, role in _TICKET_PATH[2 if round_ else 0 :]:
                hours = rng.randint(2, 20) + (96 if late and action == "fix" else 0)
                at = at + timedelta(hours=hours)
                steps.append((action, state, role, at))
            at = at + timedelta(hours=rng.randint(4, 30))
            if round_ == 0 and reopened:
                steps.append(("unsatisfied", "reopened", "reporter", at))
        if at >= now:
            continue
        steps.append(("satisfied", "closed", "reporter", at))
        made += 1
        tid = uuid.uuid4()
        session.add(
            order_cls(
                id=tid,
                number=f"{PREFIX}T{i:02d}{n:04d}",
                channel="hotline",
                category_code=category,
                urgency="complaint",
                description="演示工单",
                jurisdiction_code=routing.jurisdiction_code,
                city_code=routing.city_code,
                district_code=routing.district_code,
                authority_id=routing.lead.id,
                authority_name=routing.lead.name,
                routing_note=routing.note[:300],
                joint=rng.random() < 0.2,
                state="closed",
                reporter_name="演示市民",
                created_at=created,
                updated_at=at,
                dispatched_at=steps[1][3],
                accepted_at=steps[2][3],
                fixed_at=max(w for a, _, _, w in steps if a == "fix"),
                on_time=not late,
                verified_at=max(w for a, _, _, w in steps if a == "verify"),
                satisfied=True,
                reopen_count=1 if reopened else 0,
                closed_at=at,
                event_seq=len(steps),
            )
        )
        previous: str | None = None
        for seq, (action, state, role, when) in enumerate(steps, start=1):
            session.add(
                event_cls(
                    ticket_id=tid,
                    seq=seq,
                    action=action,
                    from_state=previous,
                    to_state=state,
                    actor_name="演示市民" if role == "reporter" else "演示",
                    actor_role=role,
                    at=when.astimezone(UTC),
                )
            )
            previous = state
    session.flush()
    return made
