from __future__ import annotations

from typing import Literal

from fastapi import APIRouter

from tongban.catalog import service
from tongban.catalog.domain import Mode
from tongban.catalog.schemas import MatterPublic, MatterSummary
from tongban.regions.domain import AuthorityType
from tongban.web.deps import SessionDep

router = APIRouter(prefix="/api/v1", tags=["catalog"])


@router.get("/matters", response_model=list[MatterSummary])
def matters(
    session: SessionDep,
    q: str | None = None,
    authority_type: AuthorityType | None = None,
    mode: Mode | None = None,
    subject: Literal["个人", "法人"] | None = None,
) -> object:
    """Service matters (事项) of the catalogue; `q` searches name, code and category."""
    return service.list_matters(
        session,
        q=q,
        authority_type=authority_type.value if authority_type else None,
        mode=mode.value if mode else None,
        subject=subject,
    )


@router.get("/matters/{code}", response_model=MatterPublic)
def matter(session: SessionDep, code: str) -> object:
    """One matter's guide: materials, handling modes, time limit, application form schema."""
    return service.get_matter(session, code)
