"""Peer nodes witness each other's audit checkpoints, on two `tongban serve --node …`
processes on 127.0.0.1 made by `tongban exchange init-local`.

Node A checkpoints its chain and node B cosigns; the cosignature travels back to A.
Then A's operator rewrites an entry under that checkpoint, rehashes the chain after it,
re-signs A's own checkpoints with A's audit key and signs a new checkpoint — everything
a malicious operator with the database and the key can do. B, receiving the new
checkpoint, finds that it does not extend the head it cosigned: it raises an alarm and
does not cosign; `tongban audit verify` on A fails naming the cosigned checkpoint.

Bounded: fixed timeouts; the processes are stopped at the end."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from nodes import FAST_RETRIES, PeerNode, federation, wait_until
from tongban.audit import domain
from tongban.crypto.signing import b64u, load_private_pem

#: Seconds allowed for a message to go to the peer and the answer to come back.
WAIT = 45.0
A, B = "node-310000", "node-320000"


def _wait_for(what: str, probe: Callable[[], Any], procs: list[PeerNode]) -> Any:
    def logs() -> str:
        return "\n".join(f"--- {p.node_id}\n{p.server.log_tail(3000)}" for p in procs)

    return wait_until(what, probe, WAIT, logs)


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, PeerNode]]:
    root = tmp_path_factory.mktemp("witness")
    # Checkpoints come from the CLI in this test, not from the timer.
    env = {**FAST_RETRIES, "TONGBAN_AUDIT_CHECKPOINT_SECONDS": "3600"}
    with federation(root, 2, port_start=24100, port_step=41, env=env, demo=False) as procs:
        yield {p.node_id: p for p in procs.values()}


def _rewrite_history(a: PeerNode, victim: int) -> None:
    """What a malicious operator of A does: change entry `victim`, rehash every entry
    after it and the head row, and re-sign A's own checkpoints at or after it with A's
    audit key, so that A's chain and A's checkpoints agree again."""
    engine = create_engine(a.env["TONGBAN_DATABASE_URL"])
    try:
        with engine.begin() as c:
            rows = c.execute(
                text("SELECT * FROM audit_entry WHERE seq >= :s ORDER BY seq"), {"s": victim}
            ).all()
            prev = rows[0].prev_hash
            new_hash: dict[int, str] = {}
            for r in rows:
                body = r.body
                if r.seq == victim:
                    body = json.dumps({**json.loads(r.body), "forged": True}, sort_keys=True)
                    body = domain.canonical_json(json.loads(body))
                at = r.at if not isinstance(r.at, str) else _parse_at(r.at)
                h = domain.entry_hash(r.alg, prev, r.seq, at, r.kind, r.subject, r.actor, body)
                c.execute(
                    text("UPDATE audit_entry SET body=:b, prev_hash=:p, hash=:h WHERE seq=:s"),
                    {"b": body, "p": prev, "h": h, "s": r.seq},
                )
                new_hash[r.seq] = h
                prev = h
            c.execute(text("UPDATE audit_head SET hash=:h WHERE id=1"), {"h": prev})
            pem = c.execute(
                text(
                    "SELECT private_pem FROM signing_key WHERE purpose='audit' AND owner=:o "
                    "AND private_pem IS NOT NULL AND retired_at IS NULL"
                ),
                {"o": a.node_id},
            ).scalar_one()
            key = load_private_pem(pem)
            for cp in c.execute(
                text("SELECT seq, at FROM audit_checkpoint WHERE seq >= :s"), {"s": victim}
            ).all():
                at = cp.at if not isinstance(cp.at, str) else _parse_at(cp.at)
                h = new_hash[cp.seq]
                sig = b64u(key.sign(domain.checkpoint_statement(a.node_id, cp.seq, h, at)))
                c.execute(
                    text("UPDATE audit_checkpoint SET hash=:h, signature=:g WHERE seq=:s"),
                    {"h": h, "g": sig, "s": cp.seq},
                )
    finally:
        engine.dispose()


def _parse_at(value: str) -> Any:
    from datetime import UTC, datetime

    at = datetime.fromisoformat(value)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def test_a_rewritten_tail_is_caught_by_the_witness(nodes: dict[str, PeerNode]) -> None:
    a, b = nodes[A], nodes[B]
    procs = [a, b]

    # A has something to vouch for, checkpoints it, and B cosigns.
    r = a.cli("exchange", "ping", "320000")
    assert r.returncode == 0, r.stderr
    r = a.cli("audit", "checkpoint")
    assert r.returncode == 0, r.stderr
    assert f"sent to witnesses: {B}" in r.stdout, r.stdout
    n1 = int(r.stdout.split("checkpoint at seq ")[1].split()[0])
    cosig = _wait_for(
        "B's cosignature on A",
        lambda: a.sql(
            "SELECT seq, hash FROM audit_cosignature WHERE witness=:w AND seq=:s", w=B, s=n1
        ),
        procs,
    )
    ((seq, cosigned_hash),) = cosig
    assert (seq, cosigned_hash) == (
        n1,
        a.sql("SELECT hash FROM audit_checkpoint WHERE seq=:s", s=n1)[0][0],
    )
    assert b.sql("SELECT hash FROM audit_witnessed WHERE origin_node=:o AND seq=:s", o=A, s=n1) == [
        (cosigned_hash,)
    ]

    r = a.cli("audit", "verify", "--witnesses")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"checkpoint {n1} " in r.stdout and f"cosigned by {B}" in r.stdout
    r = b.cli("audit", "witness-status")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{A}: 1 checkpoint(s) cosigned, last at seq {n1}" in r.stdout
    assert "no alarms" in r.stdout

    # More history after the checkpoint, then A's operator rewrites and re-signs.
    r = a.cli("exchange", "ping", "320000")
    assert r.returncode == 0, r.stderr
    a.stop()
    _rewrite_history(a, n1)
    r = a.cli("audit", "verify")  # A's own checkpoints agree with the rewritten chain …
    assert r.returncode == 1, r.stdout
    assert f"entry {n1}: cosigned checkpoint mismatch" in r.stdout  # … B's cosignature not
    assert B in r.stdout
    r = a.cli("audit", "checkpoint")
    assert r.returncode == 0, r.stdout + r.stderr
    n2 = int(r.stdout.split("checkpoint at seq ")[1].split()[0])
    assert n2 > n1
    a.start()
    a.wait_ready()

    # B refuses the new checkpoint: it does not extend the head B cosigned.
    alarms = _wait_for(
        "B's alarm",
        lambda: b.sql(
            "SELECT seq, known_seq, reason FROM audit_witness_alarm WHERE origin_node=:o", o=A
        ),
        procs,
    )
    assert alarms == [(n2, n1, "inconsistent")]
    assert b.sql("SELECT seq FROM audit_witnessed WHERE origin_node=:o", o=A) == [(n1,)]
    r = b.cli("audit", "witness-status")
    assert r.returncode == 1, r.stdout
    assert "ALARM" in r.stdout and f"{A} checkpoint at seq {n2}" in r.stdout
    assert f"does not extend the chain cosigned at size {n1}" in r.stdout

    r = a.cli("audit", "verify", "--json")
    assert r.returncode == 1
    report = json.loads(r.stdout)
    assert report["problem"] == "cosigned checkpoint mismatch"
    assert report["seq"] == n1
    assert B in report["detail"]
