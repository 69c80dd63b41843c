"""JSON API of the message centre: the caller's inbox, its unread count, marking read,
and the caller's contact details and channels."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query

from tongban.notifications import channels, service
from tongban.notifications.schemas import (
    InboxPage,
    MarkedRead,
    MessagePublic,
    PreferencesPublic,
    PreferencesUpdate,
    UnreadCount,
)
from tongban.web.deps import CurrentUser, SessionDep, SettingsDep

router = APIRouter(prefix="/api/v1/messages", tags=["messages"])


@router.get("", response_model=InboxPage)
def list_messages(
    session: SessionDep,
    user: CurrentUser,
    page: int = Query(default=1, ge=1, le=100_000),
    unread: bool = False,
) -> InboxPage:
    """The caller's messages, newest first, 20 a page."""
    p = service.inbox(session, user, page, unread_only=unread)
    return InboxPage(
        items=[MessagePublic.model_validate(m) for m in p.messages],
        page=p.page,
        pages=p.pages,
        total=p.total,
        unread=p.unread,
    )


@router.get("/unread", response_model=UnreadCount)
def unread(session: SessionDep, user: CurrentUser) -> UnreadCount:
    return UnreadCount(unread=service.unread_count(session, user.id))


@router.post("/{message_id}/read", response_model=MessagePublic)
def read(message_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> MessagePublic:
    return MessagePublic.model_validate(service.mark_read(session, user, message_id))


@router.post("/read-all", response_model=MarkedRead)
def read_all(session: SessionDep, user: CurrentUser) -> MarkedRead:
    return MarkedRead(marked=service.mark_all_read(session, user))


def _public(p: service.Preferences) -> PreferencesPublic:
    return PreferencesPublic(
        email=p.email,
        phone=p.phone,
        by_email=p.by_email,
        by_sms=p.by_sms,
        available=[c.value for c in p.available],
    )


@router.get("/preferences", response_model=PreferencesPublic)
def get_preferences(
    session: SessionDep, user: CurrentUser, settings: SettingsDep
) -> PreferencesPublic:
    return _public(service.preferences(session, user, channels.configured(settings)))


@router.put("/preferences", response_model=PreferencesPublic)
def put_preferences(
    body: PreferencesUpdate, session: SessionDep, user: CurrentUser, settings: SettingsDep
) -> PreferencesPublic:
    """Contact details and channels; 422 with each wrong field."""
    return _public(
        service.set_preferences(
            session,
            user,
            email=body.email,
            phone=body.phone,
            by_email=body.by_email,
            by_sms=body.by_sms,
            available=channels.configured(settings),
        )
    )
