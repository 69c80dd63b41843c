"""Synchronous signed queries between nodes: what must be answered while a person waits
(eligibility at a hospital counter, the reservation of their accumulators).

Messages (service.py) are durable and asynchronous; a query is a request and its answer,
within a deadline, or a typed failure. The same trust rules hold both ways:

- **The request** is the message envelope (`transport.encode`), POSTed to
  ``<base_url>/exchange/v1/query`` and signed exactly as a message is (RFC 9421 over
  ``@method @target-uri content-digest content-type``, ``nonce`` = the query id). The
  answering node checks it with `transport.verify_request` — the sender's key, the
  freshness, that it serves the source and this node the target — and then, as for a
  message, parses the payload into the type's schema and checks the sender's right to ask
  it *for that record* (the type's authoriser) before its handler runs.
- **The answer** (200 with ``{"id", "type", "answer"}``, or an RFC 9457 problem with
  ``query_id``) is signed by the answering node with RFC 9421 on the *response*,
  covering ``"@status" "content-type" "content-digest"`` and the request's own
  ``"content-digest";req`` (RFC 9421 §2.4), with ``nonce`` = the query id: the
  asker checks it against the federation's key of the node serving the target
  jurisdiction, so an answer can neither be forged nor replayed for another query or
  another request body. RFC 9421 was chosen over a signed JSON body (JWS) because the
  request is already signed that way (one implementation, httpsig.py), and because the
  status code is covered too.
- **A deadline** per call (``TONGBAN_QUERY_TIMEOUT_MS``, 2000 by default, or the
  caller's): no answer in time, a node down, no node for the target, or an answer that
  does not verify is `QueryUnavailable`; a verified refusal is `QueryRefused`, carrying
  the answering node's problem (its type, status, Chinese detail and fields).

A query type is declared once, like a message contract::

    @query_handler("medical.eligibility", schema=EligibilityAsk, answer_schema=EligibilityAnswer,
                   authorise=sender_serves_the_institution, subject=lambda p: p.id_number)
    def eligibility(session, payload: EligibilityAsk, ctx: QueryContext) -> EligibilityAnswer: ...

and asked with `ask(session, "medical.eligibility", source=…, target=…, payload=…)`. When
this node serves the target jurisdiction the query is answered in-process, in the
caller's transaction, through the same checks and handler (`answer`); the answer makes
the same JSON round trip, so one code path serves one node and many.

Every query is recorded (`ExchangeQuery`, audited) on both nodes, except an answered
query of a type declared ``recorded=False`` (a read a page repeats; `query_handler`;
having no row, such a read is not refused as a replay: within the signature's freshness
window a replayed read is answered again and changes nothing): by the asker (role
``asked``) and by the answerer (``answered``), or once (``local``). The asker's row is
written in the caller's transaction; if that transaction rolls back — the refusal is
usually why — the row is written again on its own, so a refused or unanswered query
leaves its trace too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from pydantic import BaseModel, ValidationError
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.orm import sessionmaker as _sessionmaker

from tongban.config import Settings
from tongban.crypto.signing import PrivateKey
from tongban.db import utcnow
from tongban.errors import DomainError
from tongban.exchange import httpsig
from tongban.exchange.contracts import DEFAULT_VERSION, Authoriser, Refused, Sender
from tongban.exchange.federation import Federation, FederationError, Node
from tongban.exchange.models import ExchangeQuery
from tongban.exchange.service import federation_for, node_key
from tongban.exchange.transport import (
    CONTENT_TYPE,
    LABEL,
    Rejected,
    pooled_limits,
    signed_request,
    verify_request,
)
from tongban.kernel.node import SETTINGS_KEY, bind_settings, settings_of
from tongban.web.problems import PROBLEM as PROBLEM_TYPE
from tongban.web.problems import TYPE_BASE

log = logging.getLogger(__name__)

PATH = "/exchange/v1/query"
#: What the answer's signature covers (the last one is the request's digest, RFC 9421 §2.4).
ANSWER_COVERED: tuple[tuple[str, bool], ...] = (
    ("@status", False),
    ("content-type", False),
    ("content-digest", False),
    ("content-digest", True),
)


# --- failures -----------------------------------------------------------------------


class QueryFailed(DomainError):
    """A query that got no usable answer (the base of the two below)."""


class QueryUnavailable(QueryFailed):
    """No answer within the deadline, or none that can be trusted: the node serving the
    target is down, slow, unknown, or answered with a signature that does not verify.
    `reason` says which (no-route, down, timeout, unverified-answer, bad-answer). The
    caller turns it into its own Chinese answer (what the person should do now)."""

    status = 503
    type = "query-unavailable"
    title = "对方节点暂不可用"

    def __init__(self, reason: str, detail: str = "对方节点暂不可用，请稍后再试") -> None:
        super().__init__(detail)
        self.reason = reason


class QueryRefused(QueryFailed):
    """The answering node refused, and signed its refusal: its problem type (without
    the URL prefix), status, Chinese detail and fields, as it gave them."""

    title = "对方节点拒绝了查询"

    def __init__(
        self,
        type: str,
        status: int,
        detail: str,
        errors: Iterable[Mapping[str, Any]] = (),
    ) -> None:
        super().__init__(detail, type=type, status=status, errors=list(errors))


# --- declaring query types ------------------------------------------------------------


@dataclass(frozen=True)
class QueryContext:
    """What a handler knows of the query besides its payload."""

    id: uuid.UUID
    type: str
    sender: Sender
    asked_at: datetime


#: (session, parsed payload, context) -> an instance of the type's answer schema.
QueryHandler = Callable[[Session, Any, QueryContext], BaseModel]


@dataclass(frozen=True)
class QueryType:
    name: str
    schema: type[BaseModel]
    answer_schema: type[BaseModel]
    authorise: Authoriser
    handler: QueryHandler
    #: The identifier of the person the query concerns (None: no one), for the digest.
    subject: Callable[[Any], str | None] | None = None
    versions: frozenset[int] = frozenset({DEFAULT_VERSION})
    #: False for a read that changes nothing and is repeated (a page's poll): its answered
    #: queries are not recorded; a refused or unanswered one still is.
    recorded: bool = True

    @property
    def current(self) -> int:
        return max(self.versions)


_types: dict[str, QueryType] = {}


def query_handler(
    name: str,
    *,
    schema: type[BaseModel],
    answer_schema: type[BaseModel],
    authorise: Authoriser,
    subject: Callable[[Any], str | None] | None = None,
    versions: Iterable[int] = (DEFAULT_VERSION,),
    recorded: bool = True,
) -> Callable[[QueryHandler], QueryHandler]:
    """Register the function that answers queries of type `name`, with the schema its
    payload must match, the check of the asker's right to ask it for that record, the
    schema of its answer and, when it concerns a person, how to find their identifier.

    `recorded=False` declares an unrecorded read: a query that changes nothing and that a
    page repeats (a poll), whose answered queries are not written to `ExchangeQuery`
    (the audit chain would fill with reads); its refusals and failures still are. Such a
    handler must only read: whatever changes state belongs to a recorded type."""
    accepted = frozenset(versions)
    if not accepted or any(
        isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in accepted
    ):
        raise ValueError(f"{name}: versions must be positive integers, got {versions!r}")

    def deco(fn: QueryHandler) -> QueryHandler:
        _types[name] = QueryType(
            name, schema, answer_schema, authorise, fn, subject, accepted, recorded
        )
        return fn

    return deco


def query_types() -> frozenset[str]:
    """Every query type this process can answer."""
    return frozenset(_types)


def allowed_query_types(sender: Node) -> frozenset[str]:
    """The query types `sender` may ask here, narrowed by its `sends` list if any."""
    types = query_types()
    return types if sender.sends is None else types & sender.sends


# --- answering ------------------------------------------------------------------------


@dataclass(frozen=True)
class Answered:
    """This node's answer to a query: the HTTP status and JSON body it is sent as."""

    status: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.status == 200


