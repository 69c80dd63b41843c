"""The audit page as a supervisor reads it: entries filtered by time, kind and actor,
paged by sequence number, named in Chinese (event, actor, object), and limited to the
reader's own jurisdiction.

An entry belongs to a jurisdiction when its actor is a staff account of it, or its body
names it (`…jurisdiction":"<code>"`: the competent, source, target or provider
jurisdiction the writer recorded). Entries that name no jurisdiction (system events of
the node itself) are shown to the federation operator (admin) only.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from tongban.audit import hook
from tongban.audit.models import AuditEntry
from tongban.errors import ValidationFailed
from tongban.identity.models import Account

PAGE = 50

KIND_LABELS = {
    "account.event": "账号",
    "benefit.offer.event": "免申即享待遇",
    "benefit.review.event": "免申即享复核",
    "card.event": "社保卡",
    "case.event": "办件",
    "emergency.commitment.event": "应急物资承诺",
    "emergency.handover.event": "应急事件移交",
    "emergency.incident.event": "应急事件",
    "emergency.lot.event": "应急物资批次",
    "emergency.request.event": "应急物资请求",
    "emergency.shipment.event": "应急物资调运",
    "evidence.access": "数据调取",
    "licence.event": "电子证照",
    "lifeevents.event": "一件事",
    "medical.filing": "异地就医备案",
    "medical.reservation.event": "异地就医预约",
    "medical.settlement.event": "异地就医结算",
    "message.applied": "跨域消息接收",
    "message.sent": "跨域消息发送",
    "permit.event": "许可",
    "ticket.event": "工单",
    "virtualwindow.event": "远程虚拟窗口",
}

ACTION_LABELS = {
    "created": "创建", "create": "创建", "submit": "提交", "accept": "受理", "reject": "不予受理",
    "approve": "准予", "deny": "不予许可", "issue": "签发", "revoke": "注销", "suspend": "暂停",
    "resume": "恢复", "receive": "接收", "grant": "发放", "offer": "推送", "decline": "放弃",
    "request_correction": "要求补正", "resubmit": "补正后重新提交", "deliver": "送达",
    "withdraw": "撤回", "forward": "转递", "assign": "分派", "dispatch": "派单",
    "close": "办结", "reopen": "重新打开", "rate": "评价", "reply": "答复", "settle": "结算",
    "reverse": "冲正", "cancel": "取消", "commit": "承诺", "ship": "发运", "handover": "移交",
    "answered": "已答复", "refused": "已拒绝", "level_changed": "核验等级变更",
}  # fmt: skip

SUBJECT_LABELS = {
    "account": "账号", "case": "办件", "licence": "电子证照", "message": "跨域消息",
    "card": "社保卡", "filing": "备案", "evidence-request": "数据调取请求", "ticket": "工单",
    "benefit_offer": "待遇推送", "emergency_lot": "物资批次", "settlement": "结算单",
}  # fmt: skip


@dataclass(frozen=True)
class Row:
    seq: int
    at: datetime
    kind: str
    event: str
    actor: str
    subject: str
    hash: str
    alg: str


@dataclass(frozen=True)
class Filters:
    kind: str = ""
    actor: str = ""  # a username, or "system"
    since: datetime | None = None
    until: datetime | None = None
    before: int | None = None  # paging: entries with seq below this


def _event_name(kind: str, body: str) -> str:
    noun = KIND_LABELS.get(kind, "其他事件")
    try:
        data = json.loads(body)
    except ValueError:
        return noun
    action = data.get("action") or data.get("outcome") if isinstance(data, dict) else None
    if isinstance(action, str) and action:
        return f"{noun} · {ACTION_LABELS.get(action, '其他操作')}"
    return noun


def _jurisdiction_clause(t: Any, session: Session, code: str) -> Any:
    staff = select(Account.id).where(Account.jurisdiction_code == code)
    ids = [f"account:{i}" for i in session.scalars(staff)]
    return or_(
        t.c.body.contains(f'jurisdiction":"{code}"', autoescape=True),
        t.c.body.contains(f'jurisdiction_code":"{code}"', autoescape=True),
        t.c.actor.in_(ids),
    )


def page(
    session: Session, filters: Filters, jurisdiction: str | None, limit: int = PAGE
) -> tuple[list[Row], int | None]:
    """One page of entries, newest first, and the `before` of the next page (None when
    this is the last). `jurisdiction` None: every entry (the federation operator)."""
    if filters.before is not None and filters.before < 1:
        raise ValidationFailed(
            "翻页参数无效", errors=[{"field": "before", "message": "须为正整数（条目序号）"}]
        )
    hook.settle(session)
    t = AuditEntry.__table__
    q = select(t).order_by(t.c.seq.desc()).limit(limit + 1)
    if filters.before is not None:
        q = q.where(t.c.seq < filters.before)
    if filters.kind:
        q = q.where(t.c.kind == filters.kind)
    if filters.since is not None:
        q = q.where(t.c.at >= filters.since)
    if filters.until is not None:
        q = q.where(t.c.at < filters.until)
    if filters.actor:
        if filters.actor == "system":
            q = q.where(t.c.actor == "system")
        else:
            who = session.scalar(select(Account.id).where(Account.username == filters.actor))
            q = q.where(t.c.actor == (f"account:{who}" if who else "account:none"))
    if jurisdiction is not None:
        q = q.where(_jurisdiction_clause(t, session, jurisdiction))
    rows = list(session.execute(q))
    more = len(rows) > limit
    rows = rows[:limit]
    names = _account_names(session, [r.actor for r in rows] + [r.subject for r in rows])
    out = [
        Row(
            seq=r.seq,
            at=r.at,
            kind=r.kind,
            event=_event_name(r.kind, r.body),
            actor=_actor_name(r.actor, names),
            subject=_subject_name(r.subject, names),
            hash=r.hash,
            alg=r.alg,
        )
        for r in rows
    ]
    return out, (rows[-1].seq if more and rows else None)


def _account_names(session: Session, refs: list[str]) -> dict[str, str]:
    ids = set()
    for ref in refs:
        _, _, rest = ref.partition(":")
        if ref.startswith("account:"):
            try:
                ids.add(uuid.UUID(rest))
            except ValueError:
                continue
    if not ids:
        return {}
    rows = session.execute(
        select(Account.id, Account.display_name, Account.username).where(Account.id.in_(ids))
    )
    return {f"account:{i}": f"{name}（{username}）" for i, name, username in rows}


def _actor_name(actor: str, names: dict[str, str]) -> str:
    if actor == "system":
        return "系统"
    if actor in names:
        return names[actor]
    kind, _, rest = actor.partition(":")
    if kind == "node":
        return f"对等节点 {rest}"
    return "已删除的账号" if kind == "account" else actor


def _subject_name(subject: str, names: dict[str, str]) -> str:
    if subject in names:
        return f"账号 {names[subject]}"
    kind, _, rest = subject.partition(":")
    return f"{SUBJECT_LABELS.get(kind, '记录')} {rest[:8]}"
