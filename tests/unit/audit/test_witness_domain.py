"""Witnessing rules (pure): checkpoint notes and cosignatures in the C2SP shapes, the
hash-chain consistency check a witness makes, and cosignatures in chain verification."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from tongban.audit.domain import (
    GENESIS,
    Checkpoint,
    Cosignature,
    Entry,
    Problem,
    Verdict,
    check_consistency,
    checkpoint_note,
    checkpoint_statement,
    cosignature_line,
    cosignature_message,
    describe,
    is_witness_traffic,
    make_entry,
    note_key_hash,
    origin_of,
    verify_chain,
)
from tongban.crypto.signing import b64u, b64u_decode, generate

T0 = datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)


def chain(n: int, start: tuple[int, str] = (0, GENESIS), tag: str = "") -> list[Entry]:
    out: list[Entry] = []
    seq, h = start
    for i in range(n):
        e = make_entry(
            seq,
            h,
            T0 + timedelta(seconds=seq + i),
            "case.event",
            f"case:{seq + 1}",
            "system",
            {"n": seq + 1, "tag": tag},
        )
        out.append(e)
        seq, h = e.seq, e.hash
    return out


def test_note_has_the_c2sp_checkpoint_shape() -> None:
    h = hashlib.sha256(b"x").hexdigest()
    note = checkpoint_note(origin_of("node-310000"), 42, h)
    assert note == (
        "tongban.node-310000/audit\n42\n" + base64.b64encode(bytes.fromhex(h)).decode() + "\n"
    )
    assert cosignature_message(note, 1700000000) == (
        b"cosignature/v1\ntime 1700000000\n" + note.encode()
    )


def test_cosignature_line_carries_key_id_timestamp_and_signature() -> None:
    key = generate("EdDSA")
    raw = b64u_decode(key.public().jwk()["x"])
    kh = note_key_hash("tongban.b/witness", "EdDSA", raw)
    assert kh == hashlib.sha256(b"tongban.b/witness\n\x04" + raw).digest()[:4]
    sig = key.sign(b"m")
    line = cosignature_line("tongban.b/witness", kh, 1700000000, sig)
    assert line.startswith("\u2014 tongban.b/witness ") and line.endswith("\n")
    blob = base64.b64decode(line.split()[-1])
    assert blob[:4] == kh and int.from_bytes(blob[4:12], "big") == 1700000000
    assert blob[12:] == sig


def test_first_checkpoint_is_accepted_as_is() -> None:
    assert check_consistency(None, 5, "a" * 64, 0, []).verdict is Verdict.FIRST


def test_an_extension_of_the_cosigned_head_is_consistent() -> None:
    entries = chain(10)
    known = (4, entries[3].hash)
    # The proof may start earlier than the witness's head: earlier entries are skipped.
    for start in (0, 2, 4):
        result = check_consistency(known, 10, entries[9].hash, start, entries[start:])
        assert result.verdict is Verdict.CONSISTENT, result


def test_a_rewritten_history_under_the_cosigned_head_is_inconsistent() -> None:
    entries = chain(10)
    known = (4, entries[3].hash)
    # The operator rewrote entry 3 and rehashed everything after it.
    forged = entries[:2] + chain(8, (2, entries[1].hash), tag="forged")
    assert forged[9].hash != entries[9].hash
    result = check_consistency(known, 10, forged[9].hash, 4, forged[4:])
    assert result.verdict is Verdict.INCONSISTENT
    assert "entry 5 does not extend the chain cosigned at size 4" in result.detail


def test_a_proof_that_ends_elsewhere_or_skips_is_inconsistent() -> None:
    entries = chain(10)
    known = (4, entries[3].hash)
    assert check_consistency(known, 10, "f" * 64, 4, entries[4:]).verdict is Verdict.INCONSISTENT
    gap = entries[4:6] + entries[7:]
    r = check_consistency(known, 10, entries[9].hash, 4, gap)
    assert r.verdict is Verdict.INCONSISTENT and "missing" in r.detail
    short = check_consistency(known, 10, entries[9].hash, 4, entries[4:8])
    assert short.verdict is Verdict.INCONSISTENT and "ends before" in short.detail
    # A forged entry whose stored hash does not match its content.
    bad = list(entries[4:])
    bad[2] = replace(bad[2], body='{"n":7,"tag":"x"}')
    assert check_consistency(known, 10, entries[9].hash, 4, bad).verdict is Verdict.INCONSISTENT


def test_same_size_other_root_is_a_fork() -> None:
    entries = chain(5)
    known = (5, entries[4].hash)
    assert check_consistency(known, 5, entries[4].hash, 5, []).verdict is Verdict.SAME
    fork = check_consistency(known, 5, "e" * 64, 5, [])
    assert fork.verdict is Verdict.INCONSISTENT


def test_older_checkpoints_compared_with_what_was_held() -> None:
    entries = chain(8)
    known = (8, entries[7].hash)
    held = {4: entries[3].hash}
    get = held.get
    assert check_consistency(known, 4, entries[3].hash, 0, [], get).verdict is Verdict.SAME
    assert check_consistency(known, 4, "d" * 64, 0, [], get).verdict is Verdict.INCONSISTENT
    assert check_consistency(known, 3, entries[2].hash, 0, [], get).verdict is Verdict.STALE


def test_a_proof_starting_past_the_witness_head_asks_for_an_earlier_one() -> None:
    entries = chain(10)
    r = check_consistency((4, entries[3].hash), 10, entries[9].hash, 6, entries[6:])
    assert r.verdict is Verdict.NEED_EARLIER


def _cosign(key, node: str, seq: int, h: str, ts: int = 1700000000) -> Cosignature:
    note = checkpoint_note(origin_of(node), seq, h)
    sig = b64u(key.sign(cosignature_message(note, ts)))
    return Cosignature(seq, h, "node-b", key.kid, str(key.alg), ts, sig)


def _check(pub, node: str):
    def check(cs: Cosignature) -> bool:
        note = checkpoint_note(origin_of(node), cs.seq, cs.hash)
        return pub.verify(cosignature_message(note, cs.timestamp), b64u_decode(cs.signature))

    return check


def test_verify_checks_cosignatures_against_the_chain_not_the_checkpoint_rows() -> None:
    node = "node-a"
    origin_key, witness_key = generate("EdDSA"), generate("EdDSA")
    entries = chain(8)

    def cp(seq: int, h: str) -> Checkpoint:
        st = checkpoint_statement(node, seq, h, T0)
        return Checkpoint(seq, h, T0, node, origin_key.kid, "EdDSA", b64u(origin_key.sign(st)))

    cs = _cosign(witness_key, node, 5, entries[4].hash)
    check = _check(witness_key.public(), node)
    ok = verify_chain(
        entries,
        [cp(5, entries[4].hash)],
        lambda c: True,
        cosignatures=[cs],
        check_cosignature=check,
    )
    assert ok.ok and ok.cosignatures == 1 and ok.last_cosigned == 5
    assert "1 cosignature(s) by peer nodes" in describe(ok)

    # Rewritten from entry 3 on, every hash recomputed, the node's checkpoint re-signed.
    forged = entries[:2] + chain(6, (2, entries[1].hash), tag="forged")
    report = verify_chain(
        forged, [cp(5, forged[4].hash)], lambda c: True, cosignatures=[cs], check_cosignature=check
    )
    assert report.finding is not None
    assert report.finding.problem is Problem.COSIGNED_MISMATCH and report.finding.seq == 5
    assert "node-b" in report.finding.detail
    assert "cosigned checkpoint mismatch" in describe(report)

    # A cosignature whose signature does not verify.
    bad = replace(cs, timestamp=cs.timestamp + 1)
    r = verify_chain(entries, [], lambda c: True, cosignatures=[bad], check_cosignature=check)
    assert r.finding is not None and r.finding.problem is Problem.COSIGNATURE_INVALID

    # The tail under a cosignature deleted.
    r = verify_chain(entries[:3], [], lambda c: True, cosignatures=[cs], check_cosignature=check)
    assert r.finding is not None and r.finding.problem is Problem.TRUNCATED
    assert r.finding.seq == 4


def test_witness_traffic_is_recognised() -> None:
    def e(kind: str, body: dict) -> Entry:
        return make_entry(0, GENESIS, T0, kind, "message:x", "system", body)

    assert is_witness_traffic(e("message.sent", {"type": "audit.checkpoint"}))
    assert is_witness_traffic(e("message.applied", {"type": "audit.cosigned"}))
    assert not is_witness_traffic(e("message.sent", {"type": "case.forwarded"}))
    assert not is_witness_traffic(e("case.event", {"type": "audit.checkpoint"}))
    assert json.loads(e("message.sent", {"type": "x"}).body) == {"type": "x"}
