"""JSON API of the emergency context: the catalogue, reserve points, stock movements and
uploads, the reserve table, quotas, alerts and duties. Thin: parse, call a service,
render. Mutual aid's routes are in api_aid.py."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import Response

from tongban.emergency import access, alerts, rows, stock
from tongban.emergency.catalogue import catalogue
from tongban.emergency.domain import Duty, freshness
from tongban.emergency.models import StockLot
from tongban.emergency.schemas import (
    AlertPublic,
    DutyIn,
    DutyPublic,
    ItemPublic,
    LotPublic,
    MovementIn,
    MovementOut,
    PointIn,
    PointPublic,
    QuotaIn,
    QuotaPublic,
    StockRowPublic,
    UploadOut,
)
from tongban.errors import FieldError, ValidationFailed
from tongban.identity.models import Account
from tongban.kernel.history import EventPublic
from tongban.web.deps import CurrentUser, SessionDep, SettingsDep
from tongban.web.problems import responses

router = APIRouter(prefix="/api/v1/emergency", tags=["emergency"], responses=responses(403, 404))


def lot_public(lot: StockLot, *, events: bool = False) -> LotPublic:
    item = catalogue().get(lot.item_code)
    return LotPublic(
        id=lot.id,
        point_code=lot.point.code,
        point_name=lot.point.name,
        city_code=lot.city_code,
        item_code=lot.item_code,
        batch=lot.batch,
        expiry=lot.expiry,
        freshness=freshness(lot.expiry, stock.today(), item.warn_days if item else 0).value,
        quantity=lot.quantity,
        state=lot.state,
        version=lot.version,
        events=[EventPublic.model_validate(e) for e in lot.events] if events else None,
    )


@router.get("/items", response_model=list[ItemPublic])
def items() -> list[ItemPublic]:
    """The coded catalogue of emergency supplies."""
    cat = catalogue()
    return [
        ItemPublic(
            code=i.code,
            name=i.name,
            unit=i.unit,
            category=i.category,
            category_label=cat.categories[i.category],
            perishable=i.perishable,
            min_city=i.min_city,
            warn_days=i.warn_days,
        )
        for i in cat.items.values()
    ]


@router.get("/points", response_model=list[PointPublic])
def points(
    actor: CurrentUser,
    session: SessionDep,
    city: Annotated[str | None, Query(min_length=6, max_length=6)] = None,
) -> list[PointPublic]:
    """The reserve points held on this node (of the jurisdictions it serves)."""
    access.require_viewer(session, actor)
    return [PointPublic.model_validate(p) for p in stock.list_points(session, city_code=city)]


@router.post("/points", response_model=PointPublic, status_code=201, responses=responses(422))
def add_point(body: PointIn, actor: CurrentUser, session: SessionDep) -> PointPublic:
    """A new reserve point of a city (its keeper)."""
    point = stock.add_point(session, actor, **body.model_dump())
    return PointPublic.model_validate(point)


@router.post(
    "/movements", response_model=MovementOut, status_code=201, responses=responses(409, 422)
)
def move(body: MovementIn, actor: CurrentUser, session: SessionDep) -> MovementOut:
    """A stock movement of a batch at a point (入库 receive, 出库 issue, 盘点 count, 报废
    dispose), recorded as the lot's next event."""
    ev = stock.move(session, actor, **body.model_dump())
    lot = stock.get_lot(session, ev.lot_id)
    payload = ev.payload or {}
    return MovementOut(
        lot=lot_public(lot), seq=ev.seq, before=payload["before"], after=payload["after"]
    )


@router.post("/uploads", response_model=UploadOut, status_code=201, responses=responses(422))
def upload(
    actor: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="CSV（UTF-8 或 GB18030）或 XLSX")],
    mode: Annotated[str, Form(description="receive（入库，累加）或 count（盘点，覆盖）")] = "count",
    reason: Annotated[str, Form(max_length=500)] = "",
) -> UploadOut:
    """Bulk stock upload; with any bad row nothing is written and every error is listed
    (`rows.<line>.<field>`)."""
    data = file.file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise ValidationFailed("文件过大", errors=[FieldError("file", "文件过大")])
    result = stock.upload(session, actor, data, mode, reason)
    return UploadOut(rows=result.rows, lots_created=result.lots_created, delta=result.delta)


@router.get("/uploads/template.csv", response_class=Response)
def upload_template() -> Response:
    """An empty upload file with its header (CSV, UTF-8 with BOM)."""
    return Response(
        rows.template_csv(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="stock-template.csv"'},
    )


@router.get("/stock", response_model=list[StockRowPublic])
def stock_table(
    actor: CurrentUser,
    session: SessionDep,
    jurisdiction: Annotated[str | None, Query(min_length=6, max_length=6)] = None,
    city: Annotated[str | None, Query(min_length=6, max_length=6)] = None,
    category: Annotated[str | None, Query(max_length=40)] = None,
    item: Annotated[str | None, Query(max_length=40)] = None,
    low: bool = False,
    expiring: bool = False,
) -> list[StockRowPublic]:
    """The reserve table per city and item: this node's jurisdictions from their lots,
    the others from what they share."""
    rows_ = stock.table(
        session,
        actor,
        stock.Filters(jurisdiction, city, category, item, low_only=low, expiring_only=expiring),
    )
    return [StockRowPublic(**{**r.__dict__, "low": r.low}) for r in rows_]


@router.get("/lots", response_model=list[LotPublic])
def lots(
    actor: CurrentUser,
    session: SessionDep,
    city: Annotated[str | None, Query(min_length=6, max_length=6)] = None,
    item: Annotated[str | None, Query(max_length=40)] = None,
    point: Annotated[str | None, Query(max_length=40)] = None,
) -> list[LotPublic]:
    """The batches held here, with stock."""
    found = stock.lots(session, actor, city_code=city, item_code=item, point_code=point)
    return [lot_public(lot) for lot in found]


@router.get("/lots/{lot_id}", response_model=LotPublic)
def lot(lot_id: uuid.UUID, actor: CurrentUser, session: SessionDep) -> LotPublic:
    """One batch and its movements."""
    access.require_viewer(session, actor)
    return lot_public(stock.get_lot(session, lot_id), events=True)


@router.put("/quotas/{city_code}/{item_code}", response_model=QuotaPublic, responses=responses(422))
def set_quota(
    city_code: str, item_code: str, body: QuotaIn, actor: CurrentUser, session: SessionDep
) -> QuotaPublic:
    """A city's reserve quota of an item (its keeper)."""
    q = stock.set_quota(session, actor, city_code, item_code, body.minimum)
    return QuotaPublic(city_code=q.city_code, item_code=q.item_code, minimum=q.minimum)


@router.get("/alerts", response_model=list[AlertPublic])
def open_alerts(actor: CurrentUser, session: SessionDep) -> list[AlertPublic]:
    """The open alerts of the caller's cities or jurisdiction."""
    access.require_viewer(session, actor)
    return [AlertPublic.model_validate(a) for a in alerts.open_alerts(session, actor)]


@router.post("/duties", response_model=DutyPublic, status_code=201, responses=responses(422))
def grant(body: DutyIn, actor: CurrentUser, session: SessionDep) -> DutyPublic:
    """The administrator grants a staff account an emergency duty for a city or a
    jurisdiction."""
    access.require_admin(actor)
    account: Account = access.account_by_username(session, body.username)
    row = access.grant(
        session,
        actor,
        account,
        Duty(body.duty),
        city_code=body.city_code,
        jurisdiction_code=body.jurisdiction_code,
    )
    return DutyPublic.model_validate(row)
