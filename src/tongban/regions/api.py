from __future__ import annotations

from fastapi import APIRouter

from tongban.regions import service
from tongban.regions.schemas import AuthorityPublic, CityPublic, DistrictPublic, JurisdictionPublic
from tongban.web.deps import SessionDep

router = APIRouter(prefix="/api/v1", tags=["regions"])


@router.get("/jurisdictions", response_model=list[JurisdictionPublic])
def jurisdictions(session: SessionDep) -> object:
    """Jurisdictions of the federation (province-level divisions)."""
    return service.list_jurisdictions(session)


@router.get("/cities", response_model=list[CityPublic])
def cities(session: SessionDep, jurisdiction: str | None = None) -> object:
    """Prefecture-level cities with their GB/T 2260 codes."""
    return service.list_cities(session, jurisdiction)


@router.get("/districts", response_model=list[DistrictPublic])
def districts(session: SessionDep) -> object:
    """Districts known to the platform (the demonstration zone among them)."""
    return service.list_districts(session)


@router.get("/authorities", response_model=list[AuthorityPublic])
def authorities(
    session: SessionDep,
    jurisdiction: str | None = None,
    city: str | None = None,
    type: str | None = None,
) -> object:
    """Authorities that matters are assigned to."""
    return service.list_authorities(session, jurisdiction, city, type)
