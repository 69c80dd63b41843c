"""The app's start-up moves what it built out of the cyclic garbage collector's reach
(`gc.freeze()` in the lifespan, issue 18's page p95 and issue 14's submission CPU), and
TONGBAN_GC_FREEZE=false turns that off. Each case starts a fresh interpreter: freezing is
process-wide and done once per process, so the test process's own state says nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import gc, json
from fastapi.testclient import TestClient
from tongban.config import Settings
from tongban.contexts import build_node
from tongban.db import make_engine, session_factory
from tongban.web.app import create_app

settings = Settings(database_url="sqlite://", embedded_worker=False, secret_key="t")
app = create_app(build_node(settings, session_factory(make_engine(settings.database_url))))
built = gc.get_freeze_count()
with TestClient(app):
    started = gc.get_freeze_count()
print(json.dumps({"built": built, "started": started, "setting": settings.gc_freeze}))
"""


def _start(tmp_path: Path, **env: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=tmp_path,  # no .env file of the checkout
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_the_started_app_has_frozen_its_start_up_objects(tmp_path: Path) -> None:
    seen = _start(tmp_path)
    assert seen["setting"] is True
    assert seen["built"] == 0  # building the app freezes nothing
    # Hundreds of thousands in practice (modules, mappings, routes); far more than a few.
    assert int(seen["started"]) > 50_000  # type: ignore[call-overload]


def test_the_setting_turns_the_freeze_off(tmp_path: Path) -> None:
    seen = _start(tmp_path, TONGBAN_GC_FREEZE="false")
    assert seen["setting"] is False
    assert seen["started"] == 0
