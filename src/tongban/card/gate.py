"""A gate or venue device: what it keeps between syncs and how it verifies offline.

State directory (one per gate)::

    gate.json            gate id, venue, node URL, policy, the gate's Ed25519 key (PEM)
    root.jwks.json       the pinned federation root keys (first sync, or --root-jwk)
    trust-list.jwt       the signed federation trust list as fetched
    revocations/*.bin    each jurisdiction's signed revocation list as fetched
    meta.json            when the last sync succeeded, what it brought
    gate.db              SQLite: the codes this gate admitted or learnt its operator's
                         other gates admitted (replay refusal), and the outbox of uses

`sync` fetches and verifies everything, then uploads the outbox (signed, idempotent: a
use is stored once however many times it is sent) and learns the codes admitted at the
operator's other gates. `Gate.check` verifies a scanned code with no network and
records the use in the outbox. Everything read from the directory is verified again
when loaded: a tampered file fails like a forged one."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tongban.card import codec, gateauth, revdelta
from tongban.card.benefits import VenueRules, rules_at, venue
from tongban.card.trust import issuer_keys
from tongban.card.verifier import (
    REFUSAL_LABELS,
    IssuerKey,
    Policy,
    Refusal,
    StalePolicy,
    Verdict,
    Verifier,
    index_keys,
    refused,
)
from tongban.crypto.signing import Alg, PrivateKey, generate, load_private_pem, public_from_jwk
from tongban.licences import service as licences

CONFIG = "gate.json"
ROOT = "root.jwks.json"
TRUST = "trust-list.jwt"
META = "meta.json"
LISTS = "revocations"
DB = "gate.db"
MAX_REDIRECTS = 3


class GateError(Exception):
    """The gate cannot do what was asked; the message is in Chinese."""


def _write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    if isinstance(data, str):
        tmp.write_text(data, encoding="utf-8")
    else:
        tmp.write_bytes(data)
    os.replace(tmp, path)


# --- configuration ------------------------------------------------------------------------------


@dataclass
class GateConfig:
    gate_id: str
    venue_code: str
    url: str
    key: PrivateKey
    max_stale: int = 24 * 3600
    stale_policy: StalePolicy = "refuse"
    window: int = 90
    leeway: int = 30

    def policy(self) -> Policy:
        return Policy(self.window, self.leeway, self.max_stale, self.stale_policy)

    def public_jwk(self) -> dict[str, str]:
        jwk = self.key.public().jwk()
        return {k: jwk[k] for k in ("kty", "crv", "x")}

    def save(self, state: Path) -> None:
        data = {
            "gate_id": self.gate_id,
            "venue_code": self.venue_code,
            "url": self.url,
            "max_stale": self.max_stale,
            "stale_policy": self.stale_policy,
            "window": self.window,
            "leeway": self.leeway,
            "key": self.key.pem(),
        }
        state.mkdir(parents=True, exist_ok=True)
        path = state / CONFIG
        fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, indent=2)
        os.replace(path.with_suffix(".tmp"), path)

    @classmethod
    def load(cls, state: Path) -> GateConfig:
        try:
            data = json.loads((state / CONFIG).read_text(encoding="utf-8"))
            key = load_private_pem(data.pop("key"))
            return cls(key=key, **data)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise GateError(f"闸机未初始化或配置无法读取（{state / CONFIG}）：{e}") from e


def init(
    state: Path,
    gate_id: str,
    venue_code: str,
    url: str,
    *,
    stale_policy: StalePolicy = "refuse",
    max_stale: int = 24 * 3600,
) -> GateConfig:
    """A new gate: its key made here; its public key goes to the node's operator, who
    registers it (`tongban gate register`)."""
    venue(venue_code)
    if (state / CONFIG).exists():
        raise GateError(f"{state} 已有闸机配置")
    config = GateConfig(
        gate_id, venue_code, url.rstrip("/"), generate(Alg.EDDSA), max_stale, stale_policy
    )
    config.save(state)
    return config


# --- the gate's own database: replay store and outbox --------------------------------------------


#: A use's JSON in the outbox (one encoder for all: `json.dumps` with options makes one
#: at every call, and a gate writes a use for every code it sees).
_use_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class GateDb:
    """SQLite in the state directory; safe to share between threads of one process."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            # Commits reach the WAL without waiting for the disk (a checkpoint syncs it):
            # a gate's process may crash and lose nothing; only a power cut may lose the
            # last admissions, i.e. let a code shown in the seconds before it pass again
            # within its window. Waiting for the disk at every admission made a check ~10
            # times slower than its two signatures (benchmarks/bench_card.py).
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS seen (ref BLOB NOT NULL, t INTEGER NOT NULL, "
                "at INTEGER NOT NULL, PRIMARY KEY (ref, t))"
            )
            # An admitted code's use carries its (ref, t): the unique index makes the
            # admission and its use one statement (see `admit`); a refusal's use has none.
            # `id` (a UUID made here, the node's key for storing a use once) has no index:
            # the outbox is read and marked by rowid, and an index more is a page more
            # written at every admission.
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS uses (id TEXT NOT NULL, body TEXT NOT NULL, "
                "created INTEGER NOT NULL, uploaded INTEGER, ref BLOB, t INTEGER)"
            )
            columns = {r[1] for r in self._db.execute("PRAGMA table_info(uses)")}
            if "ref" not in columns:  # a gate.db of an earlier version
                self._db.execute("ALTER TABLE uses ADD COLUMN ref BLOB")
                self._db.execute("ALTER TABLE uses ADD COLUMN t INTEGER")
            self._db.execute(
                "CREATE UNIQUE INDEX IF NOT EXISTS uses_admitted ON uses (ref, t) "
                "WHERE ref IS NOT NULL"
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ReplayStore
    def seen(self, ref: bytes, time: int) -> bool:
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM seen WHERE ref = ? AND t = ? "
                "UNION ALL SELECT 1 FROM uses WHERE ref = ? AND t = ?",
                (ref, time, ref, time),
            )
            return row.fetchone() is not None

    def remember(self, ref: bytes, time: int, now: int) -> None:
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO seen VALUES (?, ?, ?)", (ref, time, now))

    def forget_before(self, cutoff: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM seen WHERE t < ?", (cutoff,))

    def admit(self, ref: bytes, time: int, now: int, use: dict[str, Any]) -> bool:
        """Keep an admitted code's use unless the code was seen before (here, or at
        the operator's other gates); False (and nothing written) for a replay. One
        statement, so one transaction: the use is the gate's record of the admission,
        and the unique index on (ref, t) refuses a second one whatever the threads or
        processes sharing the file."""
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO uses (id, body, created, uploaded, ref, t) "
                "SELECT ?, ?, ?, NULL, ?, ? "
                "WHERE NOT EXISTS (SELECT 1 FROM seen WHERE ref = ? AND t = ?)",
                (use["id"], _use_json(use), now, ref, time, ref, time),
            )
            return cur.rowcount == 1

    # outbox
    def add_use(self, use: dict[str, Any], now: int) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO uses (id, body, created) VALUES (?, ?, ?)",
                (use["id"], _use_json(use), now),
            )

    def pending(self, limit: int = 500) -> list[tuple[int, dict[str, Any]]]:
        """The oldest uses not uploaded yet, with their row numbers (mark_uploaded)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT rowid, body FROM uses WHERE uploaded IS NULL ORDER BY rowid LIMIT ?",
                (limit,),
            ).fetchall()
        return [(int(r[0]), json.loads(r[1])) for r in rows]

    def mark_uploaded(self, rows: list[int], now: int) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "UPDATE uses SET uploaded = ? WHERE rowid = ?", [(now, r) for r in rows]
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def counts(self) -> dict[str, int]:
        with self._lock:
            total = self._db.execute("SELECT COUNT(*) FROM uses").fetchone()[0]
            left = self._db.execute("SELECT COUNT(*) FROM uses WHERE uploaded IS NULL").fetchone()[
                0
            ]
        return {"uses": int(total), "pending": int(left)}


# --- sync ----------------------------------------------------------------------------------------


@dataclass
class SyncReport:
    synced_at: int
    issuers: int
    keys: int
    lists: dict[str, int] = field(default_factory=dict)
    uploaded: int = 0
    duplicates: int = 0
    learnt: int = 0
    failures: list[str] = field(default_factory=list)
    pinned_now: bool = False
    #: The jurisdictions whose list came as a delta onto the one held.
    deltas: list[str] = field(default_factory=list)
    #: Deltas refused (forged, not onto the list held, older): the full list was fetched.
    refused_deltas: list[str] = field(default_factory=list)
    #: Bytes of revocation lists and deltas downloaded.
    list_bytes: int = 0


def _roots(data: Any) -> list[Any]:
    items = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise GateError("根公钥文件不是 JWKS")
    return [public_from_jwk(k) for k in items]


def _verify_list(
    data: bytes, keys: dict[tuple[str, bytes], IssuerKey], code: str
) -> codec.RevocationList:
    lst = codec.decode_revocations(data)
    if lst.jurisdiction != code:
        raise GateError(f"吊销名单属于 {lst.jurisdiction}，而非 {code}")
    key = keys.get((code, lst.kid8))
    if key is None or codec.ISSUER_ALG_NAMES[lst.issuer_alg] != key.public.alg.value:
        raise GateError(f"{code} 的吊销名单不是该辖区签发密钥签署的")
    if not key.usable_at(lst.iat) or not key.public.verify(lst.signing_input(), lst.signature):
        raise GateError(f"{code} 的吊销名单签名无效")
    return lst


def _held(state: Path, code: str) -> codec.RevocationList | None:
    """The revocation list of `code` this gate holds (None: none, or unreadable)."""
    try:
        return codec.decode_revocations((state / LISTS / f"{code}.bin").read_bytes())
    except (OSError, codec.Malformed):
        return None


def _list_target(code: str, held: codec.RevocationList | None) -> str:
    """Where to fetch `code`'s list: a delta onto `held` when the gate holds one."""
    target = f"/api/v1/card/revocations/{code}"
    if held is None:
        return target
    return (
        f"{target}?since_seq={held.seq}&since_iat={held.iat}"
        f"&since_digest={revdelta.digest(held.refs).hex()}"
    )


