"""Issuing e-licences: directly by an officer, in bulk from an existing register, and when
a case whose matter produces a licence is delivered. Every licence gets a GB/T 36904
identifier, a random index in its jurisdiction's status list, and is signed as an SD-JWT
VC by the jurisdiction's current licence key."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tongban.catalog import service as catalog
from tongban.db import utcnow
from tongban.errors import Conflict, FieldError, NotFound, PermissionDenied, ValidationFailed
from tongban.identity.domain import Role, validate_credit_code, validate_id_number
from tongban.identity.models import Account
from tongban.kernel import history, numbering
from tongban.kernel.events import CaseDelivered, LicenceIssued, publish
from tongban.kernel.node import settings_of
from tongban.keys import service as keys
from tongban.licences import domain, sdjwt
from tongban.licences.domain import LicenceAction, LicenceStatus, LicenceType
from tongban.licences.identifier import make_identifier
from tongban.licences.models import (
    HolderKey,
    Licence,
    LicenceEvent,
    StatusListToken,
)
from tongban.regions import service as regions
from tongban.regions.models import Authority


@dataclass
class IssueRequest:
    """What an officer (or a register import) asks to issue."""

    type_code: str
    holder_identifier: str
    holder_name: str
    claims: dict[str, Any] = field(default_factory=dict)
    holder_type: str | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None


def get_type(code: str) -> LicenceType:
    """A licence type by code; NotFound otherwise."""
    ltype = domain.licence_types().get(code)
    if ltype is None:
        raise NotFound(f"证照类型 {code} 不存在", type="unknown-licence-type")
    return ltype


def list_types() -> list[LicenceType]:
    """Every licence type of the catalogue."""
    return list(domain.licence_types().values())


# --- authorisation -------------------------------------------------------------------------


def officer_authority(session: Session, actor: Account) -> Authority:
    """The authority of an officer; PermissionDenied for anyone else."""
    if actor.role != Role.OFFICER or actor.authority_id is None:
        raise PermissionDenied("只有发证部门的工作人员可以办理证照")
    return regions.get_authority(session, actor.authority_id)


def may_manage(authority: Authority, ltype: LicenceType, jurisdiction_code: str) -> bool:
    """Officers of an authority of the type's issuing kind, in the licence's jurisdiction,
    issue, suspend, reinstate and revoke it."""
    return authority.type == ltype.authority_type and authority.jurisdiction_code == (
        jurisdiction_code
    )


def require_issuer(session: Session, actor: Account, ltype: LicenceType) -> Authority:
    authority = officer_authority(session, actor)
    if authority.type != ltype.authority_type:
        raise PermissionDenied(f"{authority.name}不是{ltype.name}的发证部门")
    return authority


# --- allocation --------------------------------------------------------------------------------


def _next_serial(session: Session, type_code: str, issuer_code: str) -> int:
    """The next GB/T 36904 serial of (type, issuer), from the kernel's numbering."""
    return numbering.next_value(session, f"licence:{type_code}:{issuer_code}", gapless=True)


def _current_list(session: Session, jurisdiction_code: str) -> int:
    """The list that takes new licences: the newest one, or the next when it is full."""
    newest = session.scalar(
        select(func.max(Licence.status_list)).where(Licence.jurisdiction_code == jurisdiction_code)
    )
    if newest is None:
        return 1
    count = session.scalar(
        select(func.count())
        .select_from(Licence)
        .where(Licence.jurisdiction_code == jurisdiction_code, Licence.status_list == newest)
    )
    return newest + 1 if domain.list_is_full(count or 0) else newest


def _index_used(session: Session, jurisdiction_code: str, list_no: int, idx: int) -> bool:
    return (
        session.scalar(
            select(Licence.id).where(
                Licence.jurisdiction_code == jurisdiction_code,
                Licence.status_list == list_no,
                Licence.status_index == idx,
            )
        )
        is not None
    )


def ensure_status_list(session: Session, jurisdiction_code: str, list_no: int) -> StatusListToken:
    """The row of one of this node's own status lists (created empty, built on demand)."""
    row = session.get(StatusListToken, (jurisdiction_code, list_no))
    if row is None:
        row = StatusListToken(
            jurisdiction_code=jurisdiction_code,
            list_no=list_no,
            own=True,
            uri=domain.status_list_uri(settings_of(session).public_url, jurisdiction_code, list_no),
        )
        session.add(row)
        session.flush()
    return row


