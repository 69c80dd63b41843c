"""Pages of purpose-bound evidence: the 调取证明 panel's form on the officer's workbench,
the resident's 我的数据使用记录 and the supervisor's read-only view."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from tongban.cases import service as cases
from tongban.errors import DomainError, NotFound, PermissionDenied
from tongban.evidence import service
from tongban.identity.domain import Role
from tongban.identity.models import Account
from tongban.regions import service as regions
from tongban.web.deps import CsrfChecked, CurrentUser, SessionDep
from tongban.web.pages import form_failure, render

router = APIRouter(include_in_schema=False)

OUTCOME_LABELS = {"answered": "已提供", "refused": "已拒绝"}


def _case_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("办件不存在或无权查看", type="unknown-case") from None


def _log_context(session: Session, rows: list[Any]) -> dict[str, Any]:
    kinds, purposes = service.data_use_labels()
    return {
        "rows": rows,
        "kinds": kinds,
        "purposes": purposes,
        "outcomes": OUTCOME_LABELS,
        "jurisdictions": {j.code: j.name for j in regions.list_jurisdictions(session)},
    }


def _evidence_page(
    request: Request,
    session: Session,
    user: Account,
    case_id: uuid.UUID,
    *,
    status_code: int = 200,
    message: str | None = None,
    failed: dict[str, str] | None = None,
) -> Response:
    case = cases.get_case(session, user, case_id)
    return render(
        request,
        "evidence/case_evidence.html",
        user,
        status_code=status_code,
        case=case,
        evidence=service.panel(session, user, case),
        message=message,
        failed=failed or {},
        done=request.query_params.get("done"),
    )


@router.get("/workbench/cases/{case_id}/evidence")
def case_evidence(
    case_id: str, request: Request, session: SessionDep, user: CurrentUser
) -> Response:
    if user.role not in (Role.OFFICER, Role.SUPERVISOR):
        raise PermissionDenied("调取证明仅供审核/审批人员和督查督办人员使用")
    return _evidence_page(request, session, user, _case_id(case_id))


@router.post("/workbench/cases/{case_id}/evidence", dependencies=[CsrfChecked])
def request_evidence(
    case_id: str,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    kind: Annotated[str, Form(max_length=40)] = "",
    purpose: Annotated[str, Form(max_length=40)] = "",
    provider_jurisdiction: Annotated[str, Form(max_length=6)] = "",
) -> Response:
    cid = _case_id(case_id)
    try:
        req, created = service.request_evidence(
            session, user, cid, kind, purpose, provider_jurisdiction or None
        )
    except (PermissionDenied, NotFound):
        raise
    except DomainError as e:
        refused = form_failure(session, e)
        return _evidence_page(
            request,
            session,
            user,
            cid,
            status_code=refused.status_code,
            message=refused.message,
            failed={"kind": kind, "purpose": purpose},
        )
    done = "evidence-reused"
    if created:
        done = "evidence-requested" if req.status == "pending" else "evidence-answered"
    return RedirectResponse(f"/workbench/cases/{cid}?done={done}#evidence", status_code=303)


@router.get("/my/data-use")
def my_data_use(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    rows = service.my_data_use(session, user)
    consents = service.my_consents(session, user)
    return render(
        request,
        "evidence/my_data_use.html",
        user,
        consents=consents,
        reached={c.case_number: service.withdrawal_reached(session, c) for c in consents},
        done=request.query_params.get("done", ""),
        case_links=service.my_case_links(session, user, [*rows, *consents]),
        **_log_context(session, rows),
    )


@router.post("/my/data-use/consents/withdraw", dependencies=[CsrfChecked])
def withdraw_consent(
    session: SessionDep,
    user: CurrentUser,
    case_number: Annotated[str, Form(max_length=32)] = "",
    kind: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    service.withdraw_consent(session, user, case_number, kind)
    return RedirectResponse("/my/data-use?done=consent-withdrawn", status_code=303)


@router.get("/workbench/data-use")
def supervision_data_use(
    request: Request, session: SessionDep, user: CurrentUser, outcome: str | None = None
) -> Response:
    outcome = outcome if outcome in OUTCOME_LABELS else None
    rows = service.jurisdiction_data_use(session, user, outcome)
    return render(
        request,
        "evidence/supervision.html",
        user,
        outcome=outcome or "",
        **_log_context(session, rows),
    )
