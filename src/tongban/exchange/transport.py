"""Messages on the wire between nodes: the JSON envelope, its RFC 9421 signature, the
checks a receiving node makes, and delivery over HTTP.

Body (``Content-Type: application/json``)::

    {"id": "<uuid>", "type": "case.forwarded", "source_node": "sh",
     "source_jurisdiction": "310000", "target_jurisdiction": "320000",
     "created_at": "2026-11-23T08:00:00+00:00", "version": 1, "payload": {…}}

``version`` is the payload's schema version (a positive integer; 1 when absent, as
from nodes that predate it). It is in the signed body, so it is covered by the digest.

Headers: ``Content-Digest`` (RFC 9530, sha-256) and a signature labelled ``tongban``
covering ``"@method" "@target-uri" "content-digest" "content-type"`` with the parameters
``created``, ``keyid`` (the node key's RFC 7638 thumbprint), ``alg`` (``ed25519`` or
``sm2-sm3``) and ``nonce`` (the message id).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx

from tongban.crypto.signing import PrivateKey
from tongban.exchange import httpsig
from tongban.exchange.federation import Federation, Node

LABEL = "tongban"
COVERED = ("@method", "@target-uri", "content-digest", "content-type")
CONTENT_TYPE = "application/json"
ENVELOPE_FIELDS = (
    "id",
    "type",
    "source_node",
    "source_jurisdiction",
    "target_jurisdiction",
    "created_at",
    "payload",
)


class Rejected(Exception):
    """Why a receiving node refuses a message: a stable `reason` slug, an HTTP status
    and a human detail (Chinese, as every problem+json detail)."""

    def __init__(self, reason: str, status: int, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class Envelope:
    """A verified message as the receiver applies it."""

    id: uuid.UUID
    type: str
    source_node: str
    source_jurisdiction: str
    target_jurisdiction: str
    created_at: str
    payload: dict[str, Any]
    #: The payload's schema version (1 when the sender named none).
    version: int = 1


def encode(envelope: Mapping[str, Any]) -> bytes:
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def signed_request(
    envelope: Mapping[str, Any], key: PrivateKey, target_uri: str, *, created: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a POST of `envelope` to `target_uri`, signed by `key`."""
    body = encode(envelope)
    headers = {"Content-Type": CONTENT_TYPE, "Content-Digest": httpsig.content_digest(body)}
    req = httpsig.Request("POST", target_uri, headers)
    headers.update(
        httpsig.sign(
            req,
            key,
            COVERED,
            created=int(time.time()) if created is None else created,
            nonce=str(envelope["id"]),
            label=LABEL,
        )
    )
    return body, headers


def verify_request(
    *,
    method: str,
    target_uri: str,
    headers: Mapping[str, str],
    body: bytes,
    federation: Federation,
    local: Node,
    allowed_types: Callable[[Node], frozenset[str]],
    now: float,
    max_skew: int,
) -> Envelope:
    """Check a request to this node's inbox; return its envelope or raise Rejected.

    In order: the signature headers are present and cover what they must; the body is
    what Content-Digest says; the sender is a node of the federation and the key one of
    its keys; the signature verifies; it was made within ±`max_skew` seconds; the nonce
    is the message id; the sender serves the source jurisdiction and this node the
    target; the sender may send this type and this node has a handler for it."""
    req = httpsig.Request(method, target_uri, headers)
    try:
        signed = httpsig.read_signature(req, LABEL)
    except httpsig.SignatureError as exc:
        raise Rejected("signature-missing", 400, f"缺少或无法解析签名：{exc}") from exc
    missing = [c for c in COVERED if c not in signed.components]
    created, keyid, nonce = (signed.param(p) for p in ("created", "keyid", "nonce"))
    if missing or not isinstance(created, int) or not isinstance(keyid, str) or nonce is None:
        raise Rejected(
            "signature-incomplete",
            400,
            "签名须覆盖 " + " ".join(COVERED) + " 并带 created、keyid、nonce 参数",
        )
    ctype = (req.header("content-type") or "").split(";")[0].strip().lower()
    if ctype != CONTENT_TYPE:
        raise Rejected("bad-content-type", 415, "消息须为 application/json")
    if not httpsig.digest_matches(req.header("content-digest"), body):
        raise Rejected("digest-mismatch", 400, "Content-Digest 与消息正文不符")
    env = _envelope(body)
    sender = federation.nodes.get(env.source_node)
    if sender is None:
        raise Rejected("unknown-node", 401, f"未知的发送节点 {env.source_node}")
    key = sender.key(keyid)
    if key is None:
        raise Rejected("unknown-key", 401, f"密钥 {keyid} 不属于节点 {sender.id}")
    if not httpsig.verify(req, signed, key):
        raise Rejected("bad-signature", 401, "签名验证失败")
    if abs(now - created) > max_skew:
        raise Rejected("stale", 401, f"签名时间超出允许的 ±{max_skew} 秒")
    expires = signed.param("expires")
    if isinstance(expires, int) and now > expires:
        raise Rejected("stale", 401, "签名已过期")
    if str(nonce) != str(env.id):
        raise Rejected("nonce-mismatch", 400, "签名 nonce 与消息 id 不符")
    if not sender.serves(env.source_jurisdiction):
        raise Rejected(
            "sender-not-serving-source",
            403,
            f"节点 {sender.id} 不服务于来源辖区 {env.source_jurisdiction}",
        )
    if not local.serves(env.target_jurisdiction):
        raise Rejected(
            "misdirected", 421, f"本节点 {local.id} 不服务于目标辖区 {env.target_jurisdiction}"
        )
    if env.type not in allowed_types(sender):
        raise Rejected("type-not-allowed", 403, f"节点 {sender.id} 不得发送 {env.type} 消息")
    return env


