"""Pages of the applicant's portal: apply, my cases, correction, rating, downloads."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from tongban.cases import results, service
from tongban.cases.attachments import serve_attachment
from tongban.cases.kept import (
    attach_kept,
    consume_kept,
    keep_after_refusal,
    kept_context,
    resubmission,
)
from tongban.cases.models import Case
from tongban.cases.pages import (
    APPLICANTS,
    INPUTS,
    application_context,
    detail_context,
    entered_values,
    form_text,
    open_matter,
    parse_case_id,
    raw_form,
    read_application,
    require_role,
    store_files,
    store_item_files,
)
from tongban.cases.views_lists import case_list_page
from tongban.catalog import service as catalog
from tongban.errors import DomainError, FieldError, PermissionDenied, ValidationFailed
from tongban.identity.models import Account
from tongban.licences import service as licences
from tongban.web.deps import (
    CsrfChecked,
    CurrentUser,
    FormDep,
    OptionalUser,
    SessionDep,
    SettingsDep,
)
from tongban.web.downloads import file_download
from tongban.web.pages import form_failure, render

router = APIRouter(include_in_schema=False)


@router.get("/apply/{matter_code}")
def apply_page(
    matter_code: str, request: Request, session: SessionDep, user: CurrentUser
) -> Response:
    require_role(user, APPLICANTS, "只有个人或法人账户可以网上申请")
    matter = open_matter(session, matter_code)
    values: dict[str, Any] = {"delivery_method": "electronic", "phone": user.phone or ""}
    if user.jurisdiction_code:
        values["competent_jurisdiction"] = user.jurisdiction_code
    return render(
        request,
        "cases/apply.html",
        user,
        wallet=licences.choices_for_matter(session, user, matter),
        **application_context(session, matter, window=False, values=values, errors={}),
    )


@router.post("/apply/{matter_code}", dependencies=[CsrfChecked])
def apply(
    matter_code: str,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    form: FormDep,
    settings: SettingsDep,
) -> Response:
    require_role(user, APPLICANTS, "只有个人或法人账户可以网上申请")
    matter = open_matter(session, matter_code)
    # Files kept from an earlier refusal of this form (cases.kept), this account's only.
    kept = resubmission(session, user, form, matter, settings.upload_dir)
    try:
        app = read_application(form, matter, window=False)
        app.attachment_ids = store_files(request, session, user, matter, form)
        app.attachment_ids += attach_kept(session, user, kept, settings.upload_dir)
        case = service.submit_online(session, user, app)
        consume_kept(session, kept)
    except PermissionDenied:
        raise
    except DomainError as e:
        refused = form_failure(session, e, inputs=INPUTS)
        matter = catalog.get_matter(session, matter_code)
        keep = keep_after_refusal(session, user, form, matter, kept, settings, refused.errors)
        ctx = application_context(
            session,
            matter,
            window=False,
            values=entered_values(form),
            errors=refused.errors,
            message=refused.message,
        )
        wallet = licences.choices_for_matter(session, user, matter)
        return render(
            request,
            "cases/apply.html",
            user,
            status_code=refused.status_code,
            wallet=wallet,
            **kept_context(keep),
            **ctx,
        )
    return RedirectResponse(f"/my/cases/{case.id}", status_code=303)


@router.get("/my/cases")
def my_cases(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    require_role(user, APPLICANTS, "“我的办件”仅供个人或法人账户使用")
    return case_list_page(request, session, user, "cases/my_list.html", "/my/cases")


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
    ctx = detail_context(session, user, case)
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
    require_role(user, APPLICANTS, "“我的办件”仅供个人或法人账户使用")
    case = service.get_case(session, user, parse_case_id(case_id))
    return _my_detail(request, session, user, case)


@router.post("/my/cases/{case_id}/resubmit", dependencies=[CsrfChecked])
def my_resubmit(
    case_id: str, request: Request, session: SessionDep, user: CurrentUser, form: FormDep
) -> Response:
    require_role(user, APPLICANTS, "只有申请人本人可以补正")
    cid = parse_case_id(case_id)
    case = service.get_case(session, user, cid)
    matter = catalog.get_matter(session, case.matter_code)
    try:
        form_data = catalog.coerce_form(matter.form_schema, raw_form(form))
        ids = store_files(request, session, user, matter, form)
        ids += store_item_files(request, session, user, service.open_correction(case), form)
        service.resubmit(session, user, cid, form_data, ids, form_text(form, "comment"))
    except PermissionDenied:
        raise
    except DomainError as e:
        refused = form_failure(session, e, inputs=INPUTS)
        case = service.get_case(session, user, cid)
        return _my_detail(
            request, session, user, case, **refused.context, values=entered_values(form)
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
    require_role(user, APPLICANTS, "只有申请人本人可以评价")
    cid = parse_case_id(case_id)
    try:
        try:
            value = int(score)
        except ValueError:
            raise ValidationFailed(
                "请选择评价等级", errors=[FieldError("score", "请选择 1 至 5 之一")]
            ) from None
        service.rate(session, user, cid, value, comment.strip())
    except PermissionDenied:
        raise
    except DomainError as e:
        refused = form_failure(session, e, inputs=INPUTS)
        case = service.get_case(session, user, cid)
        rate_values = {"score": score, "comment": comment}
        return _my_detail(request, session, user, case, **refused.context, rate_values=rate_values)
    return RedirectResponse(f"/my/cases/{cid}?done=rate", status_code=303)


@router.post("/my/cases/{case_id}/rectification", dependencies=[CsrfChecked])
def my_rectification_answer(
    case_id: str,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    resolved: Annotated[str, Form()] = "",
    reason: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """The applicant's answer to the authority's reply to their 差评: 已解决 or 未解决."""
    require_role(user, APPLICANTS, "只有申请人本人可以确认整改结果")
    cid = parse_case_id(case_id)
    try:
        if resolved not in ("yes", "no"):
            errors = [FieldError("resolved", "请选择“已解决”或“未解决”")]
            if not reason.strip():  # every missing piece at once
                errors.append(FieldError("reason", "如未解决，请说明仍未解决的问题"))
            raise ValidationFailed("请选择整改结果", errors=errors)
        service.answer_rectification(session, user, cid, resolved == "yes", reason.strip())
    except PermissionDenied:
        raise
    except DomainError as e:
        refused = form_failure(session, e, inputs=INPUTS)
        case = service.get_case(session, user, cid)
        shown = {"resolved": resolved, "reason": reason}
        return _my_detail(request, session, user, case, **refused.context, rate_values=shown)
    return RedirectResponse(f"/my/cases/{cid}?done=rectification#rectification", status_code=303)


# --- attachments -------------------------------------------------------------------


@router.get("/cases/{case_id}/attachments/{attachment_id}")
def download_attachment(
    case_id: str,
    attachment_id: str,
    session: SessionDep,
    settings: SettingsDep,
    user: CurrentUser,
) -> Response:
    """A stored material, to whoever may see its case."""
    case = service.get_case(session, user, parse_case_id(case_id))
    att = next((a for a in case.attachments if str(a.id) == attachment_id), None)
    return serve_attachment(settings.upload_dir, att)


# --- window clerk desk -------------------------------------------------------------


# --- result documents --------------------------------------------------------------


@router.get("/cases/{case_id}/documents/{document_id}")
@router.get("/my/cases/{case_id}/documents/{document_id}")
def download_document(
    case_id: str, document_id: str, session: SessionDep, user: CurrentUser
) -> Response:
    """A result document (决定书), to whoever may see its case: the stored bytes, as
    issued."""
    case = service.get_case(session, user, parse_case_id(case_id))
    doc = results.document_of(case, document_id)
    path = results.document_path(session, doc)
    return file_download(path, "application/pdf", results.download_name(case, doc))


@router.get("/verify/documents/{token}")
def verify_document(
    token: str, request: Request, session: SessionDep, user: OptionalUser
) -> Response:
    """The page a result document's QR code opens: whether it was issued here, and what
    it says, for anyone (no sign-in)."""
    found = results.verify(session, token)
    return render(
        request,
        "cases/verify_document.html",
        user,
        status_code=200 if found.genuine else 404,
        found=found,
    )
