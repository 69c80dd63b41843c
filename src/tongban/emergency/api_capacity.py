"""JSON API of hospital capacity (EDXL-HAVE import and export) and drill mode. Thin:
parse, call a service, render."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from tongban.emergency import capacity, drill
from tongban.emergency.capacity_models import Drill, DrillRequest
from tongban.errors import FieldError, NotFound, ValidationFailed
from tongban.web.deps import CurrentUser, SessionDep
from tongban.web.problems import responses

router = APIRouter(prefix="/api/v1/emergency", tags=["emergency"], responses=responses(403, 404))

Count = Annotated[int, Field(ge=0, le=capacity.MAX_COUNT)]


class CountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    available: Count = 0
    baseline: Count = 0


class BedsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    general: CountIn = CountIn()
    icu: CountIn = CountIn()
    isolation: CountIn = CountIn()


class ReportJson(BaseModel):
    """A hospital's capacity at a time (EDXL-HAVE Hospital, in JSON)."""

    model_config = ConfigDict(extra="forbid")
    hospital_code: Annotated[str, Field(min_length=1, max_length=40)]
    hospital_name: Annotated[str, Field(min_length=1, max_length=120)]
    city_code: Annotated[str, Field(min_length=6, max_length=6)]
    status: Annotated[str, Field(max_length=20)] = capacity.FacilityStatus.NORMAL.value
    ed_status: Annotated[str, Field(max_length=20)] = capacity.EDStatus.NORMAL.value
    reported_at: datetime | None = None
    beds: BedsIn = BedsIn()
    ventilators: CountIn = CountIn()
    comment: Annotated[str, Field(max_length=500)] = ""

    def to_in(self) -> capacity.ReportIn:
        counts = {k: (v.available, v.baseline) for k, v in self.beds}
        counts["ventilators"] = (self.ventilators.available, self.ventilators.baseline)
        return capacity.ReportIn(
            hospital_code=self.hospital_code,
            hospital_name=self.hospital_name,
            city_code=self.city_code,
            status=self.status,
            ed_status=self.ed_status,
            reported_at=self.reported_at,
            counts=counts,
            comment=self.comment,
        )


class ReportsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hospitals: Annotated[list[ReportJson], Field(min_length=1, max_length=capacity.MAX_HOSPITALS)]


class CountOut(BaseModel):
    available: int
    baseline: int


class ReportOut(BaseModel):
    hospital_code: str
    hospital_name: str
    jurisdiction_code: str
    city_code: str
    reported_at: datetime
    status: str
    ed_status: str
    beds: dict[str, CountOut]
    ventilators: CountOut
    comment: str
    source: str


class CityCapacityOut(BaseModel):
    jurisdiction_code: str
    city_code: str
    hospitals: int
    counts: dict[str, CountOut]
    ed_diverting: int
    oldest_report_at: datetime | None
    shared: bool
    as_of: datetime | None


class ImportOut(BaseModel):
    hospitals: int


def _out(r: Any) -> ReportOut:
    return ReportOut.model_validate(capacity.to_json(r))


