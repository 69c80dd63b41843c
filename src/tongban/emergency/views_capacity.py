"""Pages of hospital capacity (医疗救治能力: the table per city with filters and each
report's age, the report form, the EDXL-HAVE import and export, a hospital's history)
and of drill mode (演练: start, run requests on the copies, close or discard)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from tongban.db import utcnow
from tongban.emergency import access, capacity, drill
from tongban.emergency.views import after_form, form_int, labels, never, optional, places
from tongban.errors import DomainError, NotFound
from tongban.exchange import service as exchange
from tongban.identity.models import Account
from tongban.regions import service as regions
from tongban.web.deps import CsrfChecked, CurrentUser, SessionDep
from tongban.web.pages import form_failure, render

router = APIRouter(include_in_schema=False)

DONE = {
    "reported": "已登记医疗救治能力报告。",
    "imported": "EDXL-HAVE 文件已导入。",
    "started": "演练已开始：以下数据均为复制的演练数据，不影响实际库存。",
    "step": "演练操作已登记。",
    "closed": "演练已结束。",
    "discarded": "演练已作废，演练数据已删除。",
}


def capacity_labels() -> dict[str, Any]:
    return {
        "facility": {s.value: label for s, label in capacity.FACILITY_LABELS.items()},
        "ed": {s.value: label for s, label in capacity.ED_LABELS.items()},
        "kinds": capacity.KIND_LABELS,
    }


def _served(session: Session) -> list[str]:
    return [
        j.code for j in regions.list_jurisdictions(session) if exchange.serves_here(session, j.code)
    ]


def _reporter_cities(session: Session, user: Account) -> list[Any]:
    served = set(_served(session))
    return [
        c
        for c in regions.list_cities(session)
        if c.jurisdiction_code in served
        and capacity.may_report(session, user, c.jurisdiction_code, c.code)
    ]


def _capacity_page(
    request: Request,
    session: Session,
    user: Account,
    *,
    jurisdiction: str | None = None,
    city: str | None = None,
    ed_status: str | None = None,
    status: str | None = None,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    f = {"jurisdiction": jurisdiction, "city": city, "ed_status": ed_status, "status": status}
    rows = capacity.hospitals(
        session, user, jurisdiction=jurisdiction, city=city, ed_status=ed_status, status=status
    )
    now = utcnow()
    return render(
        request,
        "emergency/capacity.html",
        user,
        status_code=status_code,
        f=f,
        cities_rows=capacity.by_city(session, user, jurisdiction=jurisdiction, city=city),
        rows=rows,
        ages={r.hospital_code: capacity.age_text(capacity.age(r, now)) for r in rows},
        stale={r.hospital_code for r in rows if capacity.age(r, now) > capacity.STALE_AFTER},
        reporter_cities=_reporter_cities(session, user),
        cap=capacity_labels(),
        labels=labels(),
        **places(session),
        **extra,
    )


@router.get("/emergency/capacity")
def capacity_page(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    jurisdiction: str | None = None,
    city: str | None = None,
    ed_status: str | None = None,
    status: str | None = None,
    done: str | None = None,
) -> Response:
    return _capacity_page(
        request,
        session,
        user,
        jurisdiction=optional(jurisdiction),
        city=optional(city),
        ed_status=optional(ed_status),
        status=optional(status),
        done=DONE.get(done or ""),
        form={},
    )


@router.post("/emergency/capacity/report", dependencies=[CsrfChecked])
def capacity_report(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    hospital_code: Annotated[str, Form(max_length=40)] = "",
    hospital_name: Annotated[str, Form(max_length=120)] = "",
    city_code: Annotated[str, Form(max_length=6)] = "",
    status: Annotated[str, Form(max_length=20)] = "",
    ed_status: Annotated[str, Form(max_length=20)] = "",
    general_available: Annotated[str, Form(max_length=12)] = "",
    general_baseline: Annotated[str, Form(max_length=12)] = "",
    icu_available: Annotated[str, Form(max_length=12)] = "",
    icu_baseline: Annotated[str, Form(max_length=12)] = "",
    isolation_available: Annotated[str, Form(max_length=12)] = "",
    isolation_baseline: Annotated[str, Form(max_length=12)] = "",
    ventilators_available: Annotated[str, Form(max_length=12)] = "",
    ventilators_baseline: Annotated[str, Form(max_length=12)] = "",
    comment: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    form = {
        "hospital_code": hospital_code,
        "hospital_name": hospital_name,
        "city_code": city_code,
        "status": status,
        "ed_status": ed_status,
        "general_available": general_available,
        "general_baseline": general_baseline,
        "icu_available": icu_available,
        "icu_baseline": icu_baseline,
        "isolation_available": isolation_available,
        "isolation_baseline": isolation_baseline,
        "ventilators_available": ventilators_available,
        "ventilators_baseline": ventilators_baseline,
        "comment": comment,
    }

    def step() -> str:
        counts = {
            k: (
                form_int(form.get(f"{k}_available", ""), f"{k}_available"),
                form_int(form.get(f"{k}_baseline", ""), f"{k}_baseline"),
            )
            for k in capacity.KIND_LABELS
        }
        capacity.report(
            session,
            user,
            capacity.ReportIn(
                hospital_code=form.get("hospital_code", ""),
                hospital_name=form.get("hospital_name", ""),
                city_code=form.get("city_code", ""),
                status=form.get("status", ""),
                ed_status=form.get("ed_status", ""),
                counts=counts,
                comment=form.get("comment", ""),
            ),
        )
        return "/emergency/capacity?done=reported"

    return after_form(
        session,
        step,
        lambda **refused: _capacity_page(request, session, user, **refused, form=form),
    )


@router.post("/emergency/capacity/import", dependencies=[CsrfChecked])
def capacity_import(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    file: Annotated[UploadFile, File()],
) -> Response:
    try:
        data = file.file.read(capacity.MAX_BYTES + 1)
        parsed = capacity.parse_have(data)
        capacity.report_many(session, user, parsed, "edxl-have")
    except DomainError as e:
        refused = form_failure(session, e)
        return _capacity_page(
            request,
            session,
            user,
            **refused.context,
            import_errors=e.errors,
            form={},
        )
    return RedirectResponse("/emergency/capacity?done=imported", status_code=303)


@router.get("/emergency/capacity/export.xml")
def capacity_export(session: SessionDep, user: CurrentUser, city: str | None = None) -> Response:
    rows = capacity.hospitals(session, user, city=optional(city))
    return Response(
        capacity.export_have(rows),
        media_type="application/xml",
        headers={"Content-Disposition": 'attachment; filename="edxl-have.xml"'},
    )


@router.get("/emergency/capacity/hospital/{code}")
def capacity_hospital(
    request: Request, session: SessionDep, user: CurrentUser, code: str
) -> Response:
    access.require_viewer(session, user)
    rows = capacity.history(session, code[:40])
    if rows[0].jurisdiction_code not in _served(session):
        raise NotFound("医院不存在", type="unknown-hospital")
    return render(
        request,
        "emergency/capacity_hospital.html",
        user,
        rows=rows,
        cap=capacity_labels(),
        **places(session),
    )


# --- drills ------------------------------------------------------------------------------------


def _drills_page(
    request: Request, session: Session, user: Account, status_code: int = 200, **extra: Any
) -> Response:
    served = set(_served(session))
    return render(
        request,
        "emergency/drills.html",
        user,
        status_code=status_code,
        drills=drill.list_drills(session, user),
        states=drill.STATE_LABELS,
        runner_jurisdictions=[
            j
            for j in regions.list_jurisdictions(session)
            if j.code in served and drill.is_runner(session, user, j.code)
        ],
        **places(session),
        **extra,
    )


@router.get("/emergency/drills")
def drills_page(
    request: Request, session: SessionDep, user: CurrentUser, done: str | None = None
) -> Response:
    return _drills_page(request, session, user, done=DONE.get(done or ""), form={})


@router.post("/emergency/drills", dependencies=[CsrfChecked])
def drill_start(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    title: Annotated[str, Form(max_length=200)] = "",
    jurisdiction: Annotated[str, Form(max_length=6)] = "",
) -> Response:
    def step() -> str:
        d = drill.start(session, user, title=title, jurisdiction=jurisdiction)
        return f"/emergency/drills/{d.id}?done=started"

    form = {"title": title, "jurisdiction": jurisdiction}
    return after_form(
        session,
        step,
        lambda **refused: _drills_page(request, session, user, **refused, form=form),
        passes_on=never,
    )


def _drill_page(
    request: Request,
    session: Session,
    user: Account,
    drill_id: uuid.UUID,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    d = drill.get(session, drill_id)
    if d.jurisdiction_code not in _served(session):
        raise NotFound("演练不存在", type="unknown-drill")
    access.require_viewer(session, user)
    return render(
        request,
        "emergency/drill_detail.html",
        user,
        status_code=status_code,
        d=d,
        states=drill.STATE_LABELS,
        request_states=drill.REQUEST_LABELS,
        stock=drill.stock(session, d),
        reqs=drill.requests(session, d),
        summary=drill.summarise(session, d) if d.state == drill.OPEN else None,
        runner=drill.is_runner(session, user, d.jurisdiction_code),
        drill_cities=[
            c for c in regions.list_cities(session) if c.jurisdiction_code == d.jurisdiction_code
        ],
        cap=capacity_labels(),
        labels=labels(),
        **places(session),
        **extra,
    )


@router.get("/emergency/drills/{drill_id}")
def drill_page(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    drill_id: uuid.UUID,
    done: str | None = None,
) -> Response:
    return _drill_page(request, session, user, drill_id, done=DONE.get(done or ""), form={})


def _after_drill_form(
    request: Request,
    session: Session,
    user: Account,
    drill_id: uuid.UUID,
    step: Callable[[], str],
    form: dict[str, str] | None = None,
) -> Response:
    """A form of the drill's page (see views.after_form): the page again on a refusal."""
    return after_form(
        session,
        step,
        lambda **refused: _drill_page(request, session, user, drill_id, **refused, form=form or {}),
    )


