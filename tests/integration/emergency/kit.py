"""Builders for the emergency tests: staff with emergency duties, reserve points, stock."""

from __future__ import annotations

import itertools
from datetime import date
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from tongban.emergency import access, stock
from tongban.emergency.catalogue import catalogue
from tongban.emergency.domain import Duty, Movement
from tongban.emergency.models import ReservePoint, StockLot
from tongban.identity.models import Account
from tongban.kernel.node import bind_settings
from tongban.regions.domain import AuthorityType, authority_code

from builders import make_officer

_n = itertools.count(1)


def staff(session: Session, city: str, *duties: Duty) -> Account:
    """An officer of `city`'s health commission holding `duties` there (both by default)."""
    account = make_officer(session, authority_code(city, AuthorityType.HEALTH), duty="reviewer")
    for duty in duties or tuple(Duty):
        access.grant(session, None, account, duty, city_code=city)
    return account


def point(session: Session, city: str, code: str | None = None, **kw: Any) -> ReservePoint:
    """A reserve point of `city` (made by the system)."""
    code = code or f"T{next(_n):03d}"
    return stock.add_point(
        session, None, code=code, name=kw.pop("name", f"测试储备点{code}"), city_code=city, **kw
    )


def stocked(
    session: Session,
    where: ReservePoint,
    item_code: str,
    quantity: int,
    batch: str = "B1",
    expiry: date | None = date(2030, 1, 1),
) -> StockLot:
    """A lot of `quantity` at `where` (received by the system)."""
    item = catalogue().items[item_code]
    lot = stock.lot_at(
        session,
        where,
        item,
        batch if item.perishable else batch,
        expiry if item.perishable else None,
    )
    stock.apply(session, lot, Movement.RECEIVE, quantity, None, "测试入库")
    return lot


def serving(factory: sessionmaker[Session], settings: Any, served: str) -> Session:
    """A session of a node that serves only `served` (comma-separated jurisdictions)."""
    return bind_settings(factory, settings.model_copy(update={"served_jurisdictions": served}))()


#: A close contact (密接) who went from 合肥 to 苏州: the subject of a hand-over.
PERSON = {
    "name": "王小明",
    "id_number": "340104199001011234",
    "phone": "13900000000",
    "exposure_date": "2026-11-27",
    "destination_address": "苏州市姑苏区人民路 1 号",
}
