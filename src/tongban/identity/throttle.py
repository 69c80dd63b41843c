"""Sign-in throttling per client and per (username, client).

Nothing here depends on whether the username exists, so a throttled answer tells nothing
about accounts; and nothing is counted per account alone, so strangers' failures never
stop the owner signing in from a client of their own."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tongban.config import Settings
from tongban.db import utcnow
from tongban.errors import TooManyRequests
from tongban.identity.models import LoginThrottle
from tongban.identity.policy import login_delay

CLIENT = "client"
ACCOUNT_CLIENT = "account-client"


@dataclass(frozen=True)
class _Key:
    scope: str
    key: str
    free: int


def _keys(username: str, client: str, settings: Settings) -> list[_Key]:
    name = username.strip().lower()
    return [
        _Key(
            ACCOUNT_CLIENT,
            hashlib.sha256(f"{ACCOUNT_CLIENT}\0{name}\0{client}".encode()).hexdigest(),
            settings.login_free_failures,
        ),
        _Key(
            CLIENT,
            hashlib.sha256(f"{CLIENT}\0{client}".encode()).hexdigest(),
            settings.login_client_free_failures,
        ),
    ]


def check(session: Session, username: str, client: str, settings: Settings) -> None:
    """Refuse (429, Retry-After) while this client, or this client for this username,
    must wait; the same answer whether or not the username exists.

    The counting rows are taken FOR UPDATE (created if missing) and held until the
    request ends, so parallel guesses from one client queue behind each other instead of
    all passing this check before the first failure is counted."""
    _check(session, _keys(username, client, settings))


def check_client(session: Session, client: str, settings: Settings) -> None:
    """Refuse (429) while this client must wait (for probes that name no account, such
    as registration attempts with usernames already taken)."""
    _check(session, _keys("", client, settings)[1:])


def record_client_failure(session: Session, client: str, settings: Settings) -> None:
    """Count a failed probe of this client (not tied to a username)."""
    _record(session, _keys("", client, settings)[1:], settings)


def _check(session: Session, keys: list[_Key]) -> None:
    now = utcnow()
    wait = 0.0
    for k in keys:
        row = _row(session, k, now)
        if row.blocked_until is not None and row.blocked_until > now:
            wait = max(wait, (row.blocked_until - now).total_seconds())
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise TooManyRequests(
            f"登录尝试过于频繁，请 {seconds} 秒后再试", type="login-throttled", retry_after=seconds
        )


def _row(session: Session, k: _Key, now: datetime) -> LoginThrottle:
    row = session.get(LoginThrottle, k.key, with_for_update=True)
    if row is not None:
        return row
    try:
        with session.begin_nested():
            row = LoginThrottle(key=k.key, scope=k.scope, failures=0, last_failure_at=now)
            session.add(row)
    except IntegrityError:
        # A concurrent failure created it first.
        row = session.get(LoginThrottle, k.key, with_for_update=True, populate_existing=True)
        assert row is not None
    return row


def record_failure(session: Session, username: str, client: str, settings: Settings) -> None:
    """Count a failed sign-in for this client and this (username, client)."""
    _record(session, _keys(username, client, settings), settings)


def _record(session: Session, keys: list[_Key], settings: Settings) -> None:
    now = utcnow()
    window = timedelta(minutes=settings.login_window_minutes)
    for k in keys:
        row = _row(session, k, now)
        if row.failures and now - row.last_failure_at > window:
            row.failures = 0
        row.failures += 1
        row.last_failure_at = now
        delay = login_delay(
            row.failures,
            free=k.free,
            base_seconds=settings.login_delay_seconds,
            max_seconds=settings.login_max_delay_seconds,
        )
        row.blocked_until = now + timedelta(seconds=delay) if delay else None
    session.flush()


def record_success(session: Session, username: str, client: str, settings: Settings) -> None:
    """The owner got in from this client: forget this pair's failures (not the client's,
    which may be guessing other accounts)."""
    key = _keys(username, client, settings)[0].key
    session.execute(delete(LoginThrottle).where(LoginThrottle.key == key))


def prune(session: Session, settings: Settings) -> int:
    """Forget counts older than the window and no longer blocking."""
    cutoff = utcnow() - timedelta(minutes=settings.login_window_minutes)
    result = session.execute(
        delete(LoginThrottle).where(
            LoginThrottle.last_failure_at < cutoff,
            (LoginThrottle.blocked_until.is_(None)) | (LoginThrottle.blocked_until < utcnow()),
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def throttled_rows(session: Session) -> list[LoginThrottle]:
    """Rows currently blocking (for operators)."""
    now = utcnow()
    return list(session.scalars(select(LoginThrottle).where(LoginThrottle.blocked_until > now)))
