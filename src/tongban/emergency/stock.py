"""Reserves (应急物资储备): reserve points, stock lots and their movements, bulk uploads,
quotas, and the reserve table per city. Services take a session and never commit.

Each jurisdiction's node owns its stock: a lot lives only on the node serving the
point's jurisdiction, and every change of it is a movement recorded as an event of the
lot's history (kernel.history: numbered, in the audit chain, the lot's version
guarding it against a concurrent change). What other jurisdictions see is the
aggregate per city and item that the owning node publishes (sharing.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from tongban.calendar import service as calendar
from tongban.db import utcnow
from tongban.emergency import access, domain, rows, sharing, stock_sums
from tongban.emergency.catalogue import Catalogue, Item, catalogue
from tongban.emergency.domain import Duty, Freshness, Movement, PointKind
from tongban.emergency.models import Quota, ReservePoint, SharedStock, StockEvent, StockLot
from tongban.errors import FieldError, NotFound, PermissionDenied, ValidationFailed
from tongban.exchange import service as exchange
from tongban.identity.domain import Role
from tongban.identity.models import Account
from tongban.kernel import history
from tongban.kernel.history import Who
from tongban.regions import service as regions


def today() -> date:
    """Today in China."""
    return calendar.local_date(utcnow())


def item_of(code: str, field: str = "item_code") -> Item:
    """The catalogue's item `code`; ValidationFailed naming `field` otherwise."""
    item = catalogue().get(code)
    if item is None:
        raise ValidationFailed(
            f"物资目录中没有“{code}”", errors=[FieldError(field, "物资编码不在目录中")]
        )
    return item


# --- reserve points ------------------------------------------------------------------------


def point_code(city_code: str, code: str) -> str:
    """A point's code as stored: prefixed with its city's (unique in the federation)."""
    code = code.strip()
    return code if code.startswith(f"{city_code}-") else f"{city_code}-{code}"


def add_point(
    session: Session,
    actor: Account | None,
    *,
    code: str,
    name: str,
    city_code: str,
    kind: str = PointKind.GOVERNMENT.value,
    address: str = "",
) -> ReservePoint:
    """A new reserve point of `city_code`, by a keeper of that city (None: the system)."""
    city = regions.get_city(session, city_code)
    if not exchange.serves_here(session, city.jurisdiction_code):
        raise PermissionDenied(f"本节点不服务于{city.name}所在辖区", type="not-served")
    if actor is not None:
        access.require(session, actor, Duty.KEEPER, city.jurisdiction_code, city.code)
    errors = []
    full = point_code(city.code, code)
    if not (8 <= len(full) <= 40) or not full.replace("-", "").isalnum():
        errors.append(FieldError("code", "编码为 1 至 33 位字母或数字"))
    if not name.strip() or len(name) > 120:
        errors.append(FieldError("name", "名称为 1 至 120 个字符"))
    if kind not in {k.value for k in PointKind}:
        errors.append(FieldError("kind", "储备点类型不正确"))
    if len(address) > 200:
        errors.append(FieldError("address", "地址不能超过 200 个字符"))
    if errors:
        raise ValidationFailed("储备点信息有误", errors=errors)
    if session.scalar(select(ReservePoint.id).where(ReservePoint.code == full)):
        raise ValidationFailed(
            f"储备点编码 {full} 已存在", errors=[FieldError("code", "编码已存在")]
        )
    point = ReservePoint(
        code=full,
        name=name.strip(),
        kind=kind,
        jurisdiction_code=city.jurisdiction_code,
        city_code=city.code,
        address=address.strip(),
    )
    session.add(point)
    session.flush()
    return point


def get_point(session: Session, code: str, field: str = "point_code") -> ReservePoint:
    """A reserve point held on this node, by code."""
    point = session.scalar(select(ReservePoint).where(ReservePoint.code == code))
    if point is None:
        raise NotFound(
            f"储备点 {code} 不存在",
            type="unknown-point",
            errors=[FieldError(field, "储备点不存在")],
        )
    return point


def list_points(
    session: Session, *, city_code: str | None = None, jurisdiction: str | None = None
) -> list[ReservePoint]:
    stmt = select(ReservePoint).where(ReservePoint.active.is_(True))
    if city_code:
        stmt = stmt.where(ReservePoint.city_code == city_code)
    if jurisdiction:
        stmt = stmt.where(ReservePoint.jurisdiction_code == jurisdiction)
    return list(session.scalars(stmt.order_by(ReservePoint.code)))


