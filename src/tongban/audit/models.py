"""ORM tables of this context: the chain's entries, its head and its signed checkpoints."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tongban.db import Base, UTCDateTime, utcnow


class AuditEntry(Base):
    """One link of the chain. Written only through `tongban.audit.hook.append` (never
    updated, never deleted); `hash` = H(prev_hash || canonical encoding), see domain.py."""

    __tablename__ = "audit_entry"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: e.g. case.event, licence.event, evidence.access, message.sent, message.applied
    kind: Mapped[str] = mapped_column(String(40), index=True)
    #: What it is about, "<type>:<id>" (case:<uuid>, message:<uuid> …).
    subject: Mapped[str] = mapped_column(String(120), index=True)
    #: Who did it: "account:<uuid>", "node:<id>" or "system".
    actor: Mapped[str] = mapped_column(String(120))
    #: Canonical JSON text, hashed verbatim: minimised, no more personal data than the
    #: event row it records.
    body: Mapped[str] = mapped_column(Text)
    #: sha-256 | sm3
    alg: Mapped[str] = mapped_column(String(10))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The one row (id 1) holding the chain's last seq and hash. Appenders lock it (FOR
    UPDATE on PostgreSQL), so the chain is serialised per node and never forks."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpoint(Base):
    """A signed statement "the chain of node X had hash H at seq N at time T". Immutable;
    verified with the key named by `kid`, so key rotation does not break old ones."""

    __tablename__ = "audit_checkpoint"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    node_id: Mapped[str] = mapped_column(String(40))
    kid: Mapped[str] = mapped_column(String(64))
    #: Signature suite of the key: EdDSA | SM2
    alg: Mapped[str] = mapped_column(String(10))
    #: base64url signature over domain.checkpoint_statement(node_id, seq, hash, at)
    signature: Mapped[str] = mapped_column(Text)
