"""The audit chain's page for administrators and supervisors: read-only."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tongban.audit import domain, service, views_reading, witness
from tongban.errors import PermissionDenied
from tongban.identity.domain import Role
from tongban.kernel.node import settings_of
from tongban.localtime import local_bounds
from tongban.web.deps import CurrentUser, SessionDep
from tongban.web.pages import render

router = APIRouter(include_in_schema=False)

READERS = (Role.ADMIN, Role.SUPERVISOR)

PROBLEM_LABELS = {
    domain.Problem.ALTERED: "条目被篡改",
    domain.Problem.REMOVED: "条目被删除",
    domain.Problem.REORDERED: "条目顺序被改动",
    domain.Problem.CHECKPOINT_SIGNATURE: "检查点签名无效",
    domain.Problem.CHECKPOINT_MISMATCH: "检查点与链不符（历史被改写）",
    domain.Problem.TRUNCATED: "链尾被截断",
    domain.Problem.HEAD_MISMATCH: "链头记录与链不符",
    domain.Problem.COSIGNED_MISMATCH: "与对等节点副署的检查点不符（历史被改写）",
    domain.Problem.COSIGNATURE_INVALID: "对等节点的副署签名无效",
}

ALARM_LABELS = {
    "inconsistent": "与此前副署的检查点不一致（对方历史被改写）",
    "bad-signature": "检查点签名无效",
}


def _day(value: str | None) -> date | None:
    # A date a browser made up is ignored rather than an error page.
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@router.get("/audit")
def audit_page(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    verify: bool = False,
    kind: str = "",
    actor: str = "",
    since: str = "",
    until: str = "",
    before: int | None = None,
) -> Response:
    """Head, last checkpoint, entries by kind and a page of entries (filtered by time,
    kind and actor; a supervisor sees only their own jurisdiction's); `?verify=1` runs
    the full verification (it reads the whole chain, so only on request)."""
    if user.role not in READERS:
        raise PermissionDenied("只有管理员和督查人员可以查看审计链")
    start, end = _day(since), _day(until)
    lo, hi = local_bounds(start, end)
    filters = views_reading.Filters(
        kind=kind if kind in views_reading.KIND_LABELS else "",
        actor=actor.strip()[:64],
        since=lo,
        until=hi,
        before=before,
    )
    scope = None if user.role == Role.ADMIN else (user.jurisdiction_code or "-")
    rows, next_before = views_reading.page(session, filters, scope)
    report = service.verify(session) if verify else None
    origins, alarms = witness.status(session)
    return render(
        request,
        "audit/chain.html",
        user,
        head=service.head(session),
        checkpoint=service.last_checkpoint(session),
        kinds=service.counts_by_kind(session),
        kind_labels=views_reading.KIND_LABELS,
        rows=rows,
        next_before=next_before,
        filters={
            "kind": filters.kind,
            "actor": filters.actor,
            "since": start.isoformat() if start else "",
            "until": end.isoformat() if end else "",
        },
        scoped=scope is not None,
        peers=sorted(witness.peers(settings_of(session))),
        cosignatures=witness.cosignatures(session)[-20:],
        origins=origins,
        alarms=alarms,
        alarm_labels=ALARM_LABELS,
        report=report,
        problem_label=PROBLEM_LABELS.get(report.finding.problem)
        if report and report.finding
        else None,
    )