def _apply_delta(
    data: bytes, held: codec.RevocationList | None, keys: dict[tuple[str, bytes], IssuerKey]
) -> tuple[bytes, codec.RevocationList]:
    """The full list a delta makes of the held one, signature checked: GateError or
    Malformed when it is not a delta onto `held`, older than it, or forged."""
    delta = revdelta.decode_delta(data)
    if held is None:
        raise GateError("收到增量，但本机没有可应用的吊销名单")
    if delta.iat < held.iat or delta.seq < held.seq:
        raise GateError("增量比本机已有的吊销名单旧")
    new = delta.apply(held)
    full = new.to_bytes()
    return full, _verify_list(full, keys, held.jurisdiction)


def _signed(config: GateConfig, method: str, target: str, body: bytes = b"") -> dict[str, str]:
    return {
        gateauth.HEADER: gateauth.sign_request(config.key, config.gate_id, method, target, body)
    }


def sync(
    state: Path,
    *,
    client: httpx.Client | None = None,
    root_jwk_file: Path | None = None,
    now: int | None = None,
) -> SyncReport:
    """Fetch and verify the trust list and every revocation list from the gate's node,
    upload the pending uses, learn the codes admitted at the operator's other gates.
    Raises GateError when the trust list cannot be had (the gate keeps its last state);
    a revocation list, an upload or the seen codes that fail are `failures`."""
    config = GateConfig.load(state)
    own = client is None
    http = client or httpx.Client(base_url=config.url, timeout=30, max_redirects=MAX_REDIRECTS)
    now = int(time.time()) if now is None else now
    try:
        try:
            pinned_now = False
            if root_jwk_file is not None:
                roots, pinned_now = _roots(json.loads(root_jwk_file.read_text("utf-8"))), True
            elif (state / ROOT).exists():
                roots = _roots(json.loads((state / ROOT).read_text("utf-8")))
            else:
                r = http.get("/api/v1/trust-list/root", follow_redirects=True)
                r.raise_for_status()
                roots, pinned_now = _roots(r.json()), True
            # The lists before the trust list: a node signs a list with its issuing key,
            # made on first use, so the trust list fetched next already carries it.
            r = http.get("/api/v1/card/revocations")
            r.raise_for_status()
            refs = r.json()
            fetched: dict[str, bytes] = {}
            failures: list[str] = []
            held: dict[str, codec.RevocationList | None] = {}
            for ref in refs if isinstance(refs, list) else []:
                code = str(ref.get("jurisdiction")) if isinstance(ref, dict) else ""
                if len(code) != 6 or not code.isdigit():
                    failures.append(f"无效的吊销名单条目 {ref!r}")
                    continue
                held[code] = _held(state, code)
                try:
                    r = http.get(_list_target(code, held[code]))
                    r.raise_for_status()
                    fetched[code] = r.content
                except httpx.HTTPError as e:
                    failures.append(f"{code} 吊销名单：{e}")
            r = http.get("/api/v1/trust-list", follow_redirects=True)
            r.raise_for_status()
            token = r.text.strip()
            try:
                trust = licences.verify_trust_list(token, roots, now=now)
            except licences.LicenceRejected as e:
                raise GateError(f"信任列表未通过验证：{e}") from e
        except (httpx.HTTPError, ValueError) as e:
            raise GateError(f"无法从 {config.url} 同步：{e}") from e
        keys = index_keys(issuer_keys(trust))
        report = SyncReport(
            now, len(trust.issuers), len(keys), pinned_now=pinned_now, failures=failures
        )
        lists: dict[str, bytes] = {}
        for code, data in fetched.items():
            report.list_bytes += len(data)
            try:
                if revdelta.is_delta(data):
                    try:
                        data, lst = _apply_delta(data, held[code], keys)
                        report.deltas.append(code)
                    except (codec.Malformed, GateError) as e:
                        report.refused_deltas.append(f"{code} 吊销名单增量未采用（改取全量）：{e}")
                        r = http.get(_list_target(code, None))
                        r.raise_for_status()
                        data = r.content
                        report.list_bytes += len(data)
                        lst = _verify_list(data, keys, code)
                else:
                    lst = _verify_list(data, keys, code)
            except (codec.Malformed, GateError, httpx.HTTPError) as e:
                report.failures.append(f"{code} 吊销名单：{e}")
                continue
            previous = held.get(code)
            if previous is not None and lst.iat < previous.iat:
                report.failures.append(f"{code} 吊销名单比本机已有的旧，未采用")
                continue
            lists[code] = data
            report.lists[code] = len(lst.refs)
        # Verified: now it is the gate's state.
        if pinned_now:
            _write(state / ROOT, json.dumps({"keys": [k.jwk() for k in roots]}, ensure_ascii=False))
        _write(state / TRUST, token)
        for code, data in lists.items():
            _write(state / LISTS / f"{code}.bin", data)
        meta = {"synced_at": now, "url": config.url, "lists": report.lists}
        _write(state / META, json.dumps(meta, ensure_ascii=False))
        db = GateDb(state / DB)
        try:
            _exchange_uses(config, db, http, now, report)
        finally:
            db.close()
        return report
    finally:
        if own:
            http.close()


