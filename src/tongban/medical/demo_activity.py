"""A month of demo outpatient settlements and a closed clearing period (run by
`tongban demo` after the medical demo data, before the dashboard's refresh; idempotent).

Each demo institution this node serves (one per treatment city) settles, since the
first day of the previous month, 12–20 claims a month of insured persons of each of a
few other cities of its own province (苏州 treats people insured in 南京, 无锡, 徐州 …),
about one in twelve reversed (冲正) a few hours later. The claims are the medical
context's own records — `Visit` with its fee item, `Settlement` and its `settle` /
`reverse` events — written as ORM objects with their past times, so the audit hook
chains every event as in production and the dashboard reads them from the chain. The
insured persons are synthetic (claims numbered DEMO-…) and their insured side's
reservations are not written; that is why the pairs stay within a province: a clearing
statement is between jurisdictions and compares both sides, so these claims are in the
city-level gross matrix only and no statement disagrees (nor do a federation's
statements of real claims change).

Then, on a node serving every jurisdiction (`make run`), the previous month's clearing
period is cleared and closed through the clearing service (`clear_period`,
`close_period`), so the dashboard's clearing balances have a closed run to fold. On a
federation of nodes closing a period compares statements with the other nodes, which
the demo does not do behind their backs: the operator closes it (`tongban medical
close`)."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tongban.calendar.service import local_date
from tongban.db import utcnow
from tongban.exchange import service as exchange
from tongban.identity.models import Account
from tongban.kernel.node import settings_of
from tongban.medical import clearing_service, domain
from tongban.medical.demo_data import INSTITUTIONS, staff_username
from tongban.medical.models import FeeItem, Institution, Settlement, SettlementEvent, Visit
from tongban.regions import service as regions

PREFIX = "DEMO"
DAYS = 30
#: Claims per (insured city, treatment city) pair and 30 days: above the threshold.
PER_PAIR = (12, 20)
#: How many other cities of its province each treatment city treats people of.
INSURED_CITIES = 3
REVERSED = 1 / 12


def load(session: Session) -> int:
    """Write the month of settlements (unless there already are demo ones) and close the
    previous clearing period; how many settlements were added."""
    if session.scalar(
        select(func.count()).select_from(Settlement).where(Settlement.txn_id.like(f"{PREFIX}-%"))
    ):
        return 0
    cities = sorted(regions.list_cities(session), key=lambda c: c.code)
    institutions = {i.code: i for i in session.scalars(select(Institution))}
    staff = {
        a.username: a
        for a in session.scalars(
            select(Account).where(
                Account.username.in_([staff_username(c[0]) for c in INSTITUTIONS])
            )
        )
    }
    rng = random.Random(20261129)
    now = utcnow()
    # From the first day of the previous month (the period closed below), so that
    # period has a whole month of claims; at least the last DAYS days.
    first = (local_date(now).replace(day=1) - timedelta(days=1)).replace(day=1)
    start = min(now - timedelta(days=DAYS), datetime(first.year, first.month, 1, tzinfo=UTC))
    span = (now - start).total_seconds()
    added = 0
    seen: set[str] = set()
    for code, *_ in INSTITUTIONS:
        inst = institutions.get(code)
        if inst is None or inst.city_code in seen:
            continue  # one institution per treatment city carries the month
        if not exchange.serves_here(session, inst.jurisdiction_code):
            continue
        seen.add(inst.city_code)
        insured = [
            c
            for c in cities
            if c.jurisdiction_code == inst.jurisdiction_code and c.code != inst.city_code
        ]
        for ic in insured[:INSURED_CITIES]:
            for _ in range(int(rng.randint(*PER_PAIR) * span / (DAYS * 86400))):
                added += 1
                _claim(session, rng, added, inst, ic, staff.get(staff_username(code)), start, span)
    session.flush()
    if added and settings_of(session).served_jurisdictions.strip() == "*":
        period = clearing_service.previous_period(local_date(now))
        clearing_service.clear_period(session, period)
        clearing_service.close_period(session, period, by="演示")
    return added


def _claim(
    session: Session,
    rng: random.Random,
    n: int,
    inst: Institution,
    ic: Any,
    staff: Account | None,
    start: datetime,
    span: float,
) -> None:
    """One settled claim (its visit, fee item, settlement and events); some reversed."""
    city_code: str = ic.code
    jurisdiction: str = ic.jurisdiction_code
    now = start + timedelta(seconds=span)
    at = start + timedelta(seconds=rng.randrange(int(span) - 7200))
    total = rng.randrange(3_000, 90_000, 10)
    class_a = total * 7 // 10
    class_b = total * 2 // 10
    class_c = total - class_a - class_b
    eligible = class_a + class_b * 9 // 10
    fund = eligible * 7 // 10
    account = min(total - fund, rng.choice([0, 0, 2_000, 5_000]))
    cash = total - fund - account
    day = local_date(at)
    txn = f"{PREFIX}-{n:06d}"
    scheme = rng.choice(["employee", "employee", "resident"])
    visit = Visit(
        id=uuid.uuid4(),
        institution_id=inst.id,
        id_number=f"{city_code}19800101{n % 1000:03d}X"[:18],
        insured_name="演示参保人",
        insured_jurisdiction=jurisdiction,
        insured_city=city_code,
        insured_district=None,
        scheme=scheme,
        visit_no=f"{PREFIX}-V{n:06d}",
        department="内科",
        diagnosis="演示门诊",
        status="settled",
        registered_by=staff.id if staff else None,
        registered_at=at - timedelta(minutes=30),
    )
    visit.items.append(
        FeeItem(
            seq=1,
            code="DEMO",
            name="门诊诊疗（演示）",
            kind="service",
            item_class="A",
            quantity=1,
            unit_price=total,
            amount=total,
        )
    )
    session.add(visit)
    reversed_at = at + timedelta(hours=rng.randint(1, 30)) if rng.random() < REVERSED else None
    if reversed_at is not None and reversed_at >= now:
        reversed_at = None
    period = domain.period_of(day)
    s = Settlement(
        id=uuid.uuid4(),
        institution_id=inst.id,
        txn_id=txn,
        request_hash=uuid.uuid5(uuid.NAMESPACE_OID, txn).hex * 2,
        visit_id=visit.id,
        id_number=visit.id_number,
        insured_name=visit.insured_name,
        scheme=scheme,
        level=inst.level,
        insured_jurisdiction=jurisdiction,
        insured_city=city_code,
        treatment_jurisdiction=inst.jurisdiction_code,
        treatment_city=inst.city_code,
        insured_ack="reversed" if reversed_at else "confirmed",
        year=day.year,
        settled_day=day,
        period=period,
        total=total,
        class_a=class_a,
        class_b=class_b,
        class_c=class_c,
        eligible=eligible,
        deductible_part=0,
        fund=fund,
        account=account,
        cash=cash,
        status="reversed" if reversed_at else "settled",
        settled_by=staff.id if staff else None,
        settled_at=at,
        reversal_txn_id=f"R{txn}" if reversed_at else None,
        reversal_reason="收费项目录入有误" if reversed_at else None,
        reversed_by=staff.id if staff and reversed_at else None,
        reversed_at=reversed_at,
        reversal_period=period if reversed_at else None,
        event_seq=2 if reversed_at else 1,
    )
    session.add(s)
    actor = staff.display_name if staff else "演示医保窗口"
    amounts = {"fund": fund, "account": account, "cash": cash}
    s.events.append(
        SettlementEvent(
            seq=1,
            action="settle",
            from_state=None,
            to_state="settled",
            actor_id=staff.id if staff else None,
            actor_name=actor,
            actor_role="hospital",
            payload={"txn_id": txn, **amounts},
            at=at.astimezone(UTC),
        )
    )
    if reversed_at is not None:
        s.events.append(
            SettlementEvent(
                seq=2,
                action="reverse",
                from_state="settled",
                to_state="reversed",
                actor_id=staff.id if staff else None,
                actor_name=actor,
                actor_role="hospital",
                comment="收费项目录入有误",
                payload={
                    "txn_id": txn,
                    "reversal_txn_id": f"R{txn}",
                    "reversal_period": period,
                    **amounts,
                },
                at=reversed_at.astimezone(UTC),
            )
        )