@router.get("/capacity", response_model=list[ReportOut])
def hospitals(
    actor: CurrentUser,
    session: SessionDep,
    jurisdiction: Annotated[str | None, Query(min_length=6, max_length=6)] = None,
    city: Annotated[str | None, Query(min_length=6, max_length=6)] = None,
    ed_status: Annotated[str | None, Query(max_length=20)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
) -> list[ReportOut]:
    """The latest capacity report of each hospital of the jurisdictions this node serves."""
    rows = capacity.hospitals(
        session, actor, jurisdiction=jurisdiction, city=city, ed_status=ed_status, status=status
    )
    return [_out(r) for r in rows]


@router.get("/capacity/cities", response_model=list[CityCapacityOut])
def cities(
    actor: CurrentUser,
    session: SessionDep,
    jurisdiction: Annotated[str | None, Query(min_length=6, max_length=6)] = None,
    city: Annotated[str | None, Query(min_length=6, max_length=6)] = None,
) -> list[CityCapacityOut]:
    """Per city: this node's hospitals summed, other jurisdictions' as they share them."""
    return [
        CityCapacityOut(
            jurisdiction_code=r.jurisdiction_code,
            city_code=r.city_code,
            hospitals=r.hospitals,
            counts={k: CountOut(available=a, baseline=b) for k, (a, b) in r.counts.items()},
            ed_diverting=r.ed_diverting,
            oldest_report_at=r.oldest_report_at,
            shared=r.shared,
            as_of=r.as_of,
        )
        for r in capacity.by_city(session, actor, jurisdiction=jurisdiction, city=city)
    ]


@router.get(
    "/capacity/have.xml",
    response_class=Response,
    responses={200: {"content": {"application/xml": {}}}},
)
def export_have(
    actor: CurrentUser,
    session: SessionDep,
    city: Annotated[str | None, Query(min_length=6, max_length=6)] = None,
) -> Response:
    """The latest reports as an EDXL-HAVE 1.0 HospitalStatus document."""
    rows = capacity.hospitals(session, actor, city=city)
    return Response(capacity.export_have(rows), media_type="application/xml")


@router.get("/capacity/{hospital_code}/history", response_model=list[ReportOut])
def history(hospital_code: str, actor: CurrentUser, session: SessionDep) -> list[ReportOut]:
    """Every report of one hospital, newest first."""
    capacity.hospitals(session, actor)  # the viewer check
    return [_out(r) for r in capacity.history(session, hospital_code)]


@router.post(
    "/capacity/reports", response_model=ImportOut, status_code=201, responses=responses(422)
)
def report(body: ReportsIn, actor: CurrentUser, session: SessionDep) -> ImportOut:
    """Report one or more hospitals' capacity (all or none; errors name
    `hospitals[i].field`)."""
    rows = capacity.report_many(session, actor, [h.to_in() for h in body.hospitals], "json")
    return ImportOut(hospitals=len(rows))


@router.post("/capacity/have", response_model=ImportOut, status_code=201, responses=responses(422))
def import_have(
    actor: CurrentUser,
    session: SessionDep,
    file: Annotated[UploadFile, File(description="EDXL-HAVE 1.0 HospitalStatus XML")],
    city: Annotated[str, Form(max_length=6)] = "",
) -> ImportOut:
    """Import an EDXL-HAVE document (DTDs and entities are refused); `city` is used for
    hospitals that do not carry the city code extension."""
    data = file.file.read(capacity.MAX_BYTES + 1)
    if len(data) > capacity.MAX_BYTES:
        raise ValidationFailed("文件过大", errors=[FieldError("file", "文件过大")])
    parsed = capacity.parse_have(data, default_city=city or None)
    rows = capacity.report_many(session, actor, parsed, "edxl-have")
    return ImportOut(hospitals=len(rows))


# --- drills -------------------------------------------------------------------------------------


class DrillIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: Annotated[str, Field(min_length=1, max_length=200)]
    jurisdiction: Annotated[str, Field(min_length=6, max_length=6)]


class DrillRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    requester_city: Annotated[str, Field(min_length=6, max_length=6)]
    giver_city: Annotated[str, Field(min_length=6, max_length=6)]
    item_code: Annotated[str, Field(min_length=1, max_length=40)]
    quantity: Annotated[int, Field(ge=1, le=drill.MAX_QUANTITY)]


class QuantityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    quantity: Annotated[int, Field(ge=0, le=drill.MAX_QUANTITY)]


class DrillRequestOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    requester_city: str
    giver_city: str
    item_code: str
    quantity: int
    committed: int
    dispatched: int
    received: int
    state: str
    steps: list[dict[str, Any]]


class DrillStockOut(BaseModel):
    city_code: str
    item_code: str
    quantity: int
    copied: int


class DrillOut(BaseModel):
    id: uuid.UUID
    title: str
    jurisdiction_code: str
    state: str
    drill: bool = True
    started_at: datetime
    closed_at: datetime | None
    summary: dict[str, Any] | None
    stock: list[DrillStockOut]
    requests: list[DrillRequestOut]
    capacity: list[dict[str, Any]]


def _drill_out(session: Any, d: Drill) -> DrillOut:
    return DrillOut(
        id=d.id,
        title=d.title,
        jurisdiction_code=d.jurisdiction_code,
        state=d.state,
        started_at=d.started_at,
        closed_at=d.closed_at,
        summary=d.summary,
        stock=[
            DrillStockOut(city_code=c, item_code=i, quantity=q, copied=k)
            for c, i, q, k in drill.stock(session, d)
        ],
        requests=[DrillRequestOut.model_validate(r) for r in drill.requests(session, d)],
        capacity=d.capacity,
    )


def _req_out(r: DrillRequest) -> DrillRequestOut:
    return DrillRequestOut.model_validate(r)


@router.post("/drills", response_model=DrillOut, status_code=201, responses=responses(422))
def start_drill(body: DrillIn, actor: CurrentUser, session: SessionDep) -> DrillOut:
    """Start a drill (演练) on a copy of the jurisdiction's stock and capacity."""
    d = drill.start(session, actor, title=body.title, jurisdiction=body.jurisdiction)
    return _drill_out(session, d)


@router.get("/drills/{drill_id}", response_model=DrillOut)
def get_drill(drill_id: uuid.UUID, actor: CurrentUser, session: SessionDep) -> DrillOut:
    d = drill.get(session, drill_id)
    if d not in drill.list_drills(session, actor):
        raise NotFound("演练不存在", type="unknown-drill")
    return _drill_out(session, d)


@router.post(
    "/drills/{drill_id}/requests",
    response_model=DrillRequestOut,
    status_code=201,
    responses=responses(409, 422),
)
def drill_request(
    drill_id: uuid.UUID, body: DrillRequestIn, actor: CurrentUser, session: SessionDep
) -> DrillRequestOut:
    d = drill.get(session, drill_id)
    return _req_out(drill.request(session, actor, d, **body.model_dump()))


@router.post(
    "/drills/requests/{request_id}/commit",
    response_model=DrillRequestOut,
    responses=responses(409, 422),
)
def drill_commit(
    request_id: uuid.UUID, body: QuantityIn, actor: CurrentUser, session: SessionDep
) -> DrillRequestOut:
    """The giver commits (0: cannot help)."""
    return _req_out(drill.commit(session, actor, request_id, body.quantity))


@router.post(
    "/drills/requests/{request_id}/dispatch",
    response_model=DrillRequestOut,
    responses=responses(409),
)
def drill_dispatch(
    request_id: uuid.UUID, actor: CurrentUser, session: SessionDep
) -> DrillRequestOut:
    return _req_out(drill.dispatch(session, actor, request_id))


@router.post(
    "/drills/requests/{request_id}/receive",
    response_model=DrillRequestOut,
    responses=responses(409, 422),
)
def drill_receive(
    request_id: uuid.UUID, body: QuantityIn, actor: CurrentUser, session: SessionDep
) -> DrillRequestOut:
    return _req_out(drill.receive(session, actor, request_id, body.quantity))


@router.post("/drills/{drill_id}/close", response_model=DrillOut, responses=responses(409))
def close_drill(
    drill_id: uuid.UUID,
    actor: CurrentUser,
    session: SessionDep,
    discard: Annotated[bool, Query()] = False,
) -> DrillOut:
    """End the drill with its summary (`discard=true` deletes its copies)."""
    d = drill.close(session, actor, drill_id, discard=discard)
    return _drill_out(session, d)