def _exchange_uses(
    config: GateConfig, db: GateDb, http: httpx.Client, now: int, report: SyncReport
) -> None:
    """Upload the outbox (until empty or a failure), then learn the operator's seen codes."""
    while True:
        pending = db.pending()
        if not pending:
            break
        body = json.dumps({"uses": [u for _, u in pending]}, ensure_ascii=False).encode()
        try:
            r = http.post(
                "/api/v1/card/uses",
                content=body,
                headers={
                    "Content-Type": "application/json",
                    **_signed(config, "POST", "/api/v1/card/uses", body),
                },
            )
            r.raise_for_status()
        except httpx.HTTPError as e:
            report.failures.append(f"上传用卡记录失败（稍后重试）：{e}")
            break
        answer = r.json()
        report.uploaded += int(answer.get("stored", 0))
        report.duplicates += int(answer.get("duplicates", 0))
        db.mark_uploaded([row for row, _ in pending], now)
    target = f"/api/v1/card/gates/seen?since={now - 600}"
    try:
        r = http.get(target, headers=_signed(config, "GET", target))
        r.raise_for_status()
        for item in r.json():
            db.remember(bytes.fromhex(str(item["ref"])), int(item["time"]), now)
            report.learnt += 1
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as e:
        report.failures.append(f"未能获取同一运营方其他闸机的核验记录：{e}")
    db.forget_before(now - 24 * 3600)


