from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from sqlalchemy.orm import Session, object_session

from tongban.cases import access, lists, service
from tongban.cases.attachments import insert_upload
from tongban.cases.domain import rating_opens_rectification
from tongban.cases.models import Case
from tongban.cases.schemas import (
    ApplicationCreate,
    AttachmentPublic,
    CaseAction,
    CasePublic,
    CaseSummary,
    RatingCreate,
    RatingPublic,
    Resubmission,
    WindowApplicationCreate,
)
from tongban.catalog import service as catalog
from tongban.identity.domain import mask_id_number
from tongban.identity.models import Account
from tongban.kernel import paging
from tongban.web.deps import AuthenticatedUnit, CurrentUser, SessionDep, SettingsDep

router = APIRouter(prefix="/api/v1", tags=["cases"])


def case_public(actor: Account, case: Case) -> CasePublic:
    """A case as the API shows it; the identifier and the form's personal identifiers are
    masked unless the viewer handles it."""
    handles = access.sees_full_identifiers(actor, case)
    ident = case.applicant_identifier if handles else mask_id_number(case.applicant_identifier)
    session = object_session(case)
    schema = catalog.form_schema_of(session, case.matter_code) if session is not None else None
    form_data = access.visible_form_data(actor, case, schema)
    return CasePublic.model_validate(
        {
            **CaseSummary.model_validate(case).model_dump(),
            "applicant_type": case.applicant_type,
            "applicant_identifier_masked": ident,
            "receiving_jurisdiction": case.receiving_jurisdiction,
            "competent_city": case.competent_city,
            "authority_id": case.authority_id,
            "handoff": case.handoff,
            "form_data": form_data,
            "delivery_method": case.delivery_method,
            "result_text": case.result_text,
            "time_limit_days": case.time_limit_days,
            "accepted_at": case.accepted_at,
            "closed_at": case.closed_at,
            "parent_number": case.parent.number if case.parent else None,
            "subtask_numbers": [s.number for s in case.subtasks],
            "events": case.events,
            "attachments": case.attachments,
            "available_actions": [a.value for a in service.available_actions(actor, case)],
        }
    )


def _application(body: ApplicationCreate) -> service.Application:
    return service.Application(
        matter_code=body.matter_code,
        competent_jurisdiction=body.competent_jurisdiction,
        competent_city=body.competent_city,
        form_data=body.form_data,
        mode=body.mode,
        delivery_method=body.delivery_method,
        delivery_address=body.delivery_address,
        consent=body.consent,
        attachment_ids=body.attachment_ids,
        joint_jurisdictions=body.joint_jurisdictions,
        phone=body.phone,
        evidence_consent=body.evidence_consent,
        licences=dict(body.licences),
    )


@router.post("/attachments", response_model=AttachmentPublic, status_code=201)
async def upload(
    unit: AuthenticatedUnit,
    settings: SettingsDep,
    material_code: Annotated[str, Form(min_length=1, max_length=40)],
    file: Annotated[UploadFile, File()],
) -> object:
    """Upload one material (PDF, PNG or JPEG); pass its id in `attachment_ids` when applying."""

    # The file is read and stored, and the caller checked, in the thread pool (one trip,
    # deps.Unit), never on the event loop, where a database lock wait would stall every
    # other request.
    def work(session: Session, actor: Account) -> AttachmentPublic:
        data = file.file.read(settings.max_upload_bytes + 1)
        # One Core INSERT, no unit-of-work flush: nothing reads the row back in this
        # request (issue 14); the application claims it later by its id.
        att = insert_upload(
            session,
            actor,
            material_code=material_code,
            filename=file.filename or "upload",
            data=data,
            upload_dir=settings.upload_dir,
            max_bytes=settings.max_upload_bytes,
        )
        return AttachmentPublic.model_validate(att)

    return await unit.run(work)


@router.post("/cases", response_model=CasePublic, status_code=201)
async def submit(body: ApplicationCreate, unit: AuthenticatedUnit) -> CasePublic:
    """Apply online (全程网办 / 多地联办) for a matter of any jurisdiction."""

    # Session, caller, service, response and commit in one thread-pool trip (deps.Unit).
    def work(session: Session, actor: Account) -> CasePublic:
        case = service.submit_online(session, actor, _application(body))
        return case_public(actor, case)

    return await unit.run(work)


