"""Pages of the message centre (站内信): the inbox with paging, opening a message (it is
marked read and leads to its record), marking all read, and the notification settings."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from tongban.errors import ValidationFailed
from tongban.notifications import channels, service
from tongban.notifications.domain import CHANNEL_LABELS
from tongban.web.deps import CsrfChecked, CurrentUser, FormDep, SessionDep, SettingsDep
from tongban.web.pages import form_failure, render

router = APIRouter(include_in_schema=False)


def _safe_link(link: str | None) -> str:
    """Only a path of this site (never //host or a scheme): where a message leads."""
    if link and link.startswith("/") and not link.startswith("//"):
        return link
    return "/messages"


@router.get("/messages")
def inbox(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    page: int = 1,
    unread: bool = False,
) -> Response:
    p = service.inbox(session, user, max(1, min(page, 100_000)), unread_only=unread)
    return render(request, "notifications/inbox.html", user, p=p, unread_only=unread)


@router.get("/messages/preferences")
def preferences_page(
    request: Request, session: SessionDep, user: CurrentUser, settings: SettingsDep
) -> Response:
    prefs = service.preferences(session, user, channels.configured(settings))
    return render(
        request,
        "notifications/preferences.html",
        user,
        prefs=prefs,
        labels=CHANNEL_LABELS,
        saved=request.query_params.get("saved") == "1",
    )


@router.post("/messages/preferences", dependencies=[CsrfChecked])
def save_preferences(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
    form: FormDep,
) -> Response:
    available = channels.configured(settings)
    values = {k: str(form.get(k) or "") for k in ("email", "phone")}
    try:
        service.set_preferences(
            session,
            user,
            email=values["email"],
            phone=values["phone"],
            by_email=form.get("by_email") == "on",
            by_sms=form.get("by_sms") == "on",
            available=available,
        )
    except ValidationFailed as e:
        refused = form_failure(session, e)
        shown = service.Preferences(
            values["email"] or None,
            values["phone"] or None,
            form.get("by_email") == "on",
            form.get("by_sms") == "on",
            tuple(available),
        )
        return render(
            request,
            "notifications/preferences.html",
            user,
            status_code=refused.status_code,
            prefs=shown,
            labels=CHANNEL_LABELS,
            saved=False,
            **{k: v for k, v in refused.context.items() if k != "status_code"},
        )
    return RedirectResponse("/messages/preferences?saved=1", status_code=303)


@router.post("/messages/read-all", dependencies=[CsrfChecked])
def read_all(session: SessionDep, user: CurrentUser) -> Response:
    service.mark_all_read(session, user)
    return RedirectResponse("/messages", status_code=303)


@router.get("/messages/{message_id}")
def open_message(message_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> Response:
    """Opening a message marks it read and leads to the record it is about."""
    msg = service.mark_read(session, user, message_id)
    return RedirectResponse(_safe_link(msg.link), status_code=303)


def header_context(request: Request) -> dict[str, Any]:
    """The name base.html uses for the header's count: ``unread_messages(user)``, one
    count on the (account_id, read_at) index, only on pages that show a signed-in user,
    in the request's own database session."""

    def unread_messages(user: Any) -> int:
        account_id = getattr(user, "id", None)
        session = getattr(request.state, "db_session", None)
        if account_id is None or session is None:
            return 0
        return service.unread_count(session, account_id)

    return {"unread_messages": unread_messages}