def _problem(
    query_id: uuid.UUID | None,
    type_: str,
    status: int,
    detail: str,
    errors: Iterable[Mapping[str, Any]] = (),
    title: str = "查询被拒绝",
) -> Answered:
    body: dict[str, Any] = {
        "type": TYPE_BASE + type_,
        "title": title,
        "status": status,
        "detail": detail,
        "query_id": str(query_id) if query_id else None,
    }
    errs = [
        {"field": str(e.get("field", "")), "message": str(e.get("message", ""))} for e in errors
    ]
    if errs:
        body["errors"] = errs
    return Answered(status, body)


def subject_digest(settings: Settings, identifier: str | None) -> str | None:
    """A keyed digest of a person's identifier (HMAC-SHA-256 under this node's secret):
    queries about one person can be found on this node, an ID number cannot be read back
    or guessed from the table."""
    if not identifier:
        return None
    key = settings.secret_key.encode()
    return hmac.new(key, identifier.encode(), hashlib.sha256).hexdigest()


def answer(
    session: Session,
    *,
    query_id: uuid.UUID,
    name: str,
    payload: Mapping[str, Any],
    sender: Sender,
    version: int = DEFAULT_VERSION,
    answering_node: str | None = None,
) -> Answered:
    """Answer a query on this node: check that the type is one this node answers and the
    version one it accepts, parse the payload into the type's schema, check the asker's
    right, run the handler in a savepoint (a refusal writes nothing), and record the
    query. Never raises for a refusal: the answer is a problem with its reason."""
    started = time.monotonic()
    qt = _types.get(name)
    if qt is None:
        return _problem(query_id, "exchange/type-not-allowed", 403, f"本节点不回答 {name} 查询")
    settings = settings_of(session)
    if session.get(ExchangeQuery, query_id) is not None:
        return _problem(query_id, "exchange/replayed", 409, "该查询已回答过，不再重复回答")
    model: BaseModel | None = None
    try:
        if version not in qt.versions:
            accepted = "、".join(str(v) for v in sorted(qt.versions))
            raise Refused(
                "unknown-version",
                f"本节点不接受第 {version} 版的 {name} 查询（接受的版本：{accepted}）",
                422,
            )
        if not sender.serves(sender.source_jurisdiction):
            raise Refused(
                "not-allowed",
                f"发送节点 {sender.node or '本节点'} 不服务于来源辖区 {sender.source_jurisdiction}",
            )
        try:
            model = qt.schema.model_validate_json(json.dumps(payload, ensure_ascii=False))
        except (ValidationError, TypeError, ValueError) as exc:
            raise Refused("bad-payload", f"{name} 查询内容不合规：{_why(exc)}", 422) from exc
        qt.authorise(session, model, sender)
    except Refused as exc:
        result = _problem(query_id, f"exchange/{exc.reason}", exc.status, exc.detail)
    else:
        ctx = QueryContext(query_id, name, sender, utcnow())
        try:
            with session.begin_nested():
                out = qt.handler(session, model, ctx)
                if not isinstance(out, qt.answer_schema):
                    raise TypeError(f"{name} answered {type(out).__name__}, not its schema")
        except DomainError as exc:
            result = _problem(query_id, exc.type, exc.status, exc.detail, exc.errors, exc.title)
        else:
            result = Answered(
                200, {"id": str(query_id), "type": name, "answer": out.model_dump(mode="json")}
            )
    if result.ok and not qt.recorded:
        return result
    ident = qt.subject(model) if (qt.subject and model is not None) else None
    _record(
        session,
        id=query_id,
        type=name,
        role="local" if sender.local else "answered",
        asking_node=sender.node,
        asking_jurisdiction=sender.source_jurisdiction,
        answering_node=answering_node,
        answering_jurisdiction=sender.target_jurisdiction,
        subject_digest=subject_digest(settings, ident),
        outcome="answered" if result.ok else "refused",
        reason=None if result.ok else _slug(str(result.body.get("type", ""))),
        duration_ms=_ms(started),
    )
    return result