# --- issuing ----------------------------------------------------------------------------------


def _holder(
    session: Session, ltype: LicenceType, req: IssueRequest
) -> tuple[str, str, Account | None]:
    """(holder type, normalised identifier, account) of an issue request."""
    errors = []
    kinds = [req.holder_type] if req.holder_type else list(ltype.holders)
    if req.holder_type and req.holder_type not in ltype.holders:
        errors.append({"field": "holder_type", "message": f"{ltype.name}不向该类持证人签发"})
    ident = None
    kind = kinds[0]
    for kind in kinds:
        try:
            if kind == Role.ENTERPRISE:
                ident = validate_credit_code(req.holder_identifier or "")
            else:
                ident = validate_id_number(req.holder_identifier or "")
            break
        except Exception:  # noqa: BLE001 - ValueError, or stdnum's KeyError on odd areas
            continue
    if ident is None:
        what = "统一社会信用代码" if kinds == [Role.ENTERPRISE.value] else "身份证号码"
        errors.append({"field": "holder_identifier", "message": f"持证人{what}无效"})
    if not (req.holder_name or "").strip():
        errors.append({"field": "holder_name", "message": "请填写持证人名称"})
    if errors:
        raise ValidationFailed("持证人信息有误", errors=errors)
    assert ident is not None
    col = Account.credit_code if kind == Role.ENTERPRISE else Account.id_number
    account = session.scalar(select(Account).where(col == ident, Account.role == kind))
    return kind, ident, account


def _sign(
    session: Session, lic: Licence, ltype: LicenceType, jurisdiction_code: str
) -> tuple[str, str, str]:
    """The SD-JWT VC of `lic` (compact with every disclosure), kid and alg."""
    key, row = keys.signing_key(session, "licence", jurisdiction_code)
    payload: dict[str, Any] = {
        "iss": domain.issuer_id(settings_of(session).public_url, jurisdiction_code),
        "iat": int(lic.issued_at.timestamp()),
        "nbf": int(lic.valid_from.timestamp()),
    }
    if lic.valid_until is not None:
        payload["exp"] = int(lic.valid_until.timestamp())
    payload.update(
        {
            "vct": ltype.vct,
            "licence_id": lic.identifier,
            "licence_type": ltype.code,
            "issuing_authority": lic.authority_name,
            "status": {"status_list": {"idx": lic.status_index, "uri": lic.status_uri}},
        }
    )
    payload.update(lic.claims)
    device = _holder_device_key(session, lic)
    if device is not None:  # holder binding: presentations need a KB-JWT by this key
        payload["cnf"] = {"jwk": device.jwk}
    lic.cnf_kid = device.thumbprint if device is not None else None
    compact = sdjwt.issue_sd_jwt(payload, [f.name for f in ltype.personal_fields], key)
    return compact, row.kid, row.alg


def _holder_device_key(session: Session, lic: Licence) -> HolderKey | None:
    """The holder's current device key (the newest not revoked), if they registered one."""
    if lic.holder_account_id is None:
        return None
    return session.scalar(
        select(HolderKey)
        .where(HolderKey.account_id == lic.holder_account_id, HolderKey.revoked_at.is_(None))
        .order_by(HolderKey.created_at.desc(), HolderKey.id)
        .limit(1)
    )


def resign(session: Session, lic: Licence, actor: Account | None, reason: str) -> Licence:
    """Re-issue `lic` as it is (same identifier, claims, validity and status-list entry)
    signed now by its jurisdiction's current key, bound to the holder's current device
    key (or to none): after a device key is registered or withdrawn. The earlier compact
    form still verifies where a verifier accepts it; recorded as a `bind` event."""
    ltype = get_type(lic.type_code)
    lic.issued_at = utcnow()  # iat: within the window of the current licence key
    lic.compact, lic.kid, lic.alg = _sign(session, lic, ltype, lic.jurisdiction_code)
    status = LicenceStatus(lic.status)
    _event(session, lic, LicenceAction.BIND, status, status, actor, reason)
    return lic


