"""The administrator's staff-account pages (账号管理): the list of staff accounts, and one
account with its post, the form that changes its role, and the history of its changes."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from tongban.errors import DomainError, ValidationFailed
from tongban.identity import service
from tongban.identity.domain import (
    ASSIGNABLE_ROLES,
    DUTY_LABELS,
    POST_OF_ROLE,
    ROLE_LABELS,
    ROLE_REASON_MAX,
    Role,
)
from tongban.identity.models import Account
from tongban.web.deps import CsrfChecked, CurrentUser, FormDep, SessionDep
from tongban.web.pages import form_failure, render

router = APIRouter(include_in_schema=False)

#: The inputs of the role form.
_FIELDS = ("role", "duty", "authority_id", "city_code", "jurisdiction_code", "reason")


def _labels() -> dict[str, Any]:
    return {
        "roles": {r.value: ROLE_LABELS[r] for r in ASSIGNABLE_ROLES},
        "duties": {d.value: label for d, label in DUTY_LABELS.items()},
        "posts": {r.value: POST_OF_ROLE[r].value for r in ASSIGNABLE_ROLES},
    }


#: Accounts listed at once; more are found by role or search.
_SHOWN = 100


@router.get("/admin/accounts")
def staff_list(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    role: str | None = None,
    q: str | None = None,
) -> Response:
    """Staff accounts, of one role or all, whose username or name contains `q`."""
    accounts = service.staff_accounts(session, user, role=role or None, query=q, limit=_SHOWN + 1)
    return render(
        request,
        "identity/admin_accounts.html",
        user,
        accounts=accounts[:_SHOWN],
        more=len(accounts) > _SHOWN,
        role=role or "",
        q=q or "",
        labels=_labels(),
    )


def _current_values(account: Account) -> dict[str, str]:
    return {
        "role": account.role,
        "duty": account.duty or "",
        "authority_id": str(account.authority_id) if account.authority_id else "",
        "city_code": account.city_code or "",
        "jurisdiction_code": account.jurisdiction_code or "",
        "reason": "",
    }


def _account_page(
    request: Request,
    session: Session,
    user: Account,
    account_id: uuid.UUID,
    status_code: int = 200,
    **ctx: Any,
) -> Response:
    """The account's page, read from the database (call after any rollback)."""
    from tongban.regions import service as regions

    account = service.staff_account(session, user, account_id)
    ctx.setdefault("values", _current_values(account))
    ctx.setdefault("errors", {})
    ctx.setdefault("message", None)
    ctx.setdefault("changed", False)
    authorities = regions.list_authorities(session)
    return render(
        request,
        "identity/admin_account.html",
        user,
        status_code=status_code,
        account=account,
        own=account.id == user.id,
        authority=next((a for a in authorities if a.id == account.authority_id), None),
        authorities=authorities,
        cities=regions.list_cities(session),
        jurisdictions=regions.list_jurisdictions(session),
        events=service.role_events(session, account),
        labels=_labels(),
        reason_max=ROLE_REASON_MAX,
        **ctx,
    )


@router.get("/admin/accounts/{account_id}")
def staff_detail(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    account_id: uuid.UUID,
    changed: bool = False,
) -> Response:
    return _account_page(request, session, user, account_id, changed=changed)


def _authority_id(value: str) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ValidationFailed(
            "角色变更信息有误", errors=[{"field": "authority_id", "message": "部门不存在"}]
        ) from None


@router.post("/admin/accounts/{account_id}/role", dependencies=[CsrfChecked])
def staff_change_role(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    account_id: uuid.UUID,
    form: FormDep,
) -> Response:
    """Change the account's role and post (with a reason); its sessions and tokens end."""
    service.staff_account(session, user, account_id)  # 403 for non-admins, 404 unknown
    values = {name: str(form.get(name, "")).strip() for name in _FIELDS}
    role = values["role"]
    try:
        service.change_role(
            session,
            user,
            account_id,
            role,
            reason=values["reason"],
            duty=values["duty"] or None,
            # Only the post the chosen role needs is taken from the form: the selects of
            # the others still hold the account's current values.
            authority_id=_authority_id(values["authority_id"]) if role == Role.OFFICER else None,
            city_code=values["city_code"] or None,
            jurisdiction_code=values["jurisdiction_code"] or None,
        )
    except DomainError as e:
        refused = form_failure(session, e)
        return _account_page(request, session, user, account_id, values=values, **refused.context)
    return RedirectResponse(f"/admin/accounts/{account_id}?changed=1", status_code=303)