# --- verifying ------------------------------------------------------------------------------------


@dataclass
class Gate:
    """A loaded gate: verifies codes offline and keeps their uses."""

    config: GateConfig
    verifier: Verifier
    db: GateDb
    rules: VenueRules
    synced_at: int

    def check(self, scanned: bytes | str, now: int | None = None) -> Verdict:
        """The verdict on a scanned code; the use goes to the outbox. An admission and
        its use are one transaction, which also settles two scans of one code at once:
        the second to record it is a replay."""
        now = int(time.time()) if now is None else now
        verdict = self.verifier.check(scanned, now, record=False, replays=False)
        if verdict.admitted and verdict.holder is not None and verdict.code_time is not None:
            ref = bytes.fromhex(verdict.holder.ref)
            if self.db.admit(ref, verdict.code_time, now, self._use(verdict, now)):
                return verdict
            verdict = refused(
                Refusal.REPLAYED, "seen before", holder=verdict.holder, code_time=verdict.code_time
            )
        self.db.add_use(self._use(verdict, now), now)
        return verdict

    def _use(self, verdict: Verdict, now: int) -> dict[str, Any]:
        holder = verdict.holder
        decision = verdict.decision
        return {
            "id": str(uuid.uuid4()),
            "venue_code": self.config.venue_code,
            "used_at": datetime.fromtimestamp(now, UTC).isoformat(),
            "code_time": verdict.code_time,
            "admitted": verdict.admitted,
            "reason": verdict.reason.value if verdict.reason else None,
            "card_jurisdiction": holder.jurisdiction if holder else None,
            "card_city": holder.city if holder else None,
            "card_ref": holder.ref if holder else None,
            "rule": decision.rule if decision else None,
            "benefit": decision.benefit if decision and verdict.admitted else None,
            "why": decision.why if decision else None,
            "flagged": verdict.flagged,
        }

    def status(self, now: int | None = None) -> dict[str, Any]:
        now = int(time.time()) if now is None else now
        age = now - self.synced_at
        return {
            "gate_id": self.config.gate_id,
            "venue": asdict(self.rules.venue),
            "synced_at": self.synced_at,
            "sync_age_seconds": age,
            "stale": age > self.config.max_stale,
            "stale_policy": self.config.stale_policy,
            **self.db.counts(),
        }

    def close(self) -> None:
        self.db.close()