def points_kept_by(session: Session, account: Account, duty: Duty) -> list[ReservePoint]:
    """The points of the cities where `account` holds `duty`."""
    out: list[ReservePoint] = []
    for jurisdiction, city in access.cities_with(session, account, duty):
        out += list_points(session, city_code=city, jurisdiction=jurisdiction)
    return sorted({p.id: p for p in out}.values(), key=lambda p: p.code)


# --- lots and movements ----------------------------------------------------------------------


def lot_at(
    session: Session, point: ReservePoint, item: Item, batch: str, expiry: date | None
) -> StockLot:
    """The lot of `item`'s `batch` at `point`, made empty when there is none. A batch has
    one expiry date: another one for it is refused (naming `expiry`)."""
    lot = find_lot(session, point, item, batch)
    if lot is not None:
        if expiry is not None and lot.expiry != expiry:
            held = lot.expiry.isoformat() if lot.expiry else "无"
            raise ValidationFailed(
                f"批号 {batch or '（无）'} 的有效期为 {held}，与填写的 {expiry.isoformat()} 不一致",
                errors=[FieldError("expiry", "与该批号已登记的有效期不一致")],
            )
        return lot
    return new_lot(session, point, item, batch, expiry)


def new_lot(
    session: Session, point: ReservePoint, item: Item, batch: str, expiry: date | None
) -> StockLot:
    """An empty lot of `item`'s `batch` at `point` (the caller knows there is none)."""
    domain.check_new_lot(item.perishable, expiry)
    lot = StockLot(
        point_id=point.id,
        point=point,
        item_code=item.code,
        batch=batch,
        expiry=expiry,
        quantity=0,
        state=domain.LotState.EMPTY.value,
        jurisdiction_code=point.jurisdiction_code,
        city_code=point.city_code,
        events=[],  # new: nothing to load
    )
    session.add(lot)
    return lot


def apply(
    session: Session,
    lot: StockLot,
    movement: Movement,
    amount: int,
    actor: Account | Who | None,
    reason: str = "",
    ref: dict[str, Any] | None = None,
) -> StockEvent:
    """Move `amount` of `lot` (a count: set it to `amount`) and record the movement as
    the lot's next event; the caller has checked the actor's right. The maintained sums
    change with it (stock_sums.py); the jurisdiction's shared aggregate is published
    when the transaction commits."""
    moved = domain.move(lot.quantity, movement, amount, reason)
    before_state = lot.state
    with history.guarded():
        lot.quantity = moved.after
        lot.state = domain.lot_state(moved.after).value
    payload: dict[str, Any] = {"before": moved.before, "after": moved.after, "delta": moved.delta}
    if ref:
        payload["ref"] = ref
    ev = history.record(
        session, lot, movement.value, actor, before_state, lot.state, reason.strip(), payload
    )
    stock_sums.moved(
        session,
        point_id=lot.point_id,
        jurisdiction_code=lot.jurisdiction_code,
        city_code=lot.city_code,
        item_code=lot.item_code,
        expiry=lot.expiry,
        delta=moved.delta,
    )
    sharing.stock_changed(session, lot.jurisdiction_code)
    return ev


def move(
    session: Session,
    actor: Account,
    *,
    point_code: str,
    item_code: str,
    batch: str,
    expiry: date | None,
    movement: str,
    amount: int,
    reason: str = "",
) -> StockEvent:
    """A keeper's movement of a batch at a point of their city (入库, 出库, 盘点, 报废)."""
    try:
        mv = Movement(movement)
    except ValueError:
        mv = None
    if mv not in domain.MANUAL_MOVEMENTS or mv is None:
        raise ValidationFailed(
            "操作类型不正确", errors=[FieldError("movement", "请选择入库、出库、盘点或报废")]
        )
    point = get_point(session, point_code)
    access.require(
        session, actor, domain.MOVEMENT_DUTY[mv], point.jurisdiction_code, point.city_code
    )
    item = item_of(item_code)
    batch = domain.check_batch(batch)
    if mv is not Movement.RECEIVE and mv is not Movement.COUNT:
        lot = _existing_lot(session, point, item, batch)
    else:
        lot = lot_at(session, point, item, batch, expiry)
    return apply(session, lot, mv, amount, actor, reason)


def find_lot(session: Session, point: ReservePoint, item: Item, batch: str) -> StockLot | None:
    return session.scalar(
        select(StockLot).where(
            StockLot.point_id == point.id, StockLot.item_code == item.code, StockLot.batch == batch
        )
    )


