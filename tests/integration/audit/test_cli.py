"""`tongban audit verify` and `tongban audit checkpoint` as an operator runs them."""

from __future__ import annotations

import json
import os
import sqlite3
from functools import partial

from nodes import run_cli
from tongban.audit import service
from tongban.config import Settings
from tongban.contexts import build_node
from tongban.db import make_engine, session_factory


def test_verify_and_checkpoint_exit_codes(tmp_path):
    db = tmp_path / "audit.db"
    env = {**os.environ, "TONGBAN_DATABASE_URL": f"sqlite:///{db}", "TONGBAN_NODE_ID": "n1"}

    cli = partial(run_cli, env, tmp_path)

    assert cli("db", "upgrade").returncode == 0
    empty = cli("audit", "verify")
    assert empty.returncode == 0 and "OK: 0 entries" in empty.stdout
    assert "chain is empty" in cli("audit", "checkpoint").stdout

    engine = make_engine(f"sqlite:///{db}")
    node = build_node(
        Settings(database_url=f"sqlite:///{db}", node_id="n1"), session_factory(engine)
    )
    with node.transaction() as s:
        for i in range(6):
            service.record(s, "test.cli", f"case:{i}", "system", {"i": i, "城市": "合肥"})

    signed = cli("audit", "checkpoint")
    assert signed.returncode == 0 and "checkpoint at seq 6" in signed.stdout
    assert "no new entries" in cli("audit", "checkpoint").stdout
    ok = cli("audit", "verify")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "OK: 6 entries, 1 checkpoint(s)" in ok.stdout
    report = json.loads(cli("audit", "verify", "--json").stdout)
    assert report["ok"] is True and report["last_checkpoint"] == 6
    assert "test.cli" in cli("audit", "tail").stdout

    with node.transaction() as s:
        service.record(s, "test.cli", "case:7", "system", {"i": 7})
    engine.dispose()
    con = sqlite3.connect(db)
    con.execute("""UPDATE audit_entry SET body = '{"i":99}' WHERE seq = 4""")
    con.commit()

    bad = cli("audit", "verify")
    assert bad.returncode == 1
    assert "entry 4: altered" in bad.stdout
    as_json = cli("audit", "verify", "--json")
    assert as_json.returncode == 1
    found = json.loads(as_json.stdout)
    assert (found["ok"], found["problem"], found["seq"]) == (False, "altered", 4)

    con.execute("""UPDATE audit_entry SET body = '{"i":8}' WHERE seq = 7""")
    con.commit()
    refused = cli("audit", "checkpoint")
    assert refused.returncode == 1 and "refusing to sign" in refused.stderr

    con.execute("DELETE FROM audit_entry WHERE seq >= 5")
    con.execute('UPDATE audit_entry SET body = \'{"i":3,"城市":"合肥"}\' WHERE seq = 4')
    con.commit()
    con.close()
    truncated = cli("audit", "verify", "--json")
    assert truncated.returncode == 1
    cut = json.loads(truncated.stdout)
    assert (cut["problem"], cut["seq"]) == ("truncated", 5)


def test_one_node_has_nothing_to_witness(tmp_path):
    """The embedded single node serves every jurisdiction: no peer nodes, and the CLI says
    so instead of failing."""
    db = tmp_path / "audit.db"
    env = {**os.environ, "TONGBAN_DATABASE_URL": f"sqlite:///{db}", "TONGBAN_NODE_ID": "n1"}
    env.pop("TONGBAN_FEDERATION_FILE", None)

    cli = partial(run_cli, env, tmp_path)

    assert cli("db", "upgrade").returncode == 0
    engine = make_engine(f"sqlite:///{db}")
    node = build_node(
        Settings(database_url=f"sqlite:///{db}", node_id="n1"), session_factory(engine)
    )
    with node.transaction() as s:
        service.record(s, "test.cli", "case:1", "system", {"i": 1})
    engine.dispose()
    signed = cli("audit", "checkpoint")
    assert signed.returncode == 0, signed.stderr
    assert "no peer nodes: nothing to witness" in signed.stdout
    status = cli("audit", "witness-status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "no peer nodes: this node is the only one" in status.stdout
    listed = cli("audit", "verify", "--witnesses")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "witnesses: none" in listed.stdout
    as_json = json.loads(cli("audit", "verify", "--witnesses", "--json").stdout)
    assert as_json["witnesses"] == [] and as_json["peers"] == []
    assert json.loads(cli("audit", "witness-status", "--json").stdout)["alarms"] == []
