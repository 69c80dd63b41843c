"""The demo federation: reference data, the catalogue and one account of every kind.

Demo passwords exist only here, for a local demonstration; never load this into a
production database."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from stdnum.cn import ric, uscc

from tongban.identity.domain import AssuranceLevel, Duty, Role
from tongban.identity.models import Account
from tongban.identity.service import hash_password, record_initial_level
from tongban.regions import service as regions
from tongban.regions.models import Authority, City, Jurisdiction

if TYPE_CHECKING:
    from tongban.kernel.registry import Registry

DEMO_PASSWORD = "tongban-demo-2026"


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str
    role: str
    display_name: str
    jurisdiction_code: str | None
    city_code: str | None
    authority: str | None  # authority code
    duty: str | None = None
    id_number: str | None = None
    credit_code: str | None = None


def _id_number(area: str, birth: str, seq: str) -> str:
    body = area + birth + seq
    return body + ric.calc_check_digit(body + "0")


def _credit_code(area: str, org: str) -> str:
    body = "91" + area + org
    return body + uscc.calc_check_digit(body)


RESIDENTS = [
    # (username, name, home city, birth date, sequence)
    ("wangfang", "王芳", "340100", "19900307", "128"),  # 安徽 合肥
    ("zhangwei", "张伟", "310000", "19851112", "357"),  # 上海
    ("lina", "李娜", "320500", "19920520", "246"),  # 江苏 苏州
    ("chenjie", "陈杰", "330100", "19880815", "139"),  # 浙江 杭州
]
ENTERPRISES = [
    ("yrd-tech", "长三角智造科技有限公司", "320500", "MA1XK3P2Y"),
]


def demo_accounts(session: Session) -> list[DemoAccount]:
    """Every demo account, derived from the loaded reference data."""
    out: list[DemoAccount] = [
        DemoAccount("admin", DEMO_PASSWORD, Role.ADMIN, "平台管理员", None, None, None)
    ]
    cities = {c.code: c for c in session.scalars(select(City))}
    for username, name, city, birth, seq in RESIDENTS:
        if city in cities:
            out.append(
                DemoAccount(
                    username,
                    DEMO_PASSWORD,
                    Role.RESIDENT,
                    name,
                    cities[city].jurisdiction_code,
                    city,
                    None,
                    id_number=_id_number(city[:4] + "02", birth, seq),
                )
            )
    for username, name, city, org in ENTERPRISES:
        if city in cities:
            out.append(
                DemoAccount(
                    username,
                    DEMO_PASSWORD,
                    Role.ENTERPRISE,
                    name,
                    cities[city].jurisdiction_code,
                    city,
                    None,
                    credit_code=_credit_code(city, org),
                )
            )
    for j in session.scalars(select(Jurisdiction).order_by(Jurisdiction.code)):
        out.append(
            DemoAccount(
                f"supervisor-{j.code}",
                DEMO_PASSWORD,
                Role.SUPERVISOR,
                f"{j.name}督查督办",
                j.code,
                None,
                None,
            )
        )
    for c in sorted(cities.values(), key=lambda c: c.code):
        out.append(
            DemoAccount(
                f"clerk-{c.code}",
                DEMO_PASSWORD,
                Role.CLERK,
                f"{c.name}政务服务中心窗口",
                c.jurisdiction_code,
                c.code,
                None,
            )
        )
    # 12345 work orders: each city's dispatcher (派单员) and hotline operator (话务员),
    # and a grid inspector (网格员) in each demonstration-zone district.
    for c in sorted(cities.values(), key=lambda c: c.code):
        for role, prefix, label in (
            (Role.DISPATCHER, "dispatcher", "12345派单员"),
            (Role.HOTLINE, "hotline", "12345话务员"),
        ):
            out.append(
                DemoAccount(
                    f"{prefix}-{c.code}",
                    DEMO_PASSWORD,
                    role,
                    f"{c.name}{label}",
                    c.jurisdiction_code,
                    c.code,
                    None,
                )
            )
    for d in regions.list_districts(session):
        if d.city_code in cities:
            out.append(
                DemoAccount(
                    f"grid-{d.code}",
                    DEMO_PASSWORD,
                    Role.GRID,
                    f"{d.name}网格员",
                    cities[d.city_code].jurisdiction_code,
                    d.city_code,
                    None,
                )
            )
    for a in session.scalars(select(Authority).order_by(Authority.code)):
        for duty, label in ((Duty.REVIEWER, "审核"), (Duty.APPROVER, "审批")):
            out.append(
                DemoAccount(
                    f"{a.code}-{duty.value}",
                    DEMO_PASSWORD,
                    Role.OFFICER,
                    f"{a.name}{label}员",
                    a.jurisdiction_code,
                    a.city_code,
                    a.code,
                    duty=duty.value,
                )
            )
    from tongban.medical.demo_data import demo_staff

    for username, name, city in demo_staff(set(cities)):
        out.append(
            DemoAccount(
                username,
                DEMO_PASSWORD,
                Role.HOSPITAL,
                name,
                cities[city].jurisdiction_code,
                city,
                None,
            )
        )
    from tongban.card.demo_data import demo_staff as venue_staff

    for username, name, city in venue_staff(set(cities)):
        out.append(
            DemoAccount(
                username,
                DEMO_PASSWORD,
                Role.VENUE,
                name,
                cities[city].jurisdiction_code,
                city,
                None,
            )
        )
    return out


def load_demo(session: Session, registry: Registry) -> int:
    """Create the demo federation (idempotent): every context's demo loader, in the
    registry's order (reference data, accounts, catalogue, licences, evidence registers,
    medical data …); returns how many accounts were added."""
    before = session.scalar(select(func.count()).select_from(Account)) or 0
    for load in registry.demo_loaders():
        load(session)
    session.flush()
    after = session.scalar(select(func.count()).select_from(Account)) or 0
    return after - before


def load_accounts(session: Session) -> int:
    """The demo accounts that are not there yet (needs the regions' reference data);
    returns how many were added."""
    existing = set(session.scalars(select(Account.username)))
    authorities = {a.code: a.id for a in session.scalars(select(Authority))}
    # One Argon2 hash for the shared demo password: hashing ~1,000 accounts one by one
    # would take a minute, and these passwords are public anyway.
    pw_hash = hash_password(DEMO_PASSWORD)
    added = 0
    applicants: list[Account] = []
    for d in demo_accounts(session):
        if d.username in existing:
            continue
        is_applicant = d.role in (Role.RESIDENT, Role.ENTERPRISE)
        account = Account(
            username=d.username,
            password_hash=pw_hash,
            role=str(d.role),
            display_name=d.display_name,
            id_number=d.id_number,
            credit_code=d.credit_code,
            jurisdiction_code=d.jurisdiction_code,
            city_code=d.city_code,
            authority_id=authorities.get(d.authority) if d.authority else None,
            duty=d.duty,
            # Demo residents and enterprises count as checked at a window, so the
            # demo shows their licences; the `created` event says so.
            assurance_level=AssuranceLevel.WINDOW_VERIFIED.value if is_applicant else None,
        )
        session.add(account)
        if is_applicant:
            applicants.append(account)
        added += 1
    session.flush()
    for account in applicants:
        record_initial_level(
            session,
            account,
            reason="演示账户：视同已在窗口核验身份",
            evidence={"method": "demo"},
        )
    session.flush()
    return added


def seed_evidence_registers(session: Session) -> None:
    """The provider registers (户籍, 社保, 证照) behind the evidence exchange, for every
    demo resident and enterprise: the data that stays on its own node."""
    from tongban.evidence import service as evidence

    evidence.seed_demo_registers(
        session,
        [
            (d.id_number or d.credit_code or "", d.display_name, str(d.role), d.city_code)
            for d in demo_accounts(session)
            if d.role in (Role.RESIDENT, Role.ENTERPRISE) and d.city_code
        ],
    )


def accounts_as_json(session: Session) -> list[dict[str, str | None]]:
    keys = (
        "username",
        "password",
        "role",
        "jurisdiction_code",
        "city_code",
        "authority",
        "display_name",
        "duty",
        "id_number",
        "credit_code",
    )
    return [
        {k: (str(v) if v is not None else None) for k, v in asdict(d).items() if k in keys}
        for d in demo_accounts(session)
    ]
