"""The case messages as a receiving node accepts them: their typed payloads and who may
send them for which case. They are the two messages of the cases' `replication.Copies`
(replica.CASES): the kernel parses a payload into its schema here, checks the sender's
right with the functions here, then applies it.

- `case.forwarded` (the snapshot) comes from the node serving the case's receiving
  jurisdiction (whose city is the prefix of the case number), for an authority this
  node serves;
- `case.status_changed` (a change) comes from the node serving the competent
  jurisdiction for the authority's steps (accept … deliver, and its `forwarded`
  acknowledgement), from the node serving the receiving jurisdiction for the applicant's
  (resubmit, rate), and for a sub-task's step sent on to the lead (`to_lead`) from the
  receiving node, which sees every step of it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.cases.domain import (
    AWAITING_CORRECTION,
    RECT_ACTIONS,
    RECT_APPLICANT_ACTIONS,
    RECT_MACHINE,
    TRANSITIONS,
    Action,
    Actor,
    CaseState,
    DeliveryMethod,
    Mode,
    RectAction,
    RectFacts,
    rectification_status,
)
from tongban.cases.models import Case, Rating
from tongban.cases.presented import VerifiedLicence, check_verified
from tongban.catalog import service as catalog
from tongban.errors import DomainError, NotFound
from tongban.exchange import schema as s
from tongban.exchange import service as exchange
from tongban.kernel import replication
from tongban.kernel.cache import Cache
from tongban.regions import service as regions

#: Event actions besides the state machine's: a submission and the hand-over's receipt.
EventAction = Literal[
    "submit",
    "forwarded",
    "accept",
    "refuse",
    "request_correction",
    "resubmit",
    "start_review",
    "submit_for_approval",
    "return_to_review",
    "approve",
    "deny",
    "issue_result",
    "deliver",
    "rate",
    "withdraw",
    "correction_reminder",
    "rectification_reply",
    "rectification_accepted",
    "rectification_reopened",
    "rectification_escalated",
]
#: Steps the applicant takes on the receiving node's copy.
APPLICANT_ACTIONS = frozenset({Action.RESUBMIT.value, Action.RATE.value}) | RECT_APPLICANT_ACTIONS

Name80 = Annotated[str, StringConstraints(max_length=80)]
Role20 = Annotated[str, StringConstraints(max_length=20)]
#: Base64 of a material no larger than the largest message (64 MiB).
Base64 = Annotated[str, StringConstraints(max_length=90_000_000, pattern=r"^[A-Za-z0-9+/=]*$")]


class EventIn(replication.EventIn):
    """A case event as it travels: the kernel's, narrowed to the case's actions and
    states and to the columns' lengths."""

    action: EventAction
    from_state: CaseState | None
    to_state: CaseState
    actor_name: Name80
    actor_role: Role20


class AttachmentIn(s.Payload):
    material_code: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    filename: s.FileName
    sha256: s.Sha256
    size: Annotated[int, Field(ge=1, le=1_000_000_000)]
    content_type: s.MaterialType
    #: Added when the message leaves its node over HTTP (replica._add_contents).
    content_b64: Base64 | None = None


class PresentedLicenceIn(s.Payload):
    """免提交 with a licence presented at a (virtual) window (replica.presented_dicts);
    checked against the matter again when the copy is made (presented.check_verified)."""

    material_code: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    type_code: s.Code
    type_name: Annotated[str, StringConstraints(min_length=1, max_length=80)]
    licence_id: Annotated[str, StringConstraints(min_length=1, max_length=80)]
    issuer: Annotated[str, StringConstraints(min_length=1, max_length=120)]
    verified_by: Annotated[str, StringConstraints(min_length=1, max_length=80)]
    verified_at: s.Instant
    presentation_sha256: s.Sha256
    result: Literal["valid"]


class CaseSnapshot(s.Payload):
    """A case as `replica.snapshot` writes it (the kernel adds `events`)."""

    number: s.CaseNumber
    id: s.Uuid
    matter_code: s.Code
    matter_name: Annotated[str, StringConstraints(max_length=120)]
    applicant_id: s.Uuid | None
    applicant_type: Literal["resident", "enterprise"]
    applicant_name: Name80
    applicant_identifier: Annotated[str, StringConstraints(min_length=1, max_length=18)]
    applicant_phone: Annotated[str, StringConstraints(max_length=20)] | None
    channel: Literal["online", "window"]
    mode: Mode
    receiving_jurisdiction: s.RegionCode
    receiving_city: s.RegionCode
    clerk_id: s.Uuid | None
    identity_verified: bool
    competent_jurisdiction: s.RegionCode
    competent_city: s.RegionCode | None
    authority_id: s.Uuid
    authority_name: Name80
    state: CaseState
    form_data: s.FormData
    consent: bool
    delivery_method: DeliveryMethod
    delivery_address: Annotated[str, StringConstraints(max_length=200)] | None
    time_limit_days: Annotated[int, Field(ge=0, le=3650)]
    submitted_at: s.Instant
    parent_number: s.CaseNumber | None
    attachments: Annotated[list[AttachmentIn], Field(max_length=200)]
    presented_licences: Annotated[list[PresentedLicenceIn], Field(max_length=50)] | None = None
    authority_code: s.Code
    events: Annotated[list[EventIn], Field(max_length=1000)]

    @model_validator(mode="after")
    def _numbered_where_received(self) -> CaseSnapshot:
        if not self.number.startswith(self.receiving_city):
            raise ValueError("办件编号须以受理城市代码开头")
        return self


