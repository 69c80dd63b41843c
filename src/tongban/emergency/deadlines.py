"""Watching mutual aid's time targets (domain.TIME_TARGETS, per urgency), like work
orders' deadlines: past a target the record is escalated — an `escalate` event by the
node that owns its current step (the requester's for an unanswered request and a
shipment on its way, the giver's for a commitment not yet dispatched), which reaches the
other side's copy like any step — and both sides' staff get an alert (level 1: the
coordinators; level 2, a whole window later: also the jurisdiction's supervisors). Alerts
are resolved once the record moves on."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.db import utcnow
from tongban.emergency import aid, alerts, domain
from tongban.emergency.domain import (
    AlertKind,
    CommitmentAction,
    CommitmentState,
    RequestAction,
    RequestState,
    ShipmentAction,
    ShipmentState,
    Side,
    Urgency,
)
from tongban.emergency.models import AidRequest, Alert, Commitment, Shipment
from tongban.exchange import service as exchange
from tongban.kernel.history import SYSTEM
from tongban.regions import service as regions


def _names(session: Session, codes: list[str]) -> str:
    names = {j.code: j.name for j in regions.list_jurisdictions(session)}
    return "、".join(names.get(c, c) for c in codes)


def watch(session: Session, now: datetime | None = None) -> dict[str, int]:
    """One pass over open mutual aid; counts of escalations and alerts."""
    now = now or utcnow()
    counts = {"escalated": 0, "alerts": 0, "resolved": 0}
    keep: set[tuple[str, str]] = set()
    city_names = {c.code: c.name for c in regions.list_cities(session)}

    def alert(
        key: str, jurisdiction: str, city: str | None, text: str, level: int, link: str
    ) -> None:
        keep.add((AlertKind.OVERDUE.value, key))
        _, fresh = alerts.raise_alert(
            session,
            AlertKind.OVERDUE,
            key,
            jurisdiction=jurisdiction,
            city=city,
            text=text,
            level=level,
            link=link,
        )
        counts["alerts"] += fresh

    def escalate(
        rec: Any, level: int, step: Callable[..., None], action: Any, note: str, **more: Any
    ) -> None:
        """`rec` (on the node writing its current step) raised to `level`, one `escalate`
        event (by `step`, with the level reached and `more`) a level."""
        while rec.escalation_level < level:
            rec.escalation_level += 1
            step(
                session,
                rec,
                action,
                SYSTEM,
                Side.SYSTEM,
                note,
                {"level": rec.escalation_level, **more},
            )
            counts["escalated"] += 1

    for req in session.scalars(select(AidRequest).where(AidRequest.state == RequestState.OPEN)):
        answered = {c.giver_jurisdiction for c in req.commitments}
        waiting = [t for t in req.targets if t not in answered]
        if not waiting:
            continue
        window = domain.TIME_TARGETS[Urgency(req.urgency)].respond
        level = domain.escalation_level(req.respond_due_at, now, window)
        if not level:
            continue
        link = f"/emergency/aid/{req.id}"
        if exchange.serves_here(session, req.requester_jurisdiction):
            escalate(
                req,
                level,
                aid.request_step,
                RequestAction.ESCALATE,
                f"答复超时：{_names(session, waiting)}尚未答复",
                waiting=waiting,
            )
            alert(
                f"request:{req.id}",
                req.requester_jurisdiction,
                req.requester_city,
                f"互助请求 {req.number} 尚待{_names(session, waiting)}答复，已超时",
                level,
                link,
            )
        for t in waiting:
            if exchange.serves_here(session, t) and t != req.requester_jurisdiction:
                alert(
                    f"request:{req.id}:{t}",
                    t,
                    None,
                    f"{city_names.get(req.requester_city, '')}的互助请求 {req.number} 待本辖区答复，已超时",
                    level,
                    link,
                )

    stmt = select(Commitment).where(Commitment.state == CommitmentState.COMMITTED)
    for c in session.scalars(stmt):
        if c.dispatch_due_at is None:
            continue
        req = c.request
        window = domain.TIME_TARGETS[Urgency(req.urgency)].dispatch
        level = domain.escalation_level(c.dispatch_due_at, now, window)
        if not level:
            continue
        link = f"/emergency/aid/{req.id}"
        if exchange.serves_here(session, c.giver_jurisdiction):
            escalate(c, level, aid.commitment_step, CommitmentAction.ESCALATE, "发运超时")
            alert(
                f"commitment:{c.id}",
                c.giver_jurisdiction,
                c.giver_city,
                f"对{city_names.get(req.requester_city, '')}互助请求 {req.number} 的承诺尚未发运完毕，已超时",
                level,
                link,
            )
        if exchange.serves_here(session, req.requester_jurisdiction):
            alert(
                f"commitment:{c.id}:requester",
                req.requester_jurisdiction,
                req.requester_city,
                f"{_names(session, [c.giver_jurisdiction])}对互助请求 {req.number} 的承诺尚未发运完毕，已超时",
                level,
                link,
            )

    for sh in session.scalars(select(Shipment).where(Shipment.state == ShipmentState.IN_TRANSIT)):
        req = sh.commitment.request
        window = domain.TIME_TARGETS[Urgency(req.urgency)].arrive
        level = domain.escalation_level(sh.arrive_due_at, now, window)
        if not level:
            continue
        link = f"/emergency/aid/{req.id}#shipment-{sh.number}"
        if exchange.serves_here(session, sh.requester_jurisdiction):
            escalate(sh, level, aid.shipment_step, ShipmentAction.ESCALATE, "到达超时：尚未签收")
            alert(
                f"shipment:{sh.id}",
                sh.requester_jurisdiction,
                req.requester_city,
                f"发运单 {sh.number}（{sh.vehicle}）超过预计到达时间仍未签收",
                level,
                link,
            )
        if exchange.serves_here(session, sh.giver_jurisdiction):
            alert(
                f"shipment:{sh.id}:giver",
                sh.giver_jurisdiction,
                sh.from_city,
                f"发运单 {sh.number}（{sh.vehicle}）超过预计到达时间，请求方尚未签收",
                level,
                link,
            )

    served = [
        j.code for j in regions.list_jurisdictions(session) if exchange.serves_here(session, j.code)
    ]
    for row in session.scalars(
        select(Alert).where(
            Alert.kind == AlertKind.OVERDUE.value,
            Alert.resolved_at.is_(None),
            Alert.jurisdiction_code.in_(served),
        )
    ):
        if (row.kind, row.key) not in keep:
            row.resolved_at = now
            counts["resolved"] += 1
    session.flush()
    return counts
