"""A session opened outside any node carries no settings, and nothing falls back to the
process's: `settings_of` refuses it, and so does a CLI command run without a node."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from tongban.config import Settings
from tongban.kernel.node import bind_settings, settings_of
from tongban.keys.cli import app as keys_cli


def test_a_session_of_no_node_has_no_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TONGBAN_NODE_ID", "the-process")  # what a fallback would find
    with pytest.raises(RuntimeError, match="carries no node settings"):
        settings_of(Session())


def test_a_bound_factory_gives_its_settings_and_leaves_the_original_unbound() -> None:
    plain = sessionmaker()
    a = bind_settings(plain, Settings(node_id="node-a"))
    b = bind_settings(a, Settings(node_id="node-b"))
    assert settings_of(a()).node_id == "node-a"
    assert settings_of(b()).node_id == "node-b"
    with pytest.raises(RuntimeError):
        settings_of(plain())


def test_a_command_run_without_a_node_says_so() -> None:
    """A context's command group invoked on its own (not under `tongban`, which builds the
    node) has no node to run as: it stops, it does not read the process's settings."""
    result = CliRunner().invoke(keys_cli, ["list"])
    assert isinstance(result.exception, RuntimeError)
    assert "no node in the command's context" in str(result.exception)