def _existing_lot(session: Session, point: ReservePoint, item: Item, batch: str) -> StockLot:
    lot = find_lot(session, point, item, batch)
    if lot is None:
        raise ValidationFailed(
            f"{point.name}没有{item.name}批号 {batch or '（无）'} 的库存",
            errors=[FieldError("batch", "该储备点没有这个批号")],
        )
    return lot


def get_lot(session: Session, lot_id: uuid.UUID) -> StockLot:
    lot = session.get(StockLot, lot_id)
    if lot is None:
        raise NotFound("库存批次不存在", type="unknown-lot")
    return lot


# --- bulk upload ---------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadResult:
    rows: int
    lots_created: int
    #: Units added minus units taken, over every row.
    delta: int


def upload(
    session: Session, actor: Account, data: bytes, mode: str, reason: str = ""
) -> UploadResult:
    """Apply a stock file (rows.py): `receive` adds each row's quantity to its batch
    (入库), `count` sets the batch to it (盘点). Every row is checked first, against the
    catalogue, the points and the actor's duty; with any error nothing is written and
    every error is reported by line (422, `rows.<line>.<field>`)."""
    try:
        mv = Movement(mode)
    except ValueError:
        mv = None
    if mv not in (Movement.RECEIVE, Movement.COUNT) or mv is None:
        raise ValidationFailed("导入方式不正确", errors=[FieldError("mode", "请选择入库或盘点")])
    try:
        parsed, errors = rows.parse(data, catalogue(), adds=mv is Movement.RECEIVE)
    except rows.Unreadable as e:
        raise ValidationFailed(str(e), errors=[FieldError("file", str(e))]) from e
    points: dict[str, ReservePoint | None] = {}
    plan: list[tuple[rows.UploadRow, ReservePoint, Item, StockLot | None]] = []
    for row in parsed:
        if row.point_code not in points:
            points[row.point_code] = session.scalar(
                select(ReservePoint).where(ReservePoint.code == row.point_code)
            )
        point = points[row.point_code]
        if point is None:
            errors.append(rows.row_error(row.line, "point_code", f"储备点 {row.point_code} 不存在"))
            continue
        if not access.has_duty(
            session, actor, Duty.KEEPER, point.jurisdiction_code, point.city_code
        ):
            errors.append(
                rows.row_error(row.line, "point_code", f"无权管理储备点 {row.point_code}")
            )
            continue
        item = item_of(row.item_code)
        lot = find_lot(session, point, item, row.batch)
        try:
            if lot is None:
                domain.check_new_lot(item.perishable, row.expiry)
            elif row.expiry is not None and lot.expiry != row.expiry:
                held = lot.expiry.isoformat() if lot.expiry else "无"
                raise ValidationFailed(
                    "有效期不一致",
                    errors=[FieldError("expiry", f"与该批号已登记的有效期（{held}）不一致")],
                )
            domain.move(lot.quantity if lot else 0, mv, row.quantity)
        except ValidationFailed as e:
            errors += [rows.row_error(row.line, err.field, err.message) for err in e.errors]
            continue
        plan.append((row, point, item, lot))
    if errors:
        _refuse(errors)
    created = delta = 0
    why = reason.strip() or f"批量导入（{domain.MOVEMENT_LABELS[mv]}）"
    # In one order of the sums' rows (city, item), so that two uploads never wait on
    # each other's rows in opposite orders (stock_sums.py).
    plan.sort(key=lambda p: (p[1].city_code, p[2].code, p[0].line))
    for row, point, item, found in plan:
        lot = found or lot_at(session, point, item, row.batch, row.expiry)
        created += found is None
        ev = apply(session, lot, mv, row.quantity, actor, why, {"upload": True, "line": row.line})
        delta += int((ev.payload or {})["delta"])
    return UploadResult(len(parsed), created, delta)


def _refuse(errors: list[FieldError]) -> None:
    lines = {e.field.split(".")[1] for e in errors if e.field.startswith("rows.")}
    what = f"{len(lines)} 行有误" if lines else "文件有误"
    raise ValidationFailed(f"{what}，未导入任何数据；请修改后重新上传", errors=errors[:500])


# --- quotas --------------------------------------------------------------------------------


def quota(session: Session, city_code: str, item: Item) -> int:
    row = session.get(Quota, (city_code, item.code))
    return row.minimum if row is not None else item.min_city


