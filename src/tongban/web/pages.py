"""Rendering helpers for every context's pages, and the home page."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from tongban.identity.models import Account
from tongban.web.deps import OptionalUser, SessionDep, csrf_token


def render(
    request: Request,
    name: str,
    user: Account | None,
    status_code: int = 200,
    **context: Any,
) -> Response:
    """A page with the current user and the session's CSRF token always in its context."""
    context.setdefault("user", user)
    context.setdefault("csrf", csrf_token(request))
    return request.app.state.templates.TemplateResponse(
        request, name, context, status_code=status_code
    )


def form_error(session: Session) -> None:
    """Undo whatever a failed form submission wrote before re-rendering the form:
    a failed request writes nothing."""
    session.rollback()


router = APIRouter(include_in_schema=False)


@router.get("/")
def home(request: Request, session: SessionDep, user: OptionalUser) -> Response:
    from tongban.regions import service as regions

    return render(
        request,
        "home.html",
        user,
        jurisdictions=regions.list_jurisdictions(session),
        city_count=len(regions.list_cities(session)),
    )
