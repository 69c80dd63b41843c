"""Builders for test data: one line per account or case in a test, not copied setup."""

from __future__ import annotations

import itertools
import re
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


def _account(session: Session, role: str, username: str, display_name: str, **kw: Any) -> Account:
    """An account with the test password; `kw` are create_account's other fields."""
    return identity.create_account(
        session, username=username, password=PASSWORD, role=role, display_name=display_name, **kw
    )


def make_resident(
    session: Session, city: str = "340100", assurance_level: str = "window_verified", **kw: Any
) -> Account:
    """A resident whose identity is proven (a window check) unless `assurance_level` says
    otherwise (`"self_declared"`: registered without proof)."""
    n = next(_seq)
    c = regions.get_city(session, city)
    return _account(
        session,
        "resident",
        kw.pop("username", f"resident{n}"),
        kw.pop("display_name", f"居民{n}"),
        id_number=kw.pop("id_number", id_number(city)),
        jurisdiction_code=c.jurisdiction_code,
        city_code=city,
        assurance_level=assurance_level,
        **kw,
    )


def make_enterprise(
    session: Session, city: str = "320500", assurance_level: str = "window_verified", **kw: Any
) -> Account:
    n = next(_seq)
    c = regions.get_city(session, city)
    return _account(
        session,
        "enterprise",
        f"enterprise{n}",
        f"测试企业{n}有限公司",
        credit_code=credit_code(city),
        jurisdiction_code=c.jurisdiction_code,
        city_code=city,
        assurance_level=assurance_level,
        **kw,
    )


def make_officer(session: Session, authority_code: str, duty: str = "approver") -> Account:
    n = next(_seq)
    a = regions.authority_by_code(session, authority_code)
    return _account(
        session,
        "officer",
        f"officer{n}",
        f"{a.name}人员{n}",
        jurisdiction_code=a.jurisdiction_code,
        city_code=a.city_code,
        authority_id=a.id,
        duty=duty,
    )


def make_clerk(session: Session, city: str = "310000") -> Account:
    n = next(_seq)
    c = regions.get_city(session, city)
    return _account(
        session,
        "clerk",
        f"clerk{n}",
        f"{c.name}窗口{n}",
        jurisdiction_code=c.jurisdiction_code,
        city_code=city,
    )


def make_supervisor(session: Session, jurisdiction: str = "320000") -> Account:
    n = next(_seq)
    return _account(
        session, "supervisor", f"supervisor{n}", f"督查{n}", jurisdiction_code=jurisdiction
    )


def make_admin(session: Session) -> Account:
    n = next(_seq)
    return _account(session, "admin", f"admin{n}", "管理员")


def token_for(client: TestClient, account: Account) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", data={"username": account.username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


#: The hidden field every form of the site carries.
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of a page's form."""
    m = CSRF.search(html)
    assert m, "no CSRF token on the page"
    return m.group(1)


