"""Demo data of the medical context: institutions (three of them in the demonstration
zone), hospital staff accounts, insured persons for the demo residents, and filings.
Loaded by `tongban demo` (src/tongban/demo.py); idempotent. An insured person is
enrolled only on the node serving their jurisdiction: the other nodes ask it."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.calendar.service import local_date
from tongban.db import utcnow
from tongban.exchange import service as exchange
from tongban.identity.models import Account
from tongban.medical import service
from tongban.medical.models import Filing, HospitalStaff, Institution, InsuredPerson
from tongban.regions import service as regions

#: (code, name, city, district, level)
INSTITUTIONS = [
    ("H310000001", "复旦大学附属中山医院", "310000", "310104", 3),
    ("H310118001", "上海市青浦区中心医院", "310000", "310118", 2),
    ("H320500001", "苏州大学附属第一医院", "320500", "320508", 3),
    ("H320509001", "苏州市吴江区第一人民医院", "320500", "320509", 2),
    ("H330100001", "浙江大学医学院附属第一医院", "330100", "330102", 3),
    ("H330421001", "嘉善县第一人民医院", "330400", "330421", 2),
    ("H340100001", "安徽医科大学第一附属医院", "340100", "340104", 3),
]

#: Demo residents enrolled as insured persons: username → (scheme, district, balance fen,
#: filing target city or None). zhangwei (青浦) and lina (吴江) live in the
#: demonstration zone and need no filing there.
INSURED = {
    "wangfang": ("employee", "340102", 150_000, "310000"),
    "zhangwei": ("employee", "310118", 80_000, None),
    "lina": ("resident", "320509", 0, None),
    "chenjie": ("employee", "330102", 60_000, "320500"),
}


def staff_username(code: str) -> str:
    return f"hospital-{code}"


def demo_staff(cities: set[str]) -> list[tuple[str, str, str]]:
    """(username, display name, city) of one counter account per demo institution."""
    return [
        (staff_username(code), f"{name}医保窗口", city)
        for code, name, city, _, _ in INSTITUTIONS
        if city in cities
    ]


def load_medical_demo(session: Session) -> None:
    """Create the demo institutions, insured persons and filings, and map the hospital
    staff accounts (created by demo.py) to their institutions."""
    service.load_reference(session)
    known = {i.code: i for i in session.scalars(select(Institution))}
    for code, name, city, district, level in INSTITUTIONS:
        if code not in known:
            known[code] = service.create_institution(
                session, code=code, name=name, city_code=city, level=level, district_code=district
            )
        account = session.scalar(select(Account).where(Account.username == staff_username(code)))
        if account is not None and session.get(HospitalStaff, account.id) is None:
            service.assign_staff(session, account, known[code])
    today = local_date(utcnow())
    for username, (scheme, district, balance, target) in INSURED.items():
        account = session.scalar(select(Account).where(Account.username == username))
        if account is None or not account.id_number or not account.city_code:
            continue
        if not exchange.serves_here(session, account.jurisdiction_code or ""):
            continue  # insured elsewhere: their record lives on their own node
        if session.scalar(
            select(InsuredPerson).where(InsuredPerson.id_number == account.id_number)
        ):
            continue
        # Demo ID numbers are synthetic (demo.py), so the row is written directly rather
        # than through create_insured's GB 11643 birthplace check.
        person = InsuredPerson(
            id_number=account.id_number,
            name=account.display_name,
            jurisdiction_code=account.jurisdiction_code,
            city_code=account.city_code,
            district_code=district,
            scheme=scheme,
            account_balance=balance,
        )
        session.add(person)
        session.flush()
        if target is not None:
            session.add(
                Filing(
                    insured_id=person.id,
                    type="temporary" if target == "310000" else "work",
                    target_city=target,
                    target_jurisdiction=regions.get_city(session, target).jurisdiction_code,
                    valid_from=date(today.year, 1, 1),
                    valid_to=date(today.year, 12, 31),
                )
            )
    session.flush()
