"""Offline verification with the real CLI against a live server: `tongban trust sync`
caches the signed trust list and status lists; `tongban licence verify` answers from the
cache alone, says how stale it is, and exits 0 valid / 1 invalid / 2 no cache. A
revocation reaches the offline verifier with the next sync."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

Node = Any  # tests/e2e/conftest.py's Node: root, env, run() (exit code kept), cli() (checked)


@pytest.fixture(scope="module")
def wallet(live_server: str, login: Callable[[str], dict[str, str]]) -> dict[str, dict[str, str]]:
    """王芳's demo licences by type, from the API."""
    r = httpx.get(f"{live_server}/api/v1/my/licences", headers=login("wangfang"), timeout=30)
    assert r.status_code == 200, r.text
    out = {lic["type_code"]: lic for lic in r.json()}
    assert {"resident_id_card", "driving_licence"} <= set(out), out.keys()
    return out


def present(live: str, headers: dict[str, str], licence_id: str, disclose: list[str]) -> str:
    r = httpx.post(
        f"{live}/api/v1/my/licences/{licence_id}/presentations",
        headers=headers,
        json={"disclose": disclose},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["presentation"])


def test_sync_then_verify_offline(
    node: Node,
    live_server: str,
    login: Callable[[str], dict[str, str]],
    wallet: dict[str, dict[str, str]],
    tmp_path: Path,
) -> None:
    cache = tmp_path / "cache"
    lic_file = tmp_path / "licence.txt"
    resident = login("wangfang")
    dl = wallet["driving_licence"]
    lic_file.write_text(present(live_server, resident, dl["id"], ["name", "licence_class"]))

    # no cache yet: exit 2, and no network is tried
    proc = node.run("licence", "verify", str(lic_file), "--cache", str(cache))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "tongban trust sync" in proc.stderr

    proc = node.cli("trust", "sync", "--url", live_server, "--cache", str(cache))
    assert "已同步信任列表" in proc.stdout and "首次同步" in proc.stderr
    assert (cache / "root.jwks.json").exists() and (cache / "trust-list.jwt").exists()

    proc = node.run("licence", "verify", str(lic_file), "--cache", str(cache))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("VALID")
    assert "准驾车型：C1" in proc.stdout and "住址" not in proc.stdout
    assert "信任列表缓存于" in proc.stdout and "（0 小时前）" in proc.stdout

    proc = node.run(
        "licence", "verify", "-", "--cache", str(cache), "--json", stdin=lic_file.read_text()
    )
    assert proc.returncode == 0, proc.stderr
    body = json.loads(proc.stdout)
    assert body["valid"] is True and body["claims"]["licence_class"] == "C1"
    assert "address" not in body["claims"] and body["licence_id"] == dl["identifier"]
    assert "信任列表缓存于" in proc.stderr and body["cache"]["staleness"].startswith(
        "信任列表缓存于"
    )

    # tampered text: exit 1 with the reason
    text = lic_file.read_text()
    jwt, rest = text.split("~", 1)
    head, payload, sig = jwt.split(".")
    forged = ".".join([head, payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB"), sig])
    proc = node.run("licence", "verify", "-", "--cache", str(cache), stdin=forged + "~" + rest)
    assert proc.returncode == 1 and proc.stdout.startswith("INVALID"), proc.stdout

    # an officer of 合肥市公安局 revokes it: the stale cache cannot know, the next sync does
    officer = login("340100-public_security-approver")
    r = httpx.post(
        f"{live_server}/api/v1/licences/{dl['id']}/status",
        headers=officer,
        json={"action": "revoke", "reason": "e2e：证件作废"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    proc = node.run("licence", "verify", str(lic_file), "--cache", str(cache))
    assert proc.returncode == 0
    node.cli("trust", "sync", "--url", live_server, "--cache", str(cache))
    proc = node.run("licence", "verify", str(lic_file), "--cache", str(cache))
    assert proc.returncode == 1, proc.stdout
    assert "INVALID" in proc.stdout and "已撤销" in proc.stdout and "revoked" in proc.stdout

    # staleness is counted from the last sync
    meta_path = cache / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["synced_at"] = (datetime.now(UTC) - timedelta(hours=5, minutes=10)).isoformat()
    meta_path.write_text(json.dumps(meta))
    proc = node.run("licence", "verify", str(lic_file), "--cache", str(cache))
    assert "（5 小时前）" in proc.stdout


def test_sync_refuses_a_trust_list_of_another_root(
    node: Node, live_server: str, tmp_path: Path
) -> None:
    from tongban.crypto.signing import generate

    other = tmp_path / "root.json"
    other.write_text(json.dumps(generate().public().jwk()))
    cache = tmp_path / "cache"
    proc = node.run(
        "trust", "sync", "--url", live_server, "--cache", str(cache), "--root-jwk", str(other)
    )
    assert proc.returncode == 1 and "信任列表未通过验证" in proc.stderr, proc.stderr
    assert not (cache / "trust-list.jwt").exists()
