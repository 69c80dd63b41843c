"""Peer nodes witness each other's checkpoints, on two nodes in one process (each its own
database, SQLite or PostgreSQL) talking real signed HTTP (tests/integration/exchange's
`fed` fixture): A checkpoints, B checks and cosigns, the cosignature comes back to A;
a rewritten and re-signed history on A is refused by B with an alarm and named by
`verify` on A."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from integration.exchange.conftest import drain
from tongban.audit import domain, service, tasks, witness
from tongban.audit.models import (
    AuditCheckpoint,
    AuditCosignature,
    WitnessAlarm,
    WitnessedCheckpoint,
)
from tongban.audit.schemas import CheckpointMessage
from tongban.crypto.signing import b64u
from tongban.exchange import service as exchange
from tongban.exchange.models import OutboxMessage
from tongban.keys import service as keys

A, B = "node-a", "node-b"


def _reset(node: Any) -> None:
    with node.session() as s:
        for model in (AuditCosignature, WitnessedCheckpoint, WitnessAlarm, AuditCheckpoint):
            s.execute(delete(model))
        s.commit()


def _activity(node: Any, n: int = 3) -> None:
    with node.session() as s:
        for i in range(n):
            service.record(s, "test.witness", f"case:{i}", "system", {"i": i})
        s.commit()


def _checkpoint(node: Any) -> AuditCheckpoint:
    with node.session() as s:
        cp = service.checkpoint(s, node.id)
        assert cp is not None
        s.commit()
        return cp


def _verify(node: Any) -> domain.Report:
    with node.session() as s:
        return service.verify(s)


def _rewrite(node: Any, victim: int) -> None:
    """A malicious operator of `node`: entry `victim` changed, everything after it
    rehashed, the head moved, the node's own checkpoints re-signed with its audit key."""
    with node.session() as s:
        rows = list(service.iter_entries(s, victim - 1))
        prev = rows[0].prev_hash
        hashes = {}
        for e in rows:
            body = e.body
            if e.seq == victim:
                body = domain.canonical_json({**json.loads(e.body), "forged": True})
            h = domain.entry_hash(e.alg, prev, e.seq, e.at, e.kind, e.subject, e.actor, body)
            s.execute(
                text("UPDATE audit_entry SET body=:b, prev_hash=:p, hash=:h WHERE seq=:s"),
                {"b": body, "p": prev, "h": h, "s": e.seq},
            )
            hashes[e.seq] = prev = h
        s.execute(text("UPDATE audit_head SET hash=:h WHERE id=1"), {"h": prev})
        key, _row = keys.signing_key(s, "audit", node.id)
        for cp in s.scalars(select(AuditCheckpoint).where(AuditCheckpoint.seq >= victim)):
            cp.hash = hashes[cp.seq]
            st = domain.checkpoint_statement(node.id, cp.seq, cp.hash, cp.at)
            cp.signature = b64u(key.sign(st))
        s.commit()


def test_checkpoints_are_cosigned_and_a_rewrite_is_caught(fed: dict[str, Any]) -> None:
    a, b = fed[A], fed[B]
    for node in (a, b):
        _reset(node)
    _activity(a)
    cp1 = _checkpoint(a)
    with a.session() as s:
        sent = s.scalars(select(OutboxMessage).where(OutboxMessage.type == witness.CHECKPOINT))
        assert [(m.target_jurisdiction, m.payload["seq"]) for m in sent] == [("320000", cp1.seq)]
    drain(a, b)

    with b.session() as s:
        seen = s.get(WitnessedCheckpoint, (A, cp1.seq))
        assert seen is not None and seen.hash == cp1.hash
        assert s.scalar(select(WitnessAlarm)) is None
    with a.session() as s:
        cos = s.get(AuditCosignature, (cp1.seq, B))
        assert cos is not None and cos.hash == cp1.hash
    report = _verify(a)
    assert report.ok, domain.describe(report)
    assert report.cosignatures == 1 and report.last_cosigned == cp1.seq

    # The checkpoint as a signed note with B's cosignature line, checkable with B's key.
    with a.session() as s:
        note = witness.note_with_cosignatures(s, s.get(AuditCheckpoint, cp1.seq))
    body, _, sigs = note.partition("\n\n")
    assert body + "\n" == domain.checkpoint_note(domain.origin_of(A), cp1.seq, cp1.hash)
    dash, name, blob_b64 = sigs.strip().split(" ")
    assert (dash, name) == ("\u2014", domain.witness_name(B))
    blob = base64.b64decode(blob_b64)
    ts = int.from_bytes(blob[4:12], "big")
    with b.session() as s:
        b_key = keys.public_key(keys.current_row(s, "audit", B))
    assert b_key.verify(domain.cosignature_message(body + "\n", ts), blob[12:])

    # A second checkpoint extends the first: B checks the entries in between.
    _activity(a)
    cp2 = _checkpoint(a)
    drain(a, b)
    with b.session() as s:
        assert s.get(WitnessedCheckpoint, (A, cp2.seq)) is not None
        origins, alarms = witness.status(s)
        assert [(o.origin_node, o.cosigned, o.last_seq) for o in origins] == [(A, 2, cp2.seq)]
        assert alarms == []
    assert _verify(a).ok

    # The operator of A rewrites an entry B has seen, rehashes and re-signs.
    _activity(a)
    _rewrite(a, cp1.seq - 1)
    report = _verify(a)
    assert report.finding is not None
    assert report.finding.problem is domain.Problem.COSIGNED_MISMATCH
    assert report.finding.seq == cp1.seq and B in report.finding.detail
    cp3 = _checkpoint(a)  # A's own re-verification passes: the rewrite is consistent
    drain(a, b)
    with b.session() as s:
        assert s.get(WitnessedCheckpoint, (A, cp3.seq)) is None
        alarm = s.scalar(select(WitnessAlarm))
        assert alarm is not None
        assert (alarm.origin_node, alarm.seq, alarm.known_seq, alarm.reason) == (
            A,
            cp3.seq,
            cp2.seq,
            "inconsistent",
        )
    with a.session() as s:
        assert s.get(AuditCosignature, (cp3.seq, B)) is None


