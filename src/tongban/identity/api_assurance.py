"""JSON API of identity assurance: one's own level and history, and the window check."""

from __future__ import annotations

from fastapi import APIRouter

from tongban.identity import assurance
from tongban.identity.models import Account
from tongban.identity.schemas import (
    AccountEventPublic,
    AssurancePublic,
    WindowCheckCreate,
    WindowSearch,
)
from tongban.web.deps import CurrentUser, SessionDep

router = APIRouter(prefix="/api/v1", tags=["identity"])


def _public(session: SessionDep, account: Account) -> AssurancePublic:
    return AssurancePublic(
        account_id=account.id,
        username=account.username,
        display_name=account.display_name,
        role=account.role,
        assurance_level=account.assurance_level,
        proven=assurance.is_proven(account),
        events=[
            AccountEventPublic.model_validate(e) for e in assurance.account_events(session, account)
        ],
    )


@router.get("/me/assurance", response_model=AssurancePublic)
def my_assurance(account: CurrentUser, session: SessionDep) -> AssurancePublic:
    """The caller's identity assurance level and every change of it."""
    return _public(session, account)


@router.post("/identity/window-checks/search", response_model=list[AssurancePublic])
def find_for_window(
    body: WindowSearch, actor: CurrentUser, session: SessionDep
) -> list[AssurancePublic]:
    """Window clerks: the accounts registered under the ID number (or credit code) read
    from the document of the person at the window (in the body: never an ID number in a
    URL)."""
    return [_public(session, a) for a in assurance.find_for_window(session, actor, body.identifier)]


@router.post("/identity/window-checks", response_model=AssurancePublic)
def window_check(
    body: WindowCheckCreate, actor: CurrentUser, session: SessionDep
) -> AssurancePublic:
    """Window clerks: record that the account holder's identity document was seen
    (身份证读卡 / 证件核验) and matches the account; the account becomes window-verified
    and the event names the clerk."""
    account = assurance.verify_at_window(
        session,
        actor,
        body.account_id,
        identifier=body.identifier,
        method=body.method,
        note=body.note,
    )
    return _public(session, account)
