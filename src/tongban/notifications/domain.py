"""What a step of a record tells whom, and the rules of contact details and retries.
Pure Python: no database, no web.

A rule maps (record kind, action) — the kernel's ``HistoryRecorded`` — to messages in
Chinese for an audience: the record's own people (``PARTY``: the applicant, the
reporter, the holder) or the staff whose queue it is in (``STAFF``). The text is a
template over the record's label (``{label}``: "办件 3301…").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class Audience(StrEnum):
    PARTY = "party"  # the applicant, reporter or holder the record is about
    STAFF = "staff"  # the staff of the authority whose queue it is in


class ChannelName(StrEnum):
    EMAIL = "email"
    SMS = "sms"


class DeliveryState(StrEnum):
    PENDING = "pending"  # waiting for its (next) attempt
    SENT = "sent"


CHANNEL_LABELS = {ChannelName.EMAIL: "电子邮件", ChannelName.SMS: "短信"}


@dataclass(frozen=True)
class Rule:
    """One message a step produces: for whom, about what (`topic`, a short code), its
    title and body (templates over ``{label}``)."""

    audience: Audience
    topic: str
    title: str
    body: str

    def render(self, label: str) -> tuple[str, str]:
        """(title, body) for a record called `label`."""
        return self.title.format(label=label), self.body.format(label=label)


def _party(topic: str, title: str, body: str) -> Rule:
    return Rule(Audience.PARTY, topic, title, body)


def _staff(topic: str, title: str, body: str) -> Rule:
    return Rule(Audience.STAFF, topic, title, body)


CASE = "service_case"
TICKET = "ticket"
LICENCE = "licence"
RESERVATION = "med_reservation"
#: Not a record with a history: a use of a person's data (evidence's data-use log).
DATA_USE = "data_use"

#: (record kind, action) -> the messages that step sends.
RULES: dict[tuple[str, str], tuple[Rule, ...]] = {
    # 办件 (cases)
    (CASE, "submit"): (
        _staff(
            "case.new", "新办件待受理：{label}", "您的待办队列有一件新办件（{label}），请及时受理。"
        ),
    ),
    (CASE, "resubmit"): (
        _staff(
            "case.resubmitted",
            "补正材料已提交：{label}",
            "申请人已按补正告知提交材料（{label}），请及时审查。",
        ),
    ),
    (CASE, "accept"): (
        _party("case.accepted", "您的办件已受理", "{label}已受理，审批机关将在法定时限内办理。"),
    ),
    (CASE, "refuse"): (
        _party(
            "case.refused",
            "您的办件不予受理",
            "{label}不予受理，理由见办件详情。如有异议，可依法申请行政复议或提起行政诉讼。",
        ),
    ),
    (CASE, "request_correction"): (
        _party(
            "case.correction",
            "请补正材料",
            "{label}需要补正材料，请在办件详情中查看一次性告知的补正内容并按期提交。",
        ),
    ),
    (CASE, "approve"): (_party("case.approved", "您的办件已准予办理", "{label}已准予办理。"),),
    (CASE, "deny"): (
        _party(
            "case.denied",
            "您的办件不予办理",
            "{label}不予办理，理由见办件详情。如有异议，可依法申请行政复议或提起行政诉讼。",
        ),
    ),
    (CASE, "issue_result"): (
        _party("case.result", "办理结果已出具", "{label}的办理结果已出具，请在办件详情中查看。"),
    ),
    (CASE, "deliver"): (
        _party(
            "case.delivered", "办理结果已送达", "{label}的办理结果已送达，欢迎对本次服务进行评价。"
        ),
    ),
    # Not steps of a case: the worker's deadline marks (notifications.tasks).
    (CASE, "deadline_approaching"): (
        _staff(
            "case.deadline",
            "办件临近办结期限：{label}",
            "{label}即将超过法定办结期限，请抓紧办理。",
        ),
    ),
    (CASE, "deadline_overdue"): (
        _staff("case.overdue", "办件已超期：{label}", "{label}已超过法定办结期限，请尽快办结。"),
    ),
    (CASE, "submit_for_approval"): (
        _staff(
            "case.approval",
            "办件待审批：{label}",
            "{label}已提交审批，请审批人员审核后作出决定或退回审查。",
        ),
    ),
    (CASE, "return_to_review"): (
        _staff(
            "case.returned",
            "办件被退回审查：{label}",
            "{label}被审批人员退回审查，退回理由见办件详情。",
        ),
    ),
    (CASE, "rectification_reopened"): (
        _staff(
            "case.rating_reopened",
            "差评整改未解决：{label}",
            "申请人反馈{label}的整改答复未解决问题，请重新整改并答复。",
        ),
    ),
    (CASE, "rectification_reply"): (
        _party(
            "case.rating_reply",
            "您的评价已获答复",
            "审批机关已答复您对{label}的评价，请在办件详情中查看并确认是否已解决。",
        ),
    ),
    # 工单 (work orders)
    (TICKET, "dispatch"): (
        _staff("ticket.new", "新工单待签收：{label}", "{label}已派至本单位，请及时签收办理。"),
    ),
    (TICKET, "redispatch"): (
        _staff("ticket.new", "新工单待签收：{label}", "{label}已改派至本单位，请及时签收办理。"),
    ),
    (TICKET, "accept"): (
        _party("ticket.accepted", "您反映的问题已签收", "{label}已由承办单位签收。"),
    ),
    (TICKET, "start"): (_party("ticket.started", "您反映的问题正在处置", "{label}正在处置中。"),),
    (TICKET, "fix"): (
        _party("ticket.fixed", "您反映的问题已办结", "{label}已办结，待核查后将回访您。"),
    ),
    (TICKET, "partly_fix"): (
        _party("ticket.partly_fixed", "您反映的问题已部分解决", "{label}已部分解决，待核查。"),
    ),
    (TICKET, "verify"): (
        _party(
            "ticket.verified", "您反映的问题已核查", "{label}已核查通过，请对办理结果作出评价。"
        ),
    ),
    (TICKET, "invalidate"): (
        _party(
            "ticket.invalid", "您反映的问题未予受理", "{label}经核实为无效工单，理由见工单详情。"
        ),
    ),
    (TICKET, "merge"): (
        _party("ticket.merged", "您反映的问题已合并办理", "{label}与他人反映的同一问题合并办理。"),
    ),
    (TICKET, "satisfied"): (
        _party("ticket.closed", "工单已结案", "{label}已结案，感谢您的反映。"),
    ),
    (TICKET, "close_no_feedback"): (
        _party("ticket.closed", "工单已结案", "{label}已结案，感谢您的反映。"),
    ),
    (TICKET, "remind"): (
        _staff("ticket.deadline", "工单临期提醒：{label}", "{label}即将超过办理时限，请抓紧办理。"),
    ),
    (TICKET, "supervise"): (
        _staff(
            "ticket.supervision", "督办单：{label}", "{label}被督办，请按督办要求限期办结并反馈。"
        ),
    ),
    # 电子证照 (licences)
    (LICENCE, "issue"): (
        _party("licence.issued", "电子证照已签发", "{label}已签发，可在“我的证照”中查看和出示。"),
    ),
    (LICENCE, "suspend"): (
        _party("licence.suspended", "电子证照已暂停使用", "{label}已被发证机关暂停使用。"),
    ),
    (LICENCE, "reinstate"): (
        _party("licence.reinstated", "电子证照已恢复使用", "{label}已恢复使用。"),
    ),
    (LICENCE, "revoke"): (
        _party("licence.revoked", "电子证照已撤销", "{label}已被发证机关撤销，不能再出示使用。"),
    ),
    # 异地就医 (medical): the insured node's reservation follows the hospital's reversal.
    (RESERVATION, "reverse"): (
        _party(
            "medical.reversed",
            "异地就医结算已冲正",
            "{label}已冲正，医保基金和个人账户支付的金额已退回。",
        ),
    ),
    # 我的数据使用记录
    (DATA_USE, "used"): (
        _party("data.used", "您的数据被调取使用", "{label}。详情见“我的数据使用记录”。"),
    ),
}


def rules_for(kind: str, action: str) -> tuple[Rule, ...]:
    """The messages a step `action` of a record of `kind` sends (none for most)."""
    return RULES.get((kind, action), ())


def dedupe_key(kind: str, record: str, seq: int | str, topic: str) -> str:
    """One message per account per step and topic, however often the step is heard
    (a copy adopting an event twice, a redelivered message)."""
    return f"{kind}:{record}:{seq}:{topic}"[:160]


# --- contact details ---------------------------------------------------------------------

_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")


def email_problem(value: str) -> str | None:
    """Why `value` is not an e-mail address we send to, or None."""
    if len(value) > 254 or not _EMAIL.fullmatch(value):
        return "请输入有效的电子邮箱地址，例如 name@example.com"
    return None


def phone_problem(value: str) -> str | None:
    """Why `value` is not a mainland mobile number (11 digits, 1[3-9]…), or None."""
    if not _MOBILE.fullmatch(value):
        return "请输入 11 位手机号码"
    return None


# --- retries ------------------------------------------------------------------------------


def parse_backoff(spec: str) -> tuple[int, ...]:
    """ "30,120,600" -> (30, 120, 600): seconds before each retry, the last repeating."""
    values = tuple(int(p) for p in spec.split(",") if p.strip())
    if not values or any(v <= 0 for v in values):
        raise ValueError("backoff must list positive seconds")
    return values


def next_attempt(now: datetime, attempts: int, backoff: Sequence[int]) -> datetime:
    """When a delivery that has failed `attempts` times is tried again. It never gives up:
    a message waits for its channel to come back, however long that takes."""
    step = backoff[min(max(attempts, 1), len(backoff)) - 1]
    return now + timedelta(seconds=step)
