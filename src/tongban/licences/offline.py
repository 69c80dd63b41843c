"""Offline verification: a verifier's cache of the federation trust list and the status
lists (`tongban trust sync`), and verification from that cache alone, saying how stale
it is (`tongban licence verify`).

Cache layout (a directory, TONGBAN_TRUST_CACHE, default var/trust-cache):

    root.jwks.json          the pinned federation root keys (a JWKS)
    trust-list.jwt          the signed trust list as fetched
    status-lists/*.jwt      each signed status list as fetched
    meta.json               {"synced_at", "url", "trust_list_url", "lists": {uri: file},
                             "sources": {uri: the URL it was fetched from}}

Across nodes: the trust list is fetched following the trust-root redirect, and the node
synced against lists and serves the status lists it received from the other nodes as
well as its own (under their original URIs), so one sync against any node covers every
jurisdiction. A status list is accepted only when signed by the trust-list key of the
issuer of the jurisdiction its URI names (…/status-lists/<code>/<n>).

Root pinning: the first sync records the root keys the node publishes (trust on first
use) unless `--root-jwk FILE` gives them; later syncs verify the trust list against the
pinned keys only, so a node that starts serving another root is refused. Everything in
the cache is verified again when it is used: a tampered file fails like a forged one.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tongban.crypto.signing import PublicKey, public_from_jwk
from tongban.licences.keybinding import BindingPolicy
from tongban.licences.rejection import LicenceRejected, RejectReason
from tongban.licences.statuslist import LocalStatuses, StatusListToken, verify_status_list
from tongban.licences.trustlist import TrustList, verify_trust_list
from tongban.licences.verification import Verification, check
from tongban.localtime import local_dt

ROOT_FILE = "root.jwks.json"
TRUST_FILE = "trust-list.jwt"
META_FILE = "meta.json"
LISTS_DIR = "status-lists"


class CacheMissing(Exception):
    """No usable cache: run `tongban trust sync` first."""


class SyncFailed(Exception):
    """The trust list or a status list could not be fetched or did not verify."""


@dataclass
class CachedList:
    """A status list `sync` fetched, verified and cached: its URI (what licences cite),
    the URL it was fetched from, its jurisdiction and when it was signed (iat)."""

    uri: str
    source: str
    jurisdiction: str
    iat: int
    exp: int | None


@dataclass
class SyncReport:
    issuers: int
    keys: int
    lists: int
    pinned_now: bool
    root_kids: list[str]
    cache: Path
    trust_source: str = ""
    cached: list[CachedList] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


@dataclass
class LoadedCache:
    trust: TrustList
    statuses: LocalStatuses
    synced_at: datetime
    url: str
    warnings: list[str] = field(default_factory=list)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _read_roots(data: Any) -> list[PublicKey]:
    items = data.get("keys") if isinstance(data, dict) and "keys" in data else [data]
    if not isinstance(items, list) or not items:
        raise SyncFailed("根公钥文件不是 JWK 或 JWKS")
    try:
        return [public_from_jwk(k) for k in items]
    except Exception as e:  # noqa: BLE001 - KeyError_ and shape errors alike
        raise SyncFailed(f"根公钥无法读取：{e}") from e


def _key_for(trust: TrustList) -> Any:
    def key_for(header: dict[str, Any]) -> PublicKey | None:
        iss, kid, iat = header.get("iss"), header.get("kid"), header.get("iat")
        if not isinstance(iss, str) or not isinstance(kid, str) or not isinstance(iat, int):
            return None
        return trust.key_for(iss, kid, iat)

    return key_for


def _safe_name(jurisdiction: str, list_no: int) -> str:
    return re.sub(r"[^0-9A-Za-z_-]", "_", f"{jurisdiction}-{list_no}") + ".jwt"


#: Redirects `sync` follows (a node that is not the federation's trust root answers the
#: trust-list routes with a 307 to the root).
MAX_REDIRECTS = 3
_LIST_PATH = re.compile(r"/status-lists/(\d{6})/(\d+)$")


def _list_of(uri: str) -> tuple[str, int]:
    """(jurisdiction, list number) of a status list URI (…/status-lists/<code>/<n>)."""
    m = _LIST_PATH.search(uri)
    if m is None:
        raise LicenceRejected(RejectReason.MALFORMED, f"not a status list URI: {uri}")
    return m.group(1), int(m.group(2))


def _check_list(text: str, trust: TrustList, uri: str, now: int, **kw: Any) -> StatusListToken:
    """Verify a status list token against the trust list AND check that it is signed by
    the issuer of the jurisdiction its URI names (a node may pass on other nodes' lists,
    so a key of any other trusted issuer must not do)."""
    jurisdiction, _ = _list_of(uri)
    token = verify_status_list(text, _key_for(trust), now=now, uri=uri, **kw)
    issuer = trust.issuer(token.iss) if token.iss else None
    if issuer is None or issuer.jurisdiction != jurisdiction:
        raise LicenceRejected(
            RejectReason.UNKNOWN_ISSUER, f"not signed by the issuer of {jurisdiction}"
        )
    return token


def _pinned_roots(
    http: httpx.Client, cache: Path, root_jwk_file: Path | None
) -> tuple[list[PublicKey], bool]:
    if root_jwk_file is not None:
        return _read_roots(json.loads(root_jwk_file.read_text(encoding="utf-8"))), True
    root_path = cache / ROOT_FILE
    if root_path.exists():
        return _read_roots(json.loads(root_path.read_text(encoding="utf-8"))), False
    r = http.get("/api/v1/trust-list/root", follow_redirects=True)
    r.raise_for_status()
    return _read_roots(r.json()), True


def _old_lists(cache: Path) -> dict[str, str]:
    try:
        lists = json.loads((cache / META_FILE).read_text(encoding="utf-8")).get("lists")
    except (OSError, ValueError, AttributeError):
        return {}
    return lists if isinstance(lists, dict) else {}


def sync(
    base_url: str,
    cache: Path,
    *,
    root_jwk_file: Path | None = None,
    client: httpx.Client | None = None,
) -> SyncReport:
    """Fetch the trust list and every status list from `base_url` into `cache`.

    The trust list (and, on first use, the root keys) is fetched following redirects
    (at most MAX_REDIRECTS: a non-root node of a federation redirects to the trust
    root) and verified against the pinned root keys (pinned now from `root_jwk_file`,
    or on first use from the published ones); SyncFailed when it cannot be. The status
    lists are the ones the node lists at /api/v1/status-lists: its own and those it
    received from the other nodes, under their original URIs. Each is verified (signed
    by the key of the issuer of its jurisdiction in the verified trust list) before it
    is cached; one that fails is reported in `failures` — the earlier cached copy, if
    any, is kept — and the others are cached. `client` replaces the HTTP client (tests,
    in-process transports); its base URL must be `base_url`."""
    own = client is None
    http = client or httpx.Client(
        base_url=base_url.rstrip("/"), timeout=30, max_redirects=MAX_REDIRECTS
    )
    lists: dict[str, str] = {}
    sources: dict[str, str] = {}
    fetched: list[tuple[str, str]] = []
    cached: list[CachedList] = []
    failures: list[str] = []
    failed: set[str] = set()
    try:
        try:
            roots, pinned_now = _pinned_roots(http, cache, root_jwk_file)
            r = http.get("/api/v1/trust-list", follow_redirects=True)
            r.raise_for_status()
            token, trust_source = r.text.strip(), str(r.url)
            now = int(time.time())
            try:
                trust = verify_trust_list(token, roots, now=now)
            except LicenceRejected as e:
                raise SyncFailed(f"信任列表未通过验证：{e.text}（{e.detail}）") from e
            r = http.get("/api/v1/status-lists")
            r.raise_for_status()
            refs = r.json()
        except (httpx.HTTPError, ValueError) as e:
            raise SyncFailed(f"无法从 {base_url} 下载：{e}") from e
        for ref in refs if isinstance(refs, list) else []:
            uri = str(ref.get("uri")) if isinstance(ref, dict) else repr(ref)
            try:
                jurisdiction, list_no = _list_of(uri)
                resp = http.get(f"/api/v1/status-lists/{jurisdiction}/{list_no}")
                resp.raise_for_status()
                text = resp.text.strip()
                lst = _check_list(text, trust, uri, now)
            except httpx.HTTPError as e:
                failed.add(uri)
                failures.append(f"状态列表 {uri} 无法下载：{e}")
                continue
            except LicenceRejected as e:
                failed.add(uri)
                failures.append(f"状态列表 {uri} 未通过验证：{e.text}（{e.detail}）")
                continue
            name = _safe_name(jurisdiction, list_no)
            lists[uri], sources[uri] = name, str(resp.url)
            fetched.append((name, text))
            cached.append(CachedList(uri, str(resp.url), jurisdiction, lst.iat, lst.exp))
    finally:
        if own:
            http.close()
    # A list that failed now keeps its earlier cached copy (verified again when used).
    for uri, name in _old_lists(cache).items():
        if uri in failed and uri not in lists and (cache / LISTS_DIR / str(name)).exists():
            lists[uri] = str(name)
    # Everything verified: write the cache (the roots last pinned, then the lists).
    _write(cache / ROOT_FILE, json.dumps({"keys": [k.jwk() for k in roots]}, ensure_ascii=False))
    _write(cache / TRUST_FILE, token)
    for name, text in fetched:
        _write(cache / LISTS_DIR / name, text)
    meta = {
        "synced_at": datetime.now(UTC).isoformat(),
        "url": base_url,
        "trust_list_url": trust_source,
        "lists": lists,
        "sources": sources,
    }
    _write(cache / META_FILE, json.dumps(meta, ensure_ascii=False, indent=1))
    return SyncReport(
        issuers=len(trust.issuers),
        keys=sum(len(i.keys) for i in trust.issuers),
        lists=len(cached),
        pinned_now=pinned_now,
        root_kids=[k.kid for k in roots],
        cache=cache,
        trust_source=trust_source,
        cached=cached,
        failures=failures,
    )


def list_age(lst: CachedList, *, now: int | None = None) -> str:
    """'签发于 <time>（N 分钟前）' of a cached list: how stale it was when fetched."""
    at = int(time.time()) if now is None else now
    minutes = max(0, (at - lst.iat) // 60)
    ago = f"{minutes} 分钟前" if minutes < 120 else f"{minutes // 60} 小时前"
    return f"签发于 {_fmt(lst.iat)}（{ago}）"


def _verify_list(
    text: str, trust: TrustList, uri: str, now: int
) -> tuple[StatusListToken, str | None]:
    """A cached status list, verified; past its exp it is still used, with a warning."""
    try:
        token = _check_list(text, trust, uri, now)
    except LicenceRejected as e:
        if e.reason is not RejectReason.EXPIRED:
            raise
        token = _check_list(text, trust, uri, 0, leeway=2**62)
        return token, f"状态列表 {uri} 已过期（{_fmt(token.exp)}），注销或暂停可能未反映"
    if token.ttl is not None and now > token.iat + token.ttl:
        return token, None  # reported once for all lists by the caller
    return token, None


def _fmt(ts: int | None) -> str:
    if ts is None:
        return "—"
    return local_dt(datetime.fromtimestamp(ts, UTC))


def load(cache: Path, *, now: int | None = None) -> LoadedCache:
    """Read and verify the cache; CacheMissing when there is none. Lists or a trust list
    past their validity are used with a warning (offline, stale beats nothing; the
    warning says so)."""
    at = int(time.time()) if now is None else now
    try:
        meta = json.loads((cache / META_FILE).read_text(encoding="utf-8"))
        roots = _read_roots(json.loads((cache / ROOT_FILE).read_text(encoding="utf-8")))
        token = (cache / TRUST_FILE).read_text(encoding="utf-8").strip()
    except (OSError, ValueError, SyncFailed) as e:
        raise CacheMissing(str(e)) from e
    warnings: list[str] = []
    try:
        trust = verify_trust_list(token, roots, now=at)
    except LicenceRejected as e:
        if e.reason is not RejectReason.EXPIRED:
            raise CacheMissing(f"缓存的信任列表未通过验证：{e.text}") from e
        trust = verify_trust_list(token, roots, now=0, leeway=2**62)
        warnings.append(f"信任列表已于 {_fmt(trust.exp)} 过期，请运行 tongban trust sync")
    statuses = LocalStatuses()
    past_ttl = 0
    for uri, name in (meta.get("lists") or {}).items():
        try:
            text = (cache / LISTS_DIR / name).read_text(encoding="utf-8").strip()
            lst, warning = _verify_list(text, trust, uri, at)
        except (OSError, LicenceRejected) as e:
            warnings.append(f"状态列表 {uri} 无法使用：{e}")
            continue
        if warning:
            warnings.append(warning)
        elif lst.ttl is not None and at > lst.iat + lst.ttl:
            past_ttl += 1
        statuses.add(lst)
    if past_ttl:
        warnings.append(
            f"{past_ttl} 个状态列表已超过建议的刷新间隔（ttl），最近的注销或暂停可能未反映；"
            "联网时请运行 tongban trust sync"
        )
    synced = datetime.fromisoformat(meta["synced_at"])
    return LoadedCache(trust, statuses, synced, str(meta.get("url", "")), warnings)


def staleness(loaded: LoadedCache, *, now: datetime | None = None) -> str:
    """'信任列表缓存于 <time> 更新（N 小时前）'."""
    at = now or datetime.now(UTC)
    hours = max(0, int((at - loaded.synced_at).total_seconds() // 3600))
    return f"信任列表缓存于 {local_dt(loaded.synced_at)} 更新（{hours} 小时前）"


def verify_offline(
    compact: str,
    loaded: LoadedCache,
    *,
    now: int | None = None,
    binding: BindingPolicy | None = None,
) -> Verification:
    """Verify a presentation from the cache only (no network); `binding` is the holder
    binding required (None: an unbound presentation is accepted, a KB-JWT still checked).
    Offline, a verifier that cannot hand the holder a nonce uses the time window."""
    return check(compact, loaded.trust, loaded.statuses, now=now, binding=binding)
