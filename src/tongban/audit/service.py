"""Use cases of the audit chain: explicit entries, checkpoints, verification, reading.

Entries of audited tables are appended automatically by tongban.audit.hook; `record`
is for what is not a row of such a table. Every function takes the caller's Session
and never commits."""

from __future__ import annotations

import logging
from typing import Any, cast

from sqlalchemy import Table, func, insert, select, union_all, update
from sqlalchemy.orm import Session

from tongban.audit import domain, hook
from tongban.audit.entries import BATCH, as_entry, iter_entries
from tongban.audit.models import AuditCheckpoint, AuditEntry, AuditHead, AuditKindCount
from tongban.audit.subjects import body_fields as entry_body_fields
from tongban.audit.subjects import record_id as subject_record_id
from tongban.audit.writing import CHANGE_KIND, record, record_change
from tongban.crypto.signing import b64u, b64u_decode
from tongban.db import utcnow
from tongban.kernel.node import settings_of
from tongban.keys import service as keys
from tongban.keys.models import SigningKey

log = logging.getLogger(__name__)

#: Entries fetched per query while verifying: memory stays bounded whatever the length.


def digest(value: Any, session: Session) -> str:
    """Hex digest of a value's canonical JSON in the chain's hash of `session`'s node: a
    change entry pins a large value (a form schema, a legal text) without copying it."""
    return domain.field_digest(hook.hash_alg(session), value)


def changes(session: Session, subject: str | None = None, limit: int = 200) -> list[domain.Entry]:
    """The change entries (record_change), oldest first; of one subject if given."""
    hook.settle(session)
    t = AuditEntry.__table__
    q = select(t).where(t.c.kind == CHANGE_KIND).order_by(t.c.seq.desc()).limit(limit)
    if subject is not None:
        q = q.where(t.c.subject == subject)
    return [as_entry(r) for r in reversed(session.execute(q).all())]


def head(session: Session) -> domain.Head | None:
    """The head row (last seq and hash), None when the table has no row yet."""
    hook.settle(session)
    row = session.get(AuditHead, hook.HEAD_ID, populate_existing=True)
    return None if row is None else domain.Head(int(row.seq), row.hash)


def checkpoints(session: Session) -> list[domain.Checkpoint]:
    """Every checkpoint, by seq (read with Core: as stored now, whatever the session's
    identity map holds)."""
    t = AuditCheckpoint.__table__
    rows = session.execute(select(t).order_by(t.c.seq))
    return [
        domain.Checkpoint(
            seq=int(r.seq),
            hash=r.hash,
            at=r.at,
            node_id=r.node_id,
            kid=r.kid,
            alg=r.alg,
            signature=r.signature,
        )
        for r in rows
    ]


def signature_check(session: Session) -> domain.SignatureCheck:
    """A checker of checkpoint signatures against the audit keys this node knows (its
    own, current and retired, and imported ones), chosen by the kid recorded on each
    checkpoint: rotation does not break old checkpoints. A key must belong to the
    checkpoint's node, and a withdrawn key (not_after) vouches for nothing after it."""
    rows: dict[str, SigningKey] = {r.kid: r for r in keys.public_rows(session, "audit")}

    def check(cp: domain.Checkpoint) -> bool:
        row = rows.get(cp.kid)
        if row is None or row.owner != cp.node_id or row.alg != cp.alg:
            return False
        if row.not_after is not None and cp.at > row.not_after:
            return False
        statement = domain.checkpoint_statement(cp.node_id, cp.seq, cp.hash, cp.at)
        return keys.public_key(row).verify(statement, b64u_decode(cp.signature))

    return check


def verify(session: Session, batch: int = BATCH) -> domain.Report:
    """Verify the whole chain and every checkpoint (see domain.verify_chain); returns
    the counts and the first problem. Reads checkpoints, then the head, then streams the
    entries up to the head: entries appended meanwhile are left for the next run. Entries
    still staged by other transactions (audit_pending) are not in the chain yet."""
    hook.settle(session)
    cps = checkpoints(session)
    t = AuditEntry.__table__
    h = AuditHead.__table__
    row = session.execute(select(h.c.seq, h.c.hash).where(h.c.id == hook.HEAD_ID)).first()
    # One statement, one snapshot: rows past the head as it stands now were not
    # appended through it (a concurrent append moves both together).
    current = select(h.c.seq).where(h.c.id == hook.HEAD_ID).scalar_subquery()
    stray = session.execute(select(func.min(t.c.seq)).where(t.c.seq > current)).scalar()
    if row is None:
        upto = session.execute(select(func.max(t.c.seq))).scalar()
        first = session.execute(select(func.min(t.c.seq))).scalar()
        head_now = domain.Head(0, domain.GENESIS, first)
    else:
        upto = int(row.seq)
        head_now = domain.Head(int(row.seq), row.hash, None if stray is None else int(stray))
    entries = iter_entries(session, 0, upto, batch)
    from tongban.audit import witness

    node_id = settings_of(session).node_id
    return domain.verify_chain(
        entries,
        cps,
        signature_check(session),
        head_now,
        cosignatures=witness.cosignatures(session),
        check_cosignature=witness.cosignature_check(session, node_id),
    )


def last_checkpoint(session: Session) -> AuditCheckpoint | None:
    """The newest checkpoint, if any."""
    return session.scalars(
        select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc()).limit(1)
    ).first()


