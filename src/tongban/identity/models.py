from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from tongban.db import Base, UTCDateTime, new_id, utcnow


class Account(Base):
    __tablename__ = "account"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20), index=True)
    display_name: Mapped[str] = mapped_column(String(80))
    #: Resident: GB 11643 citizen ID number.
    id_number: Mapped[str | None] = mapped_column(String(18), index=True)
    #: Enterprise: GB 32100 unified social credit code.
    credit_code: Mapped[str | None] = mapped_column(String(18), index=True)
    phone: Mapped[str | None] = mapped_column(String(20))
    #: Home jurisdiction/city of a resident; the post of a staff member.
    jurisdiction_code: Mapped[str | None] = mapped_column(ForeignKey("jurisdiction.code"))
    city_code: Mapped[str | None] = mapped_column(ForeignKey("city.code"))
    authority_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("authority.id"), index=True)
    #: Officer duty: reviewer (受理/审核) or approver (审批).
    duty: Mapped[str | None] = mapped_column(String(20))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Identity assurance of an applicant (domain.AssuranceLevel); None for staff. It
    #: only changes through identity.service.change_assurance, which records an event.
    assurance_level: Mapped[str | None] = mapped_column(String(20))


class ApiToken(Base):
    """A bearer token for the API; only its SHA-256 is stored."""

    __tablename__ = "api_token"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(80), default="api")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AccountEvent(Base):
    """Append-only history of an account's identity assurance: who changed it, when,
    from which level to which, why, and the evidence (the clerk and method of a window
    check, the issuer and subject of an OIDC login). Joins the audit chain."""

    __tablename__ = "account_event"
    __audit_kind__ = "account.event"
    __audit_subject__ = ("account", "account_id")
    __audit_actor__ = ("account", "actor_id")
    __audit_fields__ = ("action", "from_level", "to_level", "evidence", "at")
    __audit_digest__ = ("reason",)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id"), index=True)
    action: Mapped[str] = mapped_column(String(30))
    from_level: Mapped[str | None] = mapped_column(String(20))
    to_level: Mapped[str | None] = mapped_column(String(20))
    #: The clerk of a window check; None for an OIDC login (the provider is the evidence).
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("account.id"))
    actor_name: Mapped[str] = mapped_column(String(80))
    reason: Mapped[str] = mapped_column(Text, default="")
    #: {"method", "clerk_id", "city_code"} or {"issuer", "sub", "provider"}.
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ExternalIdentity(Base):
    """An OpenID Connect identity (issuer + subject) linked to an account: the next
    login through that provider finds the account by it."""

    __tablename__ = "external_identity"
    __table_args__ = (UniqueConstraint("issuer", "subject"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id"), index=True)
    issuer: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebSession(Base):
    """A signed-in browser session, kept on the server so that it can be ended.

    The cookie carries a random session id; only its SHA-256 is stored, so whoever reads
    this table cannot take over a session. The CSRF token of the forms belongs to the
    session and dies with it."""

    __tablename__ = "web_session"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id"), index=True)
    id_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Absolute end, whatever the activity.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Why it ended: logout, idle, expired, password-changed, assurance-changed, admin …
    end_reason: Mapped[str | None] = mapped_column(String(32))
    client_ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(200))


class LoginThrottle(Base):
    """Failed sign-ins counted per client and per (username, client), never per account
    alone: a stranger's failures slow the stranger down, not the owner. The key is a
    SHA-256 of what is counted, so the table holds no usernames or addresses in clear."""

    __tablename__ = "login_throttle"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: "client" or "account-client".
    scope: Mapped[str] = mapped_column(String(20))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
