"""The offline verifier's cache, built by `offline.sync` against the app in process: a
verified cache, warnings past the lists' ttl and exp, and a tampered cache refused."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tongban.licences import offline
from tongban.licences import status as status_service

from builders import make_licence, make_resident


@pytest.fixture
def synced(client: TestClient, session: Session, tmp_path: Path):  # type: ignore[no-untyped-def]
    lic = make_licence(session, make_resident(session))
    session.commit()
    cache = tmp_path / "cache"
    report = offline.sync("http://testserver", cache, client=client)
    return lic, cache, report


def test_sync_pins_the_root_and_verifies_offline(synced) -> None:  # type: ignore[no-untyped-def]
    lic, cache, report = synced
    assert report.pinned_now and report.lists >= 1 and report.issuers >= 1
    loaded = offline.load(cache)
    assert loaded.warnings == []
    v = offline.verify_offline(lic.compact, loaded)
    assert v.valid and v.licence_id == lic.identifier and v.status == "valid"
    assert offline.staleness(loaded).endswith("（0 小时前）")
    later = loaded.synced_at + timedelta(hours=26)
    assert "（26 小时前）" in offline.staleness(loaded, now=later)


def test_stale_lists_are_used_with_warnings(synced) -> None:  # type: ignore[no-untyped-def]
    lic, cache, _ = synced
    soon = int(time.time()) + status_service.STATUS_LIST_TTL + 60
    loaded = offline.load(cache, now=soon)
    assert any("刷新间隔" in w for w in loaded.warnings)
    later = int(time.time()) + 2 * 24 * 3600
    loaded = offline.load(cache, now=later)
    assert any("信任列表已于" in w and "过期" in w for w in loaded.warnings)
    assert any("状态列表" in w and "已过期" in w for w in loaded.warnings)
    assert offline.verify_offline(lic.compact, loaded, now=later).valid


def test_tampered_or_missing_cache(synced, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _lic, cache, _ = synced
    with pytest.raises(offline.CacheMissing):
        offline.load(tmp_path / "nothing")
    trust = cache / offline.TRUST_FILE
    head, payload, sig = trust.read_text().split(".")
    trust.write_text(".".join([head, payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB"), sig]))
    with pytest.raises(offline.CacheMissing):
        offline.load(cache)


def test_staleness_formats_local_time() -> None:
    synced = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    loaded = offline.LoadedCache(None, None, synced, "x")  # type: ignore[arg-type]
    text = offline.staleness(loaded, now=synced + timedelta(hours=3, minutes=59))
    assert text == "信任列表缓存于 2026-01-01 08:00 更新（3 小时前）"
