"""HTML pages of applications (办件): the applicant's portal, the window clerk's desk and
the officer's workbench. Every page parses input, calls the cases service and renders."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from tongban.cases import service
from tongban.cases.attachments import blob_path, store_upload
from tongban.cases.domain import (
    ACTION_LABELS,
    DELIVERY_LABELS,
    MODE_LABELS,
    REASON_REQUIRED,
    STATE_LABELS,
    Action,
    Mode,
)
from tongban.cases.models import Case
from tongban.catalog import domain as catalog_domain
from tongban.catalog import service as catalog
from tongban.errors import DomainError, NotFound, PermissionDenied, ValidationFailed
from tongban.evidence import service as evidence
from tongban.identity.domain import Role, mask_id_number
from tongban.identity.models import Account
from tongban.licences import service as licences
from tongban.regions import service as regions
from tongban.web.deps import CsrfChecked, CurrentUser, FormDep, SessionDep
from tongban.web.pages import form_error, render

router = APIRouter(include_in_schema=False)

APPLICANTS = (Role.RESIDENT, Role.ENTERPRISE)
STAFF_DESK = (Role.OFFICER, Role.SUPERVISOR)

STATE_VALUES = {s.value: label for s, label in STATE_LABELS.items()}
#: Labels of timeline entries: every state-machine action plus the platform's own steps.
EVENT_LABELS = {
    **{a.value: label for a, label in ACTION_LABELS.items()},
    "submit": "提交申请",
    "forwarded": "推送至主管部门",
}
SCORE_LABELS = {1: "非常不满意", 2: "不满意", 3: "基本满意", 4: "满意", 5: "非常满意"}
DEADLINE_LABELS = {"ok": "时限内", "approaching": "临近时限", "overdue": "已超时"}
APPLICANT_TYPE_LABELS = {Role.RESIDENT.value: "个人", Role.ENTERPRISE.value: "法人（企业）"}
LABELS = {
    "states": STATE_VALUES,
    "actions": {a.value: label for a, label in ACTION_LABELS.items()},
    "events": EVENT_LABELS,
    "modes": {m.value: label for m, label in MODE_LABELS.items()},
    "delivery": {d.value: label for d, label in DELIVERY_LABELS.items()},
    "deadline": DEADLINE_LABELS,
    "scores": SCORE_LABELS,
    "applicant_types": APPLICANT_TYPE_LABELS,
}


# --- helpers -----------------------------------------------------------------------


def _require(actor: Account, roles: tuple[Role, ...], message: str) -> None:
    if actor.role not in {r.value for r in roles}:
        raise PermissionDenied(message)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _texts(form: FormData, name: str) -> list[str]:
    return [v.strip() for v in form.getlist(name) if isinstance(v, str) and v.strip()]


def _field_errors(e: DomainError) -> dict[str, str]:
    """Service error fields → the input they belong under: `form_data.name` → `name`,
    `materials.<code>` → `material_<code>`, anything else as named."""
    out: dict[str, str] = {}
    for err in e.errors:
        field = str(err.get("field") or "")
        message = str(err.get("message") or "") or e.detail
        if field.startswith("form_data."):
            key = field.split(".", 2)[1]
        elif field.startswith("materials."):
            key = "material_" + field.split(".", 1)[1]
        else:
            key = field
        out.setdefault(key, message)
    return out


def _status(e: DomainError) -> int:
    return e.status if e.status in (400, 409, 413, 415, 422) else 400


def _case_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("办件不存在或无权查看", type="unknown-case") from None


def _raw_form(form: FormData) -> dict[str, Any]:
    """Text fields of a form: one value per name, a list where a name repeats."""
    raw: dict[str, Any] = {}
    for key in form:
        values = [v for v in form.getlist(key) if isinstance(v, str)]
        if values:
            raw[key] = values if len(values) > 1 else values[0]
    return raw


def _store_files(
    request: Request, session: Session, actor: Account, matter: Any, form: FormData
) -> list[uuid.UUID]:
    """Store every material file sent as `material_<code>`; returns the attachment ids."""
    settings = request.app.state.settings
    ids = []
    for m in matter.materials:
        for upload in form.getlist(f"material_{m.code}"):
            if not isinstance(upload, UploadFile) or not upload.filename:
                continue
            data = upload.file.read(settings.max_upload_bytes + 1)
            att = store_upload(
                session,
                actor,
                material_code=m.code,
                filename=upload.filename,
                data=data,
                upload_dir=settings.upload_dir,
                max_bytes=settings.max_upload_bytes,
            )
            ids.append(att.id)
    return ids


def _read_application(form: FormData, matter: Any, *, window: bool) -> service.Application:
    mode = _text(form, "mode") or (Mode.PROXY.value if window else Mode.ONLINE.value)
    jurisdiction = _text(form, "competent_jurisdiction")
    joint = [j for j in _texts(form, "joint_jurisdictions") if j != jurisdiction]
    delivery = _text(form, "delivery_method") or "electronic"
    return service.Application(
        matter_code=matter.code,
        competent_jurisdiction=jurisdiction,
        competent_city=_text(form, "competent_city") or None,
        form_data=catalog_domain.coerce_form(matter.form_schema, _raw_form(form)),
        mode=mode,
        delivery_method=delivery,
        delivery_address=_text(form, "delivery_address") or None,
        consent=form.get("consent") is not None,
        joint_jurisdictions=joint if mode == Mode.JOINT else [],
        phone=_text(form, "phone") or None,
        evidence_consent=_texts(form, "evidence_consent"),
        licences={m.code: _text(form, f"licence_{m.code}") for m in matter.materials},
    )


def _entered(form: FormData) -> dict[str, Any]:
    """What the user typed, to put back into the re-rendered form."""
    values = _raw_form(form)
    values["joint_jurisdictions"] = _texts(form, "joint_jurisdictions")
    return values


def _application_context(
    session: Session,
    matter: Any,
    *,
    window: bool,
    values: dict[str, Any],
    errors: dict[str, str],
    message: str | None = None,
) -> dict[str, Any]:
    modes = (
        [m for m in matter.modes if m != Mode.PROXY]
        if not window
        else [m for m in matter.modes if m in (Mode.PROXY, Mode.JOINT)]
    )
    return {
        "matter": matter,
        "jurisdictions": regions.list_jurisdictions(session),
        "cities": regions.list_cities(session),
        "modes": modes,
        "window": window,
        "values": values,
        "errors": errors,
        "message": message,
        "labels": LABELS,
        "evidence_kinds": evidence.kinds_for_matter(session, matter.code),
    }


def _form_rows(matter: Any, form_data: dict[str, Any]) -> list[tuple[str, str]]:
    """The applicant's answers under the form's own titles, in the schema's order."""
    props: dict[str, Any] = (matter.form_schema or {}).get("properties", {}) if matter else {}
    rows = []
    for key in [*props, *(k for k in form_data if k not in props)]:
        if key not in form_data:
            continue
        value = form_data[key]
        if isinstance(value, bool):
            shown = "是" if value else "否"
        elif isinstance(value, list):
            shown = "、".join(str(v) for v in value)
        elif value is None:
            shown = ""
        else:
            shown = str(value)
        rows.append((str(props.get(key, {}).get("title") or key), shown))
    return rows