@router.post("/window/cases", response_model=CasePublic, status_code=201)
def window_submit(
    body: WindowApplicationCreate, actor: CurrentUser, session: SessionDep
) -> CasePublic:
    """A window clerk receives an application for another jurisdiction (异地代收代办)."""
    applicant = service.WindowApplicant(
        name=body.applicant_name,
        identifier=body.applicant_identifier,
        applicant_type=body.applicant_type,
        identity_verified=body.identity_verified,
        materials_checked=body.materials_checked,
        phone=body.phone,
    )
    case = service.submit_at_window(session, actor, applicant, _application(body))
    return case_public(actor, case)


@router.get("/cases", response_model=list[CaseSummary])
def list_cases(
    actor: CurrentUser,
    session: SessionDep,
    request: Request,
    response: Response,
    state: str | None = None,
    deadline_flag: str | None = None,
    q: str | None = None,
    matter: str | None = None,
    city: str | None = None,
    since: str | None = None,
    until: str | None = None,
    cursor: str | None = None,
    page_size: str | None = None,
) -> object:
    """The cases the caller may see (their own, their authority's, their window's), a page
    at a time (default 50, at most 200), filtered by state, deadline flag, matter, city,
    submission dates (`since`/`until`, YYYY-MM-DD) and `q` (part of the number, the
    applicant's name or the matter, or an ID number, full or masked). The next page is
    in the `Link: <…>; rel="next"` header (an opaque `cursor`; a tampered one is 422)."""
    f = lists.filters(
        q=q, matter=matter, state=state, deadline_flag=deadline_flag,
        since=since, until=until, city=city,
    )  # fmt: skip
    result = lists.page(session, actor, f, lists.request(actor, cursor, page_size))
    paging.link_next(request, response, result)
    return [CaseSummary.model_validate(r) for r in result.rows]


@router.get("/cases/{case_ref}", response_model=CasePublic)
def get_case(case_ref: str, actor: CurrentUser, session: SessionDep) -> CasePublic:
    """One case, by id or by number, with its timeline."""
    ref: uuid.UUID | str
    try:
        ref = uuid.UUID(case_ref)
    except ValueError:
        ref = case_ref
    return case_public(actor, service.get_case(session, actor, ref))


@router.post("/cases/{case_id}/actions", response_model=CasePublic)
def act(
    case_id: uuid.UUID, body: CaseAction, actor: CurrentUser, session: SessionDep
) -> CasePublic:
    """An officer's step: accept, refuse, request_correction, start_review, approve, deny,
    issue_result, deliver."""
    from tongban.cases.domain import Action
    from tongban.errors import ValidationFailed

    try:
        action = Action(body.action)
    except ValueError:
        raise ValidationFailed(
            "未知的办理动作", errors=[{"field": "action", "message": "不是允许的取值"}]
        ) from None
    if action is Action.REQUEST_CORRECTION and body.items is not None:
        from tongban.cases.domain import CORRECTION_DAYS_DEFAULT, CorrectionItem

        items = [CorrectionItem(i.code, i.name, i.reason) for i in body.items]
        days = body.deadline_days if body.deadline_days is not None else CORRECTION_DAYS_DEFAULT
        case = service.request_correction(session, actor, case_id, body.comment, items, days)
        return case_public(actor, case)
    case = service.act(session, actor, case_id, action, body.comment, body.result_text)
    return case_public(actor, case)


@router.post("/cases/{case_id}/resubmit", response_model=CasePublic)
def resubmit(
    case_id: uuid.UUID, body: Resubmission, actor: CurrentUser, session: SessionDep
) -> CasePublic:
    """补正: the applicant resubmits after a correction request."""
    case = service.resubmit(
        session, actor, case_id, body.form_data, body.attachment_ids, body.comment
    )
    return case_public(actor, case)


@router.post("/cases/{case_id}/rating", response_model=RatingPublic, status_code=201)
def rate(case_id: uuid.UUID, body: RatingCreate, actor: CurrentUser, session: SessionDep) -> object:
    """好差评: rate a delivered case 1–5."""
    rating = service.rate(session, actor, case_id, body.score, body.comment)
    out = RatingPublic.model_validate(rating)
    out.rectification_opened = rating_opens_rectification(rating.score)
    return out
