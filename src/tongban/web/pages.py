"""Rendering helpers for every context's pages, and the home page."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from tongban.errors import DomainError
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
    response: Response = request.app.state.templates.TemplateResponse(
        request, name, context, status_code=status_code
    )
    return response


# --- one form-error path -------------------------------------------------------------


def form_error(session: Session) -> None:
    """Undo whatever a failed form submission wrote before re-rendering the form:
    a failed request writes nothing."""
    session.rollback()


@dataclass(frozen=True)
class FormFailure:
    """A refused form submission, as its page shows it again: the HTTP status (the
    error's own, as the API answers it), the Chinese detail and each input's message."""

    status_code: int
    message: str
    errors: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def context(self) -> dict[str, Any]:
        """`status_code`, `message` and `errors`, to pass on to a page: `**refused.context`."""
        return {"status_code": self.status_code, "message": self.message, "errors": self.errors}


def field_messages(exc: DomainError, inputs: Mapping[str, str] | None = None) -> dict[str, str]:
    """The error's field errors by the name of the page's input. `inputs` maps a field
    prefix to the inputs' prefix, e.g. `{"form_data.": ""}` shows `form_data.name` under
    `name` and `{"materials.": "material_"}` `materials.id_card` under `material_id_card`.
    Several messages for one input are joined; an error without a message shows the
    detail."""
    out: dict[str, list[str]] = {}
    for err in exc.errors:
        name = err.field
        for prefix, replacement in (inputs or {}).items():
            if name.startswith(prefix):
                name = replacement + name[len(prefix) :].split(".", 1)[0]
                break
        messages = out.setdefault(name, [])
        message = err.message or exc.detail
        if message not in messages:
            messages.append(message)
    return {name: "；".join(messages) for name, messages in out.items()}


def form_failure(
    session: Session,
    exc: DomainError,
    *,
    inputs: Mapping[str, str] | None = None,
    keep_writes: bool = False,
) -> FormFailure:
    """The one way a page handles a refused form: roll back what the request wrote (or,
    with `keep_writes`, commit what the service deliberately wrote before refusing, e.g.
    a failure count), and return what the re-rendered form shows."""
    if keep_writes:
        session.commit()
    else:
        form_error(session)
    return FormFailure(
        status_code=exc.status,
        message=exc.detail,
        errors=field_messages(exc, inputs),
        headers=dict(getattr(exc, "headers", None) or {}),
    )


def render_form_error(
    request: Request,
    session: Session,
    name: str,
    user: Account | None,
    exc: DomainError,
    *,
    inputs: Mapping[str, str] | None = None,
    keep_writes: bool = False,
    **context: Any,
) -> Response:
    """Template `name` again after a refused form (see form_failure), with the error's
    status, its detail as `message` and the field errors as `errors` in the context.
    `context` is computed before the rollback: pass nothing read from the session here
    (a page built from the database calls form_failure first, then its builder)."""
    refused = form_failure(session, exc, inputs=inputs, keep_writes=keep_writes)
    response = render(request, name, user, **refused.context, **context)
    response.headers.update(refused.headers)
    return response


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
