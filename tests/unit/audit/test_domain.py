"""The audit chain's pure rules: encoding, hashes, and every kind of tampering named."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from gmssl import func as gm_func
from gmssl import sm3 as gm_sm3
from hypothesis import given, settings
from hypothesis import strategies as st

from tongban.audit.domain import (
    GENESIS,
    Checkpoint,
    Entry,
    Head,
    Problem,
    canonical_json,
    checkpoint_statement,
    describe,
    encode,
    entry_hash,
    make_entry,
    recompute,
    verify_chain,
)
from tongban.crypto.signing import PrivateKey, b64u, generate

T0 = datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)


def chain(n: int, alg: str | list[str] = "sha-256") -> list[Entry]:
    out: list[Entry] = []
    seq, h = 0, GENESIS
    for i in range(n):
        a = alg if isinstance(alg, str) else alg[i % len(alg)]
        e = make_entry(
            seq,
            h,
            T0 + timedelta(seconds=i),
            "case.event",
            f"case:{i % 3}",
            "system" if i % 2 else f"account:{i}",
            {"i": i, "action": "submit", "note": "受理"},
            a,
        )
        out.append(e)
        seq, h = e.seq, e.hash
    return out


def head_of(entries: list[Entry]) -> Head:
    return Head(entries[-1].seq, entries[-1].hash) if entries else Head(0, GENESIS)


def no_signatures(cp: Checkpoint) -> bool:
    raise AssertionError("no checkpoint expected")


def sign(key: PrivateKey, e: Entry, node: str = "local", at: datetime = T0) -> Checkpoint:
    statement = checkpoint_statement(node, e.seq, e.hash, at)
    return Checkpoint(e.seq, e.hash, at, node, key.kid, str(key.alg), b64u(key.sign(statement)))


def checker(*keys: PrivateKey):
    pubs = {k.kid: k.public() for k in keys}

    def check(cp: Checkpoint) -> bool:
        from tongban.crypto.signing import b64u_decode

        pub = pubs.get(cp.kid)
        statement = checkpoint_statement(cp.node_id, cp.seq, cp.hash, cp.at)
        return pub is not None and pub.verify(statement, b64u_decode(cp.signature))

    return check


def rehash_from(entries: list[Entry], start: int) -> list[Entry]:
    """What an attacker who can write the table does: recompute every hash from index
    `start` on so that links and hashes are consistent again."""
    out = list(entries[:start])
    prev = out[-1].hash if out else GENESIS
    for e in entries[start:]:
        e = replace(e, prev_hash=prev)
        e = replace(e, hash=recompute(e))
        out.append(e)
        prev = e.hash
    return out


# --- encoding ------------------------------------------------------------------------


def test_canonical_json_is_sorted_compact_utf8_and_types_become_strings():
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    text = canonical_json(
        {
            "b": 1,
            "a": [True, None, "上海"],
            "u": u,
            "t": T0,
            "d": date(2026, 1, 2),
            "m": Decimal("1.50"),
        }
    )
    assert text == (
        '{"a":[true,null,"上海"],"b":1,"d":"2026-01-02","m":"1.50",'
        '"t":"2026-03-01T08:00:00.123456Z","u":"12345678-1234-5678-1234-567812345678"}'
    )


@pytest.mark.parametrize(
    "bad",
    [float("nan"), datetime(2026, 1, 1), object(), {1: "x"}],
    ids=["nan", "naive-datetime", "object", "int-key"],
)
def test_canonical_json_refuses_what_has_no_single_form(bad):
    with pytest.raises(ValueError):
        canonical_json({"x": bad})


def test_encoding_is_the_canonical_json_of_the_whole_entry():
    body = canonical_json({"z": 1, "a": "江苏"})
    enc = encode(7, T0, "case.event", "case:1", "account:9", body, "sm3")
    expected = json.dumps(
        {
            "seq": 7,
            "at": "2026-03-01T08:00:00.123456Z",
            "kind": "case.event",
            "subject": "case:1",
            "actor": "account:9",
            "body": {"z": 1, "a": "江苏"},
            "alg": "sm3",
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    assert enc == expected


def test_known_answer_sha256_and_sm3_from_independent_implementations():
    body = '{"x":1}'
    prev = "ab" * 32
    for alg in ("sha-256", "sm3"):
        data = bytes.fromhex(prev) + encode(1, T0, "k", "s", "a", body, alg)
        if alg == "sha-256":
            want = hashlib.sha256(data).hexdigest()
        else:
            want = gm_sm3.sm3_hash(gm_func.bytes_to_list(data))
        assert entry_hash(alg, prev, 1, T0, "k", "s", "a", body) == want


def test_a_time_in_another_zone_hashes_as_its_utc_instant():
    shanghai = T0.astimezone(datetime.now().astimezone().tzinfo)
    assert entry_hash("sha-256", GENESIS, 1, shanghai, "k", "s", "a", "{}") == entry_hash(
        "sha-256", GENESIS, 1, T0, "k", "s", "a", "{}"
    )


# --- valid chains --------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["sha-256", "sm3", ["sha-256", "sm3"]], ids=str)
def test_a_valid_chain_verifies(alg):
    entries = chain(12, alg)
    report = verify_chain(entries, [], no_signatures, head_of(entries))
    assert report.ok, report.finding
    assert report.entries == 12 and report.last_seq == 12 and report.last_hash == entries[-1].hash
    assert describe(report).startswith("OK: 12 entries")


def test_empty_chain_verifies():
    assert verify_chain([], [], no_signatures, Head(0, GENESIS)).ok


def test_checkpoints_signed_before_and_after_a_key_rotation_verify():
    old, new = generate("EdDSA"), generate("SM2")
    entries = chain(10)
    cps = [sign(old, entries[3]), sign(new, entries[8])]
    report = verify_chain(entries, cps, checker(old, new), head_of(entries))
    assert report.ok and report.checkpoints == 2 and report.last_checkpoint == 9


def test_verifying_from_a_known_good_point():
    entries = chain(10)
    report = verify_chain(
        entries[5:], [], no_signatures, head_of(entries), start=(5, entries[4].hash)
    )
    assert report.ok and report.entries == 5
    bad = verify_chain(entries[5:], [], no_signatures, start=(5, entries[3].hash))
    assert bad.finding is not None
    assert (bad.finding.problem, bad.finding.seq) == (Problem.ALTERED, 5)


# --- each tampering, named -----------------------------------------------------------


def first(entries, cps=(), check=no_signatures, head=None):
    report = verify_chain(entries, list(cps), check, head)
    assert report.finding is not None, "tampering not detected"
    return report.finding.problem, report.finding.seq


def test_altered_body_is_named():
    entries = chain(10)
    entries[4] = replace(entries[4], body='{"i":4,"action":"approve"}')
    assert first(entries) == (Problem.ALTERED, 5)


@pytest.mark.parametrize("column", ["kind", "subject", "actor", "alg", "hash"])
def test_altered_columns_are_named(column):
    entries = chain(6)
    value = {
        "kind": "x",
        "subject": "case:9",
        "actor": "account:x",
        "alg": "sm3",
        "hash": "00" * 32,
    }
    entries[2] = replace(entries[2], **{column: value[column]})
    assert first(entries) == (Problem.ALTERED, 3)


def test_altered_time_is_named():
    entries = chain(6)
    entries[2] = replace(entries[2], at=entries[2].at + timedelta(microseconds=1))
    assert first(entries) == (Problem.ALTERED, 3)


def test_altered_prev_hash_alone_is_altered_not_reordered():
    entries = chain(6)
    entries[3] = replace(entries[3], prev_hash="11" * 32)
    assert first(entries) == (Problem.ALTERED, 4)


def test_altered_and_rehashed_entry_is_named_by_its_successor_link():
    entries = chain(8)
    forged = replace(entries[3], body='{"forged":true}')
    entries[3] = replace(forged, hash=recompute(forged))
    assert first(entries) == (Problem.ALTERED, 4)


@pytest.mark.parametrize("gone", [1, 5])
def test_removed_entry_is_named(gone):
    entries = chain(8)
    del entries[gone - 1]
    assert first(entries, head=Head(8, chain(8)[-1].hash)) == (Problem.REMOVED, gone)


def test_removed_run_is_named_by_its_first_seq():
    entries = chain(8)
    del entries[2:5]
    problem, seq = first(entries)
    assert (problem, seq) == (Problem.REMOVED, 3)


def test_removed_and_renumbered_is_removed():
    entries = chain(8)
    del entries[4]
    entries = entries[:4] + [replace(e, seq=e.seq - 1) for e in entries[4:]]
    assert first(entries) == (Problem.REMOVED, 5)


@pytest.mark.parametrize("i,j", [(3, 4), (2, 7), (1, 8)])
def test_swapped_seqs_are_reordered(i, j):
    entries = chain(8)
    a, b = entries[i - 1], entries[j - 1]
    entries[i - 1], entries[j - 1] = replace(b, seq=i), replace(a, seq=j)
    assert first(entries) == (Problem.REORDERED, i)


def test_removed_tail_is_truncated_by_the_head_row():
    entries = chain(8)
    assert first(entries[:6], head=head_of(entries)) == (Problem.TRUNCATED, 7)


def test_removed_tail_is_truncated_by_a_checkpoint():
    key = generate()
    entries = chain(8)
    cps = [sign(key, entries[6])]
    truncated = entries[:5]
    assert first(truncated, cps, checker(key), head_of(truncated)) == (Problem.TRUNCATED, 6)


def test_rewritten_chain_under_a_checkpoint_is_a_mismatch():
    key = generate()
    entries = chain(10)
    cps = [sign(key, entries[6])]
    forged = list(entries)
    forged[2] = replace(forged[2], body='{"forged":true}')
    forged = rehash_from(forged, 2)
    assert first(forged, cps, checker(key), head_of(forged)) == (Problem.CHECKPOINT_MISMATCH, 7)


def test_rewritten_tail_after_the_last_checkpoint_is_not_detectable_without_more():
    """The documented limit: whoever can write the table can rewrite past the last
    checkpoint (and the head row) undetected. Checkpoints bound the damage."""
    key = generate()
    entries = chain(10)
    cps = [sign(key, entries[6])]
    forged = list(entries)
    forged[8] = replace(forged[8], body='{"forged":true}')
    forged = rehash_from(forged, 8)
    assert verify_chain(forged, cps, checker(key), head_of(forged)).ok


def test_bad_checkpoint_signature_is_named():
    key, other = generate(), generate()
    entries = chain(8)
    good = sign(key, entries[2])
    bad = replace(sign(key, entries[5]), signature=b64u(b"\x00" * 64))
    assert first(entries, [good, bad], checker(key), head_of(entries)) == (
        Problem.CHECKPOINT_SIGNATURE,
        6,
    )
    unknown = sign(other, entries[5])
    assert first(entries, [good, unknown], checker(key)) == (Problem.CHECKPOINT_SIGNATURE, 6)
    moved = replace(sign(key, entries[5]), at=T0 + timedelta(hours=1))
    assert first(entries, [moved], checker(key))[0] is Problem.CHECKPOINT_SIGNATURE


def test_checkpoint_with_a_malformed_signature_is_invalid_not_a_crash():
    key = generate()
    entries = chain(4)
    cp = replace(sign(key, entries[1]), signature="***")
    assert first(entries, [cp], checker(key)) == (Problem.CHECKPOINT_SIGNATURE, 2)


def test_head_row_out_of_step_is_named():
    entries = chain(5)
    assert first(entries, head=Head(4, entries[3].hash)) == (Problem.HEAD_MISMATCH, 4)
    assert first(entries, head=Head(5, "00" * 32)) == (Problem.HEAD_MISMATCH, 5)
    assert first(entries, head=Head(5, entries[-1].hash, stray_seq=9)) == (
        Problem.HEAD_MISMATCH,
        9,
    )


def test_the_first_problem_wins():
    entries = chain(10)
    entries[7] = replace(entries[7], body="{}")
    entries[2] = replace(entries[2], body="{}")
    del entries[5]
    assert first(entries) == (Problem.ALTERED, 3)
    assert "entry 3: altered" in describe(verify_chain(entries, [], no_signatures))


def test_report_as_dict_names_problem_and_seq():
    entries = chain(3)
    entries[1] = replace(entries[1], body="{}")
    d = verify_chain(entries, [], no_signatures).as_dict()
    assert d["ok"] is False and d["problem"] == "altered" and d["seq"] == 2
    assert d["entries"] == 1


# --- property: any single tampering is caught at the first affected seq -------------


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=25),
    alg=st.sampled_from(["sha-256", "sm3"]),
    op=st.sampled_from(["alter", "remove", "swap"]),
    data=st.data(),
)
def test_any_single_tampering_is_detected_at_the_first_affected_seq(n, alg, op, data):
    entries = chain(n, alg)
    head = head_of(entries)
    if op == "alter":
        i = data.draw(st.integers(1, n), label="i")
        field = data.draw(st.sampled_from(["body", "kind", "subject", "actor", "at", "hash"]))
        e = entries[i - 1]
        changed = {
            "body": canonical_json({"forged": data.draw(st.text(max_size=5))}),
            "kind": e.kind + "x",
            "subject": e.subject + "x",
            "actor": e.actor + "x",
            "at": e.at + timedelta(microseconds=data.draw(st.integers(1, 10**9))),
            "hash": ("0" if e.hash[0] != "0" else "1") + e.hash[1:],
        }[field]
        entries[i - 1] = replace(e, **{field: changed})
        expected = {(Problem.ALTERED, i)}
    elif op == "remove":
        i = data.draw(st.integers(1, n), label="i")
        del entries[i - 1]
        expected = {(Problem.TRUNCATED, i)} if i == n else {(Problem.REMOVED, i)}
    else:
        if n < 2:
            return
        i = data.draw(st.integers(1, n - 1), label="i")
        j = data.draw(st.integers(i + 1, n), label="j")
        a, b = entries[i - 1], entries[j - 1]
        entries[i - 1], entries[j - 1] = replace(b, seq=i), replace(a, seq=j)
        expected = {(Problem.REORDERED, i)}
    report = verify_chain(entries, [], no_signatures, head)
    assert report.finding is not None
    assert (report.finding.problem, report.finding.seq) in expected
    assert report.entries == report.finding.seq - 1
