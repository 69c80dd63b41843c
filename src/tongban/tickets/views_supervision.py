"""Pages of supervision: extensions, supervision orders (督办单), the figures, and major
tasks (重大项目 / 重点任务) with milestones and progress reports."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from tongban.errors import DomainError, FieldError, NotFound, PermissionDenied, ValidationFailed
from tongban.identity.domain import Role
from tongban.identity.models import Account
from tongban.regions import service as regions
from tongban.tickets.service import figures as figures_service
from tongban.tickets.service import majortasks, supervision
from tongban.tickets.views import _detail, _text, _uuid, labels
from tongban.types import Int32, SaneDate, parse_form_value
from tongban.web.deps import CsrfChecked, CurrentUser, FormDep, SessionDep
from tongban.web.pages import form_failure, render

router = APIRouter(include_in_schema=False)


def _int(form: FormData, name: str, message: str) -> int:
    """A whole number typed on a page; anything beyond 32 bits is refused here (the
    services check the real range, e.g. 0..100 for a percentage)."""
    try:
        return int(parse_form_value(Int32, _text(form, name)))
    except ValueError:
        raise ValidationFailed(message, errors=[FieldError(name, message)]) from None


def _back_to_ticket(
    request: Request,
    session: Session,
    user: Account,
    ticket_id: uuid.UUID,
    form: FormData,
    e: DomainError,
) -> Response:
    refused = form_failure(session, e)
    from tongban.tickets import service

    wo = service.get(session, user, ticket_id)
    failed = {k: v for k, v in form.items() if isinstance(v, str)}
    return _detail(request, session, user, wo, **refused.context, failed=failed)


@router.post("/tickets/{ticket_id}/extension", dependencies=[CsrfChecked])
def request_extension(
    ticket_id: str, request: Request, session: SessionDep, user: CurrentUser, form: FormDep
) -> Response:
    tid = _uuid(ticket_id)
    try:
        days = _int(form, "working_days", "请填写延期的工作日数")
        supervision.request_extension(session, user, tid, days, _text(form, "reason"))
    except DomainError as e:
        return _back_to_ticket(request, session, user, tid, form, e)
    return RedirectResponse(f"/tickets/{tid}?done=extension", status_code=303)


@router.post("/tickets/extensions/{ext_id}/decide", dependencies=[CsrfChecked])
def decide_extension(
    ext_id: str, request: Request, session: SessionDep, user: CurrentUser, form: FormDep
) -> Response:
    from tongban.tickets.models import TicketExtension

    ext = session.get(TicketExtension, _uuid(ext_id))
    if ext is None:
        raise NotFound("延期申请不存在")
    tid = ext.ticket_id
    try:
        supervision.decide_extension(
            session, user, ext.id, _text(form, "decision") == "approve", _text(form, "note")
        )
    except DomainError as e:
        return _back_to_ticket(request, session, user, tid, form, e)
    return RedirectResponse(f"/tickets/{tid}?done=extension_decided", status_code=303)


@router.post("/tickets/{ticket_id}/supervise", dependencies=[CsrfChecked])
def supervise(
    ticket_id: str, request: Request, session: SessionDep, user: CurrentUser, form: FormDep
) -> Response:
    tid = _uuid(ticket_id)
    try:
        hours = _int(form, "within_hours", "请填写办结时限（工作小时）")
        supervision.issue_supervision(session, user, tid, _text(form, "demand"), hours)
    except DomainError as e:
        return _back_to_ticket(request, session, user, tid, form, e)
    return RedirectResponse(f"/tickets/{tid}?done=supervise", status_code=303)


@router.post("/tickets/supervision/{order_id}/{step}", dependencies=[CsrfChecked])
def supervision_step(
    order_id: str,
    step: str,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    form: FormDep,
) -> Response:
    from tongban.tickets.models import SupervisionOrder

    order = session.get(SupervisionOrder, _uuid(order_id))
    if order is None:
        raise NotFound("督办单不存在")
    tid = order.ticket_id
    try:
        if step == "answer":
            supervision.answer_supervision(session, user, order.id, _text(form, "answer"))
        elif step == "close":
            supervision.close_supervision(session, user, order.id)
        else:
            raise NotFound("未知操作")
    except DomainError as e:
        if isinstance(e, NotFound) and step not in ("answer", "close"):
            raise
        return _back_to_ticket(request, session, user, tid, form, e)
    return RedirectResponse(f"/tickets/{tid}?done=supervision_{step}", status_code=303)


# --- figures ------------------------------------------------------------------------------


@router.get("/tickets/figures")
def figures_page(
    request: Request, session: SessionDep, user: CurrentUser, days: int = 90
) -> Response:
    f = figures_service.figures(session, user, days=max(1, min(days, 3650)))
    return render(request, "tickets/figures.html", user, f=f, labels=labels(session))


# --- major tasks -------------------------------------------------------------------------


def _tasks_page(
    request: Request,
    session: Session,
    user: Account,
    *,
    errors: dict[str, str] | None = None,
    message: str | None = None,
    values: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    authorities = (
        regions.list_authorities(session, jurisdiction_code=user.jurisdiction_code)
        if user.role == Role.SUPERVISOR
        else []
    )
    return render(
        request,
        "tickets/tasks.html",
        user,
        status_code=status_code,
        tasks=majortasks.list_tasks(session, user),
        authorities=authorities,
        kinds=majortasks.KIND_LABELS,
        statuses=majortasks.STATUS_LABELS,
        latest=majortasks.latest_percent,
        errors=errors or {},
        message=message,
        values=values or {},
    )


@router.get("/tickets/tasks")
def tasks(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    return _tasks_page(request, session, user)


def _milestones(form: FormData) -> list[tuple[str, date]]:
    out = []
    titles = [v for v in form.getlist("milestone_title") if isinstance(v, str)]
    dates = [v for v in form.getlist("milestone_due") if isinstance(v, str)]
    for title, due in zip(titles, dates, strict=False):
        if not title.strip() and not due.strip():
            continue
        try:
            out.append((title, parse_form_value(SaneDate, due)))
        except ValueError:
            raise ValidationFailed(
                "节点日期格式有误",
                errors=[FieldError("milestones", "日期格式应为 YYYY-MM-DD")],
            ) from None
    return out


@router.post("/tickets/tasks", dependencies=[CsrfChecked])
def create_task(
    request: Request, session: SessionDep, user: CurrentUser, form: FormDep
) -> Response:
    try:
        task = majortasks.create_task(
            session,
            user,
            kind=_text(form, "kind"),
            title=_text(form, "title"),
            description=_text(form, "description"),
            unit_codes=[v for v in form.getlist("units") if isinstance(v, str) and v],
            milestones=_milestones(form),
        )
    except PermissionDenied:
        raise
    except DomainError as e:
        refused = form_failure(session, e)
        values = {k: v for k, v in form.items() if isinstance(v, str)}
        return _tasks_page(request, session, user, values=values, **refused.context)
    return RedirectResponse(f"/tickets/tasks/{task.id}", status_code=303)


def _task_page(
    request: Request,
    session: Session,
    user: Account,
    task_id: uuid.UUID,
    *,
    message: str | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    task = majortasks.get_task(session, user, task_id)
    return render(
        request,
        "tickets/task_detail.html",
        user,
        status_code=status_code,
        task=task,
        kinds=majortasks.KIND_LABELS,
        statuses=majortasks.STATUS_LABELS,
        latest=majortasks.latest_percent(task),
        is_unit=any(u.authority_id == user.authority_id for u in task.units),
        message=message,
        errors=errors or {},
        done=request.query_params.get("done"),
    )


@router.get("/tickets/tasks/{task_id}")
def task_detail(task_id: str, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    return _task_page(request, session, user, _uuid(task_id))


@router.post("/tickets/tasks/{task_id}/report", dependencies=[CsrfChecked])
def task_report(
    task_id: str, request: Request, session: SessionDep, user: CurrentUser, form: FormDep
) -> Response:
    tid = _uuid(task_id)
    try:
        milestone = _text(form, "milestone_id")
        majortasks.report_progress(
            session,
            user,
            tid,
            _int(form, "percent", "请填写 0 至 100 的进度"),
            _text(form, "text"),
            _uuid(milestone) if milestone else None,
            milestone_done=form.get("milestone_done") is not None,
        )
    except DomainError as e:
        if isinstance(e, NotFound) and "任务" in e.detail:
            raise
        return _task_page(request, session, user, tid, **form_failure(session, e).context)
    return RedirectResponse(f"/tickets/tasks/{tid}?done=report", status_code=303)
