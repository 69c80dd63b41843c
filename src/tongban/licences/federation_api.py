"""The federation trust list when the federation file names a trust-root node: only that
node signs and serves it; every other node answers 307 Temporary Redirect to the same
path on the root (so clients, and `tongban trust sync` pointed at any node — it follows
the redirect — get the one list, signed by the one root key). Mounted before api.py, whose routes serve the list when
this node signs it itself."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from tongban.licences import api, federation
from tongban.web.deps import SessionDep, node_settings

router = APIRouter(prefix="/api/v1", tags=["licences"])


def _at_root(request: Request, path: str) -> RedirectResponse | None:
    root = federation.trust_root_url(node_settings(request))
    return RedirectResponse(f"{root}{path}", status_code=307) if root else None


@router.get("/trust-list", include_in_schema=False)
def trust_list(request: Request, session: SessionDep) -> Response:
    """The trust list: redirected to the trust-root node, or signed here (api.py)."""
    return _at_root(request, "/api/v1/trust-list") or api.trust_list(session)


@router.get("/trust-list/root", include_in_schema=False, response_model=None)
def trust_root(request: Request, session: SessionDep) -> Response | dict[str, object]:
    """The root public keys to pin: the trust-root node's, or this node's (api.py)."""
    return _at_root(request, "/api/v1/trust-list/root") or api.trust_root(session)
