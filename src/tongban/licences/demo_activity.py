"""A month of demo licence verifications (免提交), run by `tongban demo` after the demo
licences and before the dashboard's refresh; idempotent.

The demo licence holders (wangfang in 合肥, yrd-tech in 苏州) apply, over the last 30
days, for matters whose materials their licences stand in for: 12–18 cases a month
received in their own city for their city and for 上海. Each case is the case context's
record with its events (submitted, accepted, under review, approved, issued, delivered),
written as ORM objects so the audit hook chains them, and each licence used is verified
as `usage` does it — at submission and again at the decision — with a `licence_use` row
per verification (valid: the demo licences are). The cases are numbered DEMO-LIC-… and
not linked to the holders' accounts, so their own case lists stay as the demo left them."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session

from tongban.catalog import service as catalog
from tongban.db import utcnow
from tongban.exchange import service as exchange
from tongban.identity.models import Account
from tongban.licences.models import Licence, LicenceUse
from tongban.regions import service as regions

PREFIX = "DEMO-LIC-"
DAYS = 30
PER_PAIR = (12, 18)
SHANGHAI = "310000"
#: Demo licence holders who apply (their licences are in demo_data.DEMO_LICENCES).
HOLDERS = ("wangfang", "yrd-tech")

_STEPS = [
    ("submit", "submitted", 0),
    ("accept", "accepted", 5),
    ("start_review", "under_review", 30),
    ("approve", "approved", 70),
    ("issue_result", "result_issued", 80),
    ("deliver", "delivered", 81),
]


def _mapped(name: str) -> Any:
    """The mapped class of table `name`: the case context's records, reached through the
    shared mapper registry (the case context imports this one, so this one does not
    import it)."""
    for m in inspect(LicenceUse).registry.mappers:
        if getattr(m.local_table, "name", None) == name:
            return m.class_
    raise LookupError(name)


def load(session: Session) -> int:
    """Write the month of cases with licence verifications (unless there already are
    some); how many cases were added."""
    case_cls = _mapped("service_case")
    if session.scalar(
        select(func.count()).select_from(case_cls).where(case_cls.number.like(f"{PREFIX}%"))
    ):
        return 0
    by_code = {c.code: c for c in regions.list_cities(session)}
    authorities: dict[tuple[str, str], Any] = {}
    for a in regions.list_authorities(session):
        if a.city_code:
            authorities.setdefault((a.city_code, a.type), a)
    matters = [m for m in catalog.list_matters(session) if m.authority_level == "city"]
    event_cls = inspect(case_cls).relationships["events"].mapper.class_
    rng = random.Random(20261130)
    now = utcnow()
    start = now - timedelta(days=DAYS)
    added = 0
    for username in HOLDERS:
        account = session.scalar(select(Account).where(Account.username == username))
        if account is None or not account.city_code:
            continue
        ident = account.credit_code or account.id_number or ""
        licences = {
            lic.type_code: lic
            for lic in session.scalars(select(Licence).where(Licence.holder_identifier == ident))
        }
        usable = [
            (m, [mat for mat in m.materials if mat.licence_type in licences])
            for m in matters
            if any(mat.licence_type in licences for mat in m.materials)
        ]
        rc = by_code.get(account.city_code)
        if not usable or rc is None:
            continue
        for tc_code in sorted({rc.code, SHANGHAI}):
            tc = by_code.get(tc_code)
            if tc is None or not exchange.serves_here(session, tc.jurisdiction_code):
                continue
            for _ in range(rng.randint(*PER_PAIR)):
                m, materials = rng.choice(usable)
                auth = authorities.get((tc.code, m.authority_type))
                if auth is None:
                    continue
                added += 1
                at = start + timedelta(seconds=rng.randrange(DAYS * 86400 - 100 * 3600))
                _case(
                    session,
                    case_cls,
                    event_cls,
                    added,
                    account,
                    rc,
                    tc,
                    m,
                    auth,
                    at,
                    materials,
                    licences,
                )
    session.flush()
    return added


def _case(
    session: Session,
    case_cls: Any,
    event_cls: Any,
    n: int,
    account: Account,
    rc: Any,
    tc: Any,
    m: Any,
    auth: Any,
    submitted: datetime,
    materials: list[Any],
    licences: dict[str, Licence],
) -> None:
    """One delivered case whose materials the applicant's licences stood in for, with
    the verification of each at submission and at the decision."""
    steps = [(a, s, submitted + timedelta(hours=h)) for a, s, h in _STEPS]
    cid = uuid.uuid4()
    session.add(
        case_cls(
            id=cid,
            number=f"{PREFIX}{n:06d}",
            matter_code=m.code,
            matter_name=m.name[:120],
            applicant_type="enterprise" if account.credit_code else "resident",
            applicant_name=account.display_name,
            applicant_identifier=(account.credit_code or account.id_number or "")[:18],
            channel="online",
            mode="online",
            receiving_jurisdiction=rc.jurisdiction_code,
            receiving_city=rc.code,
            identity_verified=True,
            competent_jurisdiction=tc.jurisdiction_code,
            competent_city=tc.code,
            authority_id=auth.id,
            authority_name=auth.name,
            state="delivered",
            handoff="done",
            form_data={},
            consent=True,
            time_limit_days=int(m.time_limit_days or 10),
            submitted_at=submitted,
            accepted_at=steps[1][2],
            closed_at=steps[-1][2],
            event_seq=len(steps),
        )
    )
    previous: str | None = None
    for seq, (action, state, when) in enumerate(steps, start=1):
        session.add(
            event_cls(
                case_id=cid,
                seq=seq,
                action=action,
                from_state=previous,
                to_state=state,
                actor_name=account.display_name if action == "submit" else "演示",
                actor_role="resident" if action == "submit" else "officer",
                at=when.astimezone(UTC),
            )
        )
        previous = state
    for mat in materials:
        lic = licences[mat.licence_type]
        for stage, when in (("submission", submitted), ("decision", steps[3][2])):
            session.add(
                LicenceUse(
                    case_id=cid,
                    material_code=mat.code,
                    licence_id=lic.id,
                    identifier=lic.identifier,
                    type_code=lic.type_code,
                    stage=stage,
                    result="valid",
                    detail="",
                    verified_at=when.astimezone(UTC),
                )
            )