class Forwarded(CaseSnapshot):
    #: 多地联办: the sub-tasks' snapshots, for the lead's node.
    subtasks: Annotated[list[CaseSnapshot], Field(max_length=50)] | None = None


class CorrectionItemIn(s.Payload):
    code: Annotated[
        str, StringConstraints(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")
    ]
    name: Annotated[str, StringConstraints(min_length=1, max_length=120)]
    reason: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    listed: bool
    upload: bool = True


class CorrectionIn(s.Payload):
    """The correction notice a request_correction step issued (一次性告知)."""

    stage: Literal["intake", "review"]
    reason: s.LongText
    items: Annotated[list[CorrectionItemIn], Field(min_length=1, max_length=20)]
    deadline_days: Annotated[int, Field(ge=1, le=30)]
    deadline: s.Day
    requested_at: s.Instant
    requested_by: Name80


class DocumentIn(s.Payload):
    """A result document a refuse or issue_result step issued, with its PDF's bytes
    (added when the message leaves the node)."""

    kind: Literal["approval", "refusal", "denial"]
    title: Annotated[str, StringConstraints(min_length=1, max_length=80)]
    token: Annotated[
        str, StringConstraints(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    ]
    sha256: s.Sha256
    size: Annotated[int, Field(ge=1, le=10_000_000)]
    issued_at: s.Instant
    content_b64: Base64 | None = None


class CaseFields(s.Payload):
    state: CaseState
    handoff: Literal["pending", "delivered"]
    result_text: s.LongText | None
    form_data: s.FormData
    deadline_flag: Literal["ok", "approaching", "overdue"]
    accepted_at: s.Instant | None
    deadline: s.Day | None
    closed_at: s.Instant | None
    clock_paused_since: s.Day | None = None
    clock_paused_days: Annotated[int, Field(ge=0, le=3650)] = 0


class RatingIn(s.Payload):
    score: Annotated[int, Field(ge=1, le=5)]
    comment: s.LongText


class StatusChanged(s.Payload):
    number: s.CaseNumber
    state: CaseState
    seq: s.Seq
    action: EventAction
    comment: s.LongText
    event: EventIn
    case: CaseFields
    attachments: Annotated[list[AttachmentIn], Field(max_length=200)] | None = None
    rating: RatingIn | None = None
    correction: CorrectionIn | None = None
    documents: Annotated[list[DocumentIn], Field(max_length=5)] | None = None
    to_lead: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> StatusChanged:
        if self.event.seq != self.seq or self.event.action != self.action:
            raise ValueError("seq 与 action 须与所附事件一致")
        if self.case.state != self.state:
            raise ValueError("state 须与办件字段一致")
        if self.rating is not None and self.action != Action.RATE.value:
            raise ValueError("只有评价消息可以携带评价")
        if self.attachments and self.action != Action.RESUBMIT.value:
            raise ValueError("只有补正消息可以携带材料")
        if self.correction is not None and self.action != Action.REQUEST_CORRECTION.value:
            raise ValueError("只有补正通知可以携带补正事项")
        if self.documents and self.action not in (Action.REFUSE.value, Action.ISSUE_RESULT.value):
            raise ValueError("只有不予受理或出具结果可以携带文书")
        ev = self.event
        if ev.to_state != self.state:
            raise ValueError("事件的目标状态须与办件状态一致")
        if ev.action == "forwarded":
            if ev.from_state != ev.to_state:
                raise ValueError("推送记录不改变办件状态")
        elif ev.action == "correction_reminder":
            if ev.from_state != ev.to_state or ev.to_state not in AWAITING_CORRECTION:
                raise ValueError("补正提醒只发给待补正的办件，且不改变其状态")
        elif ev.action in RECT_ACTIONS:
            if ev.from_state != ev.to_state or ev.to_state is not CaseState.RATED:
                raise ValueError("差评整改记录只发给已评价的办件，且不改变其状态")
        elif ev.action == "submit" or ev.from_state is None:
            raise ValueError("状态变更消息须为一次办理步骤")
        else:
            rule = TRANSITIONS.get((ev.from_state, Action(ev.action)))
            if rule is None or rule[0] is not ev.to_state:
                raise ValueError(
                    f"办件状态不能由 {ev.from_state} 经 {ev.action} 变为 {ev.to_state}"
                )
        return self


def _refuse(detail: str) -> exchange.Refused:
    return exchange.Refused("not-allowed", detail)


def case_by_number(session: Session, number: str, *, take: bool = True) -> Case | None:
    """The case numbered `number` here: what a batch's prefetch read for it (taken on
    use, see replication.found), else one read, remembered for the next look-up of the
    same message when not `take`n."""
    hit, case = replication.found(session, ("case", number), take=take)
    if hit:
        return case  # type: ignore[no-any-return]
    case = session.scalar(select(Case).where(Case.number == number))
    if not take:
        replication.remember(session, ("case", number), case)
    return case


_AUTHORITY_BY_CODE: Cache[regions.AuthorityRef | None] = Cache(
    "cases.authority_by_code", tables={"authority"}, ttl=300
)


def authority_by_code(session: Session, code: str) -> regions.AuthorityRef:
    """`regions.authority_by_code` as a plain value, from this process's cache (NotFound
    when there is none)."""

    def load() -> regions.AuthorityRef | None:
        try:
            a = regions.authority_by_code(session, code)
        except NotFound:
            return None
        return regions.AuthorityRef(
            a.id, a.code, a.name, a.type, a.level, a.jurisdiction_code, a.city_code
        )

    ref = _AUTHORITY_BY_CODE.get(session, code, load)
    if ref is None:
        raise NotFound(f"部门 {code} 不存在", type="unknown-authority")
    return ref


def _check_presented(session: Session, snap: CaseSnapshot) -> None:
    """免提交 records a peer claims: each for a material of the case's matter that takes
    its licence type, one per material (presented.check_verified), else 422 bad-payload."""
    if not snap.presented_licences:
        return
    try:
        matter = catalog.matter_ref(session, snap.matter_code)
        check_verified(matter, [VerifiedLicence(**i.model_dump()) for i in snap.presented_licences])
    except DomainError as e:
        raise exchange.Refused("bad-payload", f"办件 {snap.number}：{e.detail}", 422) from None


def check_forwarded(session: Session, p: Forwarded, sender: exchange.Sender) -> None:
    """Beyond the kernel's check that the receiving jurisdiction's node shares the case:
    its sub-tasks too, each numbered in a city of that jurisdiction and not received
    elsewhere, with sound 免提交 records, and only to an authority this node serves."""
    for snap in (p, *(p.subtasks or ())):
        sender.require(snap.receiving_jurisdiction, f"办件 {snap.number} 的受理地")
        try:
            city = regions.city_ref(session, snap.receiving_city)
        except NotFound:
            raise _refuse(f"办件 {snap.number} 的受理城市 {snap.receiving_city} 不存在") from None
        if city.jurisdiction_code != snap.receiving_jurisdiction:
            raise _refuse(f"办件 {snap.number} 的受理城市不属于其受理地")
        # (read once for the message: replica.find takes the same answer)
        existing = case_by_number(session, snap.number, take=False)
        if existing is not None and existing.receiving_jurisdiction != snap.receiving_jurisdiction:
            raise _refuse(f"办件 {snap.number} 已由其他受理地受理")
        if snap is not p and snap.parent_number != p.number:
            raise _refuse(f"子任务 {snap.number} 不属于办件 {p.number}")
        _check_presented(session, snap)
    try:
        authority = authority_by_code(session, p.authority_code)
    except NotFound:
        raise _refuse(f"主管部门 {p.authority_code} 不存在") from None
    if not exchange.serves_here(session, authority.jurisdiction_code):
        raise _refuse(f"主管部门 {p.authority_code} 不由本节点服务")


def changed_by(case: Case, p: StatusChanged) -> str:
    """The jurisdiction whose node may send step `p` of `case`: the receiving one for the
    applicant's steps and for sub-task steps sent on to the lead, the competent one for
    the authority's (and the platform's)."""
    if p.to_lead or p.action in APPLICANT_ACTIONS:
        return case.receiving_jurisdiction
    return case.competent_jurisdiction


def check_status(session: Session, p: StatusChanged, sender: exchange.Sender, case: Case) -> None:
    """The next step of `case` must start from the state the case is in here; a step of
    the 差评整改 loop must be one its machine allows after the loop's history here."""
    if p.seq != (case.event_seq or 0) + 1:
        return
    if p.event.from_state != case.state:
        raise exchange.Refused(
            "bad-payload", f"办件 {case.number} 当前为 {case.state}，与该步骤的起始状态不符", 422
        )
    if p.action in RECT_ACTIONS:
        _check_rectification_step(session, p, case)


def _check_rectification_step(session: Session, p: StatusChanged, case: Case) -> None:
    rating = session.scalar(select(Rating).where(Rating.case_id == case.id))
    status = rectification_status(rating.score if rating else None, [e.action for e in case.events])
    who = Actor.APPLICANT if p.action in RECT_APPLICANT_ACTIONS else Actor.REVIEWER
    if status is None:
        raise exchange.Refused("bad-payload", f"办件 {case.number} 没有差评整改事项", 422)
    try:
        RECT_MACHINE.next_state(
            status.state, RectAction(p.action), who, RectFacts(p.comment, status.reopens)
        )
    except DomainError as e:
        raise exchange.Refused("bad-payload", f"办件 {case.number}：{e.detail}", 422) from None
