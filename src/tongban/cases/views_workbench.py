"""Pages of the officer's workbench: the queue, a case, its actions, rectifications."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from tongban.cases import service
from tongban.cases.domain import (
    ACTION_LABELS,
    CORRECTION_DAYS_DEFAULT,
    CORRECTION_DAYS_MAX,
    CORRECTION_DAYS_MIN,
    DUTY_DESK_LABELS,
    REASON_REQUIRED,
    RECT_ACTIONS,
    RECT_TEXT_MAX,
    Action,
    CorrectionItem,
)
from tongban.cases.models import Case
from tongban.cases.pages import (
    INPUTS,
    RECT_LABELS,
    STAFF_DESK,
    detail_context,
    matter_or_none,
    parse_case_id,
    require_role,
)
from tongban.cases.views_lists import case_list_page
from tongban.errors import DomainError, FieldError, NotFound, PermissionDenied, ValidationFailed
from tongban.identity.domain import Role
from tongban.identity.models import Account
from tongban.kernel import events
from tongban.web.deps import CsrfChecked, CurrentUser, FormDep, SessionDep
from tongban.web.pages import form_failure, render

router = APIRouter(include_in_schema=False)


#: Decisions that cannot be taken back: the page asks to confirm, and the server insists.
IRREVERSIBLE = frozenset({Action.REFUSE, Action.APPROVE, Action.DENY})
#: What the text of a step is called where it is not a plain reason.
REASON_LABELS = {
    Action.SUBMIT_FOR_APPROVAL: "审查意见（必填）",
    Action.RETURN_TO_REVIEW: "退回理由（必填）",
}
#: 提交审批: the reviewer's proposed decision, put before their opinion.
PROPOSALS = {"approve": "建议准予", "deny": "建议不予许可"}


def _require_desk(user: Account) -> None:
    require_role(user, STAFF_DESK, "审批工作台仅供审核/审批人员和督查督办人员使用")


@router.get("/workbench")
def workbench(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    """The queue: filtered by number, applicant or ID number, matter, state, deadline,
    city and submission dates (query string), a page at a time."""
    _require_desk(user)
    open_items = service.count_rectifications(session, user)
    return case_list_page(
        request,
        session,
        user,
        "cases/workbench.html",
        "/workbench",
        open_rectifications=open_items,
        duty_label=DUTY_DESK_LABELS.get(user.duty or ""),
        queues=service.queue_counts(session, user),
        queue_cap=service.QUEUE_COUNT_CAP,
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
    failed: dict[str, Any] | None = None,
) -> Response:
    ctx = detail_context(session, user, case)
    proposal = service.proposal_of(case)
    own = proposal is not None and proposal.actor_id == user.id
    ctx.update(
        actions=[
            {
                "value": a.value,
                "label": ACTION_LABELS[a],
                "reason": a in REASON_REQUIRED,
                "reason_label": REASON_LABELS.get(a, "理由（必填）"),
                "result": a is Action.ISSUE_RESULT,
                "confirm": a in IRREVERSIBLE,
                "proposal": a is Action.SUBMIT_FOR_APPROVAL,
            }
            for a in service.available_actions(user, case)
            # Separate duties: the maker of a proposal does not decide it.
            if not (own and a in (Action.APPROVE, Action.DENY))
        ],
        proposal=proposal,
        own_proposal=own,
        proposals=PROPOSALS,
        duty_label=DUTY_DESK_LABELS.get(user.duty or ""),
        errors=errors or {},
        message=message,
        failed=failed or {},
        days_min=CORRECTION_DAYS_MIN,
        days_max=CORRECTION_DAYS_MAX,
        days_default=CORRECTION_DAYS_DEFAULT,
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
    confirm: Annotated[str, Form()] = "",
    proposal: Annotated[str, Form()] = "",
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
        if step is Action.REQUEST_CORRECTION:
            raise ValidationFailed(
                "请逐项列出需补正的材料", errors=[FieldError("items", "请使用补正通知表单")]
            )
        if step in IRREVERSIBLE and confirm != "1":
            # Every missing piece at once: the reason the law needs, and the confirmation.
            label = ACTION_LABELS[step]
            errors = [FieldError("confirm", "请勾选确认")]
            detail = f"“{label}”作出后不可撤回，请勾选确认"
            if step in REASON_REQUIRED and not comment.strip():
                errors.insert(0, FieldError("comment", "请填写理由"))
                detail = f"“{label}”须说明理由，并勾选确认"
            raise ValidationFailed(detail, errors=errors)
        if step is Action.SUBMIT_FOR_APPROVAL:
            comment = _proposal_comment(proposal, comment)
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
            failed={
                "action": action,
                "comment": comment,
                "result_text": result_text,
                "proposal": proposal,
            },
        )
    return RedirectResponse(f"/workbench/cases/{cid}?done={step.value}", status_code=303)


def _proposal_comment(proposal: str, opinion: str) -> str:
    """提交审批: the proposed decision and the opinion as one comment, every missing piece
    reported at once."""
    errors = []
    if proposal not in PROPOSALS:
        errors.append(FieldError("proposal", "请选择审查建议"))
    if not opinion.strip():
        errors.append(FieldError("comment", "请填写审查意见"))
    if errors:
        raise ValidationFailed("提交审批须选择审查建议并填写审查意见", errors=errors)
    return f"{PROPOSALS[proposal]}：{opinion.strip()}"


def _correction_items(
    matter: Any, form: Any
) -> tuple[list[CorrectionItem], list[str], dict[str, Any]]:
    """The items of a correction notice as the officer filled its form, the input each
    came from (to put an error beside it), and the values to show again."""
    chosen = [v for v in form.getlist("item") if isinstance(v, str)]
    text = {k: str(form.get(k) or "").strip() for k in form if isinstance(form.get(k), str)}
    items: list[CorrectionItem] = []
    inputs: list[str] = []
    for m in matter.materials if matter else []:
        if m.code in chosen:
            items.append(CorrectionItem(m.code, m.name, text.get(f"reason_{m.code}", "")))
            inputs.append(f"item_{m.code}")
    for n in range(1, 4):
        name, why = text.get(f"new_name_{n}", ""), text.get(f"new_reason_{n}", "")
        if name or why:
            items.append(CorrectionItem(f"extra{n}", name, why, listed=False))
            inputs.append(f"new_{n}")
    return items, inputs, {**text, "items": chosen}


@router.post("/workbench/cases/{case_id}/correction", dependencies=[CsrfChecked])
def workbench_correction(
    case_id: str, request: Request, session: SessionDep, user: CurrentUser, form: FormDep
) -> Response:
    """补正通知: every missing or wrong material at once, each with its reason."""
    require_role(user, (Role.OFFICER,), "只有主管部门的审核/审批人员可以要求补正")
    cid = parse_case_id(case_id)
    case = service.get_case(session, user, cid)
    items, inputs, shown = _correction_items(matter_or_none(session, case.matter_code), form)
    try:
        raw_days = str(form.get("deadline_days") or "").strip()
        try:
            days = int(raw_days)
        except ValueError:
            raise ValidationFailed(
                "请填写补正期限", errors=[FieldError("deadline_days", "请填写工作日天数")]
            ) from None
        service.request_correction(
            session, user, cid, str(form.get("comment") or "").strip(), items, days
        )
    except PermissionDenied:
        raise
    except DomainError as e:
        e.errors = [_item_error(f, inputs) for f in e.errors]
        refused = form_failure(session, e)
        case = service.get_case(session, user, cid)
        return _workbench_detail(
            request,
            session,
            user,
            case,
            **refused.context,
            failed={"action": Action.REQUEST_CORRECTION.value, **shown},
        )
    return RedirectResponse(f"/workbench/cases/{cid}?done=request_correction", status_code=303)


def _item_error(err: FieldError, inputs: list[str]) -> FieldError:
    """`items.<i>.<what>` from the rules, beside the input item i came from."""
    parts = err["field"].split(".")
    if parts[0] == "items" and len(parts) == 3 and parts[1].isdigit():
        i = int(parts[1])
        if i < len(inputs):
            return FieldError(inputs[i], err["message"])
    return err


#: The filters of the rectifications page, per role: what waits on the reader first.
RECT_FILTERS = {
    Role.OFFICER.value: {"open": "待答复", "replied": "已答复待确认", "all": "全部"},
    Role.SUPERVISOR.value: {"escalated": "已转督办", "all": "全部"},
}


def _rectifications_page(
    request: Request,
    session: Session,
    user: Account,
    *,
    status_code: int = 200,
    message: str | None = None,
    errors: dict[str, str] | None = None,
    failed: dict[str, str] | None = None,
) -> Response:
    filters = RECT_FILTERS.get(user.role, {})
    status = request.query_params.get("status")
    status = status if status in filters else next(iter(filters), None)
    rows = []
    for item in service.list_rectifications(session, user, status):
        try:
            case: Case | None = service.get_case(session, user, item.case_id)
        except NotFound:
            case = None
        loop = service.rectification_of(session, case) if case else None
        steps = [e for e in case.events if e.action in RECT_ACTIONS] if case else []
        rows.append({"item": item, "case": case, "loop": loop, "steps": steps})
    return render(
        request,
        "cases/rectifications.html",
        user,
        status_code=status_code,
        rows=rows,
        filters=filters,
        status=status,
        rect_labels=RECT_LABELS,
        text_max=RECT_TEXT_MAX,
        message=message,
        errors=errors or {},
        failed=failed or {},
        done=request.query_params.get("done"),
    )


@router.get("/workbench/rectifications")
def rectifications(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    _require_desk(user)
    return _rectifications_page(request, session, user)


@router.post("/workbench/rectifications/{item_id}/reply", dependencies=[CsrfChecked])
def reply_rectification(
    item_id: str,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    response: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """整改答复: the authority's reply, which the applicant sees and answers."""
    require_role(user, (Role.OFFICER,), "只有主管部门的人员可以答复整改事项")
    try:
        rid = uuid.UUID(item_id)
    except ValueError:
        raise NotFound("整改事项不存在或无权处理") from None
    try:
        service.reply_rectification(session, user, rid, response.strip())
    except (PermissionDenied, NotFound):
        raise
    except DomainError as e:
        refused = form_failure(session, e)
        return _rectifications_page(
            request,
            session,
            user,
            **refused.context,
            failed={"item": item_id, "response": response},
        )
    return RedirectResponse("/workbench/rectifications?done=1", status_code=303)
