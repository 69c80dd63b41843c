"""免提交 with licences presented at a (virtual) window and verified by a node that stores
neither the licence nor the presentation: the record a case keeps of each, checked
wherever it comes from (the clerk's node from the competent node's session, the
competent node from the forwarded case, this node's window from the wallet's QR)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from tongban.cases.models import PresentedLicence
from tongban.db import new_id, utcnow
from tongban.errors import FieldError, ValidationFailed
from tongban.licences import service as licences


@dataclass
class VerifiedLicence:
    """A licence presented at a counter and verified by a node (usually another one): it
    stands in for `material_code` (免提交) without a file or a stored licence."""

    material_code: str
    type_code: str
    type_name: str
    licence_id: str
    issuer: str
    #: The node that verified it, as named here (e.g. 安徽省合肥市).
    verified_by: str
    verified_at: datetime
    presentation_sha256: str
    #: "valid", or the reason the verification failed (which is refused).
    result: str


_SHA256 = re.compile(r"[0-9a-f]{64}")
#: How far a verification time may lie ahead of this node's clock (clock skew).
_SKEW = timedelta(minutes=5)


def _text_ok(value: Any, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value.strip()) <= limit and value.isprintable()


def check_verified(matter: Any, verified: list[VerifiedLicence]) -> list[VerifiedLicence]:
    """The presented licences a node verified, checked as coming from a peer: each for a
    material of the matter that accepts its licence type, verified valid, at a sane time,
    with a SHA-256 digest and bounded texts, one per material. Anything else is a
    ValidationFailed on that material (licence-rejected), in Chinese."""
    materials = {m.code: m for m in matter.materials}
    errors: list[dict[str, str]] = []
    seen: set[str] = set()
    now = utcnow()
    for v in verified:
        code = v.material_code if isinstance(v.material_code, str) else ""
        f = f"materials.{code}"[:60]
        material = materials.get(code)
        name = v.type_name if _text_ok(v.type_name, 80) else "电子证照"
        if material is None or not material.licence_type:
            errors.append({"field": f, "message": "该材料不属于本事项或不能用电子证照代替"})
        elif code in seen:
            errors.append({"field": f, "message": "同一材料只能使用一份出示的电子证照"})
        elif v.type_code != material.licence_type:
            errors.append({"field": f, "message": f"出示的{name}不是该材料所需的证照"})
        elif v.result != "valid":
            errors.append({"field": f, "message": f"出示的{name}核验未通过，不能免提交"})
        elif not isinstance(v.presentation_sha256, str) or not _SHA256.fullmatch(
            v.presentation_sha256
        ):
            errors.append({"field": f, "message": "证照出示记录的摘要无效"})
        elif not (
            _text_ok(v.type_name, 80)
            and _text_ok(v.licence_id, 80)
            and _text_ok(v.issuer, 120)
            and _text_ok(v.verified_by, 80)
        ):
            errors.append({"field": f, "message": "证照核验记录不完整或过长"})
        elif (
            not isinstance(v.verified_at, datetime)
            or v.verified_at.tzinfo is None
            or v.verified_at > now + _SKEW
        ):
            errors.append({"field": f, "message": "证照核验时间无效"})
        else:
            seen.add(code)
    if errors:
        raise ValidationFailed(
            "出示的电子证照不能免提交：" + "；".join(e["message"] for e in errors),
            type="licence-rejected",
            errors=errors,
        )
    return list(verified)


def presented_rows(verified: list[VerifiedLicence]) -> list[PresentedLicence]:
    return [
        PresentedLicence(
            id=new_id(),
            material_code=v.material_code,
            type_code=v.type_code,
            type_name=v.type_name.strip(),
            licence_id=v.licence_id.strip(),
            issuer=v.issuer.strip(),
            verified_by=v.verified_by.strip(),
            verified_at=v.verified_at,
            presentation_sha256=v.presentation_sha256,
            result=v.result,
        )
        for v in verified
    ]


#: Claims that name a licence's holder: the ID number of a person, the unified social
#: credit code of an enterprise (the personal fields a presentation may disclose).
_HOLDER_CLAIMS = ("id_number", "credit_code")
#: Longest presentation a clerk may paste or scan (as licences.check_presented).
_PRESENTATION_MAX = 20_000


def check_presented_at_window(
    session: Session,
    holder_identifier: str,
    matter: Any,
    presented: dict[str, str],
    *,
    verified_by: str,
) -> tuple[list[Any], list[VerifiedLicence]]:
    """免提交 at this node's window: the presentations the clerk scanned or pasted from
    the applicant's wallet (material code → compact SD-JWT). A licence this node stores
    goes the way it always has (licences.check_presented: a licence use). One issued by
    another node is verified here as the verify page does it (issuer key from the
    federation's trust list, status from the status lists this node holds, the holder
    binding the deployment asks for, validity in time), must be of the material's type
    and disclose the applicant's ID number (or credit code); it is recorded as a
    presented licence (`case_presented_licence`), like the virtual window's. Every
    refusal at once: ValidationFailed (licence-rejected) on the material, in Chinese."""
    materials = {m.code: m for m in matter.materials}
    here: dict[str, str] = {}
    elsewhere: list[VerifiedLicence] = []
    errors: list[FieldError] = []
    for code, raw in presented.items():
        compact = (raw or "").strip()
        if not compact:
            continue
        material = materials.get(code)
        if material is None or not material.licence_type or len(compact) > _PRESENTATION_MAX:
            here[code] = compact  # refused there, with the reason it gives
            continue
        v = licences.verify_presentation(session, compact)
        if not v.valid or licences.licence_for(session, v) is not None:
            here[code] = compact  # the reason it failed, or a licence held here
            continue
        name = v.type_name or "电子证照"
        field = f"materials.{code}"
        holder = [v.claims.get(c) for c in _HOLDER_CLAIMS if isinstance(v.claims.get(c), str)]
        if v.type_code != material.licence_type:
            errors.append(FieldError(field, f"出示的{name}不是该材料所需的证照"))
        elif not holder:
            errors.append(
                FieldError(field, f"出示的{name}未披露持证人证件号码，无法核对是否属于申请人")
            )
        elif holder_identifier not in holder:
            errors.append(FieldError(field, f"出示的{name}不属于申请人"))
        else:
            issuer = v.claims.get("issuing_authority")
            elsewhere.append(
                VerifiedLicence(
                    material_code=code,
                    type_code=material.licence_type,
                    type_name=name,
                    licence_id=v.licence_id or "",
                    issuer=issuer if isinstance(issuer, str) and issuer else v.issuer or "",
                    verified_by=verified_by,
                    verified_at=utcnow(),
                    presentation_sha256=hashlib.sha256(compact.encode()).hexdigest(),
                    result="valid",
                )
            )
    used: list[Any] = []
    try:
        used = licences.check_presented(session, holder_identifier, matter, here) if here else []
    except ValidationFailed as e:
        errors = [*e.errors, *errors]
    if errors:
        raise ValidationFailed(
            "出示的电子证照不能免提交：" + "；".join(e["message"] for e in errors),
            type="licence-rejected",
            errors=errors,
        )
    return used, elsewhere