@router.post("/emergency/drills/{drill_id}/requests", dependencies=[CsrfChecked])
def drill_new_request(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    drill_id: uuid.UUID,
    requester_city: Annotated[str, Form(max_length=6)] = "",
    giver_city: Annotated[str, Form(max_length=6)] = "",
    item_code: Annotated[str, Form(max_length=40)] = "",
    quantity: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    form = {
        "requester_city": requester_city,
        "giver_city": giver_city,
        "item_code": item_code,
        "quantity": quantity,
    }

    def step() -> str:
        d = drill.get(session, drill_id)
        drill.request(
            session,
            user,
            d,
            requester_city=requester_city,
            giver_city=giver_city,
            item_code=item_code,
            quantity=form_int(quantity, "quantity"),
        )
        return f"/emergency/drills/{drill_id}?done=step"

    return _after_drill_form(request, session, user, drill_id, step, form)


@router.post("/emergency/drills/requests/{request_id}/{step}", dependencies=[CsrfChecked])
def drill_step(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    request_id: uuid.UUID,
    step: str,
    quantity: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    d, _ = drill.get_request(session, request_id)
    drill_id = d.id

    def run() -> str:
        if step == "commit":
            drill.commit(session, user, request_id, form_int(quantity, "quantity"))
        elif step == "dispatch":
            drill.dispatch(session, user, request_id)
        elif step == "receive":
            drill.receive(session, user, request_id, form_int(quantity, "counted"))
        else:
            raise NotFound("没有这一步操作", type="unknown-step")
        return f"/emergency/drills/{drill_id}?done=step"

    return _after_drill_form(request, session, user, drill_id, run)


@router.post("/emergency/drills/{drill_id}/close", dependencies=[CsrfChecked])
def drill_close(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    drill_id: uuid.UUID,
    discard: Annotated[str, Form(max_length=1)] = "",
) -> Response:
    def step() -> str:
        drill.close(session, user, drill_id, discard=bool(discard))
        done = "discarded" if discard else "closed"
        return f"/emergency/drills/{drill_id}?done={done}"

    return _after_drill_form(request, session, user, drill_id, step)
