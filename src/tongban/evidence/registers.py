"""The provider's registers: the data that stays on its node (户籍, 社保缴费, 电子证照).

In production these would be adapters onto each jurisdiction's own systems; here they
are rows of `evidence_register_record`, seeded for the demo residents. The licence
status kind asks the licences context first (see `_licence_adapter`)."""

from __future__ import annotations

import importlib
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.db import utcnow
from tongban.evidence.models import RegisterRecord

LICENCE_KIND = "licence_status"


def lookup(
    session: Session, kind: str, jurisdiction_code: str, subject: str
) -> dict[str, Any] | None:
    """What this jurisdiction's register holds about `subject` for `kind` (None: nothing)."""
    if kind == LICENCE_KIND:
        live = _licence_adapter(session, jurisdiction_code, subject)
        if live is not None:
            return live
    row = session.scalar(
        select(RegisterRecord).where(
            RegisterRecord.kind == kind,
            RegisterRecord.jurisdiction_code == jurisdiction_code,
            RegisterRecord.subject_identifier == subject,
        )
    )
    return dict(row.data) if row is not None else None


def upsert(
    session: Session, kind: str, jurisdiction_code: str, subject: str, data: dict[str, Any]
) -> RegisterRecord:
    """Create or replace one register record."""
    row = session.scalar(
        select(RegisterRecord).where(
            RegisterRecord.kind == kind,
            RegisterRecord.jurisdiction_code == jurisdiction_code,
            RegisterRecord.subject_identifier == subject,
        )
    )
    if row is None:
        row = RegisterRecord(
            kind=kind, jurisdiction_code=jurisdiction_code, subject_identifier=subject
        )
        session.add(row)
    row.data = data
    row.updated_at = utcnow()
    session.flush()
    return row


def _licence_adapter(
    session: Session, jurisdiction_code: str, subject: str
) -> dict[str, Any] | None:
    """Licences issued by this jurisdiction to `subject`, from the licences context when it
    offers `licences_of_holder(session, holder_identifier, jurisdiction_code)`; None when
    it does not (or holds none), and the register is used instead."""
    try:
        licences = importlib.import_module("tongban.licences.service")
    except ModuleNotFoundError:
        return None
    fn = getattr(licences, "licences_of_holder", None)
    if fn is None:
        return None
    rows = fn(session, subject, jurisdiction_code)
    if not rows:
        return None
    items = []
    name = ""
    for lic in rows:
        name = name or getattr(lic, "holder_name", "")
        until = getattr(lic, "valid_until", None)
        items.append(
            {
                "type_name": _type_name(licences, lic.type_code),
                "identifier": lic.identifier,
                "issuer": getattr(lic, "authority_name", ""),
                "status": _LICENCE_STATUS.get(lic.status, lic.status),
                "valid_until": until.date().isoformat() if until is not None else "长期",
            }
        )
    return {"name": name, "licences": items}


_LICENCE_STATUS = {"valid": "有效", "suspended": "暂停", "revoked": "已吊销"}


def _type_name(licences: Any, type_code: str) -> str:
    try:
        return str(licences.get_type(type_code).name)
    except Exception:  # noqa: BLE001 - an unknown type still shows its code
        return type_code


# --- demo data -------------------------------------------------------------------------


def demo_records(
    identifier: str,
    name: str,
    subject_type: str,
    city_name: str,
    jurisdiction_code: str,
    jurisdiction_name: str,
) -> list[tuple[str, str, dict[str, Any]]]:
    """Plausible register records for one demo subject: (kind, jurisdiction, data). The
    records carry more than any request returns (ethnicity, contribution base …), so that
    minimisation is visible."""
    if subject_type == "enterprise":
        return [
            (
                LICENCE_KIND,
                jurisdiction_code,
                {
                    "name": name,
                    "licences": [
                        {
                            "type_name": "营业执照",
                            "identifier": f"{identifier}-YYZZ",
                            "issuer": f"{city_name}市场监督管理局",
                            "status": "有效",
                            "valid_until": "长期",
                            "registered_capital": "5000万元",
                        }
                    ],
                },
            )
        ]
    birth = identifier[6:14]
    place = city_name if city_name == jurisdiction_name else jurisdiction_name + city_name
    return [
        (
            "household",
            jurisdiction_code,
            {
                "name": name,
                "gender": "女" if int(identifier[16]) % 2 == 0 else "男",
                "ethnicity": "汉族",
                "birth_date": f"{birth[:4]}-{birth[4:6]}-{birth[6:]}",
                "address": f"{place}示范路{int(identifier[14:17])}号",
                "registration_authority": f"{city_name}公安局示范路派出所",
                "registered_since": f"{int(birth[:4]) + 18}-09-01",
                "household_type": "家庭户",
                "relation_to_head": "户主",
            },
        ),
        (
            "social_insurance",
            jurisdiction_code,
            {
                "name": name,
                "insured_city": city_name,
                "status": "正常参保",
                "insurance_types": "职工基本养老保险、职工基本医疗保险、失业保险",
                "first_paid": f"{int(birth[:4]) + 22}-07",
                "last_paid": utcnow().strftime("%Y-%m"),
                "months_paid": 96 + int(identifier[14:17]) % 60,
                "employer": f"{city_name}示范科技有限公司",
                "monthly_base": 12000,
            },
        ),
        (
            LICENCE_KIND,
            jurisdiction_code,
            {
                "name": name,
                "licences": [
                    {
                        "type_name": "机动车驾驶证",
                        "identifier": f"{identifier}-JSZ",
                        "issuer": f"{city_name}公安局交通警察支队",
                        "status": "有效",
                        "valid_until": f"{utcnow().year + 6}-03-07",
                        "address": "（不返回）",
                    }
                ],
            },
        ),
    ]
