from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from tongban.errors import DomainError, NotAuthenticated, TooManyRequests
from tongban.identity import service
from tongban.identity.domain import Role
from tongban.identity.models import Account
from tongban.web.deps import (
    CsrfChecked,
    CurrentUser,
    FormDep,
    OptionalUser,
    SessionDep,
    SettingsDep,
    begin_web_session,
    client_address,
    end_web_session,
)
from tongban.web.pages import form_failure, render, render_form_error

router = APIRouter(include_in_schema=False)

#: Where each role lands after signing in: its own workspace, never a page it may not use.
HOME_BY_ROLE = {
    Role.RESIDENT: "/my/cases",
    Role.ENTERPRISE: "/my/cases",
    Role.CLERK: "/window",
    Role.OFFICER: "/workbench",
    Role.SUPERVISOR: "/workbench",
    Role.ADMIN: "/admin/accounts",
    Role.HOSPITAL: "/medical/counter",
    Role.HOTLINE: "/tickets",
    Role.GRID: "/tickets",
    Role.DISPATCHER: "/tickets",
    Role.VENUE: "/venue/scan",
}


def home_for(account: Account) -> str:
    return HOME_BY_ROLE.get(Role(account.role), "/")


def _safe_next(value: str | None) -> str | None:
    # Only local paths: never redirect to another site after login.
    if value and value.startswith("/") and not value.startswith("//"):
        return value
    return None


@router.get("/login")
def login_page(
    request: Request, user: OptionalUser, settings: SettingsDep, next: str | None = None
) -> Response:
    return render(
        request,
        "identity/login.html",
        user,
        next=_safe_next(next) or "",
        error=None,
        oidc_providers=settings.oidc_providers,
    )


@router.post("/login", dependencies=[CsrfChecked])
def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    try:
        account = service.authenticate(
            session,
            username.strip(),
            password,
            client=client_address(request),
            settings=settings,
        )
    except (NotAuthenticated, TooManyRequests) as e:
        # The failure count is part of this request's unit of work and is committed.
        refused = form_failure(session, e, keep_writes=True)
        response = render(
            request,
            "identity/login.html",
            None,
            status_code=refused.status_code,
            next=next,
            error=refused.message,
            username=username,
            oidc_providers=settings.oidc_providers,
        )
        response.headers.update(refused.headers)
        return response
    begin_web_session(request, session, account)
    return RedirectResponse(_safe_next(next) or home_for(account), status_code=303)


@router.post("/logout", dependencies=[CsrfChecked])
def logout(request: Request, session: SessionDep) -> Response:
    end_web_session(request, session, service.EndReason.LOGOUT)
    return RedirectResponse("/", status_code=303)


@router.get("/account/password")
def password_page(request: Request, user: CurrentUser) -> Response:
    return render(request, "identity/password.html", user, errors={}, message=None, done=False)


@router.post("/account/password", dependencies=[CsrfChecked])
def change_password(
    request: Request, session: SessionDep, settings: SettingsDep, user: CurrentUser, form: FormDep
) -> Response:
    """Change one's password: every other session and every API token of the account
    ends; this session stays."""
    row = getattr(request.state, "web_session", None)
    try:
        service.change_password(
            session,
            user,
            str(form.get("current_password", "")),
            str(form.get("new_password", "")),
            keep_session=row.id if row is not None else None,
            client=client_address(request),
            settings=settings,
        )
    except DomainError as e:
        # A wrong current password: only the failure count was written, and it is kept.
        keep = e.type == "wrong-current-password"
        return render_form_error(
            request, session, "identity/password.html", user, e, keep_writes=keep, done=False
        )
    return render(request, "identity/password.html", user, errors={}, message=None, done=True)


def _register_page(request: Request, session: Any, status_code: int = 200, **ctx: Any) -> Response:
    from tongban.regions import service as regions

    ctx.setdefault("values", {})
    ctx.setdefault("errors", {})
    ctx.setdefault("message", None)
    return render(
        request,
        "identity/register.html",
        None,
        status_code=status_code,
        cities=regions.list_cities(session),
        **ctx,
    )


@router.get("/register")
def register_page(request: Request, session: SessionDep) -> Response:
    return _register_page(request, session)


@router.post("/register", dependencies=[CsrfChecked])
def register(
    request: Request, session: SessionDep, settings: SettingsDep, form: FormDep
) -> Response:
    values = {k: str(v).strip() for k, v in form.items() if k not in ("csrf_token",)}
    role = values.get("role", "resident")
    try:
        account = service.register_applicant(
            session,
            username=values.get("username", ""),
            password=str(form.get("password", "")),
            role=role,
            display_name=values.get("display_name", ""),
            city_code=values.get("city_code", ""),
            id_number=values.get("id_number") or None,
            credit_code=values.get("credit_code") or None,
            phone=values.get("phone") or None,
            client=client_address(request),
            settings=settings,
        )
    except DomainError as e:
        # A taken username: only the client's failure count was written, and it is kept.
        refused = form_failure(session, e, keep_writes=e.type == "username-taken")
        values.pop("password", None)
        response = _register_page(request, session, values=values, **refused.context)
        response.headers.update(refused.headers)
        return response
    begin_web_session(request, session, account)
    return RedirectResponse(home_for(account), status_code=303)


def nav_context(request: Request) -> dict[str, Any]:
    """``authority_type(user)`` for base.html's navigation: the type of the authority a
    staff account works for ("" for none), so a link to a duty of one kind of authority
    (the medical-insurance agency's clearing) is shown only to its officers."""

    def authority_type(user: Any) -> str:
        authority_id = getattr(user, "authority_id", None)
        session = getattr(request.state, "db_session", None)
        if authority_id is None or session is None:
            return ""
        from tongban.regions import service as regions

        return str(regions.get_authority(session, authority_id).type)

    return {"authority_type": authority_type}
