"""免提交 with licences presented at a (virtual) window and verified by a node that stores
neither the licence nor the presentation: the record a case keeps of each, checked
wherever it comes from (the clerk's node from the competent node's session, the
competent node from the forwarded case)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tongban.cases.models import PresentedLicence
from tongban.db import new_id, utcnow
from tongban.errors import ValidationFailed


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
