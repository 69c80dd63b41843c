"""Pages of mutual aid (互助调拨): the list of requests, the request form, and a request's
page with every step of it — the asked jurisdictions' answer form (commit or decline),
the giver's dispatch form per commitment, the requester's receipt form per shipment —
and its timeline."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from tongban.emergency import access, aid, domain, stock
from tongban.emergency.domain import Duty
from tongban.emergency.views import (
    FormStep,
    RecordPage,
    after_form,
    denied_or_unknown,
    form_int,
    form_text,
    labels,
    places,
    record_id,
    record_step,
    shown,
)
from tongban.errors import FieldError, NotFound, ValidationFailed
from tongban.exchange import service as exchange
from tongban.identity.models import Account
from tongban.regions import service as regions
from tongban.web.deps import CsrfChecked, CurrentUser, SessionDep
from tongban.web.pages import render

router = APIRouter(include_in_schema=False)

#: Rows of the request form's list of supplies.
FORM_LINES = 6

DONE = {
    "requested": "互助请求已发出，被请求辖区将收到请求。",
    "committed": "已答复：承诺支援。",
    "declined": "已答复：无法支援。",
    "dispatched": "已发运，请求方将收到发运单。",
    "received": "已签收，物资已入库。",
    "cancelled": "请求已撤销。",
    "closed": "请求已办结。",
    "withdrawn": "承诺已撤回。",
    "finished": "已结束发运。",
}


def aid_labels() -> dict[str, Any]:
    return {
        **labels(),
        "urgency": {u.value: t for u, t in domain.URGENCY_LABELS.items()},
        "request_states": {s.value: t for s, t in domain.REQUEST_STATE_LABELS.items()},
        "request_actions": {a.value: t for a, t in domain.REQUEST_ACTION_LABELS.items()},
        "commitment_states": {s.value: t for s, t in domain.COMMITMENT_STATE_LABELS.items()},
        "commitment_actions": {a.value: t for a, t in domain.COMMITMENT_ACTION_LABELS.items()},
        "shipment_states": {s.value: t for s, t in domain.SHIPMENT_STATE_LABELS.items()},
        "shipment_actions": {a.value: t for a, t in domain.SHIPMENT_ACTION_LABELS.items()},
    }


def _text(form: FormData, name: str, limit: int = 500) -> str:
    return form_text(form, name, limit)


@router.get("/emergency/aid")
def aid_list(
    request: Request, session: SessionDep, user: CurrentUser, done: str | None = None
) -> Response:
    requests = aid.list_requests(session, user)
    duties = access.cities_with(session, user, Duty.COORDINATOR)

    def asks(r: Any) -> bool:
        return any(
            j == r.requester_jurisdiction and c in (None, r.requester_city) for j, c in duties
        )

    def asked(r: Any) -> bool:
        return any(j in r.targets for j, _ in duties)

    return render(
        request,
        "emergency/aid_list.html",
        user,
        outgoing=[r for r in requests if asks(r)],
        incoming=[r for r in requests if asked(r)],
        others=[r for r in requests if not asks(r) and not asked(r)],
        can_request=bool(access.cities_with(session, user, Duty.COORDINATOR)),
        done=DONE.get(done or ""),
        labels=aid_labels(),
        **places(session),
    )


def _new_page(
    request: Request,
    session: Session,
    user: Account,
    *,
    form: dict[str, Any] | None = None,
    message: str | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    access.require_viewer(session, user)
    cities = [
        c
        for j, city in access.cities_with(session, user, Duty.COORDINATOR)
        if exchange.serves_here(session, j)
        for c in regions.list_cities(session, j)
        if city is None or c.code == city
    ]
    points = [p for c in cities for p in stock.list_points(session, city_code=c.code)]
    return render(
        request,
        "emergency/aid_new.html",
        user,
        status_code=status_code,
        my_cities=cities,
        points=points,
        rows=range(FORM_LINES),
        form=form or {},
        message=message,
        errors=errors or {},
        labels=aid_labels(),
        **places(session),
    )


@router.get("/emergency/aid/new")
def new_form(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    return _new_page(request, session, user)


@router.post("/emergency/aid/new", dependencies=[CsrfChecked])
async def new_submit(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    form = await request.form()
    kept: dict[str, Any] = {k: _text(form, k) for k in form if k != "csrf_token"}
    kept["targets"] = [str(t) for t in form.getlist("targets")]

    def step() -> str:
        lines: list[tuple[str, int]] = []
        for n in range(FORM_LINES):
            item = _text(form, f"item_{n}", 40)
            quantity = form_int(form.get(f"quantity_{n}"), f"quantity_{n}")
            if item and quantity:
                lines.append((item, quantity))
            elif item or quantity:
                raise ValidationFailed(
                    "请同时填写物资和数量",
                    errors=[FieldError(f"quantity_{n}", "请同时填写物资和数量")],
                )
        req = aid.request_aid(
            session,
            user,
            city_code=_text(form, "city_code", 6),
            destination_code=_text(form, "destination_code", 40),
            urgency=_text(form, "urgency", 12),
            title=_text(form, "title", 200),
            contact=_text(form, "contact", 120),
            lines=lines,
            targets=kept["targets"],
        )
        return f"/emergency/aid/{req.id}?done=requested"

    return after_form(
        session,
        step,
        lambda **refused: _new_page(request, session, user, form=kept, **refused),
        passes_on=denied_or_unknown,
        inputs={"lines.": "quantity_"},
    )


def _detail(
    request: Request,
    session: Session,
    user: Account,
    request_id: uuid.UUID,
    *,
    status_code: int = 200,
    **feedback: Any,
) -> Response:
    access.require_viewer(session, user)
    req = aid.get_request(session, request_id)
    can_answer = aid.may_answer(session, user, req)
    giver = aid.giver_side(session, user, req)[0] if can_answer else None
    dispatchable = {c.id for c in req.commitments if aid.may_dispatch(session, user, c)}
    dispatch_points = {
        c.id: [
            p
            for p in stock.points_kept_by(session, user, Duty.COORDINATOR)
            if p.jurisdiction_code == c.giver_jurisdiction
        ]
        for c in req.commitments
        if c.id in dispatchable
    }
    requester = aid.may_act_for_requester(session, user, req)
    return render(
        request,
        "emergency/aid_detail.html",
        user,
        status_code=status_code,
        req=req,
        can_answer=can_answer,
        giver=giver,
        dispatchable=dispatchable,
        dispatch_points=dispatch_points,
        remaining={
            c.id: domain.remaining(
                {x["item"]: int(x["quantity"]) for x in c.lines}, aid.shipped_of(c)
            )
            for c in req.commitments
        },
        shipped={c.id: aid.shipped_of(c) for c in req.commitments},
        received=aid.received_of(req),
        requester=requester,
        has_shipments=any(c.shipments for c in req.commitments),
        in_transit=any(
            sh.state == domain.ShipmentState.IN_TRANSIT
            for c in req.commitments
            for sh in c.shipments
        ),
        answered={c.giver_jurisdiction: c for c in req.commitments},
        **shown(DONE, **feedback),
        labels=aid_labels(),
        **places(session),
    )


async def _act(
    request: Request,
    session: Session,
    user: Account,
    request_id: uuid.UUID,
    what: str,
    step: Callable[[FormData], Any],
    done: str,
) -> Response:
    """Run one step from the form `what` of the request's page; then the page says `done`
    (see views.record_step)."""

    def run(form: FormData) -> str:
        step(form)
        return done

    return await record_step(
        request, session, user, request_id, what, run, _detail, "/emergency/aid"
    )


def _commit(session: Session, user: Account, rid: uuid.UUID, form: FormData) -> str:
    req = aid.get_request(session, rid)
    lines = []
    for line in req.lines:
        n = form_int(form.get(f"commit_{line['item']}"), f"commit_{line['item']}")
        if n:
            lines.append((str(line["item"]), n))
    aid.commit(session, user, rid, lines, _text(form, "note"))
    return "committed"


def _with_reason(fn: Callable[[Session, Account, uuid.UUID, str], Any], done: str) -> FormStep:
    """A step that calls `fn` with the form's reason, then says `done`."""

    def step(session: Session, user: Account, record: uuid.UUID, form: FormData) -> str:
        fn(session, user, record, _text(form, "reason"))
        return done

    return step


