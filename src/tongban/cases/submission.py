"""Receiving applications: online (全程网办) and at a window for another jurisdiction
(异地代收), validation, materials, 多地联办 sub-tasks and the hand-over."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from tongban.cases.access import actor_kind as actor_kind
from tongban.cases.access import available_actions as available_actions
from tongban.cases.access import can_see as can_see
from tongban.cases.access import get_case as get_case
from tongban.cases.access import list_cases as list_cases
from tongban.cases.attachments import claim_uploads, link_uploads
from tongban.cases.domain import CaseState, DeliveryMethod, Mode
from tongban.cases.history import next_number
from tongban.cases.models import Attachment, Case
from tongban.cases.presented import VerifiedLicence as VerifiedLicence
from tongban.cases.presented import (
    check_presented_at_window,
    check_verified,
    presented_rows,
)
from tongban.cases.replica import forward
from tongban.catalog import service as catalog
from tongban.db import new_id, utcnow
from tongban.errors import DomainError, FieldError, NotFound, PermissionDenied, ValidationFailed
from tongban.identity import service as identity
from tongban.identity.domain import Role, validate_credit_code, validate_id_number
from tongban.identity.models import Account
from tongban.kernel import events, history, replication
from tongban.licences import service as licences
from tongban.regions import service as regions


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
    #: 免提交 at the window: material code → the presentation the applicant showed.
    presented: dict[str, str] = field(default_factory=dict)
    #: 免提交 with licences presented and verified elsewhere (a virtual window's competent
    #: node), which neither node stores: what was verified, recorded with the case.
    verified: list[VerifiedLicence] = field(default_factory=list)


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


# --- submission -------------------------------------------------------------------


def _validate_application(session: Session, app: Application) -> tuple[catalog.MatterRef, int]:
    try:
        matter = catalog.matter_ref(session, app.matter_code)
    except NotFound as e:
        e.errors = [{"field": "matter_code", "message": "事项不存在"}]
        raise
    errors = []
    try:
        Mode(app.mode)
    except ValueError:
        errors.append({"field": "mode", "message": "办理方式无效"})
    else:
        # A matter that can be handled remotely (online or received elsewhere) can be
        # handled at a virtual window, where its own officer sees the applicant.
        remote = {Mode.ONLINE.value, Mode.PROXY.value} & set(matter.modes)
        if app.mode not in matter.modes and not (app.mode == Mode.VIRTUAL and remote):
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
    form_failed: ValidationFailed | None = None
    try:
        catalog.validate_form(matter, app.form_data)
    except ValidationFailed as e:
        form_failed = e
    if errors or form_failed:
        # Everything at once (consent, fields, materials): the materials as far as the
        # files sent tell (they are claimed, and checked for real, once the rest is right).
        found = [*errors, *(form_failed.errors if form_failed else [])]
        found += _materials_not_sent(session, matter, app)
        if form_failed and not errors:  # only the form: its own problem type
            raise ValidationFailed(form_failed.detail, type=form_failed.type, errors=found)
        raise ValidationFailed("申请信息有误，请按提示逐项修改", errors=found)
    limit = catalog.time_limit_for(session, matter, app.competent_jurisdiction)
    return matter, limit


def _materials_not_sent(session: Session, matter: Any, app: Application) -> list[Any]:
    sent = set(
        session.scalars(
            select(Attachment.material_code).where(Attachment.id.in_(app.attachment_ids))
        )
    )
    sent |= {code for code, chosen in app.licences.items() if chosen}
    sent |= {code for code, shown in app.presented.items() if shown.strip()}
    sent |= {v.material_code for v in app.verified}
    return [
        FieldError(f"materials.{m.code}", f"请上传{m.name}")
        for m in matter.materials
        if m.required and m.code not in sent
    ]


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
    # Reference data comes from the process's cache as plain values (issue 14).
    authority = regions.competent_authority_ref(
        session,
        matter.authority_type,
        matter.authority_level,
        app.competent_jurisdiction,
        app.competent_city,
    )
    city = regions.city_ref(session, receiving_city)
    attachments = claim_uploads(session, uploader, app.attachment_ids)
    used = licences.check_for_application(session, applicant, matter, app.licences)
    shown_here: list[VerifiedLicence] = []
    if app.presented:
        held, shown_here = check_presented_at_window(
            session,
            applicant_identifier,
            matter,
            app.presented,
            verified_by=f"{city.name}受理窗口",
        )
        used += held
    verified = check_verified(matter, [*app.verified, *shown_here])
    _check_required_materials(matter, [*attachments, *used, *verified])
    case = Case(
        id=new_id(),
        number=next_number(session, city.code),
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
    actor = clerk or applicant
    comment = "窗口代收，已核验身份与材料" if clerk else "网上申请"
    # Issue 14: no unit-of-work flush for the submission's own rows. The case and its
    # first event are written at once by Core INSERTs and join the session as persistent
    # (collections empty), the uploads are claimed by guarded UPDATEs, the hand-over (the
    # outbox message) by a Core INSERT; the event's and the message's audit entries are
    # staged by one statement at the commit (or a flush before it: sub-tasks, licences
    # presented). The hand-over is built now rather than at commit, from the case as
    # submitted — nothing after this block changes the case, its events, attachments,
    # licences or sub-tasks. A failure anywhere rolls the request back whole.
    with history.one_flush(session):
        history.insert_new(session, case, "submit", actor, CaseState.SUBMITTED, comment)
        _link(session, uploader, case, attachments, presented_rows(verified))
        if app.mode == Mode.JOINT:
            _fan_out(session, case, matter, app, actor)
        forward(session, case)
        # The snapshot reads only what is in memory and reference data; a cache miss's
        # SELECT must not flush sub-tasks before their messages are added.
        with session.no_autoflush:
            replication.send_now(session, written=True)
    # Evidence records the consent (and may refuse a kind the matter does not use).
    recorder = clerk or applicant
    submitted = events.CaseSubmitted(
        case.id, tuple(app.evidence_consent), recorder.id if recorder else None
    )
    events.publish(session, submitted)
    licences.record_uses(session, case.id, used)
    return case


def _link(
    session: Session,
    uploader: Account,
    case: Case,
    attachments: list[Attachment],
    presented: list[Any],
) -> None:
    """The claimed uploads and the licences presented, linked to the case just written by
    their own foreign keys (an UPDATE of each upload now, guarded against a claim made
    meanwhile; an INSERT of each licence at the next flush), the case's collections set
    to them as loaded: the case itself is in no flush."""
    link_uploads(session, uploader, case.id, attachments)
    for row in presented:
        row.case_id = case.id
        set_committed_value(row, "case", case)
        session.add(row)
    set_committed_value(case, "attachments", list(attachments))
    set_committed_value(case, "presented_licences", list(presented))


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
    session: Session,
    parent: Case,
    matter: catalog.MatterRef,
    app: Application,
    actor: Account | None,
) -> None:
    """多地联办: one sub-task per other jurisdiction, at the authority of each joint type."""
    types = matter.joint_authority_types or [matter.authority_type]
    seen = set()
    for j_code in app.joint_jurisdictions:
        j = regions.jurisdiction_ref(session, j_code)
        if j.code in seen:
            continue
        seen.add(j.code)
        for t in types:
            auth = regions.competent_authority_ref(session, t, "province", j.code, None)
            sub = Case(
                id=new_id(),
                **{c: getattr(parent, c) for c in _INHERITED},
                number=next_number(session, parent.receiving_city),
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
            history.record(
                session,
                sub,
                "submit",
                actor,
                None,
                CaseState.SUBMITTED,
                f"多地联办子任务，主件 {parent.number}",
            )
            forward(session, sub)


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
        # A self-declared account may apply (every matter accepts it), but the case tells
        # the officer its applicant's identity is unproven (issue 10 item 3).
        identity_verified=identity.is_proven(actor),
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
    # The clerk saw this person's card: the case goes to an account proven to hold the
    # number, never to a self-declared one (which may be somebody else's claim).
    account = next(
        (a for a in session.scalars(select(Account).where(col == ident)) if identity.is_proven(a)),
        None,
    )
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
