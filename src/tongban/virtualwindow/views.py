"""Pages of the virtual window and the JSON endpoints their script calls.

Clerk (on their own node): /virtual-window (start, my sessions), /virtual-window/s/{id}
(the room; every step relayed to the competent node). Officer (on the competent node):
/virtual-window/queue (waiting sessions, take the next), /virtual-window/officer/s/{id}.
The room's script (static/virtualwindow.js) long-polls `sync` (push.py: the read waits,
on an async endpoint, until the session moves past the page's cursor) and posts each
step to `act`; both answer the session's view as JSON."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from tongban.catalog import service as catalog
from tongban.errors import DomainError, FieldError, NotFound, ValidationFailed
from tongban.files import service as files
from tongban.identity.models import Account
from tongban.kernel import history
from tongban.regions import service as regions
from tongban.virtualwindow import domain, push, recording, relay, service
from tongban.virtualwindow.domain import Side
from tongban.virtualwindow.models import WindowSession
from tongban.web.deps import CsrfChecked, CurrentUser, FormDep, SessionDep, SettingsDep
from tongban.web.pages import form_failure, render

router = APIRouter(include_in_schema=False)


def _id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("远程窗口会话不存在或无权查看", type="unknown-session") from None


def _int(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


def _args(form: FormData) -> tuple[str, dict[str, Any]]:
    op = form.get("op")
    raw = form.get("args") or "{}"
    try:
        args = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        args = None
    if not isinstance(op, str) or not isinstance(args, dict):
        raise ValidationFailed("请求内容无效", errors=[FieldError("args", "请求内容无效")])
    return op, args


def _matters(session: Session) -> list[Any]:
    return [m for m in catalog.list_matters(session) if {"online", "proxy"} & set(m.modes)]


def _room(
    request: Request, session: Session, user: Account, side: Side, view: dict[str, Any], **ctx: Any
) -> Response:
    matter = catalog.get_matter(session, view["matter_code"])
    props = matter.form_schema.get("properties", {})
    ice = service.ice_servers(request.app.state.node.settings, str(user.id))
    return render(
        request,
        "virtualwindow/room.html",
        user,
        side=side.value,
        v=view,
        matter=matter,
        props=props,
        required=set(matter.form_schema.get("required", [])),
        methods=domain.IDENTITY_METHODS,
        ice=json.dumps(ice),
        recording=side is Side.CLERK and request.app.state.node.settings.vw_recording,
        **ctx,
    )


# --- clerk -----------------------------------------------------------------------------------


@router.get("/virtual-window")
def clerk_home(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    mine = relay.tickets(session, user)
    return _home(request, session, user, mine, errors={}, values={})


def _home(
    request: Request,
    session: Session,
    user: Account,
    mine: list[Any],
    *,
    errors: dict[str, str],
    values: dict[str, str],
    message: str | None = None,
    status_code: int = 200,
) -> Response:
    cities = [
        (j, regions.list_cities(session, j.code))
        for j in regions.list_jurisdictions(session)
        if j.code != user.jurisdiction_code
    ]
    return render(
        request,
        "virtualwindow/clerk_home.html",
        user,
        status_code=status_code,
        matters=_matters(session),
        cities=cities,
        mine=mine,
        errors=errors,
        values=values,
        message=message,
    )


@router.post("/virtual-window", dependencies=[CsrfChecked])
def clerk_start(
    request: Request, session: SessionDep, user: CurrentUser, form: FormDep
) -> Response:
    matter_code = str(form.get("matter_code") or "")
    city_code = str(form.get("city_code") or "")
    try:
        ticket = relay.start(session, user, matter_code, city_code)
    except DomainError as e:
        if e.status == 403:
            raise
        refused = form_failure(session, e)
        values = {"matter_code": matter_code, "city_code": city_code}
        return _home(
            request, session, user, relay.tickets(session, user), values=values, **refused.context
        )
    return RedirectResponse(f"/virtual-window/s/{ticket.session_id}", status_code=303)


@router.get("/virtual-window/s/{session_id}")
def clerk_room(
    session_id: str, request: Request, session: SessionDep, user: CurrentUser
) -> Response:
    ticket = relay.ticket_of(session, user, _id(session_id))
    view = service.for_browser(relay.relay(session, user, ticket, "join"))
    return _room(
        request,
        session,
        user,
        Side.CLERK,
        view,
        base=f"/virtual-window/s/{ticket.session_id}",
        signals_since=_last_signal(view),
    )


def _last_signal(view: dict[str, Any]) -> int:
    # A page that opens reads only the signals sent after it (an older offer is stale).
    return max((s["id"] for s in view["signals"]), default=0)


def _read_in(session: Session, read: Callable[[], Any]) -> Any:
    """Run `read` and end the transaction, whatever happens: a request that then waits
    must hold no transaction (on SQLite, no write lock) while it waits."""
    try:
        out = read()
        session.commit()
        return out
    except BaseException:
        session.rollback()
        raise


async def _long_poll(
    session: Session,
    read: Callable[[], dict[str, Any]],
    key: str,
    since: int,
    signals: int,
    wait: bool,
    recheck: float,
) -> dict[str, Any]:
    """The view as soon as it has something after the page's cursors, or when the wait's
    bound passes (push.py); each read runs in the threadpool, the wait holds no thread."""
    loop = asyncio.get_running_loop()
    token = push.BOARD.token(key)
    view: dict[str, Any] = await run_in_threadpool(_read_in, session, read)
    if not wait:
        return view
    deadline = loop.time() + push.wait_bound(view)
    while not push.has_news(view, since, signals):
        left = deadline - loop.time()
        if left <= 0:
            break
        woke = await push.BOARD.wait(key, token, min(left, recheck))
        if woke is None:  # too many requests wait already: answer now, the page polls
            break
        token = push.BOARD.token(key)
        view = await run_in_threadpool(_read_in, session, read)
    return view


@router.get("/virtual-window/s/{session_id}/sync")
async def clerk_sync(
    session_id: str,
    session: SessionDep,
    user: CurrentUser,
    since: str | None = None,
    signals: str | None = None,
    wait: str | None = None,
) -> Response:
    """The session's view for the clerk's page, relayed; with `wait`, held until the
    competent node's poke says it changed (or the bound passes)."""
    cursor, sig, sid = _int(since), _int(signals), _id(session_id)

    def read() -> dict[str, Any]:
        ticket = relay.ticket_of(session, user, sid)
        return relay.relay(session, user, ticket, "sync", since=cursor, signals_since=sig)

    # Between pokes the clerk's node asks the competent node only at the bound.
    view = await _long_poll(
        session, read, str(sid), cursor, sig, bool(wait), recheck=push.WAIT_SECONDS
    )
    return JSONResponse(service.for_browser(view))


