"""The inbox other nodes post their signed messages to, and this node's public card."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from tongban.config import Settings
from tongban.exchange import query as queries
from tongban.exchange import service
from tongban.exchange.federation import Federation, FederationError, Node
from tongban.exchange.models import InboxMessage
from tongban.exchange.transport import (
    REFUSED,
    BatchAnswer,
    Envelope,
    Rejected,
    item_id,
    parse_batch,
    verify_request,
)
from tongban.web.deps import SettingsDep
from tongban.web.problems import problem, responses

log = logging.getLogger(__name__)
router = APIRouter(prefix="/exchange/v1", tags=["exchange"])

#: Largest message accepted (a case's materials travel inside its forwarding message).
MAX_BODY_BYTES = 64 * 1024 * 1024
#: Largest query accepted: a query is what a person waits for, never a file.
MAX_QUERY_BYTES = 1024 * 1024
#: Largest batch accepted, in messages and in bytes (announced on the node's card).
MAX_BATCH_MESSAGES = 500
MAX_BATCH_BYTES = 64 * 1024 * 1024


def _refuse(exc: Rejected) -> Response:
    return problem(exc.status, f"exchange/{exc.reason}", "消息被拒收", exc.detail)


def _federation(settings: Settings) -> tuple[Federation, Node] | Response:
    """The federation and this node in it, or the 503 answered when it cannot be read."""
    try:
        fed = service.federation_for(settings)
        return fed, fed.node(settings.node_id)
    except FederationError as exc:
        log.error("inbox unusable: %s", exc)
        return problem(503, "exchange/no-federation", "节点未配置", str(exc))


def _handle(
    settings: Settings,
    factory: sessionmaker[Session],
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
) -> Response:
    known = _federation(settings)
    if isinstance(known, Response):
        return known
    fed, local = known
    target_uri = local.inbox_url if settings.federation_file is not None else url
    try:
        env = verify_request(
            method=method,
            target_uri=target_uri,
            headers=headers,
            body=body,
            federation=fed,
            local=local,
            allowed_types=service.allowed_types,
            now=time.time(),
            max_skew=settings.exchange_max_skew,
        )
    except Rejected as exc:
        log.warning("refused a message: %s %s", exc.reason, exc.detail)
        return _refuse(exc)
    with factory() as session:  # the node's: its sessions carry `settings`
        try:
            applied = service.receive(session, env, fed.nodes.get(env.source_node))
            session.commit()
        except service.Refused as exc:
            # Bad payload or no right to send it for that record: refused for good.
            session.rollback()
            service.log_refused(env, exc)
            return problem(exc.status, f"exchange/{exc.reason}", "消息被拒收", exc.detail)
        except IntegrityError:
            # The same message delivered twice at once: the other delivery won.
            session.rollback()
            if session.get(InboxMessage, env.id) is None:
                raise
            applied = False
        except service.OutOfOrder as exc:
            session.rollback()
            return problem(409, "exchange/out-of-order", "消息暂不能处理", str(exc))
        except Exception as exc:  # noqa: BLE001 - the sender retries with back-off
            session.rollback()
            log.exception("message %s (%s) from %s failed", env.id, env.type, env.source_node)
            return problem(
                500, "exchange/handler-failed", "消息处理失败", f"{type(exc).__name__}: {exc}"
            )
    status = "applied" if applied else "already applied"
    return JSONResponse({"id": str(env.id), "status": status})


def _handle_batch(
    settings: Settings,
    factory: sessionmaker[Session],
    url: str,
    body: bytes,
) -> Response:
    known = _federation(settings)
    if isinstance(known, Response):
        return known
    fed, local = known
    try:
        items = parse_batch(body, MAX_BATCH_MESSAGES)
    except Rejected as exc:
        log.warning("refused a batch: %s %s", exc.reason, exc.detail)
        return _refuse(exc)
    # Each message signed for the single inbox, as if it had come alone.
    target_uri = local.inbox_url if settings.federation_file is not None else url
    now = time.time()
    answers: list[BatchAnswer | None] = []
    verified: list[tuple[Envelope, Node | None]] = []
    for item in items:
        try:
            env = verify_request(
                method="POST",
                target_uri=target_uri,
                headers=item.headers,
                body=item.body,
                federation=fed,
                local=local,
                allowed_types=service.allowed_types,
                now=now,
                max_skew=settings.exchange_max_skew,
            )
        except Rejected as exc:
            log.warning("refused a message of a batch: %s %s", exc.reason, exc.detail)
            answers.append(
                BatchAnswer(
                    item_id(item), REFUSED, service.refusal(exc.status, exc.reason, exc.detail)
                )
            )
            continue
        answers.append(None)
        verified.append((env, fed.nodes.get(env.source_node)))
    with factory() as session:  # the node's: its sessions carry `settings`
        try:
            applied = iter(service.receive_batch(session, verified))
            session.commit()
        except Exception as exc:  # noqa: BLE001 - nothing applied: the sender retries all
            session.rollback()
            log.exception("a batch of %s message(s) failed as a whole", len(verified))
            return problem(
                503, "exchange/batch-failed", "消息处理失败", f"{type(exc).__name__}: {exc}"
            )
    results = [a if a is not None else next(applied) for a in answers]
    return JSONResponse({"results": [r.json() for r in results]})


@router.post(
    "/inbox/batch",
    summary="Receive several signed messages from another node in one request",
    responses=responses(400, 413),
)
async def inbox_batch(request: Request, settings: SettingsDep) -> Response:
    """Messages from another node, each signed on its own exactly as for `/inbox`
    (docs/federation.md, "Batches"): each verified, then all applied in one transaction,
    each in a savepoint of its own. 200 with one result per message in their order
    (applied, already applied, refused with its problem, retry); 413 for a batch over
    the limits of the node's card; 400 for a body that is not a batch."""
    declared = request.headers.get("content-length")
    too_large = f"一批消息超过 {MAX_BATCH_BYTES} 字节"
    if declared is not None and declared.isdigit() and int(declared) > MAX_BATCH_BYTES:
        return problem(413, "exchange/batch-too-large", "消息过大", too_large)
    body = await request.body()
    if len(body) > MAX_BATCH_BYTES:
        return problem(413, "exchange/batch-too-large", "消息过大", too_large)
    return await run_in_threadpool(
        _handle_batch,
        settings,
        request.app.state.session_factory,
        str(request.url).split("?")[0].removesuffix("/batch"),
        body,
    )


