"""The audit chain is plugged into the write path by the audit context, not by tongban.db
(which every context imports and which therefore imports none): loading the contexts,
as the app, the worker, the CLI and the migrations do, installs the hook."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
from tongban import db
print("audit imported by db:", "tongban.audit.hook" in sys.modules)
from tongban.contexts import registry
registry()
from tongban.audit import hook
print("hook installed:", hook._after_insert in db.insert_hooks())
"""


def test_db_imports_no_audit_and_the_registry_installs_the_hook() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    ).stdout
    assert "audit imported by db: False" in out
    assert "hook installed: True" in out


def test_on_insert_is_idempotent() -> None:
    from tongban import db
    from tongban.audit import hook

    before = db.insert_hooks()
    db.on_insert(hook._after_insert)
    assert db.insert_hooks() == before
    assert before.count(hook._after_insert) == 1
