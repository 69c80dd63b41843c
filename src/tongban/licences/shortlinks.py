"""Short links to presentations, so that the QR code a holder shows is small.

The wallet (the signed-in holder) asks for a short link to a presentation it made;
the link `/v/<token>` opens the verify page with that presentation, verified at once.
The token is 16 random bytes in base32 (unguessable), the link expires, the stored
presentation is bounded in size, and creation is limited per holder and hour. The long
QR (the presentation itself) keeps working offline; a short link needs this node.
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime, timedelta

import segno
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tongban.db import utcnow
from tongban.errors import NotFound, PermissionDenied, TooManyRequests, ValidationFailed
from tongban.identity.domain import Role
from tongban.identity.models import Account
from tongban.licences.models import ShortLink
from tongban.licences.schemas import MAX_PRESENTATION

#: How long a short link lives: long enough to show it at a counter.
TTL = timedelta(minutes=30)
#: Links one holder may create per hour.
PER_HOUR = 30


class Expired(NotFound):
    """A short link that existed but has expired (shown as 410)."""

    status = 410
    type = "short-link-expired"
    title = "链接已过期"


class ShortLinkCreate(BaseModel):
    presentation: str = Field(
        max_length=MAX_PRESENTATION, description="the presentation the holder shows"
    )


class ShortLinkPublic(BaseModel):
    token: str
    url: str = Field(description="open it (or put it in a QR code) to verify")
    expires_at: datetime


def qr_svg(url: str) -> str:
    """The short link as a QR code: few modules, so large ones (easy to scan) and error
    level M (a worn or glaring screen still reads)."""
    return str(segno.make(url, error="m", micro=False).svg_inline(scale=6, border=4))


def new_token() -> str:
    return base64.b32encode(secrets.token_bytes(16)).decode().rstrip("=").lower()


def create(session: Session, actor: Account, presentation: str) -> ShortLink:
    """A short link to `presentation` for its holder."""
    if actor.role not in (Role.RESIDENT, Role.ENTERPRISE):
        raise PermissionDenied("只有证照持有人可以生成核验短链接")
    text = "".join(presentation.split())
    if not text or len(text) > MAX_PRESENTATION:
        raise ValidationFailed(
            "出示内容为空或过长",
            errors=[{"field": "presentation", "message": "出示内容为空或过长"}],
        )
    now = utcnow()
    recent = session.scalar(
        select(func.count())
        .select_from(ShortLink)
        .where(ShortLink.created_by == actor.id, ShortLink.created_at > now - timedelta(hours=1))
    )
    if (recent or 0) >= PER_HOUR:
        raise TooManyRequests("生成核验短链接过于频繁，请稍后再试", retry_after=3600)
    link = ShortLink(
        token=new_token(),
        presentation=text,
        created_by=actor.id,
        created_at=now,
        expires_at=now + TTL,
    )
    session.add(link)
    session.flush()
    return link


def resolve(session: Session, token: str) -> str:
    """The presentation behind a short link: NotFound if unknown, Expired if expired."""
    link = session.get(ShortLink, token.lower()) if 0 < len(token) <= 32 else None
    if link is None:
        raise NotFound("核验链接不存在，请让持证人重新出示。", type="unknown-short-link")
    if link.expires_at <= utcnow():
        raise Expired("核验链接已过期，请让持证人重新出示。")
    return link.presentation


def purge_expired(session: Session) -> int:
    """Delete expired links (kept small)."""
    rows = list(session.scalars(select(ShortLink).where(ShortLink.expires_at <= utcnow())))
    for r in rows:
        session.delete(r)
    session.flush()
    return len(rows)
