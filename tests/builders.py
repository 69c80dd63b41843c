"""Builders for test data: one line per account or case in a test, not copied setup."""

from __future__ import annotations

import itertools
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from stdnum.cn import ric, uscc

from tongban.identity import service as identity
from tongban.identity.models import Account
from tongban.regions import service as regions

PASSWORD = "correct-horse-battery"
_seq = itertools.count(100)


def id_number(city: str = "340100", birth: str = "19900307") -> str:
    body = city[:4] + "02" + birth + f"{next(_seq) % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")


def credit_code(city: str = "320500") -> str:
    body = "91" + city + f"MA{next(_seq):07d}"
    return body + uscc.calc_check_digit(body)


def make_resident(session: Session, city: str = "340100", **kw: Any) -> Account:
    n = next(_seq)
    c = regions.get_city(session, city)
    return identity.create_account(
        session,
        username=kw.pop("username", f"resident{n}"),
        password=PASSWORD,
        role="resident",
        display_name=kw.pop("display_name", f"居民{n}"),
        id_number=kw.pop("id_number", id_number(city)),
        jurisdiction_code=c.jurisdiction_code,
        city_code=city,
        **kw,
    )


def make_enterprise(session: Session, city: str = "320500", **kw: Any) -> Account:
    n = next(_seq)
    c = regions.get_city(session, city)
    return identity.create_account(
        session,
        username=f"enterprise{n}",
        password=PASSWORD,
        role="enterprise",
        display_name=f"测试企业{n}有限公司",
        credit_code=credit_code(city),
        jurisdiction_code=c.jurisdiction_code,
        city_code=city,
        **kw,
    )


def make_officer(session: Session, authority_code: str, duty: str = "approver") -> Account:
    n = next(_seq)
    a = regions.authority_by_code(session, authority_code)
    return identity.create_account(
        session,
        username=f"officer{n}",
        password=PASSWORD,
        role="officer",
        display_name=f"{a.name}人员{n}",
        jurisdiction_code=a.jurisdiction_code,
        city_code=a.city_code,
        authority_id=a.id,
        duty=duty,
    )


def make_clerk(session: Session, city: str = "310000") -> Account:
    n = next(_seq)
    c = regions.get_city(session, city)
    return identity.create_account(
        session,
        username=f"clerk{n}",
        password=PASSWORD,
        role="clerk",
        display_name=f"{c.name}窗口{n}",
        jurisdiction_code=c.jurisdiction_code,
        city_code=city,
    )


def make_supervisor(session: Session, jurisdiction: str = "320000") -> Account:
    n = next(_seq)
    return identity.create_account(
        session,
        username=f"supervisor{n}",
        password=PASSWORD,
        role="supervisor",
        display_name=f"督查{n}",
        jurisdiction_code=jurisdiction,
    )


def make_admin(session: Session) -> Account:
    n = next(_seq)
    return identity.create_account(
        session,
        username=f"admin{n}",
        password=PASSWORD,
        role="admin",
        display_name="管理员",
    )


def token_for(client: TestClient, account: Account) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", data={"username": account.username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


TINY_PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"

#: A city-level 江苏 matter any resident may apply for online: only the ID card is required.
SIMPLE_MATTER = "YRD-GJJ-0002"
SIMPLE_FORM = {"proof_purpose": "异地贷款"}


def upload(
    session: Session, actor: Account, material_code: str = "id_card", tmp: Any = None
) -> Any:
    import tempfile
    from pathlib import Path

    from tongban.cases.attachments import store_upload

    return store_upload(
        session,
        actor,
        material_code=material_code,
        filename=f"{material_code}.pdf",
        data=TINY_PDF + str(next(_seq)).encode(),
        upload_dir=Path(tmp or tempfile.gettempdir()) / "tongban-test-uploads",
        max_bytes=1_000_000,
    )


def make_case(
    session: Session,
    applicant: Account | None = None,
    *,
    matter: str = SIMPLE_MATTER,
    jurisdiction: str = "320000",
    city: str | None = "320500",
    form: dict[str, Any] | None = None,
    dispatch: bool = True,
    **kw: Any,
) -> Any:
    """An online case, forwarded (outbox delivered) unless dispatch=False."""
    from sqlalchemy import select

    from tongban.cases import service
    from tongban.exchange.models import OutboxMessage
    from tongban.exchange.service import apply_locally

    applicant = applicant or make_resident(session)
    att = upload(session, applicant)
    app = service.Application(
        matter_code=matter,
        competent_jurisdiction=jurisdiction,
        competent_city=city,
        form_data=dict(form or SIMPLE_FORM),
        consent=True,
        attachment_ids=[att.id],
        **kw,
    )
    case = service.submit_online(session, applicant, app)
    if dispatch:
        for msg in session.scalars(select(OutboxMessage).where(OutboxMessage.status == "pending")):
            apply_locally(session, msg)
            msg.status = "delivered"
        session.flush()
    return case