def apply_form(csrf: str, form: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """What the /apply page posts: an online application to 苏州 (江苏) with consent, the
    result delivered electronically, the matter's `form` filled in; `fields` add to it or
    replace (None leaves a field out)."""
    data = {
        "csrf_token": csrf,
        "competent_jurisdiction": "320000",
        "competent_city": "320500",
        "mode": "online",
        "delivery_method": "electronic",
        "consent": "1",
        **form,
        **fields,
    }
    return {k: v for k, v in data.items() if v is not None}


def sign_in(client: TestClient, who: Account | str, password: str = PASSWORD) -> None:
    """Sign in through the login page: `client` holds the session cookie afterwards."""
    page = client.get("/login")
    username = who if isinstance(who, str) else who.username
    r = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


TINY_PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"

#: A city-level 江苏 matter any resident may apply for online: only the ID card is required.
SIMPLE_MATTER = "YRD-GJJ-0002"
SIMPLE_FORM = {"proof_purpose": "异地贷款"}


def online_application(att_id: str, **kw: Any) -> dict[str, Any]:
    """The JSON body of POST /api/v1/cases for SIMPLE_MATTER in 苏州 with one uploaded
    material; `kw` overrides or adds fields."""
    body: dict[str, Any] = {
        "matter_code": SIMPLE_MATTER,
        "competent_jurisdiction": "320000",
        "competent_city": "320500",
        "form_data": dict(SIMPLE_FORM),
        "consent": True,
        "attachment_ids": [att_id],
    }
    body.update(kw)
    return body


def api_upload(client: TestClient, headers: dict[str, str], material_code: str = "id_card") -> str:
    """A small PDF uploaded as `material_code` through POST /api/v1/attachments (201
    asserted); the upload's id, for `online_application`."""
    r = client.post(
        "/api/v1/attachments",
        headers=headers,
        data={"material_code": material_code},
        files={"file": (f"{material_code}.pdf", TINY_PDF, "application/pdf")},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _stored(store: Any, session: Session, actor: Account, head: bytes, tmp: Any, **kw: Any) -> Any:
    """A small file kept by a context's `store` function: `head` (the leading bytes its
    type is checked by) and a counter, so that no two files are alike."""
    import tempfile
    from pathlib import Path

    return store(
        session,
        actor,
        data=head + str(next(_seq)).encode(),
        upload_dir=Path(tmp or tempfile.gettempdir()) / "tongban-test-uploads",
        max_bytes=1_000_000,
        **kw,
    )


def upload(
    session: Session, actor: Account, material_code: str = "id_card", tmp: Any = None
) -> Any:
    from tongban.cases.attachments import store_upload

    return _stored(
        store_upload,
        session,
        actor,
        TINY_PDF,
        tmp,
        material_code=material_code,
        filename=f"{material_code}.pdf",
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
    from tongban.kernel import replication

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
        replication.send_now(session)  # the hand-over is written at commit: now
        for msg in session.scalars(select(OutboxMessage).where(OutboxMessage.status == "pending")):
            apply_locally(session, msg)
            msg.status = "delivered"
        session.flush()
    return case


def window_application(
    session: Session,
    clerk: Account,
    identifier: str,
    *,
    subject: tuple[str, str] | None = None,
    identity_verified: bool = True,
) -> tuple[Any, Any]:
    """What a window clerk enters for 王芳 (ID number `identifier`) applying for a 户籍信息证明
    of 苏州 for `subject` (name, ID number; herself unless given), her ID card scanned:
    the (WindowApplicant, Application) pair cases' submit_at_window takes."""
    from tongban.cases import service

    name, number = subject or ("王芳", identifier)
    app = service.Application(
        matter_code="YRD-GA-0002",
        competent_jurisdiction="320000",
        competent_city="320500",
        form_data={
            "proof_type": "户籍信息证明",
            "subject_name": name,
            "subject_id_number": number,
            "purpose": "办理入学",
        },
        consent=True,
        attachment_ids=[upload(session, clerk, "id_card").id],
    )
    applicant = service.WindowApplicant(
        name="王芳",
        identifier=identifier,
        identity_verified=identity_verified,
        materials_checked=True,
    )
    return applicant, app


def status_changed(
    number: str,
    seq: int,
    action: str,
    from_state: str,
    to_state: str,
    form: dict[str, Any],
    **extra: Any,
) -> dict[str, Any]:
    """The payload of a well-formed `case.status_changed` message: case `number` moved by
    an officer from `from_state` to `to_state` as its event `seq`, now."""
    import uuid
    from datetime import UTC, datetime

    at = datetime.now(UTC).isoformat()
    return {
        "number": number,
        "state": to_state,
        "seq": seq,
        "action": action,
        "comment": "",
        "event": {
            "id": str(uuid.uuid4()),
            "seq": seq,
            "action": action,
            "from_state": from_state,
            "to_state": to_state,
            "actor_name": "某人",
            "actor_role": "officer",
            "comment": "",
            "at": at,
        },
        "case": {
            "state": to_state,
            "handoff": "delivered",
            "result_text": None,
            "form_data": form,
            "deadline_flag": "ok",
            "accepted_at": at,
            "deadline": None,
            "closed_at": None,
        },
        **extra,
    }


#: Claims of each licence type used by the licence tests (the holder's name and number are
#: filled in by make_licence).
LICENCE_CLAIMS: dict[str, dict[str, Any]] = {
    "resident_id_card": {
        "sex": "女",
        "ethnicity": "汉",
        "birth_date": "1990-03-07",
        "address": "安徽省合肥市蜀山区长江西路100号",
    },
    "driving_licence": {
        "sex": "女",
        "birth_date": "1990-03-07",
        "address": "安徽省合肥市蜀山区长江西路100号",
        "licence_class": "C1",
        "first_issued_on": "2012-05-01",
    },
    "business_licence": {
        "company_type": "有限责任公司",
        "legal_representative": "王芳",
        "registered_capital": "1000万元",
        "established_on": "2020-01-01",
        "address": "江苏省苏州市工业园区星湖街1号",
    },
}


def id_card_request(
    holder: Account, claims: dict[str, Any] | None = None, **fields: Any
) -> dict[str, Any]:
    """The body of POST /api/v1/licences issuing `holder` a 居民身份证 (the test claims, and
    `claims` on top); `fields` add to the body or replace its fields."""
    return {
        "type_code": "resident_id_card",
        "holder_identifier": holder.id_number,
        "holder_name": holder.display_name,
        "claims": {
            "name": holder.display_name,
            "id_number": holder.id_number,
            **LICENCE_CLAIMS["resident_id_card"],
            **(claims or {}),
        },
        **fields,
    }


def make_licence(
    session: Session,
    holder: Account,
    type_code: str = "resident_id_card",
    authority: str = "340100-public_security",
    **claims: Any,
) -> Any:
    """A licence issued to `holder` on behalf of `authority` (no officer needed)."""
    from tongban.licences import service as licences

    ident = holder.credit_code if holder.role == "enterprise" else holder.id_number
    base: dict[str, Any] = dict(LICENCE_CLAIMS.get(type_code, {}))
    if type_code == "business_licence":
        base.update(credit_code=ident, company_name=holder.display_name)
    else:
        base.update(name=holder.display_name, id_number=ident)
    base.update(claims)
    return licences.issue_as(
        session,
        regions.authority_by_code(session, authority),
        licences.IssueRequest(type_code, ident or "", holder.display_name, base),
        source="direct",
    )


# --- medical (cross-region outpatient settlement) --------------------------------------


def medical_reference(session: Session) -> None:
    """Load the policies and catalogues of medical/data (idempotent)."""
    from tongban.medical import service as medical

    medical.load_reference(session)


def make_institution(
    session: Session, city: str = "310000", level: int = 3, district: str | None = None
) -> Any:
    from tongban.medical import service as medical

    medical_reference(session)
    n = next(_seq)
    return medical.create_institution(
        session,
        code=f"H{city}{n:05d}",
        name=f"测试医院{n}",
        city_code=city,
        level=level,
        district_code=district,
    )


def make_insured(
    session: Session,
    city: str = "340100",
    scheme: str = "employee",
    balance: int = 0,
    district: str | None = None,
) -> Any:
    from tongban.medical import service as medical

    n = next(_seq)
    return medical.create_insured(
        session,
        id_number=id_number(),
        name=f"参保人{n}",
        city_code=city,
        scheme=scheme,
        account_balance=balance,
        district_code=district,
    )


def make_hospital_staff(session: Session, institution: Any) -> Account:
    from tongban.medical import service as medical

    n = next(_seq)
    account = _account(
        session,
        "hospital",
        f"hospital{n}",
        f"{institution.name}收费员{n}",
        jurisdiction_code=institution.jurisdiction_code,
        city_code=institution.city_code,
    )
    medical.assign_staff(session, account, institution)
    return account


def make_filing(session: Session, person: Any, city: str = "310000", **kw: Any) -> Any:
    from datetime import date

    from tongban.medical import service as medical

    return medical.create_filing(
        session,
        person,
        type=kw.pop("type", "temporary"),
        valid_from=kw.pop("valid_from", date(2000, 1, 1)),
        valid_to=kw.pop("valid_to", None),
        target_city=city,
        **kw,
    )


def make_medical_officer(session: Session, jurisdiction: str) -> Account:
    """An officer of the jurisdiction's medical-insurance agency (province level where
    there is one, the city's for a municipality)."""
    from sqlalchemy import select

    from tongban.regions.models import Authority

    a = session.scalar(
        select(Authority)
        .where(Authority.type == "medical_insurance", Authority.jurisdiction_code == jurisdiction)
        .order_by(Authority.level.desc())  # "province" before "city"
    )
    assert a is not None
    return make_officer(session, a.code)


# --- evidence (EVID) -------------------------------------------------------------------

#: 住房公积金异地转移接续: a housing-fund matter of 苏州 (city level, online) that asks for
#: evidence from the applicant's home registers; and a valid form for it.
GJJ = "YRD-GJJ-0001"
GJJ_FORM = {
    "out_center": "合肥住房公积金管理中心",
    "out_account": "12345678",
    "in_center": "苏州市住房公积金管理中心",
    "new_employer": "苏州示范有限公司",
}

#: Register data per evidence kind, with fields no request may return (minimisation).
REGISTER_DATA: dict[str, dict[str, Any]] = {
    "household": {
        "name": "测试居民",
        "address": "安徽省合肥市示范路1号",
        "registration_authority": "合肥市公安局示范路派出所",
        "registered_since": "2008-09-01",
        "household_type": "家庭户",
        "ethnicity": "汉族",
        "relation_to_head": "户主",
    },
    "social_insurance": {
        "name": "测试居民",
        "insured_city": "合肥市",
        "status": "正常参保",
        "insurance_types": "职工基本养老保险",
        "first_paid": "2012-07",
        "last_paid": "2026-10",
        "months_paid": 120,
        "employer": "合肥示范科技有限公司",
        "monthly_base": 12000,
    },
    "licence_status": {
        "name": "测试居民",
        "licences": [
            {
                "type_name": "机动车驾驶证",
                "identifier": "JSZ-1",
                "issuer": "合肥市公安局交通警察支队",
                "status": "有效",
                "valid_until": "2030-03-07",
                "address": "不应返回",
            }
        ],
    },
}


def make_register_record(
    session: Session,
    subject: Account | str,
    kind: str = "household",
    jurisdiction: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """A record of a provider's register about `subject` (an applicant or an identifier),
    in their home jurisdiction unless told otherwise."""
    from tongban.evidence import service as evidence
    from tongban.evidence.domain import home_jurisdiction

    ident = subject if isinstance(subject, str) else (subject.id_number or subject.credit_code)
    assert ident
    enterprise = not isinstance(subject, str) and subject.role == "enterprise"
    home = home_jurisdiction(ident, "enterprise" if enterprise else "resident")
    evidence.put_register_record(
        session, kind, jurisdiction or home, ident, dict(data or REGISTER_DATA[kind])
    )


def drain(factory: Any) -> int:
    """Dispatch until no message is due: answers and notices sent by handlers go too."""
    from tongban.exchange.service import dispatch_pending

    total = 0
    for _ in range(20):
        n = dispatch_pending(factory)
        if n == 0:
            return total
        total += n
    raise AssertionError("messages keep coming")


# --- tickets (work orders) --------------------------------------------------------------

#: A 1×1 PNG: photos are checked by their leading bytes.
TINY_PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00"
    b"\x00\x00\x00IEND\xaeB`\x82"
)
#: On the 吴江 (苏州, 江苏) side, about 160 m from 嘉善 (嘉兴, 浙江): a joint work order.
BORDER_WUJIANG_JIASHAN = (30.9615, 120.815)
#: Inside 苏州市区, far from any other jurisdiction.
INSIDE_SUZHOU = (31.30, 120.62)


def make_city_staff(session: Session, role: str, city: str = "320500") -> Account:
    """A dispatcher (派单员), hotline operator (12345话务员) or grid inspector (网格员)."""
    n = next(_seq)
    c = regions.get_city(session, city)
    return _account(
        session,
        role,
        f"{role.replace('_', '')}{n}",
        f"{c.name}{role}{n}",
        jurisdiction_code=c.jurisdiction_code,
        city_code=city,
    )


def make_photo(session: Session, actor: Account, tmp: Any = None) -> Any:
    from tongban.tickets import service as tickets

    return _stored(tickets.store_photo, session, actor, TINY_PNG, tmp, filename="photo.png")


def make_work_order(
    session: Session,
    reporter: Account | None = None,
    *,
    where: tuple[float, float] | None = INSIDE_SUZHOU,
    category: str = "road_damage",
    urgency: str = "complaint",
    **kw: Any,
) -> Any:
    """A work order reported by a resident (of 苏州 unless given), routed and dispatched."""
    from tongban.tickets import service as tickets

    reporter = reporter or make_resident(session, city="320500")
    lat, lon = where if where else (None, None)
    kw.setdefault("allow_duplicate", True)
    r = tickets.Report(
        category_code=category,
        urgency=urgency,
        description=kw.pop("description", "路面有一个大坑"),
        lat=lat,
        lon=lon,
        **kw,
    )
    return tickets.report(session, reporter, r)