def set_quota(
    session: Session, actor: Account, city_code: str, item_code: str, minimum: int
) -> Quota:
    """A keeper sets their city's quota of an item (储备定额)."""
    city = regions.get_city(session, city_code)
    access.require(session, actor, Duty.KEEPER, city.jurisdiction_code, city.code)
    item = item_of(item_code)
    if not 0 <= minimum <= domain.MAX_QUANTITY:
        raise ValidationFailed(
            "定额超出范围", errors=[FieldError("minimum", f"须在 0 至 {domain.MAX_QUANTITY} 之间")]
        )
    row = session.get(Quota, (city.code, item.code))
    if row is None:
        row = Quota(city_code=city.code, item_code=item.code, minimum=minimum)
        session.add(row)
    row.minimum = minimum
    row.set_by = actor.id
    session.flush()
    return row


def quotas(session: Session, city_codes: Iterable[str]) -> dict[tuple[str, str], int]:
    """(city, item) -> quota, for every catalogue item of `city_codes`."""
    codes = list(city_codes)
    overrides = {
        (q.city_code, q.item_code): q.minimum
        for q in session.scalars(select(Quota).where(Quota.city_code.in_(codes)))
    }
    return {
        (c, i.code): overrides.get((c, i.code), i.min_city)
        for c in codes
        for i in catalogue().items.values()
    }


# --- the reserve table -----------------------------------------------------------------------


@dataclass(frozen=True)
class StockRow:
    """A city's stock of one item: held, usable (not expired), close to expiry."""

    jurisdiction_code: str
    city_code: str
    item_code: str
    quantity: int
    available: int
    expiring: int
    points: int
    #: From another jurisdiction's publication (only the aggregate is known here).
    shared: bool
    as_of: datetime | None
    minimum: int

    @property
    def low(self) -> bool:
        return domain.low_stock(self.available, self.minimum)


def aggregate(
    session: Session,
    *,
    jurisdictions: Iterable[str] | None = None,
    city_code: str | None = None,
    item_codes: Iterable[str] | None = None,
    on: date | None = None,
) -> list[tuple[str, str, str, int, int, int, int]]:
    """(jurisdiction, city, item, quantity, available, expiring, points) of the lots held
    here, per city and item (lots with stock only). `expiring` counts the usable units
    within their item's warning window (catalogue `warn_days`). Read from the sums kept
    with every movement (stock_sums.py), not from the lots."""
    return stock_sums.aggregate(
        session,
        day=on or today(),
        jurisdictions=jurisdictions,
        city_code=city_code,
        item_codes=item_codes,
    )


def aggregate_of_lots(
    session: Session,
    *,
    jurisdictions: Iterable[str] | None = None,
    city_code: str | None = None,
    item_codes: Iterable[str] | None = None,
    on: date | None = None,
) -> list[tuple[str, str, str, int, int, int, int]]:
    """What `aggregate` answers, summed from the lots themselves (the reference the
    maintained sums are checked against; linear in the lots)."""
    day = on or today()
    cat = catalogue()
    usable = or_(StockLot.expiry.is_(None), StockLot.expiry >= day)

    def narrowed(stmt: Any) -> Any:
        stmt = stmt.where(StockLot.quantity > 0)
        if jurisdictions is not None:
            stmt = stmt.where(StockLot.jurisdiction_code.in_(list(jurisdictions)))
        if city_code:
            stmt = stmt.where(StockLot.city_code == city_code)
        if item_codes is not None:
            stmt = stmt.where(StockLot.item_code.in_(list(item_codes)))
        return stmt

    totals = narrowed(
        select(
            StockLot.jurisdiction_code,
            StockLot.city_code,
            StockLot.item_code,
            func.sum(StockLot.quantity),
            func.sum(case((usable, StockLot.quantity), else_=0)),
            func.count(func.distinct(StockLot.point_id)),
        ).group_by(StockLot.jurisdiction_code, StockLot.city_code, StockLot.item_code)
    )
    horizon = max((i.warn_days for i in cat.items.values()), default=0)
    soon = narrowed(
        select(StockLot.city_code, StockLot.item_code, StockLot.expiry, func.sum(StockLot.quantity))
        .where(StockLot.expiry >= day, StockLot.expiry <= day + timedelta(days=horizon))
        .group_by(StockLot.city_code, StockLot.item_code, StockLot.expiry)
    )
    expiring: dict[tuple[str, str], int] = {}
    for c, i, expiry, q in session.execute(soon):
        item = cat.get(i)
        if item is not None and domain.freshness(expiry, day, item.warn_days) is Freshness.EXPIRING:
            expiring[(c, i)] = expiring.get((c, i), 0) + int(q or 0)
    out = [
        (j, c, i, int(q or 0), int(a or 0), expiring.get((c, i), 0), int(p or 0))
        for j, c, i, q, a, p in session.execute(totals)
    ]
    return sorted(out, key=lambda r: (r[1], r[2]))