def _why(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors(include_url=False)[:5]:
            where = ".".join(str(p) for p in err["loc"]) or "payload"
            parts.append(f"{where}: {err['msg']}")
        return "；".join(parts)
    return str(exc)


def _slug(type_url: str) -> str:
    return type_url.removeprefix(TYPE_BASE)[:80]


def _ms(started: float) -> int:
    return max(0, round((time.monotonic() - started) * 1000))


# --- asking ---------------------------------------------------------------------------


def ask(
    session: Session,
    name: str,
    *,
    source: str,
    target: str,
    payload: BaseModel | Mapping[str, Any],
    timeout_ms: int | None = None,
    release_idle: bool = False,
) -> Any:
    """Ask the node serving jurisdiction `target` a query of type `name` on behalf of
    this node's jurisdiction `source`; return the answer, parsed into the type's answer
    schema. Raises QueryUnavailable (no answer in time, or none that verifies) or
    QueryRefused (the answering node's signed refusal). Answered in-process, in the
    caller's transaction, when this node serves `target`.

    `release_idle`: on SQLite, end the caller's transaction before the round trip when
    it has written nothing yet (`release_if_idle`), so that the node's write lock is not
    held while another node answers. For callers whose reads before the ask need not
    stay locked (an eligibility check; not a settlement that locked its visit)."""
    qt = _types.get(name)
    if qt is None:
        raise ValueError(f"unknown query type {name}")
    settings = settings_of(session)
    data = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else dict(payload)
    query_id = uuid.uuid4()
    if _serves(settings.served_jurisdictions, target):
        sender = Sender(None, frozenset({"*"}), source, target)
        result = answer(
            session, query_id=query_id, name=name, payload=data, sender=sender, version=qt.current
        )
        return _answer_of(qt, query_id, result.status, result.body)
    # Send only what the contract accepts (parsed from JSON, as the answering node will).
    model = qt.schema.model_validate_json(json.dumps(data, ensure_ascii=False))
    ident = qt.subject(model) if qt.subject else None
    return _ask_remote(
        session,
        settings,
        qt,
        query_id,
        model.model_dump(mode="json"),
        source=source,
        target=target,
        digest=subject_digest(settings, ident),
        timeout_ms=timeout_ms or settings.query_timeout_ms,
        release_idle=release_idle,
    )


def _serves(served: str, jurisdiction: str) -> bool:
    return served == "*" or jurisdiction in {s.strip() for s in served.split(",")}


def _answer_of(qt: QueryType, query_id: uuid.UUID, status: int, body: Mapping[str, Any]) -> Any:
    if status == 200:
        if str(body.get("id")) != str(query_id) or body.get("type") != qt.name:
            raise QueryUnavailable("bad-answer", "对方节点的答复与查询不符")
        try:
            raw = json.dumps(body.get("answer"), ensure_ascii=False)
            return qt.answer_schema.model_validate_json(raw)
        except ValidationError as exc:
            raise QueryUnavailable("bad-answer", f"对方节点的答复不合规：{_why(exc)}") from exc
    raw_errors = body.get("errors")
    errors = [e for e in raw_errors if isinstance(e, dict)] if isinstance(raw_errors, list) else []
    detail = body.get("detail")
    raise QueryRefused(
        _slug(str(body.get("type") or "exchange/refused")),
        status if 400 <= status < 600 else 502,
        str(detail) if detail else "对方节点拒绝了查询",
        errors,
    )


#: Where a remote query's HTTP call runs, so that the deadline holds whatever the
#: transport does (the httpx timeouts are set to the deadline too, so threads end).
_pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="query")
_clients: dict[str, httpx.Client] = {}