def _open_matter(session: Session, code: str) -> Any:
    """A matter one can still apply for."""
    matter = catalog.get_matter(session, code)
    if not matter.active:
        raise NotFound(f"事项“{matter.name}”已停止办理", type="unknown-matter")
    return matter


def _matter_or_none(session: Session, code: str) -> Any:
    try:
        return catalog.get_matter(session, code)
    except NotFound:
        return None


def _detail_context(session: Session, actor: Account, case: Case) -> dict[str, Any]:
    matter = _matter_or_none(session, case.matter_code)
    handles = service.actor_kind(actor, case) is not None
    materials = {m.code: m.name for m in matter.materials} if matter else {}
    return {
        "case": case,
        "matter": matter,
        "form_rows": _form_rows(matter, case.form_data or {}),
        "identifier": case.applicant_identifier
        if handles
        else mask_id_number(case.applicant_identifier),
        "material_names": materials,
        "rating": service.rating_for(session, case),
        "licence_uses": licences.uses_for_case(session, case),
        "labels": LABELS,
        "errors": {},
        "message": None,
    }


# --- applicant portal --------------------------------------------------------------


@router.get("/apply/{matter_code}")
def apply_page(
    matter_code: str, request: Request, session: SessionDep, user: CurrentUser
) -> Response:
    _require(user, APPLICANTS, "只有个人或法人账户可以网上申请")
    matter = _open_matter(session, matter_code)
    values: dict[str, Any] = {"delivery_method": "electronic", "phone": user.phone or ""}
    if user.jurisdiction_code:
        values["competent_jurisdiction"] = user.jurisdiction_code
    return render(
        request,
        "cases/apply.html",
        user,
        wallet=licences.choices_for_matter(session, user, matter),
        **_application_context(session, matter, window=False, values=values, errors={}),
    )