def _issue(
    session: Session,
    ltype: LicenceType,
    authority: Authority,
    req: IssueRequest,
    *,
    actor: Account | None,
    source: str,
    case_id: uuid.UUID | None = None,
    strict: bool = True,
) -> Licence:
    kind, ident, account = _holder(session, ltype, req)
    problems = domain.validate_claims(ltype, req.claims)
    if not strict:  # from a case: what the case knows; missing fields are left out
        problems = [p for p in problems if not p["message"].startswith("请填写")]
    if problems:
        raise ValidationFailed("证照字段有误", errors=problems)
    # The key first: created on first use, it must exist before the licence's iat.
    keys.signing_key(session, "licence", authority.jurisdiction_code)
    now = utcnow()
    start = req.valid_from or now
    until = req.valid_until or domain.valid_until(ltype, start)
    if until is not None and until <= start:
        raise ValidationFailed(
            "有效期截止须晚于起始日期",
            errors=[{"field": "valid_until", "message": "有效期截止须晚于起始日期"}],
        )
    j = authority.jurisdiction_code
    issuer_code = domain.authority_credit_code(authority.code, authority.city_code or j)
    serial = _next_serial(session, ltype.type_code, issuer_code)
    lic = Licence(
        identifier=make_identifier(ltype.type_code, issuer_code, f"{serial:010d}", 1),
        type_code=ltype.code,
        holder_type=kind,
        holder_identifier=ident,
        holder_name=req.holder_name.strip(),
        holder_account_id=account.id if account else None,
        jurisdiction_code=j,
        authority_id=authority.id,
        authority_name=authority.name,
        issuer_code=issuer_code,
        serial=serial,
        version=1,
        claims=domain.clean_claims(ltype, req.claims),
        issued_at=now,
        valid_from=start,
        valid_until=until,
        status=LicenceStatus.VALID.value,
        case_id=case_id,
        source=source,
    )
    _place_and_sign(session, lic, ltype)
    _event(session, lic, LicenceAction.ISSUE, None, LicenceStatus.VALID, actor, _issue_note(source))
    publish(
        session,
        LicenceIssued(
            licence_id=lic.id,
            licence_type=lic.type_code,
            identifier=lic.identifier,
            holder_type=lic.holder_type,
            holder_identifier=lic.holder_identifier,
            holder_name=lic.holder_name,
            issuer_name=lic.authority_name,
            claims=dict(lic.claims or {}),
        ),
    )
    return lic


def _issue_note(source: str) -> str:
    return {"case": "办件送达后签发", "bulk": "存量证照批量签发", "demo": "演示数据"}.get(
        source, "直接签发"
    )


def _place_and_sign(session: Session, lic: Licence, ltype: LicenceType) -> None:
    """Give `lic` a random free index of the current status list, sign it and store it.
    Two requests that draw the same index meet the unique constraint: draw again."""
    j = lic.jurisdiction_code
    for _ in range(8):
        list_no = _current_list(session, j)

        def used(i: int, n: int = list_no) -> bool:
            return _index_used(session, j, n, i)

        idx = domain.pick_index(used)
        if idx is None:  # unlucky draws in a nearly full list
            continue
        list_row = ensure_status_list(session, j, list_no)
        lic.status_list, lic.status_index, lic.status_uri = list_no, idx, list_row.uri
        lic.compact, lic.kid, lic.alg = _sign(session, lic, ltype, j)
        try:
            with session.begin_nested():
                session.add(lic)
            return
        except IntegrityError:
            if lic in session:
                session.expunge(lic)
            continue
    raise Conflict("状态列表索引分配冲突，请重试", type="status-index-conflict")


def _event(
    session: Session,
    lic: Licence,
    action: LicenceAction,
    from_status: LicenceStatus | None,
    to_status: LicenceStatus,
    actor: Account | None,
    reason: str,
) -> LicenceEvent:
    """The licence's next event through the kernel: numbered from its counter, its
    version checked (a 409 when another request changed it meanwhile), audited."""
    return history.record(
        session,
        lic,
        action.value,
        actor,
        from_status.value if from_status else None,
        to_status.value,
        reason,
    )


def issue(session: Session, actor: Account, req: IssueRequest) -> Licence:
    """An officer of the issuing authority type issues a licence directly, in the
    officer's jurisdiction, signed by that jurisdiction's key."""
    ltype = get_type(req.type_code)
    authority = require_issuer(session, actor, ltype)
    return _issue(session, ltype, authority, req, actor=actor, source="direct")


