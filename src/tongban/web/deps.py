"""FastAPI dependencies as named aliases: the session owned by the request, the caller."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import FormData

from tongban.errors import NotAuthenticated, PermissionDenied
from tongban.identity import service as identity
from tongban.identity.models import Account


def get_session(request: Request) -> Iterator[Session]:
    """The request's unit of work: committed when the endpoint returns, rolled back if it raises."""
    factory: sessionmaker[Session] = request.app.state.session_factory
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    return None


def optional_account(request: Request, session: SessionDep) -> Account | None:
    token = _bearer(request)
    if token:
        return identity.account_for_token(session, token)
    account_id = request.session.get("account_id") if "session" in request.scope else None
    if account_id:
        import uuid

        account = session.get(Account, uuid.UUID(account_id))
        if account is not None and account.is_active:
            return account
        request.session.clear()
    return None


def current_account(account: Annotated[Account | None, Depends(optional_account)]) -> Account:
    if account is None:
        raise NotAuthenticated("请先登录")
    return account


OptionalUser = Annotated[Account | None, Depends(optional_account)]
CurrentUser = Annotated[Account, Depends(current_account)]


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(24)
        request.session["csrf"] = token
    return str(token)


async def verify_csrf(request: Request) -> None:
    """Every state-changing form carries the session's CSRF token."""
    form = await request.form()
    sent = form.get("csrf_token")
    expected = request.session.get("csrf")
    if not expected or not isinstance(sent, str) or not secrets.compare_digest(sent, expected):
        raise PermissionDenied("页面已过期或请求来源无效，请刷新后重试", type="csrf-failed")


CsrfChecked = Depends(verify_csrf)


async def _form(request: Request) -> FormData:
    """The submitted form (multipart or urlencoded), read once and cached on the request,
    so that page handlers can stay synchronous (database work off the event loop)."""
    return await request.form()


FormDep = Annotated[FormData, Depends(_form)]