@router.post("/apply/{matter_code}", dependencies=[CsrfChecked])
def apply(
    matter_code: str, request: Request, session: SessionDep, user: CurrentUser, form: FormDep
) -> Response:
    _require(user, APPLICANTS, "只有个人或法人账户可以网上申请")
    matter = _open_matter(session, matter_code)
    try:
        app = _read_application(form, matter, window=False)
        app.attachment_ids = _store_files(request, session, user, matter, form)
        case = service.submit_online(session, user, app)
    except PermissionDenied:
        raise
    except DomainError as e:
        form_error(session)
        matter = catalog.get_matter(session, matter_code)
        return render(
            request,
            "cases/apply.html",
            user,
            status_code=_status(e),
            wallet=licences.choices_for_matter(session, user, matter),
            **_application_context(
                session,
                matter,
                window=False,
                values=_entered(form),
                errors=_field_errors(e),
                message=e.detail,
            ),
        )
    return RedirectResponse(f"/my/cases/{case.id}", status_code=303)


@router.get("/my/cases")
def my_cases(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    _require(user, APPLICANTS, "“我的办件”仅供个人或法人账户使用")
    cases = service.list_cases(session, user)
    return render(request, "cases/my_list.html", user, cases=cases, labels=LABELS)


def _my_detail(
    request: Request,
    session: SessionDep,
    user: Account,
    case: Case,
    *,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    message: str | None = None,
    values: dict[str, Any] | None = None,
    rate_values: dict[str, str] | None = None,
) -> Response:
    ctx = _detail_context(session, user, case)
    ctx.update(
        errors=errors or {},
        message=message,
        values=values if values is not None else dict(case.form_data or {}),
        rate_values=rate_values or {},
        done=request.query_params.get("done"),
    )
    return render(request, "cases/my_detail.html", user, status_code=status_code, **ctx)


@router.get("/my/cases/{case_id}")
def my_case(case_id: str, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    _require(user, APPLICANTS, "“我的办件”仅供个人或法人账户使用")
    case = service.get_case(session, user, _case_id(case_id))
    return _my_detail(request, session, user, case)


@router.post("/my/cases/{case_id}/resubmit", dependencies=[CsrfChecked])
def my_resubmit(
    case_id: str, request: Request, session: SessionDep, user: CurrentUser, form: FormDep
) -> Response:
    _require(user, APPLICANTS, "只有申请人本人可以补正")
    cid = _case_id(case_id)
    case = service.get_case(session, user, cid)
    matter = catalog.get_matter(session, case.matter_code)
    try:
        form_data = catalog_domain.coerce_form(matter.form_schema, _raw_form(form))
        ids = _store_files(request, session, user, matter, form)
        service.resubmit(session, user, cid, form_data, ids, _text(form, "comment"))
    except PermissionDenied:
        raise
    except DomainError as e:
        form_error(session)
        case = service.get_case(session, user, cid)
        return _my_detail(
            request,
            session,
            user,
            case,
            status_code=_status(e),
            errors=_field_errors(e),
            message=e.detail,
            values=_entered(form),
        )
    return RedirectResponse(f"/my/cases/{cid}?done=resubmit", status_code=303)


@router.post("/my/cases/{case_id}/rate", dependencies=[CsrfChecked])
def my_rate(
    case_id: str,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    score: Annotated[str, Form()] = "",
    comment: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    _require(user, APPLICANTS, "只有申请人本人可以评价")
    cid = _case_id(case_id)
    try:
        try:
            value = int(score)
        except ValueError:
            raise ValidationFailed(
                "请选择评价等级", errors=[{"field": "score", "message": "请选择 1 至 5 之一"}]
            ) from None
        service.rate(session, user, cid, value, comment.strip())
    except PermissionDenied:
        raise
    except DomainError as e:
        form_error(session)
        case = service.get_case(session, user, cid)
        return _my_detail(
            request,
            session,
            user,
            case,
            status_code=_status(e),
            errors=_field_errors(e),
            message=e.detail,
            rate_values={"score": score, "comment": comment},
        )
    return RedirectResponse(f"/my/cases/{cid}?done=rate", status_code=303)


# --- attachments -------------------------------------------------------------------


@router.get("/cases/{case_id}/attachments/{attachment_id}")
def download_attachment(
    case_id: str, attachment_id: str, request: Request, session: SessionDep, user: CurrentUser
) -> Response:
    """A stored material, to whoever may see its case."""
    case = service.get_case(session, user, _case_id(case_id))
    att = next((a for a in case.attachments if str(a.id) == attachment_id), None)
    path = blob_path(request.app.state.settings.upload_dir, att.sha256) if att else None
    if att is None or path is None or not path.is_file():
        raise NotFound("附件不存在", type="unknown-attachment")
    return FileResponse(
        path,
        media_type=att.content_type,
        filename=att.filename,
        content_disposition_type="attachment",
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store"},
    )


# --- window clerk desk -------------------------------------------------------------


def _require_clerk(user: Account) -> None:
    _require(user, (Role.CLERK,), "窗口受理页面仅供窗口受理员使用")


@router.get("/window")
def window_home(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    _require_clerk(user)
    cases = service.list_cases(session, user)
    return render(request, "cases/window_list.html", user, cases=cases, labels=LABELS)


@router.get("/window/new")
def window_choose(
    request: Request, session: SessionDep, user: CurrentUser, matter_code: str | None = None
) -> Response:
    _require_clerk(user)
    if matter_code:
        return RedirectResponse(f"/window/new/{matter_code}", status_code=303)
    matters = [m for m in catalog.list_matters(session) if Mode.PROXY.value in m.modes]
    return render(request, "cases/window_choose.html", user, matters=matters)


def _window_page(
    request: Request,
    session: Session,
    user: Account,
    matter: Any,
    *,
    values: dict[str, Any],
    errors: dict[str, str],
    message: str | None = None,
    status_code: int = 200,
) -> Response:
    ctx = _application_context(
        session, matter, window=True, values=values, errors=errors, message=message
    )
    return render(request, "cases/window_new.html", user, status_code=status_code, **ctx)


@router.get("/window/new/{matter_code}")
def window_new(
    matter_code: str, request: Request, session: SessionDep, user: CurrentUser
) -> Response:
    _require_clerk(user)
    matter = _open_matter(session, matter_code)
    values = {"applicant_type": "resident", "delivery_method": "window", "mode": "proxy"}
    return _window_page(request, session, user, matter, values=values, errors={})


@router.post("/window/new/{matter_code}", dependencies=[CsrfChecked])
def window_submit(
    matter_code: str, request: Request, session: SessionDep, user: CurrentUser, form: FormDep
) -> Response:
    _require_clerk(user)
    matter = _open_matter(session, matter_code)
    try:
        applicant = service.WindowApplicant(
            name=_text(form, "applicant_name"),
            identifier=_text(form, "applicant_identifier"),
            applicant_type=_text(form, "applicant_type") or Role.RESIDENT.value,
            identity_verified=form.get("identity_verified") is not None,
            materials_checked=form.get("materials_checked") is not None,
            phone=_text(form, "phone") or None,
        )
        app = _read_application(form, matter, window=True)
        app.attachment_ids = _store_files(request, session, user, matter, form)
        case = service.submit_at_window(session, user, applicant, app)
    except PermissionDenied:
        raise
    except DomainError as e:
        form_error(session)
        matter = catalog.get_matter(session, matter_code)
        return _window_page(
            request,
            session,
            user,
            matter,
            values=_entered(form),
            errors=_field_errors(e),
            message=e.detail,
            status_code=_status(e),
        )
    return RedirectResponse(f"/window/cases/{case.id}", status_code=303)


@router.get("/window/cases/{case_id}")
def window_case(case_id: str, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    _require_clerk(user)
    case = service.get_case(session, user, _case_id(case_id))
    return render(request, "cases/window_detail.html", user, **_detail_context(session, user, case))


# --- officer workbench ---------------------------------------------------------------


def _require_desk(user: Account) -> None:
    _require(user, STAFF_DESK, "审批工作台仅供审核/审批人员和督查督办人员使用")


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
    ctx = _detail_context(session, user, case)
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
        evidence=evidence.panel(session, user, case),
    )
    return render(request, "cases/workbench_detail.html", user, status_code=status_code, **ctx)


@router.get("/workbench/cases/{case_id}")
def workbench_case(
    case_id: str, request: Request, session: SessionDep, user: CurrentUser
) -> Response:
    _require_desk(user)
    case = service.get_case(session, user, _case_id(case_id))
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
    _require(user, (Role.OFFICER,), "只有主管部门的审核/审批人员可以办理办件")
    cid = _case_id(case_id)
    try:
        try:
            step = Action(action)
        except ValueError:
            raise ValidationFailed(
                "未知的办理动作", errors=[{"field": "action", "message": "不是允许的取值"}]
            ) from None
        service.act(session, user, cid, step, comment.strip(), result_text.strip() or None)
    except PermissionDenied:
        raise
    except DomainError as e:
        form_error(session)
        case = service.get_case(session, user, cid)
        return _workbench_detail(
            request,
            session,
            user,
            case,
            status_code=_status(e),
            errors=_field_errors(e),
            message=e.detail,
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
    _require(user, (Role.OFFICER,), "只有主管部门的人员可以办结整改事项")
    try:
        rid = uuid.UUID(item_id)
    except ValueError:
        raise NotFound("整改事项不存在或无权处理") from None
    try:
        service.close_rectification(session, user, rid, response.strip())
    except (PermissionDenied, NotFound):
        raise
    except DomainError as e:
        form_error(session)
        return _rectifications_page(
            request,
            session,
            user,
            status_code=_status(e),
            message=e.detail,
            failed={"item": item_id, "response": response},
        )
    return RedirectResponse("/workbench/rectifications?done=1", status_code=303)
