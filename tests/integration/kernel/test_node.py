"""Two nodes in one process, each running CLI commands with its own settings: nothing
below the entry point reads the process's settings (issue 11)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from tongban.audit import service as audit
from tongban.audit.models import AuditCheckpoint
from tongban.cli import app as cli
from tongban.config import Settings
from tongban.contexts import build_node
from tongban.keys import service as keys


@pytest.fixture
def process_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process's own settings differ from both nodes': a command or a service that
    read them would sign, hash and own its keys as "the-process", EdDSA, SHA-256."""
    monkeypatch.setenv("TONGBAN_NODE_ID", "the-process")
    monkeypatch.setenv("TONGBAN_SIGNATURE_ALG", "EdDSA")
    monkeypatch.setenv("TONGBAN_AUDIT_HASH", "sha-256")


def test_two_nodes_run_cli_commands_each_with_its_settings(
    process_env: None, factory: sessionmaker[Session], settings: Settings, session: Session
) -> None:
    a = build_node(
        settings.model_copy(
            update={"node_id": "node-a", "signature_alg": "SM2", "audit_hash": "sm3"}
        ),
        factory,
    )
    b = build_node(settings.model_copy(update={"node_id": "node-b"}), factory)
    runner = CliRunner()

    made_a = runner.invoke(cli, ["exchange", "node-key", "--create"], obj=a)
    made_b = runner.invoke(cli, ["exchange", "node-key", "--create"], obj=b)
    assert made_a.exit_code == made_b.exit_code == 0, made_a.output + made_b.output
    assert json.loads(made_a.stdout)["crv"] == "SM2"
    assert json.loads(made_b.stdout)["crv"] == "Ed25519"
    row_a = keys.current_row(session, "node", "node-a")
    row_b = keys.current_row(session, "node", "node-b")
    assert row_a is not None and row_a.alg == "SM2"
    assert row_b is not None and row_b.alg == "EdDSA"
    assert keys.current_row(session, "node", "the-process") is None

    # The audit entry of a change is hashed as the node that made it says.
    assert runner.invoke(cli, ["keys", "rotate", "node", "node-a"], obj=a).exit_code == 0
    assert audit.recent(session, 1)[0].alg == "sm3"
    assert runner.invoke(cli, ["keys", "rotate", "node", "node-b"], obj=b).exit_code == 0
    assert audit.recent(session, 1)[0].alg == "sha-256"

    # A checkpoint is signed by the node's own audit key, in its own suite.
    signed = runner.invoke(cli, ["audit", "checkpoint"], obj=a)
    assert signed.exit_code == 0, signed.output
    assert "(SM2)" in signed.stdout
    cp = session.scalar(select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc()).limit(1))
    assert cp is not None and cp.node_id == "node-a" and cp.alg == "SM2"


def test_a_command_that_needs_no_database_opens_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tongban`'s main callback builds the node of the process's settings only when a
    command asks for it: checking the calendar does not create the database."""
    monkeypatch.setenv("TONGBAN_DATABASE_URL", f"sqlite:///{tmp_path / 'not-yet' / 'x.db'}")
    result = CliRunner().invoke(cli, ["calendar", "check", "2026"])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "not-yet").exists()
