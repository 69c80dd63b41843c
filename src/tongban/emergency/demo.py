"""Demo data of the emergency context (run by `tongban demo`, idempotent): in every city
an emergency coordinator `emergency-<city>` (an officer of the city's health commission
holding both duties there, with the public demo password), and for every city of a
jurisdiction this node serves two reserve points with stock of the catalogue's items
(deterministic quantities: some cities below quota, a few batches close to expiry, so
the alerts have something to show)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.emergency import access, stock
from tongban.emergency.catalogue import Item, catalogue
from tongban.emergency.domain import Duty, Movement, PointKind
from tongban.emergency.models import ReservePoint
from tongban.exchange import service as exchange
from tongban.identity.domain import Duty as OfficerDuty
from tongban.identity.domain import Role
from tongban.identity.models import Account
from tongban.identity.service import hash_password
from tongban.regions import service as regions
from tongban.regions.domain import AuthorityType, authority_code

#: Categories a hospital's reserve point keeps (the city store keeps every one).
HOSPITAL_CATEGORIES = frozenset({"protection", "testing", "equipment", "disinfection"})


def username(city_code: str) -> str:
    return f"emergency-{city_code}"


def _factor(city: str, item: str) -> float:
    """A stable number in [0.3, 1.8) per city and item."""
    digest = hashlib.sha256(f"{city}:{item}".encode()).digest()
    return 0.3 + 1.5 * (int.from_bytes(digest[:4], "big") / 2**32)


def load_accounts(session: Session) -> int:
    """The coordinator of every city, with both duties there; how many were added."""
    from tongban.demo import DEMO_PASSWORD

    existing = set(
        session.scalars(select(Account.username).where(Account.username.like("emergency-%")))
    )
    pw_hash: str | None = None
    added = 0
    for city in regions.list_cities(session):
        name = username(city.code)
        if name in existing:
            continue
        health = regions.authority_by_code(session, authority_code(city.code, AuthorityType.HEALTH))
        pw_hash = pw_hash or hash_password(DEMO_PASSWORD)
        account = Account(
            username=name,
            password_hash=pw_hash,
            role=Role.OFFICER.value,
            display_name=f"{city.name}应急物资调度员",
            jurisdiction_code=city.jurisdiction_code,
            city_code=city.code,
            authority_id=health.id,
            duty=OfficerDuty.REVIEWER.value,
        )
        session.add(account)
        session.flush()
        for duty in Duty:
            access.grant(session, None, account, duty, city_code=city.code)
        added += 1
    return added


def _batch(item: Item, n: int) -> str:
    return f"{item.code.split('-', 1)[-1][:6]}{n:02d}"


def load_stock(session: Session) -> int:
    """Two reserve points with stock in every city this node serves that has none yet;
    how many lots were made."""
    today = stock.today()
    made = 0
    for city in regions.list_cities(session):
        if not exchange.serves_here(session, city.jurisdiction_code):
            continue
        if session.scalar(
            select(ReservePoint.id).where(ReservePoint.city_code == city.code).limit(1)
        ):
            continue
        store = stock.add_point(
            session,
            None,
            code="01",
            name=f"{city.name}市级应急物资储备库",
            city_code=city.code,
            kind=PointKind.GOVERNMENT.value,
            address=f"{city.name}物流园区应急仓储中心",
        )
        hospital = stock.add_point(
            session,
            None,
            code="02",
            name=f"{city.name}定点医院应急储备点",
            city_code=city.code,
            kind=PointKind.HOSPITAL.value,
            address=f"{city.name}第一人民医院",
        )
        for item in catalogue().items.values():
            total = int(item.min_city * _factor(city.code, item.code))
            at_hospital = total // 4 if item.category in HOSPITAL_CATEGORIES else 0
            for point, quantity in ((store, total - at_hospital), (hospital, at_hospital)):
                if quantity <= 0:
                    continue
                # A perishable item has a batch far from expiry; in a few cities part of
                # the stock is an older batch close to it.
                parts: list[tuple[int, int]] = (
                    [(quantity, 500)] if item.perishable else [(quantity, 0)]
                )
                if item.perishable and _factor(city.code, item.code + "x") < 0.45:
                    parts = [(quantity // 3, 20), (quantity - quantity // 3, 500)]
                for n, (part, days) in enumerate(parts, start=1):
                    if part <= 0:
                        continue
                    expiry = today + timedelta(days=days) if item.perishable else None
                    batch = _batch(item, n) if item.perishable else ""
                    lot = stock.new_lot(session, point, item, batch, expiry)
                    stock.apply(session, lot, Movement.RECEIVE, part, None, "演示数据：期初库存")
                    made += 1
    return made


def load(session: Session) -> None:
    load_accounts(session)
    load_stock(session)


__all__ = ["HOSPITAL_CATEGORIES", "load", "load_accounts", "load_stock", "username"]