@router.post(
    "/inbox",
    summary="Receive a signed message from another node",
    # Unsigned, stale or from an unknown key; a type the sender may not send; too large.
    responses=responses(401, 403, 413, 415),
)
async def inbox(request: Request, settings: SettingsDep) -> Response:
    """A message from another node, signed per RFC 9421 (see docs/federation.md).
    200 when applied now or before; 4xx when refused for good (the sender parks it as a
    dead letter); 409 or 5xx when the sender should retry later."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return problem(413, "exchange/too-large", "消息过大", f"消息超过 {MAX_BODY_BYTES} 字节")
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        return problem(413, "exchange/too-large", "消息过大", f"消息超过 {MAX_BODY_BYTES} 字节")
    return await run_in_threadpool(
        _handle,
        settings,
        request.app.state.session_factory,
        request.method,
        str(request.url),
        dict(request.headers),
        body,
    )


@router.post(
    "/query",
    summary="Answer a signed synchronous query from another node",
    responses=responses(401, 403, 409, 413, 415, 422),
)
async def query(request: Request, settings: SettingsDep) -> Response:
    """A query from another node, signed per RFC 9421 like a message (see
    docs/federation.md, "Synchronous queries"); the answer — or the refusal, as RFC 9457
    problem+json — is signed by this node."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_QUERY_BYTES:
        return problem(413, "exchange/too-large", "查询过大", f"查询超过 {MAX_QUERY_BYTES} 字节")
    body = await request.body()
    if len(body) > MAX_QUERY_BYTES:
        return problem(413, "exchange/too-large", "查询过大", f"查询超过 {MAX_QUERY_BYTES} 字节")
    out = await run_in_threadpool(
        queries.handle_http,
        settings,
        request.app.state.session_factory,
        request.method,
        str(request.url),
        dict(request.headers),
        body,
    )
    return Response(out.body, status_code=out.status, headers=out.headers)


@router.get("/node", summary="This node: id, jurisdictions and public keys")
def node_card(request: Request, settings: SettingsDep) -> dict[str, Any]:
    """What an operator copies into the federation file (the keys this node signs with
    are also printed by `tongban exchange node-key`)."""
    from tongban.db import transaction
    from tongban.keys import service as keys

    with transaction(request.app.state.session_factory) as session:
        rows = keys.public_rows(session, "node", settings.node_id)
        jwks = [keys.public_key(r).jwk() for r in rows if r.retired_at is None]
    return {
        "node": settings.node_id,
        "jurisdictions": settings.served_jurisdictions.split(","),
        "keys": jwks,
        # This node takes batches of signed messages (docs/federation.md, "Batches").
        "batch": {
            "path": "/exchange/v1/inbox/batch",
            "max_messages": MAX_BATCH_MESSAGES,
            "max_bytes": MAX_BATCH_BYTES,
        },
    }
