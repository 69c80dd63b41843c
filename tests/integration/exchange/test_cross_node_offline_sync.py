"""`tongban trust sync` across nodes (two nodes in one process): one sync against node B
caches node A's status lists too (B lists and serves the lists it received, under their
original URIs), so a licence issued on A verifies offline — and shows REVOKED once the
revocation has reached B and the cache is synced again; a list B passes on that is not
signed by its jurisdiction's issuer is refused while the others are cached; with a
trust-root node the sync follows B's redirect to the root's trust list."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tongban.cli import app as main_cli
from tongban.keys import service as keys
from tongban.licences import cli, domain, offline
from tongban.licences import service as licences
from tongban.licences.models import Licence, StatusListToken
from tongban.licences.statuslist import INVALID, StatusList, sign_status_list

from builders import make_licence, make_officer, make_resident


def _issue(node: Any, city: str = "340100", authority: str = "340100-public_security") -> Licence:
    with node.session() as s:
        lic = make_licence(s, make_resident(s, city), authority=authority)
        s.commit()
        return lic


def _revoke(node: Any, lic: Licence) -> None:
    with node.session() as s:
        officer = make_officer(s, "340100-public_security")
        licences.change_status(s, officer, lic.id, "revoke", "以欺骗手段取得")
        s.commit()


def _sync(hosts: Any, node: Any, cache: Path) -> offline.SyncReport:
    """`trust sync` against `node` only, through the in-process transport."""
    base = f"http://{node.host}"
    for app in hosts.apps.values():  # redirects are the sync's to follow, not the apps'
        app.follow_redirects = False
    with httpx.Client(transport=hosts, base_url=base, max_redirects=3) as client:
        return offline.sync(base, cache, client=client)


def _offline(compact: str, cache: Path) -> Any:
    return offline.verify_offline(compact, offline.load(cache))


def test_one_sync_against_b_verifies_a_licence_of_a_offline(
    tools: Any, fed: dict[str, Any], hosts: Any, tmp_path: Path
) -> None:
    a, b = fed["node-a"], fed["node-b"]
    lic = _issue(a)
    tools.drain(a, b)
    cache = tmp_path / "cache"

    report = _sync(hosts, b, cache)
    assert report.failures == []
    assert report.trust_source == "http://node-b.test/api/v1/trust-list"
    got = {c.uri: c for c in report.cached}
    # A's list under A's URI, fetched from B; B's listing names it with that URI.
    assert lic.status_uri in got and got[lic.status_uri].jurisdiction == "340000"
    assert got[lic.status_uri].source.startswith("http://node-b.test/api/v1/status-lists/")
    refs = hosts.apps[b.host].get("/api/v1/status-lists").json()
    assert {"jurisdiction": "340000", "list": lic.status_list, "uri": lic.status_uri} in refs
    v = _offline(lic.compact, cache)
    assert v.valid and v.jurisdiction == "340000" and v.status == "valid", v.detail

    # Revoked on A: B's copy is the one synced, so only once it has reached B …
    _revoke(a, lic)
    _sync(hosts, b, cache)
    assert _offline(lic.compact, cache).valid
    tools.drain(a, b)
    report = _sync(hosts, b, cache)
    assert lic.status_uri in {c.uri for c in report.cached} and report.failures == []
    v = _offline(lic.compact, cache)
    assert not v.valid and v.reason == "revoked" and v.status == "revoked"


def test_a_list_not_signed_by_its_issuer_is_refused_the_others_cached(
    tools: Any, fed: dict[str, Any], hosts: Any, tmp_path: Path
) -> None:
    a, b = fed["node-a"], fed["node-b"]
    lic = _issue(a)  # 安徽
    sh = _issue(a, "310000", "310000-public_security")  # 上海, same node
    tools.drain(a, b)
    cache = tmp_path / "cache"
    assert _sync(hosts, b, cache).failures == []

    # B now holds a copy of 安徽's list signed by 上海's key (trusted, wrong issuer).
    with a.session() as s:
        shanghai_key, _ = keys.signing_key(s, "licence", "310000")
    lst = StatusList(domain.STATUS_BITS, domain.STATUS_LIST_SIZE)
    lst.set(lic.status_index, INVALID)
    now = int(time.time())
    forged = sign_status_list(
        lst.encode(),
        lst.bits,
        lic.status_uri,
        shanghai_key,
        iat=now + 5,
        exp=now + 3600,
        ttl=300,
        iss=offline.load(cache).trust.issuer_of_jurisdiction("310000").iss,  # type: ignore[union-attr]
    )
    with b.session() as s:
        row = s.get(StatusListToken, ("340000", lic.status_list))
        assert row is not None and not row.own and row.token
        genuine, row.token = row.token, forged
        s.commit()
    try:
        _refused_while_the_others_are_cached(hosts, b, cache, lic, sh)
    finally:  # the databases live for the module: put B's genuine copy back
        with b.session() as s:
            row = s.get(StatusListToken, ("340000", lic.status_list))
            assert row is not None
            row.token = genuine
            s.commit()


def _refused_while_the_others_are_cached(
    hosts: Any, b: Any, cache: Path, lic: Licence, sh: Licence
) -> None:
    report = _sync(hosts, b, cache)
    assert [f for f in report.failures if lic.status_uri in f], report.failures
    assert all("未通过验证" in f for f in report.failures)
    cached = {c.uri for c in report.cached}
    assert lic.status_uri not in cached and sh.status_uri in cached
    # The earlier genuine copy is kept: still valid offline, not "revoked" by the forgery.
    assert _offline(lic.compact, cache).valid
    assert _offline(sh.compact, cache).valid

    # The CLI says which lists it cached, from where and when signed; exit 3 (partial).
    real = httpx.Client
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(httpx, "Client", lambda **kw: real(transport=hosts, **kw))
        out = CliRunner().invoke(
            main_cli, ["trust", "sync", "--url", "http://node-b.test", "--cache", str(cache)]
        )
    assert out.exit_code == cli.EXIT_PARTIAL, out.output
    assert f"状态列表 {sh.status_uri}：来自 http://node-b.test/api/v1/status-lists/" in out.output
    assert "签发于" in out.output and "分钟前" in out.output
    assert f"状态列表 {lic.status_uri} 未通过验证" in out.output


def test_sync_against_b_follows_the_redirect_to_the_trust_root(
    tools: Any, fed: dict[str, Any], hosts: Any, tmp_path: Path
) -> None:
    a, b = fed["node-a"], fed["node-b"]
    lic = _issue(a)
    tools.drain(a, b)
    fed_file = b.settings.federation_file
    text = fed_file.read_text(encoding="utf-8")
    fed_file.write_text('trust_root = "node-a"\n' + text, encoding="utf-8")
    st = fed_file.stat()  # the federation file is cached until its mtime changes
    os.utime(fed_file, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert hosts.apps[b.host].get("/api/v1/trust-list", follow_redirects=False).status_code == 307

    cache = tmp_path / "cache"
    report = _sync(hosts, b, cache)
    assert report.trust_source == "http://node-a.test/api/v1/trust-list"
    assert report.pinned_now and report.failures == []
    # The pinned root is A's (the root node's), the lists still come from B.
    a_roots = hosts.apps[a.host].get("/api/v1/trust-list/root").json()["keys"]
    pinned = json.loads((cache / offline.ROOT_FILE).read_text(encoding="utf-8"))["keys"]
    assert {k["kid"] for k in pinned} == {k["kid"] for k in a_roots}
    assert all(c.source.startswith("http://node-b.test/") for c in report.cached)
    assert _offline(lic.compact, cache).valid
