from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm

from tongban.db import utcnow
from tongban.errors import NotAuthenticated
from tongban.identity import service
from tongban.identity.schemas import AccountPublic, RegistrationCreate, TokenPublic
from tongban.web.deps import CurrentUser, SessionDep

router = APIRouter(prefix="/api/v1", tags=["identity"])


@router.post("/auth/token", response_model=TokenPublic)
def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
) -> TokenPublic:
    """OAuth2 password grant: exchange username and password for a bearer token."""
    try:
        account = service.authenticate(session, form.username, form.password)
    except NotAuthenticated:
        # The failure count is what throttles guessing: keep it although the request fails.
        session.commit()
        raise
    value, expires = service.issue_token(session, account)
    return TokenPublic(access_token=value, expires_in=int((expires - utcnow()).total_seconds()))


@router.get("/me", response_model=AccountPublic)
def me(account: CurrentUser) -> object:
    """The account the request is authenticated as."""
    return account


@router.post("/auth/revoke", status_code=204)
def revoke(account: CurrentUser, session: SessionDep, token: str) -> None:
    """Revoke one of your own tokens."""
    service.revoke_token(session, account, token)


@router.post("/accounts", response_model=AccountPublic, status_code=201)
def register(body: RegistrationCreate, session: SessionDep) -> object:
    """Register a resident (GB 11643 ID number) or an enterprise (GB 32100 credit code)."""
    return service.register_applicant(session, **body.model_dump())
