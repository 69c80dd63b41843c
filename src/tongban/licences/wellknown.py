"""SD-JWT VC issuer metadata: GET /.well-known/jwt-vc-issuer/issuers/<jurisdiction code>.

The issuer id of a jurisdiction is <public url>/issuers/<code>; per the SD-JWT VC
specification its metadata lives at the well-known path inserted between the host and
the issuer's path."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from tongban.errors import NotFound
from tongban.licences import service
from tongban.web.deps import SessionDep

router = APIRouter(tags=["licences"])


@router.get("/.well-known/jwt-vc-issuer/issuers/{jurisdiction_code}")
def issuer_metadata(jurisdiction_code: str, session: SessionDep) -> dict[str, Any]:
    """{"issuer", "jwks": {"keys": [...]}}: every licence key of the jurisdiction, current
    and retired (with its validity window as nbf/exp)."""
    if not (jurisdiction_code.isdigit() and len(jurisdiction_code) == 6):
        raise NotFound("签发方不存在", type="unknown-issuer")
    return service.issuer_metadata(session, jurisdiction_code)
