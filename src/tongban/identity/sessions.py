"""Server-side web sessions: begun at sign-in, ended by logout, idleness, age, a password
change, an assurance-level change, a change of role or an administrator. Other contexts
call these through identity.service (`end_sessions`)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tongban.config import Settings
from tongban.db import utcnow
from tongban.identity.models import Account, ApiToken, WebSession
from tongban.kernel.node import settings_of

#: last_seen_at is written at most this often: a page view need not be a write.
_TOUCH_EVERY = timedelta(minutes=1)


class EndReason:
    """Why a session ended (web_session.end_reason)."""

    LOGOUT = "logout"
    IDLE = "idle"
    EXPIRED = "expired"
    PASSWORD_CHANGED = "password-changed"
    ASSURANCE_CHANGED = "assurance-changed"
    ADMIN = "admin"
    #: An administrator changed the account's role or post: what it may do changed.
    ROLE_CHANGED = "role-changed"
    ACCOUNT_DISABLED = "account-disabled"
    #: The browser signed in again (perhaps as someone else): the old session ends.
    REPLACED = "signed-in-again"


@dataclass(frozen=True)
class ActiveSession:
    """The session a request runs in and its account."""

    session: WebSession
    account: Account


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def begin_session(
    session: Session,
    account: Account,
    *,
    client_ip: str | None = None,
    user_agent: str | None = None,
    settings: Settings | None = None,
) -> tuple[str, WebSession]:
    """A new session for `account`: the random id for the cookie (returned once, only its
    hash is stored) and the row, whose `csrf` is the token of this session's forms."""
    settings = settings or settings_of(session)
    session_id = secrets.token_urlsafe(32)
    now = utcnow()
    row = WebSession(
        account_id=account.id,
        id_hash=_hash(session_id),
        csrf=secrets.token_urlsafe(24),
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(minutes=settings.session_max_minutes),
        client_ip=(client_ip or None) and client_ip[:64],
        user_agent=(user_agent or None) and user_agent[:200],
    )
    session.add(row)
    session.flush()
    return session_id, row


def resume_session(
    session: Session, session_id: str, *, settings: Settings | None = None
) -> ActiveSession | None:
    """The live session with this id and its account, or None (unknown, ended, idle too
    long, too old, account disabled). A session found too idle or too old is ended."""
    settings = settings or settings_of(session)
    row = session.scalar(select(WebSession).where(WebSession.id_hash == _hash(session_id)))
    if row is None or row.ended_at is not None:
        return None
    now = utcnow()
    reason = None
    if now >= row.expires_at:
        reason = EndReason.EXPIRED
    elif now - row.last_seen_at > timedelta(minutes=settings.session_idle_minutes):
        reason = EndReason.IDLE
    account = session.get(Account, row.account_id)
    if reason is None and (account is None or not account.is_active):
        reason = EndReason.ACCOUNT_DISABLED
    if reason is not None:
        row.ended_at = now
        row.end_reason = reason
        return None
    assert account is not None
    if now - row.last_seen_at > _TOUCH_EVERY:
        row.last_seen_at = now
    return ActiveSession(row, account)


def end_session(session: Session, row: WebSession, reason: str) -> None:
    """End one session (logout)."""
    if row.ended_at is None:
        row.ended_at = utcnow()
        row.end_reason = reason


def end_sessions(
    session: Session,
    account_id: uuid.UUID,
    reason: str,
    *,
    keep: uuid.UUID | None = None,
    revoke_tokens: bool = False,
) -> int:
    """End every live session of `account_id` (but `keep`, the one the change was made
    in), and with `revoke_tokens` revoke its API tokens too. Called on logout everywhere,
    password change, assurance-level change and by administrators. Returns how many
    sessions were ended."""
    now = utcnow()
    stmt = update(WebSession).where(
        WebSession.account_id == account_id, WebSession.ended_at.is_(None)
    )
    if keep is not None:
        stmt = stmt.where(WebSession.id != keep)
    ended = session.execute(
        stmt.values(ended_at=now, end_reason=reason[:32]).execution_options(
            synchronize_session="fetch"
        )
    )
    if revoke_tokens:
        revoke_all_tokens(session, account_id)
    session.flush()
    return int(getattr(ended, "rowcount", 0) or 0)


def revoke_all_tokens(session: Session, account_id: uuid.UUID) -> None:
    """Revoke every API token of `account_id` that is still valid."""
    session.execute(
        update(ApiToken)
        .where(ApiToken.account_id == account_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session="fetch")
    )


def live_sessions(session: Session, account_id: uuid.UUID) -> list[WebSession]:
    """The sessions of `account_id` not ended (some may be past their idle time)."""
    now: datetime = utcnow()
    return list(
        session.scalars(
            select(WebSession)
            .where(
                WebSession.account_id == account_id,
                WebSession.ended_at.is_(None),
                WebSession.expires_at > now,
            )
            .order_by(WebSession.created_at)
        )
    )
