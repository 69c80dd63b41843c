"""A year of demo evidence requests answered (数据调取), run by `tongban demo` after the
demo registers and before the dashboard's refresh; idempotent.

Each jurisdiction this node serves is the provider of data (户籍证明, 社会保险缴费记录,
电子证照状态) asked for by authorities of the cities of the other jurisdictions while
they handle a case: over the last 365 days (twelve months), one to five requests a month from each such
city, more from the neighbouring provinces' capitals and from 上海, fewer in the
Spring Festival month; about one in twelve refused because the provider's register has
no record of the applicant (`domain.no_record`, the commonest refusal). Each is the
provider's `DataAccess` record as `handlers.answer` writes it (requester, kind, purpose,
outcome, the fields returned as the purpose minimises them), written as an ORM object
with its past time, so the audit hook chains it as `evidence.access` exactly as in
production and the dashboard reads it from the chain. The applicants are synthetic
(case numbers DEMO-EVD-…, identifiers of no demo account), so no resident's
我的数据使用记录 changes and no log message goes to other nodes."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tongban.db import utcnow
from tongban.evidence import domain
from tongban.evidence import service as evidence
from tongban.evidence.models import DataAccess
from tongban.exchange import service as exchange
from tongban.regions import service as regions

PREFIX = "DEMO-EVD-"
MONTHS = 12
#: A twelfth of a year, in days: the months cover the last 365 days.
MONTH = 365 / MONTHS
#: Requests a month from each city of another jurisdiction (its capital and 上海: more).
PER_CITY_MONTH = (1, 5)
BUSY = (4, 9)
REFUSED = 1 / 12
#: The kinds the demo asks for, and how often (of every ten requests).
KINDS = {"household": 5, "social_insurance": 3, "licence_status": 2}


def load(session: Session) -> int:
    """Write the year of answered and refused requests (unless there already are demo
    ones); how many."""
    if session.scalar(
        select(func.count())
        .select_from(DataAccess)
        .where(DataAccess.case_number.like(f"{PREFIX}%"))
    ):
        return 0
    cat = evidence.catalogue()
    kinds = [(cat.kinds[k], w) for k, w in KINDS.items() if k in cat.kinds]
    if not kinds:
        return 0
    cities = sorted(regions.list_cities(session), key=lambda c: c.code)
    authorities: dict[str, list[Any]] = {}
    for a in regions.list_authorities(session):
        if a.city_code:
            authorities.setdefault(a.city_code, []).append(a)
    providers = sorted(
        {c.jurisdiction_code for c in cities if exchange.serves_here(session, c.jurisdiction_code)}
    )
    rng = random.Random(20261129)
    now = utcnow()
    start = now - timedelta(days=MONTH * MONTHS)
    added = 0
    for provider in providers:
        for city in cities:
            if city.jurisdiction_code == provider:
                continue
            busy = city.code == "310000" or city.code.endswith("0100")
            for month in range(MONTHS):
                lo, hi = BUSY if busy else PER_CITY_MONTH
                n = rng.randint(lo, hi)
                if (start + timedelta(days=month * MONTH + 15)).month == 2:
                    n //= 2  # the Spring Festival: fewer cases handled
                for _ in range(n):
                    kind = rng.choices([k for k, _ in kinds], [w for _, w in kinds])[0]
                    who = [
                        a for a in authorities.get(city.code, ()) if a.type in kind.requester_types
                    ]
                    purposes = [p for p in cat.purposes.values() if kind.code in p.kinds]
                    if not who or not purposes:
                        continue
                    at = start + timedelta(
                        days=(month + rng.random()) * MONTH, hours=rng.uniform(1, 9)
                    )
                    if at >= now:
                        continue
                    added += 1
                    _access(
                        session,
                        rng,
                        added,
                        cat,
                        kind,
                        rng.choice(purposes),
                        rng.choice(who),
                        city,
                        provider,
                        at,
                    )
    session.flush()
    return added


def _access(
    session: Session,
    rng: random.Random,
    n: int,
    cat: domain.Catalogue,
    kind: domain.EvidenceKind,
    purpose: domain.Purpose,
    authority: Any,
    city: Any,
    provider: str,
    at: Any,
) -> None:
    refused = domain.no_record(cat, kind.code) if rng.random() < REFUSED else None
    fields = purpose.fields.get(kind.code) or tuple(k for k, _ in kind.fields)
    subject = f"{provider[:2]}0100{rng.randint(1950, 2005)}{rng.randint(1, 12):02d}"
    subject += f"{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}{rng.choice('0123456789X')}"
    session.add(
        DataAccess(
            request_id=uuid.uuid4(),
            subject_identifier=subject,
            subject_name="演示申请人",
            requester_authority_code=authority.code,
            requester_authority_name=authority.name[:80],
            requester_jurisdiction=city.jurisdiction_code,
            officer_name="演示经办人",
            case_number=f"{PREFIX}{n:06d}",
            matter_name=purpose.label[:120],
            kind=kind.code,
            purpose=purpose.code,
            provider_jurisdiction=provider,
            outcome=(domain.Status.REFUSED if refused else domain.Status.ANSWERED).value,
            reason_code=refused.reason.value if refused else None,
            reason=refused.text if refused else None,
            fields=[] if refused else sorted(fields),
            requested_at=at - timedelta(seconds=rng.randint(1, 20)),
            at=at,
            source="provider",
        )
    )