@router.post("/virtual-window/s/{session_id}/act", dependencies=[CsrfChecked])
def clerk_act(session_id: str, session: SessionDep, user: CurrentUser, form: FormDep) -> Response:
    ticket = relay.ticket_of(session, user, _id(session_id))
    op, args = _args(form)
    if op == "recording":  # only with its chunk (clerk_recording)
        raise ValidationFailed("未知的操作", errors=[FieldError("op", "未知的操作")])
    since, signals = _int(str(form.get("since") or 0)), _int(str(form.get("signals") or 0))
    view = relay.relay(session, user, ticket, op, args, since, signals)
    return JSONResponse(service.for_browser(view))


@router.post("/virtual-window/s/{session_id}/documents", dependencies=[CsrfChecked])
def clerk_document(
    session_id: str, session: SessionDep, user: CurrentUser, form: FormDep
) -> Response:
    ticket = relay.ticket_of(session, user, _id(session_id))
    upload = form.get("file")
    code = str(form.get("material_code") or "")
    if not isinstance(upload, UploadFile) or not code:
        raise ValidationFailed("请选择材料并上传文件", errors=[FieldError("file", "请选择文件")])
    data = upload.file.read()
    view = relay.upload(session, user, ticket, code, upload.filename or "upload", data)
    return JSONResponse(service.for_browser(view))


@router.post("/virtual-window/s/{session_id}/recording", dependencies=[CsrfChecked])
def clerk_recording(
    session_id: str, session: SessionDep, user: CurrentUser, form: FormDep, settings: SettingsDep
) -> Response:
    """One chunk of the counter's recording (recording.py): its hash is recorded on the
    competent node, the chunk kept here."""
    ticket = relay.ticket_of(session, user, _id(session_id))
    upload = form.get("chunk")
    if not isinstance(upload, UploadFile):
        raise ValidationFailed("缺少录制片段", errors=[FieldError("chunk", "缺少录制片段")])
    # At most one byte over the limit is read: enough to refuse it as too big.
    data = upload.file.read(settings.vw_recording_max_chunk_bytes + 1)
    view = recording.upload_chunk(session, user, ticket, data)
    return JSONResponse({"sha256": recording.sha256_of(data), "state": view["state"]})


@router.post("/virtual-window/s/{session_id}/submit", dependencies=[CsrfChecked])
def clerk_submit(session_id: str, session: SessionDep, user: CurrentUser) -> Response:
    ticket = relay.ticket_of(session, user, _id(session_id))
    view = relay.submit(session, user, ticket)
    return JSONResponse(service.for_browser(view))


# --- officer ---------------------------------------------------------------------------------


