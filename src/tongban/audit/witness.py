"""Peer nodes witness each other's audit checkpoints (c2sp.org/tlog-witness in spirit).

- Origin side: every checkpoint this node signs is sent as an ``audit.checkpoint``
  message to every other node of the federation (`publish`). The entries since the head
  that witness last cosigned travel with it, attached when the message leaves
  (`attach_proof`): the consistency proof of a hash chain.
- Witness side (`receive_checkpoint`): verify the origin's signature with its audit key
  (carried by the message, which the origin's node key signed), check that the new head
  extends the last one cosigned for that origin (domain.check_consistency), cosign
  (c2sp.org/tlog-cosignature, with this node's audit key), keep it and send it back as
  ``audit.cosigned``. A checkpoint that contradicts what was cosigned is recorded as an
  alarm (a row, an error in the log, `tongban audit witness-status`, the audit page)
  and not cosigned.
- Origin side again (`receive_cosignature`): verify the cosignature with the witness's
  audit key and keep it next to the checkpoint; `tongban audit verify` checks it.

The embedded single node has no peers: nothing is sent, nothing is witnessed.
Every function takes the caller's Session and never commits."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tongban.audit import domain, entries
from tongban.audit.models import (
    AuditCheckpoint,
    AuditCosignature,
    WitnessAlarm,
    WitnessedCheckpoint,
)
from tongban.audit.schemas import MAX_PROOF_ENTRIES, CheckpointMessage, CosignedMessage
from tongban.config import Settings
from tongban.crypto.signing import KeyError_, PublicKey, b64u, b64u_decode, public_from_jwk
from tongban.exchange import service as exchange
from tongban.kernel.node import settings_of
from tongban.keys import service as keys
from tongban.keys.models import SigningKey

log = logging.getLogger(__name__)

CHECKPOINT = "audit.checkpoint"
COSIGNED = "audit.cosigned"


class Refused(exchange.Refused):
    """A witnessing message that must never be applied: refused for good (over HTTP a
    4xx, so the sender parks it as dead at once, where an operator sees it)."""

    def __init__(self, detail: str, reason: str = "not-allowed", status: int = 403) -> None:
        super().__init__(reason, detail, status)


# --- who the peers are ----------------------------------------------------------------


def federated(settings: Settings) -> bool:
    """Whether this node is one of several (a federation file, not serving '*')."""
    s = settings
    return s.federation_file is not None and s.served_jurisdictions.strip() != "*"


def _codes(served: str) -> list[str]:
    return [c.strip() for c in served.split(",") if c.strip() and c.strip() != "*"]


def peers(settings: Settings) -> dict[str, str]:
    """Every other node of the federation -> one jurisdiction it serves (a message is
    addressed to a jurisdiction; which of the node's carries it does not matter)."""
    s = settings
    if not federated(s):
        return {}
    own = set(_codes(s.served_jurisdictions))
    out: dict[str, str] = {}
    for node in exchange.federation_for(s).nodes.values():
        if node.id == s.node_id:
            continue
        code = next((j for j in node.jurisdictions if j != "*" and j not in own), None)
        if code is not None:
            out[node.id] = code
    return dict(sorted(out.items()))


# --- origin side ----------------------------------------------------------------------


def _public_jwk(session: Session, kid: str) -> dict[str, Any]:
    row = session.get(SigningKey, kid)
    if row is None:
        raise LookupError(f"audit key {kid} unknown")
    return keys.public_key(row).jwk()


def last_cosigned(session: Session, witness: str, upto: int | None = None) -> int | None:
    """The highest seq `witness` cosigned for this node (at most `upto`), if any."""
    q = select(func.max(AuditCosignature.seq)).where(AuditCosignature.witness == witness)
    if upto is not None:
        q = q.where(AuditCosignature.seq <= upto)
    value = session.scalar(q)
    return None if value is None else int(value)


def publish(session: Session, cp: AuditCheckpoint, settings: Settings | None = None) -> int:
    """Queue checkpoint `cp` for every peer node to witness; how many messages.

    The proof a witness needs starts at the last seq it cosigned (so a witness that
    missed checkpoints catches up); for a witness that never cosigned, at the previous
    checkpoint (a first checkpoint is accepted as it is). It is read when the message
    leaves (`attach_proof`), so the outbox row stays small."""
    s = settings or settings_of(session)
    targets = peers(s)
    if not targets:
        return 0
    own = _codes(s.served_jurisdictions)
    if not own:
        return 0
    previous = session.scalar(
        select(func.max(AuditCheckpoint.seq)).where(AuditCheckpoint.seq < cp.seq)
    )
    origin = domain.origin_of(cp.node_id)
    base = {
        "origin": origin,
        "node": cp.node_id,
        "seq": int(cp.seq),
        "hash": cp.hash,
        "at": domain.format_at(cp.at),
        "kid": cp.kid,
        "alg": cp.alg,
        "signature": cp.signature,
        "note": domain.checkpoint_note(origin, int(cp.seq), cp.hash),
        "key": _public_jwk(session, cp.kid),
    }
    for witness, code in targets.items():
        start = last_cosigned(session, witness, int(cp.seq))
        if start is None or int(cp.seq) - start > MAX_PROOF_ENTRIES:
            start = int(previous or 0)
        start = max(start, int(cp.seq) - MAX_PROOF_ENTRIES)
        exchange.send(session, CHECKPOINT, own[0], code, {**base, "proof_from": start})
    return len(targets)


@exchange.outgoing(CHECKPOINT)
def attach_proof(session: Session, payload: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The entries proof_from+1..seq of this node's chain, as stored, when the checkpoint
    leaves for a witness."""
    start, upto = int(payload.get("proof_from", 0)), int(payload["seq"])
    payload["proof"] = [
        {
            "seq": e.seq,
            "at": domain.format_at(e.at),
            "kind": e.kind,
            "subject": e.subject,
            "actor": e.actor,
            "body": e.body,
            "alg": e.alg,
            "prev_hash": e.prev_hash,
            "hash": e.hash,
        }
        for e in entries.iter_entries(session, start, upto)
    ]
    return payload


def receive_cosignature(session: Session, m: CosignedMessage, sender: str | None) -> bool:
    """Keep a witness's cosignature of one of this node's checkpoints after verifying it
    with the witness's audit key; False when it was kept already."""
    node_id = settings_of(session).node_id
    if sender is None or m.witness != sender:
        raise Refused(f"{m.witness} 的副署不能由 {sender or '本节点'} 发送")
    if m.node != node_id or m.origin != domain.origin_of(node_id):
        raise Refused(f"副署针对 {m.origin}，本节点是 {node_id}")
    if m.witness_name != domain.witness_name(sender):
        raise Refused(f"见证名 {m.witness_name} 不属于节点 {sender}", "bad-payload", 422)
    pub = _learn_key(session, sender, m.key, m.kid, m.alg)
    note = domain.checkpoint_note(m.origin, m.seq, m.hash)
    if not _verifies(pub, domain.cosignature_message(note, m.timestamp), m.signature):
        raise Refused(f"节点 {sender} 对第 {m.seq} 条检查点的副署签名无效", "bad-signature", 422)
    if session.get(AuditCosignature, (m.seq, sender)) is not None:
        return False
    own = session.get(AuditCheckpoint, m.seq)
    if own is None or own.hash != m.hash:
        log.error(
            "witness %s cosigned seq %s with root %s, which is not this node's checkpoint",
            sender,
            m.seq,
            m.hash,
        )
    session.add(
        AuditCosignature(
            seq=m.seq,
            witness=sender,
            hash=m.hash,
            kid=m.kid,
            alg=m.alg,
            timestamp=m.timestamp,
            signature=m.signature,
        )
    )
    session.flush()
    return True


# --- witness side ---------------------------------------------------------------------


def _learn_key(session: Session, owner: str, jwk: Any, kid: str, alg: str) -> PublicKey:
    """The audit public key `kid` of node `owner`, imported on first sight. The message
    carrying it was signed by `owner`'s node key (the federation file), so the node
    vouches for its audit key; a kid known for another purpose or owner is refused."""
    raw = jwk.model_dump() if hasattr(jwk, "model_dump") else dict(jwk)
    try:
        pub = public_from_jwk(raw)
    except KeyError_ as exc:
        raise Refused(f"审计公钥无法读取：{exc}", "bad-payload", 422) from exc
    if pub.kid != kid or str(pub.alg) != alg:
        raise Refused(
            f"审计公钥 {pub.kid}（{pub.alg}）与声明的 {kid}（{alg}）不符", "bad-payload", 422
        )
    row = session.get(SigningKey, kid)
    if row is None:
        keys.import_public(session, "audit", owner, pub.jwk())
    elif row.purpose != "audit" or row.owner != owner:
        raise Refused(f"密钥 {kid} 已登记为 {row.owner} 的 {row.purpose} 密钥")
    return pub


def _verifies(pub: PublicKey, data: bytes, signature: str) -> bool:
    try:
        return pub.verify(data, b64u_decode(signature))
    except Exception:  # noqa: BLE001 - a malformed signature is simply invalid
        return False


def _alarm(
    session: Session,
    m: CheckpointMessage,
    known: WitnessedCheckpoint | None,
    reason: str,
    detail: str,
    message_id: uuid.UUID | None,
) -> WitnessAlarm:
    row = WitnessAlarm(
        origin_node=m.node,
        seq=m.seq,
        hash=m.hash,
        known_seq=None if known is None else known.seq,
        known_hash=None if known is None else known.hash,
        reason=reason,
        detail=detail[:2000],
        message_id=message_id,
    )
    session.add(row)
    session.flush()
    log.error(
        "AUDIT WITNESS ALARM: checkpoint of %s at seq %s (%s…) refused: %s: %s",
        m.node,
        m.seq,
        m.hash[:16],
        reason,
        detail,
    )
    return row


def latest_witnessed(session: Session, origin_node: str) -> WitnessedCheckpoint | None:
    """The newest checkpoint of `origin_node` this node cosigned."""
    return session.scalars(
        select(WitnessedCheckpoint)
        .where(WitnessedCheckpoint.origin_node == origin_node)
        .order_by(WitnessedCheckpoint.seq.desc())
        .limit(1)
    ).first()


@dataclass(frozen=True)
class Reply:
    """Where the cosignature goes back: from one of our jurisdictions to the origin's."""

    source_jurisdiction: str
    target_jurisdiction: str


def receive_checkpoint(
    session: Session,
    m: CheckpointMessage,
    sender: str | None,
    reply: Reply,
    message_id: uuid.UUID | None = None,
) -> domain.Verdict:
    """Witness a peer node's checkpoint: check its signature and its consistency with
    what this node cosigned before for that origin, then cosign, keep and send the
    cosignature back; an inconsistent or badly signed checkpoint raises an alarm instead.
    Raises OutOfOrder when the proof starts past what this node holds (retried later)."""
    me = settings_of(session).node_id
    if sender is None or sender == me:
        raise Refused("节点不为自己的检查点作见证")
    if m.node != sender or m.origin != domain.origin_of(sender):
        raise Refused(f"{m.origin}（{m.node}）的检查点不能由 {sender} 发送")
    if m.note != domain.checkpoint_note(m.origin, m.seq, m.hash):
        raise Refused("检查点文本与检查点不符", "bad-payload", 422)
    pub = _learn_key(session, sender, m.key, m.kid, m.alg)
    known = latest_witnessed(session, sender)
    key_row = session.get(SigningKey, m.kid)
    withdrawn = key_row is not None and key_row.not_after is not None and m.at > key_row.not_after
    statement = domain.checkpoint_statement(sender, m.seq, m.hash, m.at)
    if withdrawn or not _verifies(pub, statement, m.signature):
        _alarm(
            session, m, known, "bad-signature", "the origin's signature does not verify", message_id
        )
        return domain.Verdict.INCONSISTENT

    def held(seq: int) -> str | None:
        row = session.get(WitnessedCheckpoint, (sender, seq))
        return None if row is None else row.hash

    result = domain.check_consistency(
        None if known is None else (int(known.seq), known.hash),
        m.seq,
        m.hash,
        m.proof_from,
        (p.entry() for p in m.proof),
        held,
    )
    if result.verdict is domain.Verdict.NEED_EARLIER:
        raise exchange.OutOfOrder(f"checkpoint of {sender} at {m.seq}: {result.detail}")
    if result.verdict is domain.Verdict.STALE:
        log.info("checkpoint of %s at %s not witnessed: %s", sender, m.seq, result.detail)
        return result.verdict
    if result.verdict is domain.Verdict.INCONSISTENT:
        _alarm(session, m, known, "inconsistent", result.detail, message_id)
        return result.verdict
    row = session.get(WitnessedCheckpoint, (sender, m.seq))
    if row is None:
        key, key_row_own = keys.signing_key(session, "audit", me)
        ts = int(time.time())
        row = WitnessedCheckpoint(
            origin_node=sender,
            seq=m.seq,
            hash=m.hash,
            checkpoint_at=m.at,
            kid=m.kid,
            alg=m.alg,
            signature=m.signature,
            timestamp=ts,
            cosigner_kid=key_row_own.kid,
            cosignature=b64u(key.sign(domain.cosignature_message(m.note, ts))),
        )
        session.add(row)
        session.flush()
        log.info("cosigned the checkpoint of %s at seq %s", sender, m.seq)
    cosigner = session.get(SigningKey, row.cosigner_kid)
    assert cosigner is not None
    exchange.send(
        session,
        COSIGNED,
        reply.source_jurisdiction,
        reply.target_jurisdiction,
        {
            "origin": m.origin,
            "node": sender,
            "seq": m.seq,
            "hash": m.hash,
            "witness": me,
            "witness_name": domain.witness_name(me),
            "timestamp": row.timestamp,
            "kid": cosigner.kid,
            "alg": cosigner.alg,
            "signature": row.cosignature,
            "key": keys.public_key(cosigner).jwk(),
        },
    )
    return result.verdict


# --- reading --------------------------------------------------------------------------


def cosignatures(session: Session) -> list[domain.Cosignature]:
    """Every cosignature this node's checkpoints received, by seq and witness (read with
    Core: as stored now)."""
    t = AuditCosignature.__table__
    rows = session.execute(select(t).order_by(t.c.seq, t.c.witness))
    return [
        domain.Cosignature(
            seq=int(r.seq),
            hash=r.hash,
            witness=r.witness,
            kid=r.kid,
            alg=r.alg,
            timestamp=int(r.timestamp),
            signature=r.signature,
        )
        for r in rows
    ]


def cosignature_check(session: Session, node_id: str) -> domain.CosignatureCheck:
    """A checker of cosignatures of `node_id`'s checkpoints against the witnesses' audit
    keys this node imported (by kid; the key must belong to the witness; a withdrawn key
    vouches for nothing signed after its withdrawal)."""
    rows: dict[str, SigningKey] = {r.kid: r for r in keys.public_rows(session, "audit")}
    origin = domain.origin_of(node_id)

    def check(cs: domain.Cosignature) -> bool:
        row = rows.get(cs.kid)
        if row is None or row.owner != cs.witness or row.alg != cs.alg:
            return False
        if row.not_after is not None and cs.timestamp > row.not_after.timestamp():
            return False
        note = domain.checkpoint_note(origin, cs.seq, cs.hash)
        data = domain.cosignature_message(note, cs.timestamp)
        return keys.public_key(row).verify(data, b64u_decode(cs.signature))

    return check


@dataclass(frozen=True)
class OriginStatus:
    """What this node, as a witness, holds for one peer node."""

    origin_node: str
    cosigned: int
    last_seq: int
    last_hash: str
    last_cosigned_at: int


@dataclass(frozen=True)
class Alarm:
    """An alarm as read (plain data, usable after the session ends)."""

    origin_node: str
    at: datetime
    seq: int
    hash: str
    known_seq: int | None
    known_hash: str | None
    reason: str
    detail: str


def status(session: Session) -> tuple[list[OriginStatus], list[Alarm]]:
    """Per peer node, how many of its checkpoints this node cosigned and the newest; and
    every alarm raised, newest first."""
    t = WitnessedCheckpoint
    counts: dict[str, int] = {}
    for origin_node, n in session.execute(
        select(t.origin_node, func.count()).group_by(t.origin_node)
    ):
        counts[str(origin_node)] = int(n)
    out = []
    for origin_node in sorted(counts):
        last = latest_witnessed(session, origin_node)
        assert last is not None
        out.append(
            OriginStatus(
                origin_node, int(counts[origin_node]), int(last.seq), last.hash, int(last.timestamp)
            )
        )
    alarms = [
        Alarm(
            a.origin_node,
            a.at,
            int(a.seq),
            a.hash,
            None if a.known_seq is None else int(a.known_seq),
            a.known_hash,
            a.reason,
            a.detail,
        )
        for a in session.scalars(select(WitnessAlarm).order_by(WitnessAlarm.at.desc()).limit(200))
    ]
    return out, alarms


def alarm_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(WitnessAlarm)) or 0)


def note_with_cosignatures(session: Session, cp: AuditCheckpoint) -> str:
    """The checkpoint as a C2SP-style signed note: its body, then a cosignature line per
    witness that cosigned it (for export off the node)."""
    origin = domain.origin_of(cp.node_id)
    note = domain.checkpoint_note(origin, int(cp.seq), cp.hash)
    lines = []
    for row in session.scalars(
        select(AuditCosignature)
        .where(AuditCosignature.seq == cp.seq)
        .order_by(AuditCosignature.witness)
    ):
        k = session.get(SigningKey, row.kid)
        if k is None:
            continue
        name = domain.witness_name(row.witness)
        jwk = keys.public_key(k).jwk()
        raw = (
            b64u_decode(jwk["x"])
            if k.alg == "EdDSA"
            else (b"\x04" + b64u_decode(jwk["x"]) + b64u_decode(jwk["y"]))
        )
        key_hash = domain.note_key_hash(name, k.alg, raw)
        lines.append(
            domain.cosignature_line(name, key_hash, row.timestamp, b64u_decode(row.signature))
        )
    return note + "\n" + "".join(lines)
