"""Pages of the officer's workbench: the queue, a case, its actions, rectifications."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from tongban.cases import service
from tongban.cases.domain import (
    ACTION_LABELS,
    REASON_REQUIRED,
    Action,
)
from tongban.cases.models import Case
from tongban.cases.pages import (
    DEADLINE_LABELS,
    INPUTS,
    LABELS,
    STAFF_DESK,
    STATE_VALUES,
    detail_context,
    parse_case_id,
    require_role,
)
from tongban.errors import DomainError, FieldError, NotFound, PermissionDenied, ValidationFailed
from tongban.identity.domain import Role
from tongban.identity.models import Account
from tongban.kernel import events
from tongban.web.deps import CsrfChecked, CurrentUser, SessionDep
from tongban.web.pages import form_failure, render

router = APIRouter(include_in_schema=False)


def _require_desk(user: Account) -> None:
    require_role(user, STAFF_DESK, "审批工作台仅供审核/审批人员和督查督办人员使用")


@router.get("/workbench")
def workbench(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    state: str | None = None,
    deadline_flag: str | None = None,
    q: str | None = None,
) -> Response:
    _require_desk(user)
    state = state if state in STATE_VALUES else None
    deadline_flag = deadline_flag if deadline_flag in DEADLINE_LABELS else None
    q = (q or "").strip()[:40] or None
    cases = service.list_cases(session, user, state=state, deadline_flag=deadline_flag, q=q)
    open_items = len(service.list_rectifications(session, user))
    return render(
        request,
        "cases/workbench.html",
        user,
        cases=cases,
        labels=LABELS,
        filters={"state": state or "", "deadline_flag": deadline_flag or "", "q": q or ""},
        open_rectifications=open_items,
    )


def _workbench_detail(
    request: Request,
    session: Session,
    user: Account,
    case: Case,
    *,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    message: str | None = None,
    failed: dict[str, str] | None = None,
) -> Response:
    ctx = detail_context(session, user, case)
    ctx.update(
        actions=[
            {
                "value": a.value,
                "label": ACTION_LABELS[a],
                "reason": a in REASON_REQUIRED,
                "result": a is Action.ISSUE_RESULT,
            }
            for a in service.available_actions(user, case)
        ],
        errors=errors or {},
        message=message,
        failed=failed or {},
        done=request.query_params.get("done"),
        # The 调取证明 panel, from the evidence context.
        evidence=events.gather(session, events.CasePageShown(case.id, user.id)).get(
            "evidence_panel", {"visible": False}
        ),
    )
    return render(request, "cases/workbench_detail.html", user, status_code=status_code, **ctx)


@router.get("/workbench/cases/{case_id}")
def workbench_case(
    case_id: str, request: Request, session: SessionDep, user: CurrentUser
) -> Response:
    _require_desk(user)
    case = service.get_case(session, user, parse_case_id(case_id))
    return _workbench_detail(request, session, user, case)


@router.post("/workbench/cases/{case_id}/act", dependencies=[CsrfChecked])
def workbench_act(
    case_id: str,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    action: Annotated[str, Form()] = "",
    comment: Annotated[str, Form(max_length=2000)] = "",
    result_text: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    require_role(user, (Role.OFFICER,), "只有主管部门的审核/审批人员可以办理办件")
    cid = parse_case_id(case_id)
    try:
        try:
            step = Action(action)
        except ValueError:
            raise ValidationFailed(
                "未知的办理动作", errors=[FieldError("action", "不是允许的取值")]
            ) from None
        service.act(session, user, cid, step, comment.strip(), result_text.strip() or None)
    except PermissionDenied:
        raise
    except DomainError as e:
        refused = form_failure(session, e, inputs=INPUTS)
        case = service.get_case(session, user, cid)
        return _workbench_detail(
            request,
            session,
            user,
            case,
            **refused.context,
            failed={"action": action, "comment": comment, "result_text": result_text},
        )
    return RedirectResponse(f"/workbench/cases/{cid}?done={step.value}", status_code=303)


def _rectifications_page(
    request: Request,
    session: Session,
    user: Account,
    *,
    status_code: int = 200,
    message: str | None = None,
    failed: dict[str, str] | None = None,
) -> Response:
    rows = []
    for item in service.list_rectifications(session, user):
        try:
            case: Case | None = service.get_case(session, user, item.case_id)
        except NotFound:
            case = None
        rows.append({"item": item, "case": case})
    return render(
        request,
        "cases/rectifications.html",
        user,
        status_code=status_code,
        rows=rows,
        message=message,
        failed=failed or {},
        done=request.query_params.get("done"),
    )


@router.get("/workbench/rectifications")
def rectifications(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    _require_desk(user)
    return _rectifications_page(request, session, user)


@router.post("/workbench/rectifications/{item_id}/close", dependencies=[CsrfChecked])
def close_rectification(
    item_id: str,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    response: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    require_role(user, (Role.OFFICER,), "只有主管部门的人员可以办结整改事项")
    try:
        rid = uuid.UUID(item_id)
    except ValueError:
        raise NotFound("整改事项不存在或无权处理") from None
    try:
        service.close_rectification(session, user, rid, response.strip())
    except (PermissionDenied, NotFound):
        raise
    except DomainError as e:
        refused = form_failure(session, e)
        return _rectifications_page(
            request,
            session,
            user,
            status_code=refused.status_code,
            message=refused.message,
            failed={"item": item_id, "response": response},
        )
    return RedirectResponse("/workbench/rectifications?done=1", status_code=303)