def install_client(node_id: str, client: httpx.Client | None) -> None:
    """Use `client` for the queries node `node_id` asks (tests route it in-process);
    None goes back to the node's own pooled client."""
    if client is None:
        _clients.pop(node_id, None)
    else:
        _clients[node_id] = client


def _client(settings: Settings) -> httpx.Client:
    client = _clients.get(settings.node_id)
    if client is None:
        client = httpx.Client(limits=pooled_limits())
        _clients[settings.node_id] = client
    return client


def _ask_remote(
    session: Session,
    settings: Settings,
    qt: QueryType,
    query_id: uuid.UUID,
    payload: dict[str, Any],
    *,
    source: str,
    target: str,
    digest: str | None,
    timeout_ms: int,
    release_idle: bool = False,
) -> Any:
    started = time.monotonic()
    row: dict[str, Any] = {
        "id": query_id,
        "type": qt.name,
        "role": "asked",
        "asking_node": None,
        "asking_jurisdiction": source,
        "answering_node": None,
        "answering_jurisdiction": target,
        "subject_digest": digest,
    }

    def fail(outcome: str, reason: str, exc: QueryFailed) -> QueryFailed:
        _record(session, **row, outcome=outcome, reason=reason, duration_ms=_ms(started))
        log.warning("query %s (%s) to %s: %s %s", query_id, qt.name, target, outcome, reason)
        return exc

    try:
        fed = federation_for(settings)
    except FederationError as exc:
        raise fail("unavailable", "no-federation", QueryUnavailable("no-federation")) from exc
    node = fed.node_for(target)
    if node is None or node.id == settings.node_id:
        raise fail("unavailable", "no-route", QueryUnavailable("no-route"))
    row["answering_node"] = node.id
    envelope = {
        "id": str(query_id),
        "type": qt.name,
        "source_node": settings.node_id,
        "source_jurisdiction": source,
        "target_jurisdiction": target,
        "created_at": utcnow().isoformat(),
        "version": qt.current,
        "payload": payload,
    }
    url = node.base_url + PATH
    body, headers = signed_request(envelope, node_key(session, settings.node_id), url)
    if release_idle:
        release_if_idle(session)
    deadline = timeout_ms / 1000
    timeout = httpx.Timeout(deadline, connect=min(deadline, 3.0))
    future = _pool.submit(
        _client(settings).post, url, content=body, headers=headers, timeout=timeout
    )
    try:
        response = future.result(timeout=deadline)
    except FutureTimeout as exc:
        future.cancel()
        raise fail("unavailable", "timeout", QueryUnavailable("timeout")) from exc
    except httpx.TimeoutException as exc:
        raise fail("unavailable", "timeout", QueryUnavailable("timeout")) from exc
    except httpx.HTTPError as exc:
        raise fail("unavailable", "down", QueryUnavailable("down")) from exc
    try:
        verify_answer(
            response.status_code,
            response.headers,
            response.content,
            request_digest=headers["Content-Digest"],
            node=node,
            query_id=query_id,
            now=time.time(),
            max_skew=settings.exchange_max_skew,
        )
        data = json.loads(response.content)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except (httpsig.SignatureError, ValueError) as exc:
        raise fail(
            "unverified",
            "unverified-answer",
            QueryUnavailable("unverified-answer", "对方节点的答复未通过签名验证"),
        ) from exc
    try:
        result = _answer_of(qt, query_id, response.status_code, data)
    except QueryRefused as exc:
        raise fail("refused", exc.type, exc) from None
    except QueryUnavailable as exc:
        raise fail("unverified", exc.reason, exc) from None
    if qt.recorded:
        _record(session, **row, outcome="answered", reason=None, duration_ms=_ms(started))
    return result


