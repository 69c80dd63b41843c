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

A batch (``POST …/exchange/v1/inbox/batch``) carries several such messages, each exactly
as it would be posted alone — its body and its signed headers, the signature made for
the single inbox's URI — so the receiver verifies every one on its own (and could keep
it as proof) as if it had come alone::

    {"messages": [{"headers": {"content-type": …, "content-digest": …,
                               "signature-input": …, "signature": …},
                   "body": "<the envelope's JSON text>"}, …]}

The answer lists each message's outcome in the same order (see `BatchAnswer`).
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


# --- batches ------------------------------------------------------------------------

#: The signed headers a batch item carries (lowercase), as a single POST would.
ITEM_HEADERS = ("content-type", "content-digest", "signature-input", "signature")


def batch_url(node: Node) -> str:
    return node.inbox_url + "/batch"


def signed_item(envelope: Mapping[str, Any], key: PrivateKey, inbox_uri: str) -> dict[str, Any]:
    """One message of a batch: the body and signed headers of a POST of `envelope` to the
    single inbox `inbox_uri` (not the batch URI: the item verifies alone)."""
    body, headers = signed_request(envelope, key, inbox_uri)
    lower = {k.lower(): v for k, v in headers.items()}
    return {"headers": {h: lower[h] for h in ITEM_HEADERS}, "body": body.decode("utf-8")}


def encode_batch(items: list[dict[str, Any]]) -> bytes:
    return encode({"messages": items})


@dataclass(frozen=True)
class BatchItem:
    """One message of a batch as received: what `verify_request` checks."""

    headers: dict[str, str]
    body: bytes


def parse_batch(body: bytes, max_messages: int) -> list[BatchItem]:
    """The messages of a batch body, not yet verified; raises Rejected for a body that
    is not a batch (400) or holds more than `max_messages` (413)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Rejected("bad-batch", 400, "批量消息正文不是 JSON") from exc
    raw = data.get("messages") if isinstance(data, dict) else None
    if not isinstance(raw, list) or not raw:
        raise Rejected("bad-batch", 400, "批量消息须含非空的 messages 列表")
    if len(raw) > max_messages:
        raise Rejected(
            "batch-too-large", 413, f"一批最多 {max_messages} 条消息，收到 {len(raw)} 条"
        )
    items = []
    for i, item in enumerate(raw):
        headers = item.get("headers") if isinstance(item, dict) else None
        text = item.get("body") if isinstance(item, dict) else None
        if (
            not isinstance(headers, dict)
            or not isinstance(text, str)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
        ):
            raise Rejected("bad-batch", 400, f"第 {i + 1} 条消息须含 headers 与 body 字符串")
        try:
            items.append(BatchItem(headers, text.encode("utf-8")))
        except UnicodeEncodeError as exc:
            raise Rejected("bad-batch", 400, f"第 {i + 1} 条消息正文不是合法文本") from exc
    return items


def item_id(item: BatchItem) -> str | None:
    """The id a batch item claims (for the answer of an item refused before its envelope
    could be read: the sender matches answers by position, the id is for people)."""
    try:
        data = json.loads(item.body)
    except (ValueError, UnicodeDecodeError):
        return None
    value = data.get("id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


#: What a receiver answers for one message of a batch.
APPLIED, ALREADY, REFUSED, RETRY_LATER = "applied", "already applied", "refused", "retry"


@dataclass(frozen=True)
class BatchAnswer:
    """A receiver's answer for one message of a batch: `status` is applied, already
    applied, refused (for good: 4xx) or retry (409, 5xx); `problem` the RFC 9457 body of
    a refusal or failure."""

    id: str | None
    status: str
    problem: dict[str, Any] | None = None

    def json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "status": self.status}
        if self.problem is not None:
            out["problem"] = self.problem
        return out


#: Answers to a batch POST that mean "this peer takes no batches": the sender posts the
#: messages one by one (a peer of an earlier release has no batch route: 404 / 405).
NO_BATCH_STATUSES = frozenset({404, 405, 501})


#: Seconds a pooled connection to a peer may sit idle before it is closed here. Shorter
#: than the peer server's own keep-alive (uvicorn's 5 s by default, httpx's expiry too):
#: with equal times, a connection reused just as the peer closed it failed with "Server
#: disconnected without sending a response" and its messages waited for their retry
#: (session 12: 63 messages of a bench round, in session 11's tree as in this one).
KEEPALIVE_EXPIRY = 2.0


def pooled_limits() -> httpx.Limits:
    """The connection pool of a node's client for its peers."""
    return httpx.Limits(
        max_keepalive_connections=16, max_connections=32, keepalive_expiry=KEEPALIVE_EXPIRY
    )


class HttpTransport:
    """Posts signed envelopes to other nodes' inboxes with one pooled httpx client."""

    def __init__(self, timeout: float = 10.0, client: httpx.Client | None = None) -> None:
        self.client = client or httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)), limits=pooled_limits()
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

    def deliver_items(self, items: list[dict[str, Any]], node: Node) -> list[Result] | None:
        """Post messages already signed on their own (`signed_item`) in one request to
        `node`'s batch inbox; one Result per message in the same order, or None when the
        node takes no batches (or refused this one as too large: the sender then posts
        them one by one)."""
        url = batch_url(node)
        try:
            r = self.client.post(
                url, content=encode_batch(items), headers={"Content-Type": CONTENT_TYPE}
            )
        except httpx.HTTPError as exc:
            detail = f"{type(exc).__name__}: {exc} ({url})"
            return [Result(Outcome.RETRY, detail)] * len(items)
        if r.status_code in NO_BATCH_STATUSES or r.status_code == 413:
            return None
        if r.status_code != 200:
            # The batch as a whole was not applied (e.g. 5xx): every message waits alike.
            head = Result(classify(r.status_code), _problem_detail(r, node))
            if head.outcome is Outcome.DELIVERED:
                head = Result(Outcome.RETRY, head.detail)
            return [head] * len(items)
        try:
            answers = r.json()["results"]
            if not isinstance(answers, list) or len(answers) != len(items):
                raise ValueError("one answer per message expected")
        except (ValueError, KeyError, TypeError) as exc:
            detail = f"HTTP 200 from {node.id}: unreadable batch answer ({exc})"
            return [Result(Outcome.RETRY, detail)] * len(items)
        return [_item_result(a, node) for a in answers]

    def close(self) -> None:
        self.client.close()


def _problem_detail(r: httpx.Response, node: Node) -> str:
    detail = f"HTTP {r.status_code} from {node.id}"
    try:
        problem = r.json()
        detail += f": {problem.get('type', '')} {problem.get('detail', '')}".rstrip()
    except (ValueError, AttributeError):
        detail += f": {r.text[:300]}"
    return detail


def _item_result(answer: Any, node: Node) -> Result:
    status = answer.get("status") if isinstance(answer, dict) else None
    if status in (APPLIED, ALREADY):
        return Result(Outcome.DELIVERED, f"{status} by {node.id}")
    problem = answer.get("problem") if isinstance(answer, dict) else None
    problem = problem if isinstance(problem, dict) else {}
    code = problem.get("status")
    code = code if isinstance(code, int) and not isinstance(code, bool) else 500
    detail = f"HTTP {code} from {node.id} (in a batch)"
    detail += f": {problem.get('type', '')} {problem.get('detail', '')}".rstrip()
    outcome = classify(code)
    if outcome is Outcome.DELIVERED or (status == RETRY_LATER and outcome is Outcome.REFUSED):
        outcome = Outcome.RETRY
    return Result(outcome, detail)