def load(state: Path) -> Gate:
    """The gate of `state` as its last sync left it (re-verified); GateError without one."""
    config = GateConfig.load(state)
    try:
        meta = json.loads((state / META).read_text("utf-8"))
        roots = _roots(json.loads((state / ROOT).read_text("utf-8")))
        token = (state / TRUST).read_text("utf-8").strip()
        synced_at = int(meta["synced_at"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise GateError(f"闸机尚未同步（{state}）：请先运行 tongban gate sync") from e
    try:
        # Checked as of the sync that fetched it: its age is the stale policy's business.
        trust = licences.verify_trust_list(token, roots, now=synced_at)
    except licences.LicenceRejected as e:
        raise GateError(f"缓存的信任列表未通过验证：{e}") from e
    keys = index_keys(issuer_keys(trust))
    revoked: dict[str, frozenset[bytes]] = {}
    signed: dict[str, int] = {}
    for path in sorted((state / LISTS).glob("*.bin")) if (state / LISTS).exists() else []:
        code = path.stem
        try:
            lst = _verify_list(path.read_bytes(), keys, code)
        except (codec.Malformed, GateError) as e:
            raise GateError(f"缓存的吊销名单 {path.name} 未通过验证：{e}") from e
        revoked[code], signed[code] = frozenset(lst.refs), lst.iat
    rules = rules_at(config.venue_code)
    db = GateDb(state / DB)
    verifier = Verifier(keys, revoked, synced_at, config.policy(), db, rules, signed)
    return Gate(config, verifier, db, rules, synced_at)


def verdict_json(v: Verdict, elapsed_ms: float | None = None) -> dict[str, Any]:
    """A verdict as the gate's HTTP answer and `tongban gate verify --json` print it."""
    holder = v.holder
    return {
        "admitted": v.admitted,
        "message": v.message,
        "reason": v.reason.value if v.reason else None,
        "reason_label": REFUSAL_LABELS[v.reason] if v.reason else None,
        "detail": v.detail,
        "benefit": v.decision.benefit if v.decision and v.admitted else None,
        "rule": v.decision.rule if v.decision else None,
        "why": v.decision.why if v.decision else None,
        "flagged": v.flagged,
        "holder": None
        if holder is None
        else {
            "jurisdiction": holder.jurisdiction,
            "city": holder.city,
            "age_band": int(holder.age_band),
            "concessions": holder.concessions,
            "description": holder.describe(),
        },
        "elapsed_ms": elapsed_ms,
    }