# --- SQLite: not holding the write lock across a round trip ----------------------------

#: Session.info key: the SQLite connection's total_changes when its transaction began.
_BEGAN_AT = "tongban.exchange.query.began_at_changes"


def _sqlite_changes(connection: Connection) -> int | None:
    if connection.dialect.name != "sqlite":
        return None
    raw = connection.connection.dbapi_connection
    changes = getattr(raw, "total_changes", None)
    return changes if isinstance(changes, int) else None


@event.listens_for(Session, "after_begin")
def _began(session: Session, transaction: SessionTransaction, connection: Connection) -> None:
    changes = _sqlite_changes(connection)
    if changes is not None:
        session.info[_BEGAN_AT] = changes
    else:
        session.info.pop(_BEGAN_AT, None)


def release_if_idle(session: Session) -> bool:
    """End `session`'s transaction if it is a SQLite one that has written nothing yet
    (no row changed since it began, nothing pending in the session, no savepoint).

    Every SQLite transaction here starts with ``BEGIN IMMEDIATE`` (db.py): it holds the
    database's write lock from its first statement. A request that asks another node
    inside it keeps that lock for the whole round trip, and when two nodes' requests ask
    each other at the same moment each answer waits for the lock the other request
    holds: both time out. Ending an idle transaction first breaks that cycle; the
    caller's next statement begins a new one. True when it was ended."""
    if not session.in_transaction() or session.in_nested_transaction():
        return False
    began = session.info.get(_BEGAN_AT)
    if began is None or session.new or session.dirty or session.deleted:
        return False
    if _sqlite_changes(session.connection()) != began:
        return False
    session.commit()  # nothing to write: this only ends the transaction and its lock
    return True


# --- the answer's signature (RFC 9421 on a response) -----------------------------------