RecordPage(
    "/emergency/aid",
    _detail,
    {
        "commit": ("answer", _commit),
        "decline": ("answer", _with_reason(aid.decline, "declined")),
        "cancel": ("cancel", _with_reason(aid.cancel, "cancelled")),
        "close": ("close", _with_reason(aid.close, "closed")),
    },
).add_routes(router)


@router.post("/emergency/aid/commitments/{commitment_id}/dispatch", dependencies=[CsrfChecked])
async def dispatch(
    commitment_id: str, request: Request, session: SessionDep, user: CurrentUser
) -> Response:
    c = aid.get_commitment(session, record_id(commitment_id))
    cid, rid = c.id, c.request_id

    def step(form: FormData) -> None:
        lines = []
        for line in aid.get_commitment(session, cid).lines:
            item = str(line["item"])
            n = form_int(form.get(f"qty_{item}"), f"qty_{item}")
            if n:
                per_box = form_int(form.get(f"per_box_{item}"), f"per_box_{item}") or n
                lines.append(aid.DispatchLine(item, n, per_box))
        aid.dispatch(
            session,
            user,
            cid,
            point_code=_text(form, "point_code", 40),
            vehicle=_text(form, "vehicle", 40),
            driver=_text(form, "driver", 80),
            contact=_text(form, "contact", 120),
            lines=lines,
        )

    return await _act(request, session, user, rid, f"dispatch-{cid}", step, "dispatched")


@router.post("/emergency/aid/commitments/{commitment_id}/{what}", dependencies=[CsrfChecked])
async def commitment_step(
    commitment_id: str, what: str, request: Request, session: SessionDep, user: CurrentUser
) -> Response:
    c = aid.get_commitment(session, record_id(commitment_id))
    cid, rid = c.id, c.request_id
    steps = {"withdraw": (aid.withdraw, "withdrawn"), "finish": (aid.finish, "finished")}
    if what not in steps:
        raise NotFound("操作不存在", type="not-found")
    fn, done = steps[what]
    return await _act(
        request,
        session,
        user,
        rid,
        f"{what}-{cid}",
        lambda form: fn(session, user, cid, _text(form, "reason")),
        done,
    )


@router.post("/emergency/aid/shipments/{shipment_id}/receive", dependencies=[CsrfChecked])
async def receive(
    shipment_id: str, request: Request, session: SessionDep, user: CurrentUser
) -> Response:
    sh = aid.get_shipment(session, record_id(shipment_id))
    sid, rid = sh.id, sh.request_id
    codes = [b["code"] for b in sh.boxes]

    def step(form: FormData) -> None:
        counts = {code: form_int(form.get(f"count_{code}"), f"counts.{code}") for code in codes}
        aid.receive(session, user, sid, counts, _text(form, "note"))

    return await _act(request, session, user, rid, f"receive-{sid}", step, "received")
