"""免提交: an applicant's e-licence stands in for a material whose `licence_type` it is.
Verified at submission and again when the officer decides; every verification is a
`licence_use` row, shown on the case pages."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.db import utcnow
from tongban.errors import Conflict, NotFound, ValidationFailed
from tongban.identity.models import Account
from tongban.licences import domain, wallet
from tongban.licences.models import Licence, LicenceUse
from tongban.licences.rejection import REASON_TEXT, RejectReason
from tongban.licences.verification import (
    Verification,
    licence_for,
    verify_presentation,
    verify_stored,
)


@dataclass
class LicenceChoice:
    """A material satisfied by a verified licence (has `material_code`, like an upload)."""

    material_code: str
    licence: Licence
    verification: Verification


def _as_uuid(value: Any) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def check_for_application(
    session: Session,
    applicant: Account | None,
    matter: Any,
    chosen: dict[str, Any] | None,
) -> list[LicenceChoice]:
    """Verify the licences an applicant chose for materials (material code → licence id).
    A licence that is not theirs, not of the material's type, or that does not verify
    is a ValidationFailed on that material, with the reason in Chinese."""
    choices: list[LicenceChoice] = []
    errors: list[dict[str, str]] = []
    materials = {m.code: m for m in matter.materials}
    for code, raw in (chosen or {}).items():
        if raw in (None, ""):
            continue
        field = f"materials.{code}"
        material = materials.get(code)
        if material is None or not material.licence_type:
            errors.append({"field": field, "message": "该材料不能用电子证照代替"})
            continue
        ltype = domain.licence_types().get(material.licence_type)
        lid = _as_uuid(raw)
        lic = None
        if applicant is not None and lid is not None:
            try:
                lic = wallet.get_mine(session, applicant, lid)
            except (NotFound, Exception):  # noqa: BLE001 - PermissionDenied for staff
                lic = None
        if lic is None:
            errors.append({"field": field, "message": "所选电子证照不存在或不属于申请人"})
            continue
        if lic.type_code != material.licence_type:
            name = ltype.name if ltype else material.licence_type
            errors.append({"field": field, "message": f"所选证照不是{name}"})
            continue
        v = verify_stored(session, lic)
        if not v.valid:
            name = ltype.name if ltype else lic.type_code
            errors.append({"field": field, "message": f"电子证照{name}验证未通过：{v.reason_text}"})
            continue
        choices.append(LicenceChoice(code, lic, v))
    _refuse(errors)
    return choices


def _refuse(errors: list[dict[str, str]]) -> None:
    """Every licence that did not stand in for its material, at once (licence-rejected)."""
    if errors:
        raise ValidationFailed(
            "电子证照验证未通过：" + "；".join(e["message"] for e in errors),
            type="licence-rejected",
            errors=errors,
        )


#: Longest presentation (compact SD-JWT) a window clerk may paste or scan, in characters.
PRESENTATION_MAX = 20_000


def check_presented(
    session: Session, holder_identifier: str, matter: Any, presented: dict[str, str] | None
) -> list[LicenceChoice]:
    """免提交 at the window: the applicant shows a licence (its QR or presentation string)
    and the clerk scans or pastes it for a material (material code → presentation). It
    must verify with this node's trust and status lists, be of the material's type, be
    held here (a use names a stored licence) and belong to the applicant; otherwise a
    ValidationFailed on that material says why, in Chinese."""
    choices: list[LicenceChoice] = []
    errors: list[dict[str, str]] = []
    materials = {m.code: m for m in matter.materials}
    for code, raw in (presented or {}).items():
        compact = (raw or "").strip()
        if not compact:
            continue
        field = f"materials.{code}"
        material = materials.get(code)
        if material is None or not material.licence_type:
            errors.append({"field": field, "message": "该材料不能用电子证照代替"})
            continue
        if len(compact) > PRESENTATION_MAX:
            errors.append({"field": field, "message": "电子证照内容过长，请重新扫码"})
            continue
        ltype = domain.licence_types().get(material.licence_type)
        name = ltype.name if ltype else material.licence_type
        v = verify_presentation(session, compact)
        if not v.valid:
            errors.append({"field": field, "message": f"出示的{name}验证未通过：{v.reason_text}"})
            continue
        lic = licence_for(session, v)
        if lic is None:
            errors.append({"field": field, "message": f"出示的{name}未在本平台登记，请上传材料"})
        elif lic.type_code != material.licence_type:
            errors.append({"field": field, "message": f"出示的证照不是{name}"})
        elif lic.holder_identifier != holder_identifier:
            errors.append({"field": field, "message": f"出示的{name}不属于申请人"})
        else:
            choices.append(LicenceChoice(code, lic, v))
    _refuse(errors)
    return choices


def record_uses(session: Session, case_id: uuid.UUID, choices: list[LicenceChoice]) -> None:
    """Record the submission-time verification of each licence used for a case."""
    for c in choices:
        _record(session, case_id, c.material_code, c.licence, "submission", c.verification)
    session.flush()


def _record(
    session: Session,
    case_id: uuid.UUID,
    material_code: str,
    lic: Licence,
    stage: str,
    v: Verification,
) -> LicenceUse:
    use = LicenceUse(
        case_id=case_id,
        material_code=material_code,
        licence_id=lic.id,
        identifier=lic.identifier,
        type_code=lic.type_code,
        stage=stage,
        result="valid" if v.valid else (v.reason or "invalid"),
        detail=v.detail,
        verified_at=utcnow(),
    )
    session.add(use)
    return use


def _submitted(session: Session, case_id: uuid.UUID) -> list[LicenceUse]:
    return list(
        session.scalars(
            select(LicenceUse)
            .where(LicenceUse.case_id == case_id, LicenceUse.stage == "submission")
            .order_by(LicenceUse.material_code)
        )
    )


def reverify_for_decision(session: Session, case_id: uuid.UUID) -> None:
    """Before the officer decides: verify every licence the case used again. One that no
    longer verifies (revoked, suspended, expired …) refuses the decision (Conflict)."""
    failures = []
    for use in _submitted(session, case_id):
        lic = session.get(Licence, use.licence_id)
        if lic is None:
            continue
        v = verify_stored(session, lic)
        _record(session, case_id, use.material_code, lic, "decision", v)
        if not v.valid:
            name = domain.licence_types().get(lic.type_code)
            failures.append(
                f"{name.name if name else lic.type_code}（{lic.identifier}）{v.reason_text}"
            )
    session.flush()
    if failures:
        raise Conflict(
            "申请人使用的电子证照已不能通过验证：" + "；".join(failures),
            type="licence-no-longer-valid",
        )


def _reason_text(result: str) -> str:
    try:
        return REASON_TEXT[RejectReason(result)]
    except ValueError:
        return "验证通过" if result == "valid" else result


def uses_for_case(session: Session, case_id: uuid.UUID) -> list[dict[str, Any]]:
    """For the case pages: per material, the licence used and its latest verification."""
    rows = session.scalars(
        select(LicenceUse)
        .where(LicenceUse.case_id == case_id)
        .order_by(LicenceUse.verified_at, LicenceUse.id)
    ).all()
    latest: dict[str, LicenceUse] = {}
    for r in rows:
        latest[r.material_code] = r
    out = []
    for code, r in latest.items():
        ltype = domain.licence_types().get(r.type_code)
        out.append(
            {
                "material_code": code,
                "type_name": ltype.name if ltype else r.type_code,
                "identifier": r.identifier,
                "licence_id": r.licence_id,
                "verified_at": r.verified_at,
                "stage": r.stage,
                "valid": r.result == "valid",
                "result": r.result,
                "result_text": _reason_text(r.result),
            }
        )
    return out
