"""Alerts for the emergency staff: a city's usable stock below its quota, a batch close
to or past its expiry (raised by the watch job), mutual aid past its time target (raised
by the aid watch). An alert is one row per (kind, key), open while its cause lasts and
resolved by the job once it is gone, so a pass can run every few minutes without
repeating itself."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from tongban.db import utcnow
from tongban.emergency import access, domain
from tongban.emergency.catalogue import catalogue
from tongban.emergency.domain import AlertKind, Duty, Freshness
from tongban.emergency.models import Alert, ReservePoint, StockLot
from tongban.exchange import service as exchange
from tongban.identity.domain import Role
from tongban.identity.models import Account
from tongban.regions import service as regions

STOCK_KINDS = (AlertKind.LOW_STOCK, AlertKind.EXPIRING, AlertKind.EXPIRED)


def raise_alert(
    session: Session,
    kind: AlertKind,
    key: str,
    *,
    jurisdiction: str,
    city: str | None,
    text: str,
    level: int = 1,
    link: str = "",
) -> tuple[Alert, bool]:
    """Open (or keep open, updated) the alert of `kind` and `key`; True when it is new or
    reopened or its level rose."""
    row = session.scalar(select(Alert).where(Alert.kind == kind.value, Alert.key == key))
    fresh = row is None or row.resolved_at is not None or row.level < level
    if row is None:
        row = Alert(kind=kind.value, key=key)
        session.add(row)
    if row.resolved_at is not None:
        row.created_at = utcnow()
    row.jurisdiction_code, row.city_code = jurisdiction, city
    row.text, row.link = text[:300], link[:200]
    row.level = max(level, row.level or 1) if row.resolved_at is None else level
    row.resolved_at = None
    session.flush()
    return row, fresh


def resolve(session: Session, kind: AlertKind, key: str) -> None:
    row = session.scalar(select(Alert).where(Alert.kind == kind.value, Alert.key == key))
    if row is not None and row.resolved_at is None:
        row.resolved_at = utcnow()


def _resolve_others(
    session: Session,
    kinds: Iterable[AlertKind],
    jurisdictions: list[str],
    keep: set[tuple[str, str]],
) -> int:
    n = 0
    stmt = select(Alert).where(
        Alert.kind.in_([k.value for k in kinds]),
        Alert.jurisdiction_code.in_(jurisdictions),
        Alert.resolved_at.is_(None),
    )
    for row in session.scalars(stmt):
        if (row.kind, row.key) not in keep:
            row.resolved_at = utcnow()
            n += 1
    return n


def check_stock(session: Session, on: date | None = None) -> dict[str, int]:
    """One pass over the stock of every jurisdiction this node serves: low-stock alerts
    per city and item, expiry alerts per batch; alerts whose cause is gone are resolved.
    Returns counts."""
    from tongban.emergency.stock import aggregate, quotas, today

    day = on or today()
    cat = catalogue()
    served = [
        j.code for j in regions.list_jurisdictions(session) if exchange.serves_here(session, j.code)
    ]
    cities = {c.code: c for j in served for c in regions.list_cities(session, j)}
    keep: set[tuple[str, str]] = set()
    counts = {"low_stock": 0, "expiring": 0, "expired": 0, "resolved": 0}
    available = {
        (c, i): a for _, c, i, _, a, _, _ in aggregate(session, jurisdictions=served, on=day)
    }
    for (city, code), minimum in quotas(session, cities).items():
        have = available.get((city, code), 0)
        item = cat.items[code]
        if not domain.low_stock(have, minimum):
            continue
        key = f"{city}:{code}"
        keep.add((AlertKind.LOW_STOCK.value, key))
        raise_alert(
            session,
            AlertKind.LOW_STOCK,
            key,
            jurisdiction=cities[city].jurisdiction_code,
            city=city,
            text=f"{cities[city].name}{item.name}可用库存 {have}{item.unit}，低于定额 {minimum}{item.unit}",
            link=f"/emergency/reserves?city={city}&item={code}",
        )
        counts["low_stock"] += 1
    horizon = max((i.warn_days for i in cat.items.values()), default=0)
    stmt = (
        select(StockLot, ReservePoint)
        .join(ReservePoint)
        .where(
            StockLot.quantity > 0,
            StockLot.expiry.is_not(None),
            StockLot.jurisdiction_code.in_(served),
            StockLot.expiry <= day + timedelta(days=horizon),
        )
    )
    for lot, point in session.execute(stmt):
        kept = cat.get(lot.item_code)
        if kept is None:
            continue
        state = domain.freshness(lot.expiry, day, kept.warn_days)
        if state is Freshness.OK:
            continue
        kind = AlertKind.EXPIRED if state is Freshness.EXPIRED else AlertKind.EXPIRING
        key = f"lot:{lot.id}"
        keep.add((kind.value, key))
        assert lot.expiry is not None
        verb = "已于" if kind is AlertKind.EXPIRED else "将于"
        raise_alert(
            session,
            kind,
            key,
            jurisdiction=lot.jurisdiction_code,
            city=lot.city_code,
            text=(
                f"{cities[lot.city_code].name}·{point.name}：{kept.name}批号 {lot.batch or '（无）'} 共 {lot.quantity}{kept.unit}"
                f"{verb} {lot.expiry.isoformat()} 过期"
            ),
            link=f"/emergency/reserves/lots?point={point.code}&item={kept.code}",
        )
        counts[kind.value] += 1
    counts["resolved"] = _resolve_others(session, STOCK_KINDS, served, keep)
    session.flush()
    return counts


def open_alerts(session: Session, actor: Account, limit: int = 200) -> list[Alert]:
    """The open alerts `actor` is concerned with: the operator every one, a supervisor
    those of their jurisdiction, a duty holder those of their cities."""
    stmt = select(Alert).where(Alert.resolved_at.is_(None))
    if actor.role == Role.ADMIN:
        pass
    elif actor.role == Role.SUPERVISOR:
        stmt = stmt.where(Alert.jurisdiction_code == actor.jurisdiction_code)
    else:
        scopes = {(j, c) for d in Duty for j, c in access.cities_with(session, actor, d)}
        if not scopes:
            return []
        stmt = stmt.where(
            or_(
                *(
                    (Alert.jurisdiction_code == j)
                    if c is None
                    else (
                        (Alert.jurisdiction_code == j)
                        & or_(Alert.city_code == c, Alert.city_code.is_(None))
                    )
                    for j, c in scopes
                )
            )
        )
    return list(
        session.scalars(stmt.order_by(Alert.level.desc(), Alert.created_at.desc()).limit(limit))
    )
