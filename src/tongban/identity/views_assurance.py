"""Pages of identity assurance: a resident's own level (我的身份核验) with the way to
raise it, the window clerk's identity check (窗口身份核验), and the OpenID Connect login
(/login/oidc/<provider> and its callback)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from tongban.errors import DomainError, NotFound, PermissionDenied
from tongban.identity import assurance, oidc
from tongban.identity.domain import APPLICANT_ROLES, ASSURANCE_LABELS, WINDOW_CHECK_LABELS, Role
from tongban.identity.models import Account
from tongban.identity.views import home_for
from tongban.web.deps import (
    CsrfChecked,
    CurrentUser,
    FormDep,
    OptionalUser,
    SessionDep,
    SettingsDep,
)
from tongban.web.pages import form_failure, render

router = APIRouter(include_in_schema=False)

#: Where the browser session keeps a started OIDC login until its callback.
_PENDING = "oidc_pending"


def _labels() -> dict[str, Any]:
    return {
        "levels": {k.value: v for k, v in ASSURANCE_LABELS.items()},
        "methods": {k.value: v for k, v in WINDOW_CHECK_LABELS.items()},
    }


# --- the resident's own level -----------------------------------------------------------------


@router.get("/my/identity")
def my_identity(
    request: Request, session: SessionDep, settings: SettingsDep, user: CurrentUser
) -> Response:
    return render(
        request,
        "identity/my_identity.html",
        user,
        proven=assurance.is_proven(user),
        level=assurance.level_label(user),
        events=assurance.account_events(session, user),
        providers=oidc.providers(settings),
        how_to=assurance.HOW_TO_RAISE,
        labels=_labels(),
    )


# --- the window check -----------------------------------------------------------------------


def _window_page(request: Request, user: Account, status_code: int = 200, **ctx: Any) -> Response:
    ctx.setdefault("accounts", None)
    ctx.setdefault("identifier", "")
    ctx.setdefault("message", None)
    ctx.setdefault("error", None)
    return render(
        request,
        "identity/window_check.html",
        user,
        status_code=status_code,
        labels=_labels(),
        **ctx,
    )


def _require_clerk(user: Account) -> None:
    if Role(user.role) is not Role.CLERK:
        raise PermissionDenied("只有窗口受理员可以核验身份")


@router.get("/window/identity")
def window_identity(request: Request, user: CurrentUser) -> Response:
    _require_clerk(user)
    return _window_page(request, user)


@router.post("/window/identity", dependencies=[CsrfChecked])
def window_search(
    request: Request, session: SessionDep, user: CurrentUser, form: FormDep
) -> Response:
    """Find the accounts registered under the number read from the document (POSTed:
    an ID number never goes into a URL)."""
    _require_clerk(user)
    identifier = str(form.get("identifier", "")).strip()
    try:
        accounts = assurance.find_for_window(session, user, identifier)
    except DomainError as e:
        refused = form_failure(session, e)
        return _window_page(
            request,
            user,
            status_code=refused.status_code,
            identifier=identifier,
            error=refused.message,
        )
    return _window_page(request, user, accounts=accounts, identifier=identifier)


@router.post("/window/identity/verify", dependencies=[CsrfChecked])
def window_verify(
    request: Request, session: SessionDep, user: CurrentUser, form: FormDep
) -> Response:
    _require_clerk(user)
    identifier = str(form.get("identifier", "")).strip()
    try:
        account_id = uuid.UUID(str(form.get("account_id", "")))
    except ValueError:
        raise NotFound("账户不存在", type="unknown-account") from None
    try:
        account = assurance.verify_at_window(
            session,
            user,
            account_id,
            identifier=identifier,
            method=str(form.get("method", "")),
            note=str(form.get("note", "")),
        )
    except DomainError as e:
        refused = form_failure(session, e)
        return _window_page(
            request,
            user,
            status_code=refused.status_code,
            identifier=identifier,
            error=refused.message,
        )
    return _window_page(
        request,
        user,
        message=f"已核验：{account.display_name}（{account.username}）的身份核验等级为"
        f"“{assurance.level_label(account)}”",
    )


# --- OpenID Connect login ---------------------------------------------------------------------


@router.get("/login/oidc/{name}")
def oidc_start(name: str, request: Request, settings: SettingsDep, user: OptionalUser) -> Response:
    """Send the browser to the provider. Signed in as a resident, the login proves the
    identity of that account; otherwise it signs in (or creates) the proven person's."""
    cfg = oidc.provider(name, settings)
    link = user.id if user is not None and Role(user.role) in APPLICANT_ROLES else None
    url, pending = oidc.begin(cfg, link_account=link)
    request.session[_PENDING] = pending
    return RedirectResponse(url, status_code=303)


@router.get("/login/oidc/{name}/callback")
def oidc_callback(
    name: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: OptionalUser,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
) -> Response:
    """The provider's redirect back: the login is checked, the account found or created
    and raised, and this browser signed in to it in a new session."""
    from tongban.web.deps import begin_web_session

    cfg = oidc.provider(name, settings)
    pending = request.session.pop(_PENDING, None)
    proven = oidc.complete(cfg, pending, state=state, code=code, error=error)
    current = None
    if pending and pending.get("link"):
        # The login was started signed in: it proves that account (still signed in).
        if user is None or str(user.id) != pending["link"]:
            raise oidc.OidcFailed("no-login-started", "登录状态已变化，请重新发起核验")
        current = user
    account = oidc.sign_in(session, proven, current)
    begin_web_session(request, session, account)
    return RedirectResponse("/my/identity" if current else home_for(account), status_code=303)
