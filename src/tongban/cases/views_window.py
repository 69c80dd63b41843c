"""Pages of the window clerk's desk (异地代收): receive an application for another
jurisdiction's matter on the applicant's behalf."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from tongban.cases import results, service
from tongban.cases.domain import Mode
from tongban.cases.kept import (
    Kept,
    attach_kept,
    consume_kept,
    keep_after_refusal,
    kept_context,
    resubmission,
)
from tongban.cases.pages import (
    INPUTS,
    application_context,
    detail_context,
    entered_values,
    form_text,
    open_matter,
    parse_case_id,
    read_application,
    require_role,
    store_files,
)
from tongban.cases.views_lists import case_list_page
from tongban.catalog import service as catalog
from tongban.errors import DomainError, PermissionDenied
from tongban.identity.domain import Role
from tongban.identity.models import Account
from tongban.web.deps import CsrfChecked, CurrentUser, FormDep, SessionDep, node_settings
from tongban.web.downloads import bytes_download
from tongban.web.pages import form_failure, render

router = APIRouter(include_in_schema=False)


def _require_clerk(user: Account) -> None:
    require_role(user, (Role.CLERK,), "窗口受理页面仅供窗口受理员使用")


@router.get("/window")
def window_home(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    _require_clerk(user)
    return case_list_page(request, session, user, "cases/window_list.html", "/window")


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
    kept: Kept | None = None,
) -> Response:
    ctx = application_context(
        session, matter, window=True, values=values, errors=errors, message=message
    )
    return render(
        request,
        "cases/window_new.html",
        user,
        status_code=status_code,
        **kept_context(kept),
        **ctx,
    )


@router.get("/window/new/{matter_code}")
def window_new(
    matter_code: str, request: Request, session: SessionDep, user: CurrentUser
) -> Response:
    _require_clerk(user)
    matter = open_matter(session, matter_code)
    values = {"applicant_type": "resident", "delivery_method": "window", "mode": "proxy"}
    return _window_page(request, session, user, matter, values=values, errors={})


@router.post("/window/new/{matter_code}", dependencies=[CsrfChecked])
def window_submit(
    matter_code: str, request: Request, session: SessionDep, user: CurrentUser, form: FormDep
) -> Response:
    _require_clerk(user)
    matter = open_matter(session, matter_code)
    settings = node_settings(request)
    # Files kept from an earlier refusal of this form: this clerk's only (403 for
    # another account's token, 410 for a forged, expired or spent one).
    kept = resubmission(session, user, form, matter, settings.upload_dir)
    try:
        applicant = service.WindowApplicant(
            name=form_text(form, "applicant_name"),
            identifier=form_text(form, "applicant_identifier"),
            applicant_type=form_text(form, "applicant_type") or Role.RESIDENT.value,
            identity_verified=form.get("identity_verified") is not None,
            materials_checked=form.get("materials_checked") is not None,
            phone=form_text(form, "phone") or None,
        )
        app = read_application(form, matter, window=True)
        app.attachment_ids = store_files(request, session, user, matter, form)
        app.attachment_ids += attach_kept(session, user, kept, settings.upload_dir)
        case = service.submit_at_window(session, user, applicant, app)
        consume_kept(session, kept)
    except PermissionDenied:
        raise
    except DomainError as e:
        refused = form_failure(session, e, inputs=INPUTS)  # nothing of the attempt stays
        matter = catalog.get_matter(session, matter_code)
        # The files chosen are kept for the resubmission (a new transaction).
        keep = keep_after_refusal(session, user, form, matter, kept, settings, refused.errors)
        return _window_page(
            request,
            session,
            user,
            matter,
            values=entered_values(form),
            kept=keep,
            **refused.context,
        )
    return RedirectResponse(f"/window/cases/{case.id}?done=received", status_code=303)


@router.get("/window/cases/{case_id}")
def window_case(case_id: str, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    _require_clerk(user)
    case = service.get_case(session, user, parse_case_id(case_id))
    ctx = detail_context(session, user, case)
    return render(
        request, "cases/window_detail.html", user, done=request.query_params.get("done"), **ctx
    )


@router.get("/window/cases/{case_id}/receipt.pdf")
def window_receipt(case_id: str, session: SessionDep, user: CurrentUser) -> Response:
    """受理回执: the printable acknowledgement the window hands the applicant."""
    _require_clerk(user)
    case = service.get_case(session, user, parse_case_id(case_id))
    names = detail_context(session, user, case)["material_names"]
    data = results.receipt(session, case, names)
    return bytes_download(data, "application/pdf", f"受理回执-{case.number}.pdf")


# --- officer workbench ---------------------------------------------------------------