@router.get("/virtual-window/queue")
def officer_queue(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    waiting = service.queue(session, user)
    rows = [
        {
            "ws": w,
            "matter": catalog.get_matter(session, w.matter_code).name,
            "origin": regions.get_city(session, w.origin_city).name,
            "waited": service.waited_seconds(w),
        }
        for w in waiting
    ]
    return render(
        request,
        "virtualwindow/queue.html",
        user,
        rows=rows,
        mine=service.my_sessions(session, user),
        labels=domain.STATE_LABELS,
    )


@router.get("/virtual-window/queue/waiting")
async def officer_waiting(
    session: SessionDep, user: CurrentUser, wait: str | None = None, shown: str | None = None
) -> Response:
    """The ids of the waiting sessions, for the queue page to notice a new one; with
    `wait`, held until they differ from `shown` (or the bound passes)."""
    loop = asyncio.get_running_loop()
    key = push.authority_key(str(user.authority_id))  # loaded: no transaction ended yet

    def read() -> list[str]:
        return [str(w.id) for w in service.queue(session, user)]

    token = push.BOARD.token(key)
    ids = await run_in_threadpool(_read_in, session, read)
    deadline = loop.time() + push.WAIT_SECONDS
    while wait is not None and ",".join(ids) == (shown or ""):
        left = deadline - loop.time()
        if left <= 0:
            break
        woke = await push.BOARD.wait(key, token, min(left, push.RECHECK_SECONDS))
        if woke is None:
            break
        token = push.BOARD.token(key)
        ids = await run_in_threadpool(_read_in, session, read)
    return JSONResponse({"waiting": ids})


def _poke_later(request: Request, background: BackgroundTasks, ws: WindowSession) -> None:
    """After this request commits, tell the clerk's node that the session changed (a
    clerk on this node is woken by the commit itself)."""
    if ws.origin_node is None:
        return
    background.add_task(
        push.poke_soon,
        request.app.state.session_factory,
        ws.id,
        ws.competent_jurisdiction,
        ws.origin_jurisdiction,
    )


@router.post("/virtual-window/queue/take", dependencies=[CsrfChecked])
def officer_take(
    request: Request,
    background: BackgroundTasks,
    session: SessionDep,
    user: CurrentUser,
    form: FormDep,
) -> Response:
    named = form.get("session_id")
    ws = service.take(session, user, _id(named) if isinstance(named, str) and named else None)
    _poke_later(request, background, ws)
    return RedirectResponse(f"/virtual-window/officer/s/{ws.id}", status_code=303)


@router.get("/virtual-window/officer/s/{session_id}")
def officer_room(
    session_id: str,
    request: Request,
    background: BackgroundTasks,
    session: SessionDep,
    user: CurrentUser,
) -> Response:
    ws = service.get_for_officer(session, user, _id(session_id))
    if ws.officer_id == user.id:
        service.step(session, ws, Side.OFFICER, _who(user), "join", {})
        _poke_later(request, background, ws)
    view = service.view(session, ws, Side.OFFICER)
    return _room(
        request,
        session,
        user,
        Side.OFFICER,
        view,
        base=f"/virtual-window/officer/s/{ws.id}",
        signals_since=service.last_signal(session, ws),
        mine=ws.officer_id == user.id,
    )


def _who(user: Account) -> history.Who:
    return history.who(user, kind=Side.OFFICER.value)


@router.get("/virtual-window/officer/s/{session_id}/sync")
async def officer_sync(
    session_id: str,
    session: SessionDep,
    user: CurrentUser,
    since: str | None = None,
    signals: str | None = None,
    wait: str | None = None,
) -> Response:
    """The session's view for the officer's page; with `wait`, held until a commit on
    this node changes the session (or the bound passes)."""
    cursor, sig, sid = _int(since), _int(signals), _id(session_id)

    def read() -> dict[str, Any]:
        ws = service.get_for_officer(session, user, sid)
        return service.view(session, ws, Side.OFFICER, cursor, sig)

    view = await _long_poll(
        session, read, str(sid), cursor, sig, bool(wait), recheck=push.RECHECK_SECONDS
    )
    return JSONResponse(view)


@router.post("/virtual-window/officer/s/{session_id}/act", dependencies=[CsrfChecked])
def officer_act(
    session_id: str,
    request: Request,
    background: BackgroundTasks,
    session: SessionDep,
    user: CurrentUser,
    form: FormDep,
) -> Response:
    op, args = _args(form)
    since, signals = _int(str(form.get("since") or 0)), _int(str(form.get("signals") or 0))
    ws = service.officer_act(session, user, _id(session_id), op, args)
    _poke_later(request, background, ws)
    return JSONResponse(service.view(session, ws, Side.OFFICER, since, signals))


@router.post("/virtual-window/officer/s/{session_id}/accept", dependencies=[CsrfChecked])
def officer_accept(session_id: str, session: SessionDep, user: CurrentUser) -> Response:
    number = service.accept_case(session, user, _id(session_id))
    return JSONResponse({"case_number": number, "accepted": True})


@router.get("/virtual-window/officer/s/{session_id}/documents/{document_id}")
def officer_document(
    session_id: str, document_id: str, session: SessionDep, user: CurrentUser, settings: SettingsDep
) -> Response:
    att = service.document_of(session, user, _id(session_id), _id(document_id))
    return files.serve_attachment(settings.upload_dir, att, "材料不存在")