def bulk_issue(session: Session, actor: Account, reqs: list[IssueRequest]) -> list[Licence]:
    """Issue licences from an existing register: all or nothing. Every bad row is reported
    (field `rows.<n>.<field>`) in one ValidationFailed and nothing is issued."""
    if not reqs:
        raise ValidationFailed(
            "没有要签发的证照", errors=[{"field": "rows", "message": "列表为空"}]
        )
    authority = officer_authority(session, actor)
    errors: list[dict[str, Any]] = []
    for n, req in enumerate(reqs):
        try:
            ltype = get_type(req.type_code)
            if ltype.authority_type != authority.type:
                raise PermissionDenied(f"{authority.name}不是{ltype.name}的发证部门")
            _holder(session, ltype, req)
            problems = domain.validate_claims(ltype, req.claims)
            if problems:
                raise ValidationFailed("证照字段有误", errors=problems)
        except (ValidationFailed, NotFound, PermissionDenied) as e:
            for err in e.errors or [FieldError("type_code", e.detail)]:
                errors.append(
                    {"field": f"rows.{n}.{err.get('field')}", "message": err.get("message")}
                )
    if errors:
        raise ValidationFailed(
            f"{len({e['field'].split('.')[1] for e in errors})} 条记录有误，均未签发",
            type="bulk-rejected",
            errors=errors,
        )
    return [
        _issue(session, get_type(r.type_code), authority, r, actor=actor, source="bulk")
        for r in reqs
    ]


def _seed_claims(session: Session, ltype: LicenceType, case: CaseDelivered) -> dict[str, Any]:
    """Claims of a licence produced by a case: the holder's earlier licences (same type
    first, then the ID card) give the personal details, the case's form overrides them."""
    claims: dict[str, Any] = {}
    names = {f.name for f in ltype.fields}
    earlier = session.scalars(
        select(Licence)
        .where(
            Licence.holder_identifier == case.applicant_identifier,
            Licence.type_code.in_([ltype.code, "resident_id_card"]),
            Licence.status != LicenceStatus.REVOKED.value,
        )
        .order_by(Licence.type_code != ltype.code, Licence.issued_at.desc())
    ).all()
    for lic in reversed(earlier):
        claims.update({k: v for k, v in lic.claims.items() if k in names})
    for k, v in (case.form_data or {}).items():
        if k in names and isinstance(v, (str, int, float)) and not isinstance(v, bool):
            claims[k] = v
    for name in ("name", "company_name", "operator_name", "right_holder", "owner"):
        if name in names:
            claims.setdefault(name, case.applicant_name)
    for name in ("id_number", "credit_code"):
        if name in names:
            claims[name] = case.applicant_identifier
    return claims


def issue_for_case(session: Session, case: CaseDelivered) -> Licence | None:
    """When a case is delivered (licences.subscribers): when its matter produces a
    licence and the case was approved, the competent authority issues it to the
    applicant (once)."""
    try:
        matter = catalog.get_matter(session, case.matter_code)
    except NotFound:
        return None
    code = matter.result_licence_type
    if not code or code not in domain.licence_types():
        return None
    if not case.approved:
        return None
    existing = session.scalar(select(Licence).where(Licence.case_id == case.case_id))
    if existing is not None:
        return existing
    ltype = get_type(code)
    authority = regions.get_authority(session, case.authority_id)
    req = IssueRequest(
        type_code=code,
        holder_identifier=case.applicant_identifier,
        holder_name=case.applicant_name,
        holder_type=case.applicant_type if case.applicant_type in ltype.holders else None,
        claims=_seed_claims(session, ltype, case),
    )
    return _issue(
        session,
        ltype,
        authority,
        req,
        actor=None,
        source="case",
        case_id=case.case_id,
        strict=False,
    )


def issue_as(
    session: Session,
    authority: Authority,
    req: IssueRequest,
    *,
    source: str = "demo",
) -> Licence:
    """Issue on behalf of `authority` without an officer (demo data, register import by
    the operator's CLI)."""
    ltype = get_type(req.type_code)
    if ltype.authority_type != authority.type:
        raise PermissionDenied(f"{authority.name}不是{ltype.name}的发证部门")
    return _issue(session, ltype, authority, req, actor=None, source=source)