def checkpoint(
    session: Session, node_id: str, *, min_interval: float | None = None
) -> AuditCheckpoint | None:
    """Sign a checkpoint of the current head with this node's audit key, when there are
    entries the last checkpoint does not cover (and, with `min_interval`, when the last
    one is at least that many seconds old); None otherwise. With `min_interval` (the
    periodic job), entries that only record witnessing messages do not call for a new
    checkpoint, or two nodes would witness each other's witnessing forever.

    Before signing it re-verifies the entries since the last checkpoint: a node never
    vouches for a chain it cannot verify (raises ChainBroken then). The checkpoint is
    then queued for the peer nodes to witness (witness.publish; none on one node).
    Staged entries left committed are chained first (hook.sequence)."""
    hook.sequence(session)
    h = AuditHead.__table__
    row = session.execute(
        select(h.c.seq, h.c.hash).where(h.c.id == hook.HEAD_ID).with_for_update()
    ).first()
    if row is None or int(row.seq) == 0:
        return None
    last = last_checkpoint(session)
    if last is not None and last.seq >= int(row.seq):
        return None
    now = utcnow()
    if (
        min_interval is not None
        and last is not None
        and (now - last.at).total_seconds() < min_interval
    ):
        return None
    start = (0, domain.GENESIS) if last is None else (int(last.seq), last.hash)
    report = domain.verify_chain(
        iter_entries(session, start[0], int(row.seq)),
        [],
        lambda cp: True,
        domain.Head(int(row.seq), row.hash),
        start=start,
    )
    if report.finding is not None:
        raise ChainBroken(report)
    if min_interval is not None and all(
        domain.is_witness_traffic(e) for e in iter_entries(session, start[0], int(row.seq))
    ):
        return None
    key, key_row = keys.signing_key(session, "audit", node_id)
    statement = domain.checkpoint_statement(node_id, int(row.seq), row.hash, now)
    cp = AuditCheckpoint(
        seq=int(row.seq),
        hash=row.hash,
        at=now,
        node_id=node_id,
        kid=key_row.kid,
        alg=key_row.alg,
        signature=b64u(key.sign(statement)),
    )
    session.add(cp)
    session.flush()
    from tongban.audit import witness

    witness.publish(session, cp)
    return cp


class ChainBroken(Exception):
    """The chain failed verification where a checkpoint was to be signed."""

    def __init__(self, report: domain.Report) -> None:
        super().__init__(domain.describe(report))
        self.report = report


def recent(session: Session, limit: int = 50, before: int | None = None) -> list[domain.Entry]:
    """The newest entries (optionally those before seq `before`), newest first."""
    hook.settle(session)
    t = AuditEntry.__table__
    q = select(t).order_by(t.c.seq.desc()).limit(limit)
    if before is not None:
        q = q.where(t.c.seq < before)
    return [as_entry(r) for r in session.execute(q)]


def about(session: Session, subject: str, limit: int = 200) -> list[domain.Entry]:
    """Entries about one subject ("case:<uuid>", "message:<uuid>" …), oldest first."""
    hook.settle(session)
    t = AuditEntry.__table__
    q = select(t).where(t.c.subject == subject).order_by(t.c.seq).limit(limit)
    return [as_entry(r) for r in session.execute(q)]


def counts_by_kind(session: Session) -> dict[str, int]:
    """How many entries of each kind the chain holds: the counted snapshot plus the
    entries after `counted_seq` (an index range on seq, short when the audit job runs),
    in one statement so that a refresh committing meanwhile is not counted twice."""
    hook.settle(session)
    rows = session.execute(_COUNTS)
    return {kind: int(n) for kind, n in rows if n}


_e = cast(Table, AuditEntry.__table__)
_c = cast(Table, AuditKindCount.__table__)
_h = cast(Table, AuditHead.__table__)
_COUNTED_SEQ = (
    select(func.coalesce(func.max(_h.c.counted_seq), 0))
    .where(_h.c.id == hook.HEAD_ID)
    .scalar_subquery()
)
_BOTH = union_all(
    select(_c.c.kind, _c.c.n),
    select(_e.c.kind, func.count().label("n")).where(_e.c.seq > _COUNTED_SEQ).group_by(_e.c.kind),
).subquery()
_COUNTS = select(_BOTH.c.kind, func.sum(_BOTH.c.n)).group_by(_BOTH.c.kind).order_by(_BOTH.c.kind)


def refresh_counts(session: Session) -> int:
    """Move the counted snapshot up to the head: lock the head (so two refreshes, or a
    refresh and a chaining step, never overlap), count the entries after `counted_seq`
    by kind, add them to `audit_kind_count`. Returns how many entries it counted."""
    hook.sequence(session)
    row = session.execute(
        select(_h.c.seq, _h.c.counted_seq).where(_h.c.id == hook.HEAD_ID).with_for_update()
    ).first()
    if row is None or int(row.seq) <= int(row.counted_seq):
        return 0
    fresh = session.execute(
        select(_e.c.kind, func.count())
        .where(_e.c.seq > row.counted_seq, _e.c.seq <= row.seq)
        .group_by(_e.c.kind)
    ).all()
    have = {kind for (kind,) in session.execute(select(_c.c.kind))}
    for kind, n in fresh:
        if kind in have:
            session.execute(update(_c).where(_c.c.kind == kind).values(n=_c.c.n + n))
        else:
            session.execute(insert(_c).values(kind=kind, n=n))
    session.execute(update(_h).where(_h.c.id == hook.HEAD_ID).values(counted_seq=row.seq))
    return sum(int(n) for _, n in fresh)


__all__ = [
    "CHANGE_KIND",
    "entry_body_fields",  # for SQL readers of entries (subjects.py)
    "record",
    "record_change",
    "subject_record_id",
]