@dataclass(frozen=True)
class Filters:
    jurisdiction: str | None = None
    city_code: str | None = None
    category: str | None = None
    item_code: str | None = None
    low_only: bool = False
    expiring_only: bool = False


def _items(cat: Catalogue, f: Filters) -> list[str] | None:
    if f.item_code:
        return [f.item_code]
    if f.category:
        return [i.code for i in cat.in_category(f.category)]
    return None


def table(session: Session, actor: Account, f: Filters) -> list[StockRow]:
    """The reserve table per city and item: the lots held here for the jurisdictions this
    node serves, the shared aggregates of the others. With `low_only`, the rows below
    quota — including items a city served here holds none of."""
    access.require_viewer(session, actor)
    cat = catalogue()
    served = [
        j.code
        for j in regions.list_jurisdictions(session)
        if exchange.serves_here(session, j.code)
        and (not f.jurisdiction or j.code == f.jurisdiction)
    ]
    items = _items(cat, f)
    local = aggregate(session, jurisdictions=served, city_code=f.city_code, item_codes=items)
    shared_stmt = select(SharedStock).where(SharedStock.jurisdiction_code.not_in(served or [""]))
    if f.jurisdiction:
        shared_stmt = shared_stmt.where(SharedStock.jurisdiction_code == f.jurisdiction)
    if f.city_code:
        shared_stmt = shared_stmt.where(SharedStock.city_code == f.city_code)
    if items is not None:
        shared_stmt = shared_stmt.where(SharedStock.item_code.in_(items))
    shared = list(session.scalars(shared_stmt))
    cities = {c for _, c, *_ in local} | {s.city_code for s in shared}
    if f.low_only:
        cities |= {
            c.code
            for j in served
            for c in regions.list_cities(session, j)
            if not f.city_code or c.code == f.city_code
        }
    minimum = quotas(session, cities)
    out = [
        StockRow(j, c, i, q, a, e, p, False, None, minimum.get((c, i), 0))
        for j, c, i, q, a, e, p in local
    ]
    out += [
        StockRow(
            s.jurisdiction_code,
            s.city_code,
            s.item_code,
            s.quantity,
            s.available,
            s.expiring,
            s.points,
            True,
            s.as_of,
            minimum.get((s.city_code, s.item_code), 0),
        )
        for s in shared
    ]
    if f.low_only:
        held = {(r.city_code, r.item_code) for r in out}
        city_j = {c.code: c.jurisdiction_code for c in regions.list_cities(session)}
        for (c, i), m in minimum.items():
            if (c, i) in held or city_j.get(c) not in served or m <= 0:
                continue
            if items is not None and i not in items:
                continue
            out.append(StockRow(city_j[c], c, i, 0, 0, 0, 0, False, None, m))
        out = [r for r in out if r.low]
    if f.expiring_only:
        out = [r for r in out if r.expiring > 0]
    return sorted(out, key=lambda r: (r.city_code, r.item_code))


def lots(
    session: Session,
    actor: Account,
    *,
    city_code: str | None = None,
    item_code: str | None = None,
    point_code: str | None = None,
    limit: int = 500,
) -> list[StockLot]:
    """The lots held here (with stock), for the detail of a city's reserves."""
    access.require_viewer(session, actor)
    stmt = select(StockLot).join(ReservePoint).where(StockLot.quantity > 0)
    if city_code:
        stmt = stmt.where(StockLot.city_code == city_code)
    if item_code:
        stmt = stmt.where(StockLot.item_code == item_code)
    if point_code:
        stmt = stmt.where(ReservePoint.code == point_code)
    stmt = stmt.order_by(ReservePoint.code, StockLot.item_code, StockLot.expiry, StockLot.batch)
    return list(session.scalars(stmt.limit(limit)))


def may_keep(session: Session, actor: Account, point: ReservePoint) -> bool:
    return access.has_duty(session, actor, Duty.KEEPER, point.jurisdiction_code, point.city_code)


def is_admin(actor: Account) -> bool:
    return actor.role == Role.ADMIN
