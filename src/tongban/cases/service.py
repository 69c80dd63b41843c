"""Use cases of applications (办件). Services take a Session and never commit; every
authorisation decision is taken here, so pages, API, CLI and jobs share it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tongban.calendar import service as calendar
from tongban.cases import domain, replica
from tongban.cases.attachments import claim_uploads
from tongban.cases.domain import Action, Actor, CaseState, DeliveryMethod, Mode
from tongban.cases.models import Case, CaseEvent, CaseNumberCounter, Rating, Rectification
from tongban.catalog import service as catalog
from tongban.db import utcnow
from tongban.errors import Conflict, DomainError, NotFound, PermissionDenied, ValidationFailed
from tongban.evidence import service as evidence
from tongban.exchange import service as exchange
from tongban.identity import service as identity
from tongban.identity.domain import Duty, Role, validate_credit_code, validate_id_number
from tongban.identity.models import Account
from tongban.licences import service as licences
from tongban.regions import service as regions

MSG_FORWARD = "case.forwarded"
MSG_STATUS = "case.status_changed"


@dataclass
class Application:
    """What an applicant (or a window clerk on their behalf) submits."""

    matter_code: str
    competent_jurisdiction: str
    competent_city: str | None = None
    form_data: dict[str, Any] = field(default_factory=dict)
    mode: str = Mode.ONLINE.value
    delivery_method: str = DeliveryMethod.ELECTRONIC.value
    delivery_address: str | None = None
    consent: bool = False
    attachment_ids: list[uuid.UUID] = field(default_factory=list)
    #: 多地联办: the other jurisdictions (and cities) whose authorities take part.
    joint_jurisdictions: list[str] = field(default_factory=list)
    phone: str | None = None
    #: Evidence kinds the applicant consents to have fetched for this case (evidence).
    evidence_consent: list[str] = field(default_factory=list)
    #: 免提交: material code -> id of the applicant's e-licence that stands in for it.
    licences: dict[str, Any] = field(default_factory=dict)


@dataclass
class WindowApplicant:
    """The applicant a window clerk receives in person."""

    name: str
    identifier: str  # ID number (resident) or unified social credit code (enterprise)
    applicant_type: str = Role.RESIDENT.value
    identity_verified: bool = False
    #: The clerk compared the materials with the originals.
    materials_checked: bool = False
    phone: str | None = None


# --- numbering -------------------------------------------------------------------


def _next_number(session: Session, city_code: str) -> str:
    day = calendar.local_date(utcnow()).strftime("%Y%m%d")
    for _ in range(3):
        row = session.scalar(
            select(CaseNumberCounter)
            .where(CaseNumberCounter.city_code == city_code, CaseNumberCounter.day == day)
            .with_for_update()
        )
        if row is not None:
            row.last += 1
            session.flush()
            return domain.case_number(city_code, day, row.last)
        try:
            with session.begin_nested():
                session.add(CaseNumberCounter(city_code=city_code, day=day, last=1))
            return domain.case_number(city_code, day, 1)
        except IntegrityError:
            continue  # another request created today's counter first; lock it and go on
    raise Conflict("办件编号生成冲突，请重试", type="number-conflict")


# --- events ---------------------------------------------------------------------


def _record(
    session: Session,
    case: Case,
    action: str,
    from_state: str | None,
    to_state: str,
    actor: Account | None,
    comment: str = "",
    actor_role: str | None = None,
) -> CaseEvent:
    seq = len(case.events) + 1
    ev = CaseEvent(
        case_id=case.id,
        seq=seq,
        action=action,
        from_state=from_state,
        to_state=to_state,
        actor_id=actor.id if actor else None,
        actor_name=actor.display_name if actor else "系统",
        actor_role=actor_role or (actor.role if actor else "system"),
        comment=comment,
        at=utcnow(),
    )
    case.events.append(ev)
    session.flush()
    return ev


def _snapshot(case: Case) -> dict[str, Any]:
    """What travels between nodes about a case."""
    return {
        "number": case.number,
        "id": str(case.id),
        "matter_code": case.matter_code,
        "matter_name": case.matter_name,
        "applicant_id": str(case.applicant_id) if case.applicant_id else None,
        "applicant_type": case.applicant_type,
        "applicant_name": case.applicant_name,
        "applicant_identifier": case.applicant_identifier,
        "applicant_phone": case.applicant_phone,
        "channel": case.channel,
        "mode": case.mode,
        "receiving_jurisdiction": case.receiving_jurisdiction,
        "receiving_city": case.receiving_city,
        "clerk_id": str(case.clerk_id) if case.clerk_id else None,
        "identity_verified": case.identity_verified,
        "competent_jurisdiction": case.competent_jurisdiction,
        "competent_city": case.competent_city,
        "authority_id": str(case.authority_id),
        "authority_name": case.authority_name,
        "state": case.state,
        "form_data": case.form_data,
        "consent": case.consent,
        "delivery_method": case.delivery_method,
        "delivery_address": case.delivery_address,
        "time_limit_days": case.time_limit_days,
        "submitted_at": case.submitted_at.isoformat(),
        "parent_number": case.parent.number if case.parent else None,
        "attachments": [
            {
                "material_code": a.material_code,
                "filename": a.filename,
                "sha256": a.sha256,
                "size": a.size,
                "content_type": a.content_type,
            }
            for a in case.attachments
        ],
    }


# --- submission -------------------------------------------------------------------


def _validate_application(session: Session, app: Application) -> tuple[Any, int]:
    try:
        matter = catalog.get_matter(session, app.matter_code)
    except NotFound as e:
        e.errors = [{"field": "matter_code", "message": "事项不存在"}]
        raise
    errors = []
    try:
        Mode(app.mode)
    except ValueError:
        errors.append({"field": "mode", "message": "办理方式无效"})
    else:
        if app.mode not in matter.modes:
            errors.append({"field": "mode", "message": "该事项不支持所选办理方式"})
    try:
        DeliveryMethod(app.delivery_method)
    except ValueError:
        errors.append({"field": "delivery_method", "message": "送达方式无效"})
    if app.delivery_method == DeliveryMethod.POST and not (app.delivery_address or "").strip():
        errors.append({"field": "delivery_address", "message": "邮寄送达须填写收件地址"})
    if not app.consent:
        errors.append({"field": "consent", "message": "须同意为办理本事项使用并跨地区共享申请信息"})
    if app.mode == Mode.JOINT and not app.joint_jurisdictions:
        errors.append({"field": "joint_jurisdictions", "message": "多地联办须选择联办辖区"})
    if app.mode == Mode.JOINT and app.competent_jurisdiction in app.joint_jurisdictions:
        errors.append({"field": "joint_jurisdictions", "message": "联办辖区不能包含牵头办理的辖区"})
    if errors:
        raise ValidationFailed("申请信息有误", errors=errors)
    catalog.validate_form(matter, app.form_data)
    limit = catalog.time_limit_for(session, matter, app.competent_jurisdiction)
    return matter, limit


def _check_required_materials(matter: Any, attachments: list[Any]) -> None:
    have = {a.material_code for a in attachments}
    missing = [m for m in matter.materials if m.required and m.code not in have]
    if missing:
        raise ValidationFailed(
            "缺少必要材料：" + "、".join(m.name for m in missing),
            type="materials-missing",
            errors=[
                {"field": f"materials.{m.code}", "message": f"请上传{m.name}"} for m in missing
            ],
        )


def _create(
    session: Session,
    app: Application,
    *,
    applicant: Account | None,
    applicant_type: str,
    applicant_name: str,
    applicant_identifier: str,
    channel: str,
    receiving_city: str,
    clerk: Account | None,
    identity_verified: bool,
    uploader: Account,
) -> Case:
    matter, limit = _validate_application(session, app)
    if applicant_type == Role.ENTERPRISE and "法人" not in matter.subjects:
        raise ValidationFailed("该事项仅面向个人办理", type="subject-mismatch")
    if applicant_type == Role.RESIDENT and "个人" not in matter.subjects:
        raise ValidationFailed("该事项仅面向法人（企业）办理", type="subject-mismatch")
    authority = regions.competent_authority(
        session,
        matter.authority_type,
        matter.authority_level,
        app.competent_jurisdiction,
        app.competent_city,
    )
    city = regions.get_city(session, receiving_city)
    attachments = claim_uploads(session, uploader, app.attachment_ids)
    used = licences.check_for_application(session, applicant, matter, app.licences)
    _check_required_materials(matter, [*attachments, *used])
    case = Case(
        number=_next_number(session, city.code),
        matter_code=matter.code,
        matter_name=matter.name,
        applicant_id=applicant.id if applicant else None,
        applicant_type=applicant_type,
        applicant_name=applicant_name,
        applicant_identifier=applicant_identifier,
        applicant_phone=app.phone,
        channel=channel,
        mode=app.mode,
        receiving_jurisdiction=city.jurisdiction_code,
        receiving_city=city.code,
        clerk_id=clerk.id if clerk else None,
        identity_verified=identity_verified,
        competent_jurisdiction=authority.jurisdiction_code,
        competent_city=authority.city_code,
        authority_id=authority.id,
        authority_name=authority.name,
        state=CaseState.SUBMITTED.value,
        handoff="pending",
        form_data=app.form_data,
        consent=app.consent,
        delivery_method=app.delivery_method,
        delivery_address=app.delivery_address,
        time_limit_days=limit,
        submitted_at=utcnow(),
    )
    session.add(case)
    session.flush()
    for att in attachments:
        att.case = case
    actor = clerk or applicant
    comment = "窗口代收，已核验身份与材料" if clerk else "网上申请"
    _record(session, case, "submit", None, CaseState.SUBMITTED, actor, comment)
    if app.mode == Mode.JOINT:
        _fan_out(session, case, matter, app, actor)
    _forward(session, case)
    evidence.record_consent(session, case, app.evidence_consent, recorded_by=clerk or applicant)
    licences.record_uses(session, case, used)
    return case


#: What a 多地联办 sub-task takes over from its parent application unchanged.
_INHERITED = (
    "matter_code",
    "applicant_id",
    "applicant_type",
    "applicant_name",
    "applicant_identifier",
    "applicant_phone",
    "channel",
    "receiving_jurisdiction",
    "receiving_city",
    "clerk_id",
    "identity_verified",
    "form_data",
    "consent",
    "delivery_method",
    "delivery_address",
    "time_limit_days",
    "submitted_at",
)


def _fan_out(
    session: Session, parent: Case, matter: Any, app: Application, actor: Account | None
) -> None:
    """多地联办: one sub-task per other jurisdiction, at the authority of each joint type."""
    types = matter.joint_authority_types or [matter.authority_type]
    seen = set()
    for j_code in app.joint_jurisdictions:
        j = regions.get_jurisdiction(session, j_code)
        if j.code in seen:
            continue
        seen.add(j.code)
        for t in types:
            auth = regions.competent_authority(session, t, "province", j.code, None)
            sub = Case(
                **{c: getattr(parent, c) for c in _INHERITED},
                number=_next_number(session, parent.receiving_city),
                matter_name=f"{parent.matter_name}（联办：{auth.name}）",
                mode=Mode.JOINT.value,
                competent_jurisdiction=auth.jurisdiction_code,
                competent_city=auth.city_code,
                authority_id=auth.id,
                authority_name=auth.name,
                state=CaseState.SUBMITTED.value,
                parent=parent,
            )
            session.add(sub)
            session.flush()
            _record(
                session,
                sub,
                "submit",
                None,
                CaseState.SUBMITTED,
                actor,
                f"多地联办子任务，主件 {parent.number}",
            )
            _forward(session, sub)


def _forward(session: Session, case: Case) -> None:
    payload = {**_snapshot(case), **replica.snapshot_extra(session, case)}
    if case.subtasks:  # 多地联办: the lead's node keeps a copy of each sub-task
        payload["subtasks"] = [
            {**_snapshot(s), **replica.snapshot_extra(session, s)} for s in case.subtasks
        ]
    exchange.send(
        session, MSG_FORWARD, case.receiving_jurisdiction, case.competent_jurisdiction, payload
    )


def submit_online(session: Session, actor: Account, app: Application) -> Case:
    """全程网办: an applicant applies for a matter of any jurisdiction; the case is forwarded
    to the competent authority through the outbox."""
    if not identity.is_applicant(actor):
        raise PermissionDenied("只有个人或法人账户可以网上申请")
    if app.mode == Mode.PROXY:
        raise ValidationFailed(
            "异地代收代办须到窗口办理",
            errors=[{"field": "mode", "message": "网上申请请选择全程网办或多地联办"}],
        )
    receiving_city = actor.city_code or _first_city(session, actor.jurisdiction_code)
    return _create(
        session,
        app,
        applicant=actor,
        applicant_type=actor.role,
        applicant_name=actor.display_name,
        applicant_identifier=identity.applicant_identifier(actor),
        channel="online",
        receiving_city=receiving_city,
        clerk=None,
        identity_verified=True,  # authenticated account
        uploader=actor,
    )


def _first_city(session: Session, jurisdiction_code: str | None) -> str:
    cities = regions.list_cities(session, jurisdiction_code)
    if not cities:
        raise ValidationFailed("账户未设置所在城市", type="no-home-city")
    return cities[0].code


def submit_at_window(
    session: Session, clerk: Account, applicant: WindowApplicant, app: Application
) -> Case:
    """异地代收代办: a window clerk receives an application in person for a matter of any
    jurisdiction, checks identity and materials, and forwards it."""
    identity.require_role(clerk, Role.CLERK)
    errors = []
    if not applicant.name.strip():
        errors.append({"field": "applicant_name", "message": "请填写申请人姓名"})
    try:
        if applicant.applicant_type == Role.ENTERPRISE:
            ident = validate_credit_code(applicant.identifier)
        elif applicant.applicant_type == Role.RESIDENT:
            ident = validate_id_number(applicant.identifier)
        else:
            errors.append({"field": "applicant_type", "message": "申请人类型无效"})
            ident = applicant.identifier
    except ValueError as e:
        errors.append({"field": "applicant_identifier", "message": str(e)})
        ident = applicant.identifier
    if not applicant.identity_verified:
        errors.append({"field": "identity_verified", "message": "须当面核验申请人身份证件"})
    if not applicant.materials_checked:
        errors.append({"field": "materials_checked", "message": "须核对申请材料原件"})
    if app.mode == Mode.ONLINE:
        app.mode = Mode.PROXY.value
    if errors:
        # Report what is wrong with the application too, so the clerk fixes it all at once.
        try:
            _validate_application(session, app)
        except DomainError as e:
            errors.extend(e.errors)
        raise ValidationFailed("申请信息有误", errors=errors)
    col = Account.id_number if applicant.applicant_type == Role.RESIDENT else Account.credit_code
    account = session.scalar(select(Account).where(col == ident))
    if app.phone is None:
        app.phone = applicant.phone
    return _create(
        session,
        app,
        applicant=account,
        applicant_type=applicant.applicant_type,
        applicant_name=applicant.name.strip(),
        applicant_identifier=ident,
        channel="window",
        receiving_city=clerk.city_code or "",
        clerk=clerk,
        identity_verified=True,
        uploader=clerk,
    )


# --- messages applied at the receiving end ---------------------------------------------


@exchange.handler(MSG_FORWARD)
def on_forwarded(session: Session, payload: dict[str, Any], _msg: Any) -> None:
    """The competent jurisdiction takes the case into its queue. On one node the row is
    already there; on a separate node it is created from the snapshot."""
    case = session.scalar(select(Case).where(Case.number == payload["number"]))
    if case is None:
        case = replica.create_copy(session, payload)
    if payload.get("subtasks"):
        replica.link_subtasks(session, case, payload["subtasks"])
    if case.handoff != "delivered":
        case.handoff = "delivered"
        ev = _record(
            session,
            case,
            "forwarded",
            case.state,
            case.state,
            None,
            f"已推送至{case.authority_name}",
        )
        status = replica.status_payload(case, ev)
        if not exchange.serves_here(case.receiving_jurisdiction):
            # tell the receiving node, whose copy is another row
            exchange.send(
                session,
                MSG_STATUS,
                case.competent_jurisdiction,
                case.receiving_jurisdiction,
                status,
            )
        replica.to_lead(session, case, case.competent_jurisdiction, status)


@exchange.handler(MSG_STATUS)
def on_status_changed(session: Session, payload: dict[str, Any], _msg: Any) -> None:
    """The other node's copy of a case learns a new event (the receiving node from the
    competent authority, or the competent node from the applicant)."""
    case = session.scalar(select(Case).where(Case.number == payload["number"]))
    if case is None:
        raise replica.missing_copy(payload)
    # On one node the row already carries the event, and this changes nothing.
    if not replica.apply_status(session, case, payload):
        return
    # 多地联办: a sub-task's step goes on to the lead's node, which decides the whole case.
    replica.to_lead(
        session, case, case.receiving_jurisdiction, replica.relay_payload(case, payload)
    )
    if replica.decides_lead_here(case):
        assert case.parent is not None
        _maybe_complete_parent(session, case.parent)


# --- reading ---------------------------------------------------------------------


def _visible_clause(actor: Account) -> Any:
    role = Role(actor.role)
    if role in (Role.RESIDENT, Role.ENTERPRISE):
        return Case.applicant_id == actor.id
    if role is Role.OFFICER:
        return (Case.authority_id == actor.authority_id) & (Case.handoff == "delivered")
    if role is Role.CLERK:
        return (Case.channel == "window") & (Case.receiving_city == actor.city_code)
    if role is Role.SUPERVISOR:
        return Case.competent_jurisdiction == actor.jurisdiction_code
    return None


def can_see(actor: Account, case: Case) -> bool:
    role = Role(actor.role)
    if role in (Role.RESIDENT, Role.ENTERPRISE):
        return case.applicant_id == actor.id
    if role is Role.OFFICER:
        return case.authority_id == actor.authority_id and case.handoff == "delivered"
    if role is Role.CLERK:
        return case.channel == "window" and case.receiving_city == actor.city_code
    if role is Role.SUPERVISOR:
        return case.competent_jurisdiction == actor.jurisdiction_code
    return False


def get_case(session: Session, actor: Account, case_ref: uuid.UUID | str) -> Case:
    """A case by id or number, if `actor` may see it (an unseen case is 'not found')."""
    if isinstance(case_ref, uuid.UUID):
        case = session.get(Case, case_ref)
    else:
        case = session.scalar(select(Case).where(Case.number == case_ref))
    if case is None or not can_see(actor, case):
        raise NotFound("办件不存在或无权查看", type="unknown-case")
    return case


def list_cases(
    session: Session,
    actor: Account,
    *,
    state: str | None = None,
    deadline_flag: str | None = None,
    q: str | None = None,
    limit: int = 200,
) -> list[Case]:
    """The cases `actor` may see, newest first; officers see the most urgent first."""
    clause = _visible_clause(actor)
    if clause is None:
        raise PermissionDenied("当前账户无权查看办件")
    stmt = select(Case).where(clause)
    if state:
        stmt = stmt.where(Case.state == state)
    if deadline_flag:
        stmt = stmt.where(Case.deadline_flag == deadline_flag)
    if q:
        stmt = stmt.where(
            or_(
                Case.number.contains(q),
                Case.matter_name.contains(q),
                Case.applicant_name.contains(q),
            )
        )
    if actor.role == Role.OFFICER:
        stmt = stmt.order_by(Case.deadline.is_(None), Case.deadline, Case.submitted_at)
    else:
        stmt = stmt.order_by(Case.submitted_at.desc())
    return list(session.scalars(stmt.limit(limit)))


def actor_kind(actor: Account, case: Case) -> Actor | None:
    """How the state machine sees `actor` on `case` (None: not a party to it)."""
    if actor.role in (Role.RESIDENT, Role.ENTERPRISE) and case.applicant_id == actor.id:
        return Actor.APPLICANT
    if actor.role == Role.OFFICER and actor.authority_id == case.authority_id:
        return Actor.APPROVER if actor.duty == Duty.APPROVER else Actor.REVIEWER
    return None


def available_actions(actor: Account, case: Case) -> list[Action]:
    kind = actor_kind(actor, case)
    if kind is None or (kind is not Actor.APPLICANT and case.handoff != "delivered"):
        return []
    return domain.allowed_actions(CaseState(case.state), kind)


# --- acting ---------------------------------------------------------------------


def act(
    session: Session,
    actor: Account,
    case_id: uuid.UUID,
    action: Action | str,
    comment: str = "",
    result_text: str | None = None,
) -> Case:
    """An officer's step on a case: accept, refuse, request correction, start review,
    approve, deny, issue the result, deliver."""
    action = Action(action)
    case = get_case(session, actor, case_id)
    kind = actor_kind(actor, case)
    if kind is None or kind is Actor.APPLICANT:
        raise PermissionDenied("只有主管部门的审核/审批人员可以办理该办件")
    if case.handoff != "delivered":
        raise Conflict("办件尚未推送到本部门", type="not-yet-forwarded")
    try:
        domain.next_state(CaseState(case.state), action, kind)
    except domain.IllegalTransition as e:
        raise Conflict(e.detail, type="illegal-transition") from e
    if action in domain.REASON_REQUIRED and not comment.strip():
        raise ValidationFailed(
            f"“{domain.ACTION_LABELS[action]}”须说明理由",
            errors=[{"field": "comment", "message": "请填写理由"}],
        )
    if action is Action.APPROVE and case.subtasks:
        outcome = domain.joint_outcome([CaseState(s.state) for s in case.subtasks])
        if not outcome.complete:
            raise Conflict("多地联办的子任务尚未全部办结", type="joint-incomplete")
        if not outcome.approved:
            raise Conflict("有联办部门不予办理，不能准予办理", type="joint-denied")
    if action is Action.ISSUE_RESULT and not (result_text or "").strip():
        result_text = "准予办理" if case.state == CaseState.APPROVED else "不予办理决定书"
    if action is Action.APPROVE:
        licences.reverify_for_decision(session, case)  # 免提交 licences must still verify
    return _transition(session, case, action, kind, actor, comment, result_text)


def _transition(
    session: Session,
    case: Case,
    action: Action,
    kind: Actor,
    actor: Account | None,
    comment: str,
    result_text: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Case:
    try:
        target = domain.next_state(CaseState(case.state), action, kind)
    except domain.IllegalTransition as e:
        raise Conflict(e.detail, type="illegal-transition") from e
    from_state = case.state
    case.state = target.value
    now = utcnow()
    if action is Action.ACCEPT:
        case.accepted_at = now
        case.deadline = calendar.add_working_days(
            session, calendar.local_date(now), case.time_limit_days
        )
    if action is Action.ISSUE_RESULT:
        case.result_text = result_text
    if target in domain.TERMINAL or target is CaseState.DELIVERED:
        case.closed_at = case.closed_at or now
        case.deadline_flag = "ok"
    ev = _record(
        session,
        case,
        action.value,
        from_state,
        target.value,
        actor,
        comment,
        actor_role=None if actor else "system",
    )
    # To the other copy of the case: the applicant acts on the receiving node's copy,
    # the authority (and the system) on the competent node's.
    ends = (case.competent_jurisdiction, case.receiving_jurisdiction)
    source, target_j = ends[::-1] if kind is Actor.APPLICANT else ends
    status = replica.status_payload(case, ev, extra)
    exchange.send(session, MSG_STATUS, source, target_j, status)
    replica.to_lead(session, case, source, status)
    if case.parent is not None and target in domain.DECIDED:
        _maybe_complete_parent(session, case.parent)
    if target is CaseState.DELIVERED:
        licences.issue_for_case(session, case)  # a matter that produces an e-licence
    return case


def _maybe_complete_parent(session: Session, parent: Case) -> None:
    outcome = domain.joint_outcome([CaseState(s.state) for s in parent.subtasks])
    if outcome.complete and parent.state == CaseState.UNDER_REVIEW:
        action = Action.APPROVE if outcome.approved else Action.DENY
        _transition(session, parent, action, Actor.SYSTEM, None, "多地联办子任务已全部办结")


def resubmit(
    session: Session,
    actor: Account,
    case_id: uuid.UUID,
    form_data: dict[str, Any] | None = None,
    attachment_ids: list[uuid.UUID] | None = None,
    comment: str = "",
) -> Case:
    """补正: the applicant corrects the form and/or adds materials and resubmits."""
    case = get_case(session, actor, case_id)
    if actor_kind(actor, case) is not Actor.APPLICANT:
        raise PermissionDenied("只有申请人本人可以补正")
    if form_data is not None:
        matter = catalog.get_matter(session, case.matter_code)
        catalog.validate_form(matter, form_data)
        case.form_data = form_data
    for att in claim_uploads(session, actor, attachment_ids or []):
        att.case = case
    return _transition(session, case, Action.RESUBMIT, Actor.APPLICANT, actor, comment or "已补正")


def rate(
    session: Session, actor: Account, case_id: uuid.UUID, score: int, comment: str = ""
) -> Rating:
    """好差评: the applicant rates a delivered case; 1–2 opens a rectification item."""
    case = get_case(session, actor, case_id)
    if actor_kind(actor, case) is not Actor.APPLICANT:
        raise PermissionDenied("只有申请人本人可以评价")
    try:
        domain.validate_score(score)
    except ValueError as e:
        raise ValidationFailed(str(e), errors=[{"field": "score", "message": str(e)}]) from e
    if domain.rating_opens_rectification(score) and not comment.strip():
        raise ValidationFailed(
            "差评请说明原因，以便整改",
            errors=[{"field": "comment", "message": "请填写不满意的原因"}],
        )
    _transition(
        session,
        case,
        Action.RATE,
        Actor.APPLICANT,
        actor,
        f"{score} 星：{comment}".strip("："),
        extra={"rating": {"score": score, "comment": comment}},
    )
    rating = Rating(case_id=case.id, score=score, comment=comment)
    session.add(rating)
    session.flush()
    if domain.rating_opens_rectification(score):
        session.add(
            Rectification(
                case_id=case.id, authority_id=case.authority_id, rating_id=rating.id, reason=comment
            )
        )
        session.flush()
    return rating


def rating_for(session: Session, case: Case) -> Rating | None:
    return session.scalar(select(Rating).where(Rating.case_id == case.id))


def list_rectifications(
    session: Session, actor: Account, status: str | None = "open"
) -> list[Rectification]:
    """差评整改 items of the officer's authority (or of the supervisor's jurisdiction)."""
    stmt = select(Rectification).order_by(Rectification.created_at.desc())
    if actor.role == Role.OFFICER:
        stmt = stmt.where(Rectification.authority_id == actor.authority_id)
    elif actor.role == Role.SUPERVISOR:
        from tongban.regions.models import Authority

        stmt = stmt.join(Authority, Authority.id == Rectification.authority_id).where(
            Authority.jurisdiction_code == actor.jurisdiction_code
        )
    else:
        raise PermissionDenied("当前账户无权查看整改事项")
    if status:
        stmt = stmt.where(Rectification.status == status)
    return list(session.scalars(stmt))


def close_rectification(
    session: Session, actor: Account, item_id: uuid.UUID, response: str
) -> Rectification:
    """The authority answers a 差评 with what it changed."""
    item = session.get(Rectification, item_id)
    if item is None or actor.role != Role.OFFICER or item.authority_id != actor.authority_id:
        raise NotFound("整改事项不存在或无权处理")
    if not response.strip():
        raise ValidationFailed("请填写整改情况", errors=[{"field": "response", "message": "必填"}])
    if item.status != "open":
        raise Conflict("该整改事项已办结")
    item.status = "closed"
    item.response = response
    item.closed_at = utcnow()
    return item


# --- deadlines (worker) ------------------------------------------------------------


def refresh_deadlines(session: Session, today: date, warning_days: int) -> dict[str, int]:
    """Mark open cases whose deadline approaches or has passed; returns counts per flag."""
    counts = {"ok": 0, "approaching": 0, "overdue": 0}
    flag_for = calendar.deadline_flagger(session, today, warning_days)
    stmt = select(Case).where(
        Case.state.in_([s.value for s in domain.CLOCK_RUNNING]), Case.deadline.is_not(None)
    )
    for case in session.scalars(stmt):
        assert case.deadline is not None
        flag = flag_for(case.deadline)
        counts[flag] += 1
        if case.deadline_flag != flag:
            case.deadline_flag = flag
    session.flush()
    return counts
