"""The gate's own SQLite (gate.GateDb): an admission and its use are one statement, so a
code is admitted once whatever shares the file — two connections (two gate processes on
one state directory) included — and a code learnt from the operator's other gates is a
replay; a gate.db of the earlier layout is upgraded in place and keeps refusing what it
had admitted; the outbox is uploaded in order and marked once."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tongban.card.gate import GateDb

REF = bytes.fromhex("0102030405060708")


def _use(i: int) -> dict[str, object]:
    return {"id": f"00000000-0000-4000-8000-{i:012d}", "admitted": True}


def test_two_connections_admit_a_code_once(tmp_path: Path) -> None:
    a, b = GateDb(tmp_path / "gate.db"), GateDb(tmp_path / "gate.db")
    try:
        assert a.admit(REF, 100, 101, _use(1)) is True
        assert b.admit(REF, 100, 102, _use(2)) is False  # the other process: a replay
        assert a.admit(REF, 130, 131, _use(3)) is True  # the next code of the holder
        assert b.seen(REF, 100) and b.seen(REF, 130) and not b.seen(REF, 160)
        assert [u["id"] for _, u in a.pending()] == [_use(1)["id"], _use(3)["id"]]
    finally:
        a.close()
        b.close()


def test_a_code_admitted_at_another_gate_is_a_replay(tmp_path: Path) -> None:
    db = GateDb(tmp_path / "gate.db")
    db.remember(REF, 100, 100)
    assert db.admit(REF, 100, 101, _use(1)) is False
    assert db.pending() == []
    db.close()


def test_the_outbox_is_marked_uploaded_once(tmp_path: Path) -> None:
    db = GateDb(tmp_path / "gate.db")
    for i in range(3):
        db.add_use({"id": f"u{i}", "admitted": False}, 100 + i)
    rows = db.pending(limit=2)
    assert [u["id"] for _, u in rows] == ["u0", "u1"]
    db.mark_uploaded([r for r, _ in rows], 200)
    assert [u["id"] for _, u in db.pending()] == ["u2"]
    assert db.counts() == {"uses": 3, "pending": 1}
    db.close()


def test_an_earlier_gate_db_is_upgraded_and_keeps_its_admissions(tmp_path: Path) -> None:
    path = tmp_path / "gate.db"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE seen (ref BLOB NOT NULL, t INTEGER NOT NULL, at INTEGER NOT NULL, "
        "PRIMARY KEY (ref, t))"
    )
    old.execute(
        "CREATE TABLE uses (id TEXT PRIMARY KEY, body TEXT NOT NULL, created INTEGER NOT NULL, "
        "uploaded INTEGER)"
    )
    # What the earlier layout wrote for an admission: the code in `seen`, its use apart.
    old.execute("INSERT INTO seen VALUES (?, 100, 101)", (REF,))
    old.execute("INSERT INTO uses VALUES ('old', '{\"id\": \"old\"}', 101, NULL)")
    old.commit()
    old.close()
    db = GateDb(path)
    assert db.admit(REF, 100, 102, _use(1)) is False
    assert db.admit(REF, 130, 131, _use(2)) is True
    assert db.admit(REF, 130, 132, _use(3)) is False
    assert [u["id"] for _, u in db.pending()] == ["old", _use(2)["id"]]
    db.close()