def _envelope(body: bytes) -> Envelope:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Rejected("bad-message", 400, "消息正文不是 JSON") from exc
    if not isinstance(data, dict) or any(f not in data for f in ENVELOPE_FIELDS):
        raise Rejected("bad-message", 400, "消息须含 " + "、".join(ENVELOPE_FIELDS))
    strings = [data[f] for f in ENVELOPE_FIELDS if f != "payload"]
    if not all(isinstance(v, str) for v in strings) or not isinstance(data["payload"], dict):
        raise Rejected("bad-message", 400, "消息字段类型有误")
    try:
        msg_id = uuid.UUID(data["id"])
    except ValueError as exc:
        raise Rejected("bad-message", 400, "消息 id 不是 UUID") from exc
    version = data.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise Rejected("bad-message", 400, "消息 version 须为正整数")
    return Envelope(
        id=msg_id,
        type=data["type"],
        source_node=data["source_node"],
        source_jurisdiction=data["source_jurisdiction"],
        target_jurisdiction=data["target_jurisdiction"],
        created_at=data["created_at"],
        payload=data["payload"],
        version=version,
    )


# --- the sending side ---------------------------------------------------------------


class Outcome(StrEnum):
    DELIVERED = "delivered"  # 2xx: applied, or applied before
    RETRY = "retry"  # network error, 408/409/425/429, 5xx: try again later
    REFUSED = "refused"  # any other 4xx: refused for good -> dead letter at once


#: 4xx answers that say "not now" rather than "never".
RETRYABLE_4XX = frozenset({408, 409, 425, 429})


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    detail: str


def classify(status: int) -> Outcome:
    """What a sender makes of the receiver's HTTP status."""
    if 200 <= status < 300:
        return Outcome.DELIVERED
    if 400 <= status < 500 and status not in RETRYABLE_4XX:
        return Outcome.REFUSED
    return Outcome.RETRY


class HttpTransport:
    """Posts signed envelopes to other nodes' inboxes with one pooled httpx client."""

    def __init__(self, timeout: float = 10.0, client: httpx.Client | None = None) -> None:
        self.client = client or httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)),
            limits=httpx.Limits(max_keepalive_connections=16, max_connections=32),
        )

    def deliver(self, envelope: Mapping[str, Any], node: Node, key: PrivateKey) -> Result:
        body, headers = signed_request(envelope, key, node.inbox_url)
        try:
            r = self.client.post(node.inbox_url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return Result(Outcome.RETRY, f"{type(exc).__name__}: {exc} ({node.inbox_url})")
        outcome = classify(r.status_code)
        detail = f"HTTP {r.status_code} from {node.id}"
        if outcome is not Outcome.DELIVERED:
            try:
                problem = r.json()
                detail += f": {problem.get('type', '')} {problem.get('detail', '')}".rstrip()
            except ValueError:
                detail += f": {r.text[:300]}"
        return Result(outcome, detail)

    def close(self) -> None:
        self.client.close()
