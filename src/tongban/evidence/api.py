"""JSON API of purpose-bound evidence and of the data-use log."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from tongban.evidence import service
from tongban.evidence.models import Consent, DataAccess, EvidenceRequest
from tongban.evidence.schemas import (
    ConsentPublic,
    ConsentWithdraw,
    DataAccessPublic,
    EvidenceCataloguePublic,
    EvidenceKindPublic,
    EvidenceRequestCreate,
    EvidenceRequestPublic,
    PurposePublic,
)
from tongban.identity.domain import mask_id_number
from tongban.web.deps import CurrentUser, SessionDep

router = APIRouter(prefix="/api/v1", tags=["evidence"])


def request_public(req: EvidenceRequest, created: bool = True) -> EvidenceRequestPublic:
    cat = service.catalogue()
    kind = cat.kind(req.kind)
    purpose = cat.purpose(req.purpose)
    return EvidenceRequestPublic(
        id=req.id,
        case_number=req.case_number,
        kind=req.kind,
        kind_label=kind.label if kind else req.kind,
        purpose=req.purpose,
        purpose_label=purpose.label if purpose else req.purpose,
        provider_jurisdiction=req.provider_jurisdiction,
        requester_authority_name=req.requester_authority_name,
        officer_name=req.officer_name,
        status=req.status,
        reason_code=req.reason_code,
        reason=req.reason,
        data=req.data,
        requested_at=req.requested_at,
        answered_at=req.answered_at,
        created=created,
    )


def access_public(a: DataAccess, *, with_subject: bool = False) -> DataAccessPublic:
    kinds, purposes = service.data_use_labels()
    kind = kinds.get(a.kind)
    purpose = purposes.get(a.purpose)
    labels = kind.field_labels if kind else {}
    return DataAccessPublic(
        at=a.at,
        requester_authority_name=a.requester_authority_name,
        requester_jurisdiction=a.requester_jurisdiction,
        officer_name=a.officer_name,
        kind=a.kind,
        kind_label=kind.label if kind else a.kind,
        fields=[labels.get(f, f) for f in a.fields],
        purpose=a.purpose,
        purpose_label=purpose.label if purpose else a.purpose,
        case_number=a.case_number,
        matter_name=a.matter_name,
        provider_jurisdiction=a.provider_jurisdiction,
        outcome=a.outcome,
        outcome_label="已提供" if a.outcome == "answered" else "已拒绝",
        reason_code=a.reason_code,
        reason=a.reason,
        subject_masked=mask_id_number(a.subject_identifier) if with_subject else None,
    )


@router.get("/evidence/catalogue", response_model=EvidenceCataloguePublic)
def evidence_catalogue() -> EvidenceCataloguePublic:
    """The evidence kinds, what each returns, who may ask, and the registered purposes."""
    cat = service.catalogue()
    return EvidenceCataloguePublic(
        kinds=[
            EvidenceKindPublic(
                code=k.code,
                label=k.label,
                description=k.description,
                subjects=sorted(k.subjects),
                provider=k.provider.value,
                fields=k.field_labels,
                requester_types=sorted(k.requester_types),
            )
            for k in cat.kinds.values()
        ],
        purposes=[
            PurposePublic(
                code=p.code,
                label=p.label,
                kinds=sorted(p.kinds),
                matters=sorted(p.matters),
                authority_types=sorted(p.authority_types),
            )
            for p in cat.purposes.values()
        ],
    )


@router.get("/cases/{case_id}/evidence", response_model=list[EvidenceRequestPublic])
def list_case_evidence(
    case_id: uuid.UUID, actor: CurrentUser, session: SessionDep
) -> list[EvidenceRequestPublic]:
    """The evidence requests of a case (its officers; supervisors read-only)."""
    return [request_public(r) for r in service.requests_for_case(session, actor, case_id)]


@router.post("/cases/{case_id}/evidence", response_model=EvidenceRequestPublic, status_code=201)
def request_case_evidence(
    case_id: uuid.UUID,
    body: EvidenceRequestCreate,
    actor: CurrentUser,
    session: SessionDep,
    response: Response,
) -> EvidenceRequestPublic:
    """Ask for evidence for a case the caller handles; 200 with the earlier request when
    it was already answered or is still pending (once-only)."""
    req, created = service.request_evidence(
        session, actor, case_id, body.kind, body.purpose, body.provider_jurisdiction
    )
    if not created:
        response.status_code = 200
    return request_public(req, created)


@router.get("/my/data-use", response_model=list[DataAccessPublic])
def my_data_use(actor: CurrentUser, session: SessionDep) -> list[DataAccessPublic]:
    """我的数据使用记录: every access to the caller's data, newest first."""
    return [access_public(a) for a in service.my_data_use(session, actor)]


@router.get("/supervision/data-use", response_model=list[DataAccessPublic])
def supervision_data_use(
    actor: CurrentUser, session: SessionDep, outcome: str | None = None
) -> list[DataAccessPublic]:
    """A supervisor's read-only view of accesses involving their jurisdiction."""
    rows = service.jurisdiction_data_use(session, actor, outcome)
    return [access_public(a, with_subject=True) for a in rows]


def _consent_out(c: Consent) -> ConsentPublic:
    return ConsentPublic(
        case_number=c.case_number,
        scopes=list(c.scopes),
        active_scopes=c.active_scopes(),
        withdrawals=list(c.withdrawals or []),
        given_at=c.given_at,
        channel=c.channel,
    )


@router.get("/my/evidence-consents", response_model=list[ConsentPublic])
def my_consents(actor: CurrentUser, session: SessionDep) -> list[ConsentPublic]:
    """The caller's consents this node holds, with what was withdrawn."""
    return [_consent_out(c) for c in service.my_consents(session, actor)]


@router.post("/my/evidence-consents/{case_number}/withdraw", response_model=ConsentPublic)
def withdraw_consent(
    case_number: str, body: ConsentWithdraw, actor: CurrentUser, session: SessionDep
) -> ConsentPublic:
    """Withdraw consent for one kind on one case (not retroactive)."""
    return _consent_out(service.withdraw_consent(session, actor, case_number[:32], body.kind))