def _answer_base(
    status: int, headers: Mapping[str, str], request_digest: str, params: httpsig.InnerList
) -> bytes:
    lowered = {k.lower(): v for k, v in headers.items()}
    lines = []
    for item in params.items:
        name = item.value
        if not isinstance(name, str) or isinstance(name, httpsig.Token):
            raise httpsig.SignatureError("component identifiers must be strings")
        req = item.params.get("req") is True
        if set(item.params) - {"req"}:
            raise httpsig.SignatureError(f"unsupported parameters on {name}")
        if name == "@status" and not req:
            value = str(status)
        elif name == "content-digest" and req:
            value = request_digest
        elif not name.startswith("@") and not req:
            found = lowered.get(name)
            if found is None:
                raise httpsig.SignatureError(f"covered header {name} is missing")
            value = found.strip()
        else:
            raise httpsig.SignatureError(f"unsupported component {name}")
        if "\n" in value or "\r" in value:
            raise httpsig.SignatureError(f"component {name} holds a line break")
        lines.append(f'"{name}"{";req" if req else ""}: {value}')
    lines.append(f'"@signature-params": {httpsig.serialize_inner_list(params)}')
    return "\n".join(lines).encode("ascii", errors="strict")


def sign_answer(
    status: int,
    body: bytes,
    content_type: str,
    key: PrivateKey,
    *,
    request_digest: str,
    query_id: str,
    created: int | None = None,
) -> dict[str, str]:
    """The headers of an answer signed by `key`: Content-Type, Content-Digest and the
    RFC 9421 signature over the status, those two and the request's digest."""
    headers = {"Content-Type": content_type, "Content-Digest": httpsig.content_digest(body)}
    params = httpsig.InnerList(
        [httpsig.Item(n, {"req": True} if req else {}) for n, req in ANSWER_COVERED],
        {
            "created": int(time.time()) if created is None else created,
            "keyid": key.kid,
            "alg": httpsig.HTTPSIG_ALG[key.alg],
            "nonce": query_id,
        },
    )
    signature = key.sign(_answer_base(status, headers, request_digest, params))
    headers["Signature-Input"] = f"{LABEL}={httpsig.serialize_inner_list(params)}"
    headers["Signature"] = f"{LABEL}=:{base64.b64encode(signature).decode()}:"
    return headers


def verify_answer(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    request_digest: str,
    node: Node,
    query_id: uuid.UUID,
    now: float,
    max_skew: int,
) -> None:
    """Check that an answer was signed by `node` (one of its keys in the federation
    file) for this query and this request: covered components, digest, signature,
    freshness and nonce. Raises httpsig.SignatureError saying what is wrong."""
    signed = httpsig.read_signature(httpsig.Request("", "", headers), LABEL)
    covered = {(str(i.value), i.params.get("req") is True) for i in signed.params.items}
    missing = [n for n in ANSWER_COVERED if n not in covered]
    created, keyid, nonce = (signed.param(p) for p in ("created", "keyid", "nonce"))
    if missing or not isinstance(created, int) or not isinstance(keyid, str):
        raise httpsig.SignatureError("the answer's signature does not cover what it must")
    if str(nonce) != str(query_id):
        raise httpsig.SignatureError("the answer's nonce is not the query id")
    if not httpsig.digest_matches(_header(headers, "content-digest"), body):
        raise httpsig.SignatureError("the answer's Content-Digest does not match its body")
    key = node.key(keyid)
    if key is None:
        raise httpsig.SignatureError(f"key {keyid} is not one of node {node.id}'s")
    alg = signed.param("alg")
    if alg is not None and httpsig.ALG_FROM_HTTPSIG.get(str(alg)) is not key.alg:
        raise httpsig.SignatureError("the answer's alg does not match the key")
    try:
        base = _answer_base(status, headers, request_digest, signed.params)
    except UnicodeEncodeError as exc:
        raise httpsig.SignatureError("non-ASCII component") from exc
    if not key.verify(base, signed.signature):
        raise httpsig.SignatureError("the answer's signature does not verify")
    if abs(now - created) > max_skew:
        raise httpsig.SignatureError("the answer's signature is stale")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for k, v in headers.items():
        if k.lower() == name:
            return v
    return None


