"""ORM tables of this context: the chain's entries, its head and its signed checkpoints;
the cosignatures peer nodes gave them; and, as a witness, the checkpoints of other nodes
this node cosigned and the alarms it raised."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from tongban.db import Base, UTCDateTime, new_id, utcnow


class AuditEntry(Base):
    """One link of the chain. Written only through `tongban.audit.hook.append` (never
    updated, never deleted); `hash` = H(prev_hash || canonical encoding), see domain.py."""

    __tablename__ = "audit_entry"
    #: The reading page (migration 0041): by kind or actor newest first, by time.
    __table_args__ = (
        Index("ix_audit_entry_kind_seq", "kind", "seq"),
        Index("ix_audit_entry_actor_seq", "actor", "seq"),
        Index("ix_audit_entry_at", "at"),
    )
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
    # Typed copies of what readers in SQL take from the body and subject (migration 0058;
    # `domain.typed_fields`): written with the entry, derived from what its hash covers,
    # not hashed but verified against it (`domain.verify_chain`). The dashboard's refresh reads them instead of parsing
    # a million JSON bodies (docs/dashboard.md, "Session 15").
    #: The body's `action` (a string of at most 40 characters), else NULL.
    action: Mapped[str | None] = mapped_column(String(40))
    #: The body's `to_state`, likewise.
    to_state: Mapped[str | None] = mapped_column(String(40))
    #: The body's `at` (an ISO-8601 instant), else NULL.
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The uuid the subject names ("<type>:<uuid>", canonical form only), else NULL.
    subject_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class AuditPending(Base):
    """An entry staged by a writer's transaction and not chained yet (see hook.py). A
    writer inserts here without any lock; just before that transaction commits (or when
    it reads the chain) its staged rows are chained under the head lock and deleted, so
    the lock is held for the commit step only, not for the whole transaction. A staged
    row commits or rolls back with the writer's rows; one left committed (a writer that
    bypassed the Session's commit) is chained by the next chaining step or the audit job.
    Never verified or checkpointed: only chained entries are."""

    __tablename__ = "audit_pending"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(120))
    actor: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text)
    alg: Mapped[str] = mapped_column(String(10))


class AuditHead(Base):
    """The one row (id 1) holding the chain's last seq and hash. The chaining step locks
    it (FOR UPDATE on PostgreSQL), so the chain is serialised per node and never forks."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hash: Mapped[str] = mapped_column(String(64))
    #: The entries up to this seq are counted in `audit_kind_count` (migration 0040).
    counted_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class AuditKindCount(Base):
    """How many entries of each kind the chain held at `AuditHead.counted_seq`: a
    snapshot the audit job moves forward (service.refresh_counts, under the head lock).
    The audit page adds the entries after it (an index range on seq), so its counts are
    exact without counting the whole chain on every view (issue 14)."""

    __tablename__ = "audit_kind_count"
    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)


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


class AuditCosignature(Base):
    """A peer node's cosignature of one of this node's checkpoints (c2sp.org/tlog-
    cosignature): "witness W saw this chain at (seq, hash) at `timestamp`". Kept next to
    the checkpoint; `verify` checks it against the chain, not against the checkpoint row,
    so re-signing rewritten checkpoints does not hide a rewrite."""

    __tablename__ = "audit_cosignature"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    witness: Mapped[str] = mapped_column(String(40), primary_key=True)  # node id
    hash: Mapped[str] = mapped_column(String(64))
    kid: Mapped[str] = mapped_column(String(64))
    alg: Mapped[str] = mapped_column(String(10))
    #: seconds since the epoch, as signed
    timestamp: Mapped[int] = mapped_column(BigInteger)
    #: base64url signature over domain.cosignature_message(note, timestamp)
    signature: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WitnessedCheckpoint(Base):
    """A checkpoint of another node that this node, as a witness, checked and cosigned.
    The newest per origin is the head every later checkpoint of it must extend."""

    __tablename__ = "audit_witnessed"
    origin_node: Mapped[str] = mapped_column(String(40), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(64))
    #: The origin's own signed checkpoint (time, key, signature), as received.
    checkpoint_at: Mapped[datetime] = mapped_column(UTCDateTime)
    kid: Mapped[str] = mapped_column(String(64))
    alg: Mapped[str] = mapped_column(String(10))
    signature: Mapped[str] = mapped_column(Text)
    #: Our cosignature.
    timestamp: Mapped[int] = mapped_column(BigInteger)
    cosigner_kid: Mapped[str] = mapped_column(String(64))
    cosignature: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WitnessAlarm(Base):
    """A checkpoint of another node that contradicts what this node cosigned before (its
    history was rewritten) or whose signature does not verify: not cosigned."""

    __tablename__ = "audit_witness_alarm"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    origin_node: Mapped[str] = mapped_column(String(40), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    #: The head this witness held for the origin when it refused (None: none).
    known_seq: Mapped[int | None] = mapped_column(BigInteger)
    known_hash: Mapped[str | None] = mapped_column(String(64))
    #: inconsistent | bad-signature
    reason: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text)
    message_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