def _message(s: Session, node: str, seq: int, h: str, **over: Any) -> CheckpointMessage:
    at = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    key, row = keys.signing_key(s, "audit", node)
    origin = domain.origin_of(node)
    data = {
        "origin": origin,
        "node": node,
        "seq": seq,
        "hash": h,
        "at": at,
        "kid": row.kid,
        "alg": row.alg,
        "signature": b64u(key.sign(domain.checkpoint_statement(node, seq, h, at))),
        "note": domain.checkpoint_note(origin, seq, h),
        "key": keys.public_key(row).jwk(),
        "proof_from": 0,
        "proof": [],
        **over,
    }
    return CheckpointMessage.model_validate(data)


def test_the_witness_refuses_what_it_cannot_vouch_for(fed: dict[str, Any]) -> None:
    b = fed[B]
    _reset(b)
    reply = witness.Reply("320000", "310000")
    with b.session() as s:
        m = _message(s, "node-x", 3, "a" * 64)
        # Only the node itself may send its checkpoint; never to itself.
        with pytest.raises(witness.Refused):
            witness.receive_checkpoint(s, m, A, reply)
        with pytest.raises(witness.Refused):
            witness.receive_checkpoint(s, _message(s, B, 3, "a" * 64), B, reply)
        # A signature that does not verify: an alarm, no cosignature.
        bad = m.model_copy(update={"signature": m.signature[:-4] + "AAAA"})
        v = witness.receive_checkpoint(s, bad, "node-x", reply)
        assert v is domain.Verdict.INCONSISTENT
        assert s.scalar(select(WitnessAlarm.reason)) == "bad-signature"
        assert s.get(WitnessedCheckpoint, ("node-x", 3)) is None
        # First sight: cosigned; a later one whose proof starts past it: asked again later.
        assert witness.receive_checkpoint(s, m, "node-x", reply) is domain.Verdict.FIRST
        later = _message(s, "node-x", 9, "b" * 64, proof_from=5)
        with pytest.raises(exchange.OutOfOrder):
            witness.receive_checkpoint(s, later, "node-x", reply)
        # The same size with another root: a fork.
        fork = _message(s, "node-x", 3, "c" * 64)
        assert witness.receive_checkpoint(s, fork, "node-x", reply) is domain.Verdict.INCONSISTENT
        s.rollback()


def test_witnessing_alone_does_not_call_for_a_new_checkpoint(fed: dict[str, Any]) -> None:
    a, b = fed[A], fed[B]
    for node in (a, b):
        _reset(node)
    _activity(a, 1)
    _checkpoint(a)
    drain(a, b)  # a message.sent on A, message.applied + message.sent on B, …
    settings_a = a.settings.model_copy(update={"audit_checkpoint_seconds": 0.0})
    settings_b = b.settings.model_copy(update={"audit_checkpoint_seconds": 0.0})
    assert tasks.make_checkpoint(a.factory, settings_a) is None
    assert tasks.make_checkpoint(b.factory, settings_b) is None
    _activity(a, 1)
    assert tasks.make_checkpoint(a.factory, settings_a) is not None


def test_a_node_cannot_send_another_nodes_checkpoint_or_cosignature(fed: dict[str, Any]) -> None:
    a, b = fed[A], fed[B]
    with b.session() as s:
        s.execute(delete(OutboxMessage))
        forged = _message(s, "node-x", 3, "a" * 64)
        exchange.send(s, witness.CHECKPOINT, "320000", "310000", forged.model_dump(mode="json"))
        cos = {
            "origin": domain.origin_of(A),
            "node": A,
            "seq": 1,
            "hash": "a" * 64,
            "witness": "node-x",  # B pretends to be another witness
            "witness_name": domain.witness_name("node-x"),
            "timestamp": 1700000000,
            "kid": forged.kid,
            "alg": forged.alg,
            "signature": forged.signature,
            "key": forged.key.model_dump(),
        }
        exchange.send(s, witness.COSIGNED, "320000", "310000", cos)
        s.commit()
    b.dispatch()
    dead = b.outbox(status="dead")
    assert sorted(m.type for m in dead) == [witness.CHECKPOINT, witness.COSIGNED]
    assert all("not-allowed" in (m.last_error or "") for m in dead)
    with a.session() as s:
        assert (
            s.scalar(select(WitnessedCheckpoint).where(WitnessedCheckpoint.origin_node == "node-x"))
            is None
        )
        assert s.get(AuditCosignature, (1, "node-x")) is None
