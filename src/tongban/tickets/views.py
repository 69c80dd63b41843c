"""Pages of work orders: report a problem (resident, grid inspector, hotline operator),
the work-order lists of every role, and the detail page where each party takes its
step of the loop. Every page parses input, calls the tickets service and renders."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from tongban.errors import DomainError, FieldError, NotFound, PermissionDenied, ValidationFailed
from tongban.files.models import Attachment
from tongban.files.service import serve_attachment
from tongban.identity.domain import Role
from tongban.identity.models import Account
from tongban.kernel import paging
from tongban.regions import service as regions
from tongban.tickets import domain, reportmap, service
from tongban.tickets.models import WorkOrder
from tongban.tickets.service import common, lists, supervision
from tongban.types import Latitude, Longitude, parse_form_value
from tongban.web.deps import (
    CsrfChecked,
    CurrentUser,
    FormDep,
    SessionDep,
    SettingsDep,
    node_settings,
)
from tongban.web.pages import form_failure, render

router = APIRouter(include_in_schema=False)

REPORTERS = (Role.RESIDENT, Role.ENTERPRISE, Role.GRID, Role.HOTLINE)
#: Rows shown of each pressing section above the list.
SECTION_ROWS = 20
DEADLINE_LABELS = {"ok": "时限内", "approaching": "临近时限", "overdue": "已超时"}
EVENT_LABELS = {
    **{a.value: label for a, label in domain.ACTION_LABELS.items()},
    "report": "反映问题",
    "merged_in": "合并他人反映",
    "co_note": "协办意见",
    "remind": "临期提醒",
    "escalate": "超期升级",
    "extension_requested": "申请延期",
    "extension_decided": "延期审批",
    "supervise": "督办",
    "supervision_answered": "督办反馈",
}


def labels(session: Session) -> dict[str, Any]:
    t = service.taxonomy(session)
    return {
        "states": {s.value: label for s, label in domain.STATE_LABELS.items()},
        "actions": {a.value: label for a, label in domain.ACTION_LABELS.items()},
        "events": EVENT_LABELS,
        "channels": {c.value: label for c, label in domain.CHANNEL_LABELS.items()},
        "deadline": DEADLINE_LABELS,
        "categories": {c.code: c.name for c in t.categories.values()},
        "urgencies": {u.code: u.name for u in t.urgencies.values()},
        "reason": {a.value for a in domain.REASON_REQUIRED},
        "evidence": {a.value for a in domain.EVIDENCE_REQUIRED},
    }


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _float(form: FormData, name: str) -> float | None:
    raw = _text(form, name)
    if not raw:
        return None
    try:
        return float(parse_form_value(Latitude if name == "lat" else Longitude, raw))
    except ValueError:
        bounds = "-90 至 90" if name == "lat" else "-180 至 180"
        raise ValidationFailed(
            "经纬度须为数字",
            errors=[FieldError(name, f"请填写 {bounds} 之间的数字，如 31.2304")],
        ) from None


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("工单不存在或无权查看", type="unknown-work-order") from None


def _uuids(form: FormData, name: str) -> list[uuid.UUID]:
    out = []
    for v in form.getlist(name):
        if isinstance(v, str) and v.strip():
            out.append(_uuid(v.strip()))
    return out


def _store_photos(
    request: Request, session: Session, actor: Account, form: FormData, name: str = "photos"
) -> list[uuid.UUID]:
    settings = node_settings(request)
    ids = []
    for upload in form.getlist(name):
        if not isinstance(upload, UploadFile) or not upload.filename:
            continue
        data = upload.file.read(settings.max_upload_bytes + 1)
        att = service.store_photo(
            session,
            actor,
            filename=upload.filename,
            data=data,
            upload_dir=settings.upload_dir,
            max_bytes=settings.max_upload_bytes,
        )
        ids.append(att.id)
    return ids


# --- reporting ---------------------------------------------------------------------------


def _report_page(
    request: Request,
    session: Session,
    user: Account,
    *,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
    message: str | None = None,
    candidates: list[WorkOrder] | None = None,
    photo_ids: list[uuid.UUID] | None = None,
    status_code: int = 200,
) -> Response:
    t = service.taxonomy(session)
    return render(
        request,
        "tickets/report.html",
        user,
        status_code=status_code,
        groups=t.groups(),
        urgencies=t.urgencies,
        cities=regions.list_cities(session),
        map=reportmap.report_map(common.region_index(session)),
        values=values,
        errors=errors or {},
        message=message,
        candidates=candidates or [],
        photo_ids=photo_ids or [],
        hotline=user.role == Role.HOTLINE,
        labels=labels(session),
    )


def _require_reporter(user: Account) -> None:
    if user.role not in {r.value for r in REPORTERS}:
        raise PermissionDenied("当前账户不能反映问题")


@router.get("/tickets/report")
def report_page(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    _require_reporter(user)
    values = {"urgency": "complaint", "city_code": user.city_code or ""}
    return _report_page(request, session, user, values=values)


@router.post("/tickets/report", dependencies=[CsrfChecked])
def report(request: Request, session: SessionDep, user: CurrentUser, form: FormDep) -> Response:
    _require_reporter(user)
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    photo_ids = _uuids(form, "photo_ids")
    try:
        photo_ids += _store_photos(request, session, user, form)
        merge_into = _text(form, "merge_into")
        r = service.Report(
            category_code=_text(form, "category_code"),
            urgency=_text(form, "urgency"),
            description=_text(form, "description"),
            lat=_float(form, "lat"),
            lon=_float(form, "lon"),
            address=_text(form, "address"),
            city_code=_text(form, "city_code") or None,
            reporter_name=_text(form, "reporter_name") or None,
            reporter_phone=_text(form, "reporter_phone") or None,
            photo_ids=photo_ids,
            merge_into=_uuid(merge_into) if merge_into else None,
            allow_duplicate=form.get("allow_duplicate") is not None,
        )
        wo = service.report(session, user, r)
    except service.PossibleDuplicate as e:
        # Nothing but the photos was written: keep them, and offer the choice.
        return _report_page(
            request,
            session,
            user,
            values=values,
            message=e.detail,
            candidates=e.candidates,
            photo_ids=photo_ids,
            status_code=409,
        )
    except PermissionDenied:
        raise
    except DomainError as e:
        refused = form_failure(session, e)
        return _report_page(request, session, user, values=values, **refused.context)
    return RedirectResponse(f"/tickets/{wo.id}?done=report", status_code=303)


# --- lists -----------------------------------------------------------------------------


def _sections(session: Session, user: Account) -> list[tuple[str, paging.Page, dict[str, str]]]:
    """The pressing parts of a role's work, most pressing first: the first rows of each,
    with the filter that shows them all in the list below."""
    role = Role(user.role)
    f = lists.Filters()
    wanted: list[tuple[str, lists.Filters]] = []
    if role is Role.OFFICER:
        wanted = [
            ("本部门主办", lists.with_(f, role="lead")),
            ("跨界协办（他方主办）", lists.with_(f, role="co")),
        ]
    elif role is Role.DISPATCHER:
        wanted = [
            ("退单待审核", lists.with_(f, state="returned")),
            ("办结待核查", lists.with_(f, state="to_verify")),
            ("已超时", lists.with_(f, deadline_flag="overdue")),
        ]
    elif role is Role.HOTLINE:
        wanted = [("待回访（来电人）", lists.with_(f, state="verified", caller_only=True))]
    elif role is Role.SUPERVISOR:
        wanted = [
            ("已超时", lists.with_(f, deadline_flag="overdue")),
            ("临近时限", lists.with_(f, deadline_flag="approaching")),
        ]
    return [
        (title, lists.first(session, user, sf, SECTION_ROWS), sf.params()) for title, sf in wanted
    ]


def _main_title(role: str) -> str:
    if role in lists.REPORTER_ROLES:
        return "我反映的问题"
    return "本市工单" if role == Role.HOTLINE else "全部工单"


@router.get("/tickets")
def ticket_list(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    q: str | None = None,
    category: str | None = None,
    state: str | None = None,
    city: str | None = None,
    district: str | None = None,
    deadline_flag: str | None = None,
    role: str | None = None,
    cursor: str | None = None,
    page_size: str | None = None,
) -> Response:
    """The role's pressing sections and the whole list it may see, filtered and paged
    (the filters stay in the links from page to page)."""
    t = service.taxonomy(session)
    f = lists.filters(
        q=q,
        category=category,
        state=state,
        city=city,
        district=district,
        deadline_flag=deadline_flag,
        role=role,
        categories=set(t.categories),
    )
    result = lists.page(session, user, f, lists.request(user, cursor, page_size))
    notices = (
        supervision.notices_for(session, user, limit=20)
        if user.role not in (Role.DISPATCHER, Role.HOTLINE)
        else []
    )
    params = f.params() | {"page_size": page_size or ""}
    filtered = any(f.params().values())
    return render(
        request,
        "tickets/list.html",
        user,
        sections=[] if (filtered or result.first is False) else _sections(session, user),
        main_title=_main_title(user.role),
        result=result,
        filters=f.params(),
        filtered=filtered,
        next_link=paging.query_string(params, cursor=result.next_cursor)
        if result.next_cursor
        else None,
        first_link=paging.query_string(params),
        notices=notices,
        can_report=user.role in {r.value for r in REPORTERS},
        labels=labels(session) | _areas(session, user),
    )


def _areas(session: Session, user: Account) -> dict[str, Any]:
    """The cities and districts staff filter by (residents have no filter form)."""
    if user.role in lists.REPORTER_ROLES:
        return {"cities": [], "areas": []}
    cities = {c.code: c.name for c in regions.list_cities(session)}
    districts = regions.list_districts(session)
    areas = [(d.code, f"{cities.get(d.city_code, '')} {d.name}") for d in districts]
    return {"cities": list(cities.items()), "areas": areas}


# --- detail and steps -----------------------------------------------------------------


def _detail(
    request: Request,
    session: Session,
    user: Account,
    wo: WorkOrder,
    *,
    status_code: int = 200,
    message: str | None = None,
    failed: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    kind = service.actor_kind(user, wo)
    actions = service.available_actions(user, wo)
    return render(
        request,
        "tickets/detail.html",
        user,
        status_code=status_code,
        wo=wo,
        master=service.effective(wo),
        kind=kind.value if kind else None,
        actions=actions,
        co_handler=service.is_co_handler(user, wo),
        authorities=service.redispatch_choices(session, wo)
        if domain.Action.REDISPATCH in actions
        else [],
        extensions=supervision.extensions_of(session, wo),
        supervisions=supervision.supervision_of(session, wo),
        category=service.taxonomy(session).category(wo.category_code),
        message=message,
        failed=failed or {},
        errors=errors or {},
        done=request.query_params.get("done"),
        labels=labels(session),
        open_states={s.value for s in domain.CLOCK_RUNNING},
    )


@router.get("/tickets/{ticket_id}")
def detail(ticket_id: str, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    wo = service.get(session, user, _uuid(ticket_id))
    return _detail(request, session, user, wo)


def _step(
    request: Request,
    session: Session,
    user: Account,
    ticket_id: str,
    form: FormData,
    work: Any,
    done: str,
) -> Response:
    """Run one step; on a refusal, roll back and show the page with the message."""
    tid = _uuid(ticket_id)
    try:
        work(tid)
    except DomainError as e:
        if isinstance(e, NotFound) and e.type == "unknown-work-order":
            raise
        refused = form_failure(session, e)
        wo = service.get(session, user, tid)
        failed = {k: v for k, v in form.items() if isinstance(v, str)}
        return _detail(request, session, user, wo, **refused.context, failed=failed)
    return RedirectResponse(f"/tickets/{tid}?done={done}", status_code=303)


@router.post("/tickets/{ticket_id}/act", dependencies=[CsrfChecked])
def act(
    ticket_id: str, request: Request, session: SessionDep, user: CurrentUser, form: FormDep
) -> Response:
    action = _text(form, "action")

    def work(tid: uuid.UUID) -> None:
        photos = (
            _store_photos(request, session, user, form)
            if action in {a.value for a in domain.EVIDENCE_REQUIRED}
            else []
        )
        service.act(
            session,
            user,
            tid,
            action,
            _text(form, "comment"),
            authority_code=_text(form, "authority_code") or None,
            photo_ids=photos,
        )

    return _step(request, session, user, ticket_id, form, work, action)


@router.post("/tickets/{ticket_id}/note", dependencies=[CsrfChecked])
def note(
    ticket_id: str, request: Request, session: SessionDep, user: CurrentUser, form: FormDep
) -> Response:
    def work(tid: uuid.UUID) -> None:
        service.co_note(session, user, tid, _text(form, "comment"))

    return _step(request, session, user, ticket_id, form, work, "co_note")


@router.post("/tickets/{ticket_id}/merge", dependencies=[CsrfChecked])
def merge(
    ticket_id: str, request: Request, session: SessionDep, user: CurrentUser, form: FormDep
) -> Response:
    def work(tid: uuid.UUID) -> None:
        service.merge(session, user, tid, _text(form, "into"))

    return _step(request, session, user, ticket_id, form, work, "merge")


@router.get("/tickets/photos/{photo_id}")
def photo(photo_id: str, session: SessionDep, settings: SettingsDep, user: CurrentUser) -> Response:
    """A photo, to whoever may see its work order."""
    from tongban.tickets.models import TicketPhoto

    p = session.get(TicketPhoto, _uuid(photo_id))
    if p is None:
        raise NotFound("照片不存在")
    service.get(session, user, p.ticket_id)  # raises unless the caller may see it
    att = session.get(Attachment, p.attachment_id)
    return serve_attachment(settings.upload_dir, att, "照片文件缺失")