# --- the HTTP side of answering (exchange/api.py) --------------------------------------


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def _encode(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _request_id(body: bytes) -> str:
    try:
        data = json.loads(body)
        return str(uuid.UUID(str(data.get("id"))))
    except (ValueError, TypeError, AttributeError):
        return ""


def handle_http(
    settings: Settings,
    factory: _sessionmaker[Session],
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
) -> HttpAnswer:
    """Answer a query POSTed by another node: verify the request as the inbox verifies a
    message, answer it in one transaction (`answer`), and sign the answer — a refusal
    too, so that the asker can tell it from a forgery."""
    try:
        fed: Federation = federation_for(settings)
        local = fed.node(settings.node_id)
    except FederationError as exc:
        log.error("query endpoint unusable: %s", exc)
        data = _problem(None, "exchange/no-federation", 503, str(exc), title="节点未配置").body
        return HttpAnswer(503, _encode(data), {"Content-Type": PROBLEM_TYPE})
    target_uri = local.base_url + PATH if settings.federation_file is not None else url
    request_digest = _header(headers, "content-digest") or ""
    try:
        env = verify_request(
            method=method,
            target_uri=target_uri,
            headers=headers,
            body=body,
            federation=fed,
            local=local,
            allowed_types=allowed_query_types,
            now=time.time(),
            max_skew=settings.exchange_max_skew,
        )
    except Rejected as exc:
        log.warning("refused a query: %s %s", exc.reason, exc.detail)
        qid = _request_id(body)
        result = _problem(
            uuid.UUID(qid) if qid else None, f"exchange/{exc.reason}", exc.status, exc.detail
        )
        return _signed(factory, settings, result, request_digest, qid)
    node = fed.nodes[env.source_node]
    sender = Sender(
        node.id, frozenset(node.jurisdictions), env.source_jurisdiction, env.target_jurisdiction
    )
    key: PrivateKey | None = None
    with factory() as session:
        try:
            result = answer(
                session,
                query_id=env.id,
                name=env.type,
                payload=env.payload,
                sender=sender,
                version=env.version,
                answering_node=settings.node_id,
            )
            key = node_key(session, settings.node_id)
            session.commit()
        except Exception:  # noqa: BLE001 - e.g. a replay racing its twin: answer, never 500
            session.rollback()
            log.exception("query %s (%s) from %s failed", env.id, env.type, env.source_node)
            result = _problem(env.id, "exchange/query-failed", 409, "查询暂时无法回答，请稍后重试")
            key = None
    return _signed(factory, settings, result, request_digest, str(env.id), key)


def _signed(
    factory: _sessionmaker[Session],
    settings: Settings,
    result: Answered,
    request_digest: str,
    query_id: str,
    key: PrivateKey | None = None,
) -> HttpAnswer:
    body = _encode(result.body)
    ctype = CONTENT_TYPE if result.ok else PROBLEM_TYPE
    if key is None:
        with factory() as session:
            key = node_key(session, settings.node_id)
            session.commit()  # the key may have been generated just now
    headers = sign_answer(
        result.status, body, ctype, key, request_digest=request_digest, query_id=query_id
    )
    return HttpAnswer(result.status, body, headers)


# --- recording ------------------------------------------------------------------------

#: Session.info key: the query rows this transaction wrote (rewritten if it rolls back).
_WRITTEN = "tongban.exchange.queries"


def _record(session: Session, **values: Any) -> None:
    values.setdefault("at", utcnow())
    session.add(ExchangeQuery(**values))
    session.flush()
    session.info.setdefault(_WRITTEN, []).append(values)


@event.listens_for(Session, "after_commit")
def _kept(session: Session) -> None:
    session.info.pop(_WRITTEN, None)


@event.listens_for(Session, "after_soft_rollback")
def _rewrite(session: Session, previous: SessionTransaction) -> None:
    """The transaction that recorded these queries rolled back (a refusal usually made
    the caller fail): write the records again in a transaction of their own."""
    if previous.parent is not None:
        return  # a savepoint: the records are outside it, or go with the outer one
    rows = session.info.pop(_WRITTEN, None)
    if not rows:
        return
    bind = session.get_bind()
    options: dict[str, Any] = {"bind": bind, "expire_on_commit": False}
    if isinstance(bind, Connection):  # a test's shared connection: join it
        options["join_transaction_mode"] = "create_savepoint"
    factory = _sessionmaker(**options)
    settings = session.info.get(SETTINGS_KEY)
    if settings is not None:
        factory = bind_settings(factory, settings)
    try:
        with factory() as again:
            for values in rows:
                if again.get(ExchangeQuery, values["id"]) is None:
                    again.add(ExchangeQuery(**values))
            again.commit()
    except Exception:  # noqa: BLE001 - a lost record must not hide the caller's failure
        log.exception("could not record %d query row(s) after a rollback", len(rows))
