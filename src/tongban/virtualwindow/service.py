"""Use cases of the virtual window (跨省远程虚拟窗口) on the competent node. Never commits.

Two halves, one per node (docs/virtual-window.md):

- **the competent node** keeps the session (`WindowSession`): it answers the two signed
  queries of the clerk's node (`virtualwindow.start`, `virtualwindow.act`), and serves the
  officer's own pages directly (`take`, `officer_act`, `view`);
- **the clerk's node** keeps a `WindowTicket` and relays every step of its clerk to the
  competent node (relay.py: `start`, `relay`, `upload`, `submit`), with the session's secret.

When one node serves both jurisdictions the queries are answered in-process, through the
same checks: one code path for one node and many.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from datetime import datetime
from typing import Any, get_args

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tongban.cases import service as cases
from tongban.catalog import service as catalog
from tongban.config import Settings
from tongban.db import utcnow
from tongban.errors import (
    Conflict,
    FieldError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from tongban.exchange import query
from tongban.exchange.contracts import Refused, Sender
from tongban.files import service as files
from tongban.files.models import Attachment
from tongban.identity.domain import Role, mask_id_number, validate_id_number
from tongban.identity.models import Account
from tongban.kernel import history, numbering
from tongban.kernel.history import Who
from tongban.kernel.node import settings_of
from tongban.licences import service as licences
from tongban.regions import service as regions
from tongban.virtualwindow import domain, push
from tongban.virtualwindow.domain import Action, Side, State
from tongban.virtualwindow.models import (
    WindowDocument,
    WindowSession,
    WindowSignal,
)
from tongban.virtualwindow.schemas import ActAsk, Op, StartAnswer, StartAsk, ViewAnswer, ViewAsk

START = "virtualwindow.start"
ACT = "virtualwindow.act"
#: The clerk's page polls the session through this read: answered, it is not recorded
#: (a poll every 300–400 ms would fill the audit chain with reads); every step that
#: changes the session goes through ACT, recorded on both nodes.
VIEW = "virtualwindow.view"
#: A document scanned during a session travels inside one signed query: kept small.
MAX_DOCUMENT_BYTES = 4 * 1024 * 1024
#: Opening a session and the steps that write (a document, the submission) may wait
#: longer than a poll for a busy competent node: the clerk is waiting for that answer.
WRITE_TIMEOUT_MS = 8000
OPS = frozenset(get_args(Op))
#: Steps a page repeats or sends many of: the ordinary query deadline.
QUICK_OPS = frozenset({"sync", "signal", "form", "chat", "join", "leave"})
SIGNAL_KINDS = frozenset({"hello", "offer", "answer", "ice", "bye"})
MAX_SIGNAL = 20_000
#: Events a view carries at most (the page asks again from the last one it has).
MAX_EVENTS = 200


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def form_digest(form: dict[str, Any]) -> str:
    """SHA-256 of a form's canonical JSON: the clerk's node submits the form it read."""
    data = json.dumps(form, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(data.encode()).hexdigest()


def ice_servers(settings: Settings, who: str, now: float | None = None) -> list[dict[str, Any]]:
    """The ICE servers a room page gives its browser: none unless TURN is configured;
    then the TURN URLs with credentials coturn accepts until the TTL passes (its TURN
    REST API scheme: user = "<expiry>:<who>", password = base64(HMAC-SHA1(secret, user))),
    so no long-lived TURN password is ever in a page."""
    urls = [u.strip() for u in settings.vw_turn_urls.split(",") if u.strip()]
    if not urls:
        return []
    expiry = int((now if now is not None else time.time()) + settings.vw_turn_ttl_seconds)
    user = f"{expiry}:{who}"
    mac = hmac.new(settings.vw_turn_secret.encode(), user.encode(), hashlib.sha1).digest()
    return [{"urls": urls, "username": user, "credential": base64.b64encode(mac).decode()}]


# --- the competent node: opening and the queue -------------------------------------------


def new_number(session: Session, jurisdiction: str) -> str:
    day = utcnow().strftime("%Y%m%d")
    return f"VW{jurisdiction}{day}{numbering.next_value(session, f'vw:{jurisdiction}', day):04d}"


def open_session(session: Session, ask: StartAsk, origin_node: str | None) -> WindowSession:
    """Open a session on this (the competent) node and queue it for the authority that
    decides the matter where the clerk chose."""
    try:
        matter = catalog.get_matter(session, ask.matter_code)
    except NotFound as e:
        e.errors = [{"field": "matter_code", "message": "事项不存在"}]
        raise
    if not {"online", "proxy"} & set(matter.modes):
        raise ValidationFailed(
            "该事项须到主管部门窗口现场办理，不能通过远程虚拟窗口办理",
            type="not-remote",
            errors=[FieldError("matter_code", "该事项不支持远程办理")],
        )
    city = ask.competent_city if matter.authority_level != "province" else None
    authority = regions.competent_authority(
        session, matter.authority_type, matter.authority_level, ask.competent_jurisdiction, city
    )
    ws = WindowSession(
        number=new_number(session, ask.competent_jurisdiction),
        matter_code=matter.code,
        competent_jurisdiction=ask.competent_jurisdiction,
        competent_city=city,
        authority_id=authority.id,
        origin_jurisdiction=ask.origin_jurisdiction,
        origin_city=ask.origin_city,
        origin_node=origin_node,
        clerk_ref=ask.clerk_ref,
        clerk_name=ask.clerk_name,
        secret_sha256=ask.secret_sha256,
        state=State.QUEUED.value,
        form={},
        locked=[],
        identity_confirmed=False,
    )
    session.add(ws)
    history.record(
        session,
        ws,
        Action.START,
        Who(None, ask.clerk_name, Side.CLERK.value),
        None,
        State.QUEUED.value,
        payload={"origin_city": ask.origin_city, "origin_node": origin_node},
    )
    session.flush()
    push.touch_session(session, ws.id, ws.authority_id)
    return ws


def _is_officer_of(user: Account, ws: WindowSession) -> bool:
    return user.role == Role.OFFICER and user.authority_id == ws.authority_id


def queue(session: Session, officer: Account) -> list[WindowSession]:
    """The sessions waiting for the officer's authority, the longest-waiting first."""
    if officer.role != Role.OFFICER or officer.authority_id is None:
        raise PermissionDenied("远程虚拟窗口队列仅供主管部门审核/审批人员使用")
    q = select(WindowSession).where(
        WindowSession.authority_id == officer.authority_id,
        WindowSession.state == State.QUEUED.value,
    )
    return list(session.scalars(q.order_by(WindowSession.created_at)))


def my_sessions(session: Session, officer: Account) -> list[WindowSession]:
    """The officer's own sessions that are not over yet."""
    q = select(WindowSession).where(
        WindowSession.officer_id == officer.id,
        WindowSession.state.in_([State.IN_PROGRESS.value, State.SUBMITTED.value]),
    )
    return list(session.scalars(q.order_by(WindowSession.taken_at.desc())))


def position(session: Session, ws: WindowSession) -> int | None:
    """1-based place in its authority's queue (None once taken)."""
    if ws.state != State.QUEUED:
        return None
    ahead = session.scalar(
        select(func.count())
        .select_from(WindowSession)
        .where(
            WindowSession.authority_id == ws.authority_id,
            WindowSession.state == State.QUEUED.value,
            WindowSession.created_at < ws.created_at,
        )
    )
    return int(ahead or 0) + 1


def waited_seconds(ws: WindowSession, now: datetime | None = None) -> int:
    end = ws.taken_at or now or utcnow()
    return max(0, int((end - ws.created_at).total_seconds()))


def take(session: Session, officer: Account, session_id: uuid.UUID | None = None) -> WindowSession:
    """The officer takes a waiting session: the one named, or the longest-waiting one."""
    waiting = queue(session, officer)
    if session_id is not None:
        waiting = [w for w in waiting if w.id == session_id]
    if not waiting:
        raise Conflict("当前没有排队等候的远程窗口会话", type="queue-empty")
    ws = waiting[0]
    target = domain.MACHINE.next_state(State(ws.state), Action.TAKE, Side.OFFICER)
    history.record(
        session, ws, Action.TAKE, history.who(officer, kind=Side.OFFICER.value), ws.state, target
    )
    ws.state = target.value
    ws.officer_id = officer.id
    ws.officer_name = officer.display_name
    ws.taken_at = utcnow()
    history.flush(session)
    push.touch_session(session, ws.id, ws.authority_id)
    return ws


def get_for_officer(session: Session, officer: Account, session_id: uuid.UUID) -> WindowSession:
    """A session the officer may see (their authority's); 404 for anyone else."""
    ws = session.get(WindowSession, session_id)
    if ws is None or not _is_officer_of(officer, ws):
        raise NotFound("远程窗口会话不存在或无权查看", type="unknown-session")
    return ws


# --- the competent node: the steps of either side ------------------------------------------


def _properties(session: Session, ws: WindowSession) -> dict[str, Any]:
    props = catalog.get_matter(session, ws.matter_code).form_schema.get("properties", {})
    return dict(props) if isinstance(props, dict) else {}


def _text(args: dict[str, Any], name: str, limit: int, field: str | None = None) -> str:
    value = args.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise ValidationFailed(
            "内容为空或过长",
            errors=[FieldError(field or name, f"请填写，不超过 {limit} 个字符")],
        )
    return value.strip()


def _facts(ws: WindowSession, side: Side, fields: frozenset[str] = frozenset()) -> domain.Facts:
    return domain.Facts(
        side=side,
        identity_recorded=ws.identity_method is not None,
        identity_confirmed=ws.identity_confirmed,
        locked=frozenset(ws.locked or []),
        fields=fields,
    )


def step(
    session: Session, ws: WindowSession, side: Side, actor: Who, op: str, args: dict[str, Any]
) -> None:
    """One step of `side` on the session (everything but taking it): checked by the state
    machine (state, side, guards), applied, and recorded as an event of its history."""
    if op == "sync":
        return
    if op == "signal":
        _signal(session, ws, side, args)
        return
    try:
        action = Action(op)
    except ValueError:
        raise ValidationFailed("未知的操作", errors=[FieldError("op", "未知的操作")]) from None
    if action in (Action.START, Action.TAKE):
        raise ValidationFailed("未知的操作", errors=[FieldError("op", "未知的操作")])
    if action is Action.JOIN and ws.state != State.IN_PROGRESS:
        return  # rejoining a queued or finished session changes nothing
    if action is Action.LEAVE and ws.state not in (State.IN_PROGRESS, State.SUBMITTED):
        return  # leaving a queued or ended session: nothing to record
    payload: dict[str, Any] | None = None
    reason = ""
    fields: frozenset[str] = frozenset()
    props: dict[str, Any] = {}
    if action is Action.FORM:
        props = _properties(session, ws)
        values = args.get("values")
        if not isinstance(values, dict) or not values:
            raise ValidationFailed("没有要修改的字段", errors=[FieldError("values", "请填写")])
        for name, value in values.items():
            if name not in props:
                raise ValidationFailed(
                    "申请表没有该字段", errors=[FieldError(f"form.{name}", "字段不存在")]
                )
            if not isinstance(value, str) or len(value) > domain.MAX_VALUE:
                raise ValidationFailed(
                    "字段内容无效或过长", errors=[FieldError(f"form.{name}", "内容无效或过长")]
                )
        fields = frozenset(values)
        payload = {"values": values}
    elif action in (Action.LOCK, Action.UNLOCK):
        props = _properties(session, ws)
        name = args.get("field")
        if not isinstance(name, str) or name not in props:
            raise ValidationFailed("申请表没有该字段", errors=[FieldError("field", "字段不存在")])
        payload = {"field": name}
    elif action is Action.CHAT:
        payload = {"text": _text(args, "text", domain.MAX_CHAT)}
    elif action is Action.END:
        reason = str(args.get("reason") or "")[:200]
    target = domain.MACHINE.next_state(State(ws.state), action, side, _facts(ws, side, fields))
    if action is Action.FORM:
        ws.form = {**(ws.form or {}), **payload["values"]}  # type: ignore[index]
    elif action is Action.LOCK:
        ws.locked = sorted({*(ws.locked or []), payload["field"]})  # type: ignore[index]
    elif action is Action.UNLOCK:
        ws.locked = [f for f in ws.locked or [] if f != payload["field"]]  # type: ignore[index]
    elif action is Action.DOCUMENT:
        payload = _document(session, ws, args)
    elif action is Action.RECORDING:
        payload = _recording(ws, args)
    elif action is Action.LICENCE:
        payload = _licence(session, args)
    elif action is Action.RECORD_IDENTITY:
        payload = _record_identity(ws, args)
    elif action is Action.CONFIRM_IDENTITY:
        ws.identity_confirmed = True
        payload = {"method": ws.identity_method}
    elif action is Action.SUBMIT:
        payload = _submit(ws, args)
    if target is State.ENDED:
        ws.ended_at = utcnow()
    history.record(session, ws, action, actor, ws.state, target.value, reason, payload)
    ws.state = target.value
    history.flush(session)
    push.touch_session(session, ws.id, ws.authority_id)


#: Longest presentation (compact SD-JWT) the clerk may relay, in characters.
MAX_PRESENTATION = 20_000


def _licence(session: Session, args: dict[str, Any]) -> dict[str, Any]:
    """A licence the applicant presents at the counter (免提交), verified here, on the
    competent node, by the licences context against this node's trust and status lists;
    the result — valid or the exact reason, the licence, its disclosed claims — is the
    event's payload, so both sides see it and the record keeps it (with the digest of the
    presentation, not the presentation)."""
    compact = args.get("presentation")
    if not isinstance(compact, str) or not compact.strip() or len(compact) > MAX_PRESENTATION:
        raise ValidationFailed(
            "请粘贴或扫描申请人出示的电子证照",
            errors=[FieldError("presentation", "电子证照内容为空或过长")],
        )
    result = licences.verify_presentation(session, compact.strip())
    return {
        "valid": result.valid,
        "reason": result.reason,
        "reason_text": result.reason_text,
        "type_name": result.type_name,
        # The licence type, which names the material it can stand in for (免提交).
        "type_code": result.type_code,
        "licence_id": result.licence_id,
        "issuer": result.issuer,
        "status": result.status,
        "expires_at": result.expires_at.isoformat() if result.expires_at else None,
        "binding": result.binding,
        "claims": {k: v for k, v in result.claims.items() if isinstance(v, str | int | float)},
        "presentation_sha256": hashlib.sha256(compact.strip().encode()).hexdigest(),
    }


def _recording(ws: WindowSession, args: dict[str, Any]) -> dict[str, Any]:
    """A media chunk the clerk's node keeps: its SHA-256 and size become the event's
    payload (so the audit chain seals the hash), numbered in the order they arrive; a
    chunk is recorded once."""
    size, sha = args.get("size"), args.get("sha256")
    ok = isinstance(size, int) and not isinstance(size, bool) and size > 0
    if not ok or not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise ValidationFailed("录制片段无效", errors=[FieldError("chunk", "片段无效")])
    chunks = [e.payload or {} for e in ws.events if e.action == Action.RECORDING]
    if any(c.get("sha256") == sha for c in chunks):
        raise Conflict("该录制片段已登记", type="chunk-recorded")
    return {"seq": len(chunks), "size": size, "sha256": sha}


def _document(session: Session, ws: WindowSession, args: dict[str, Any]) -> dict[str, Any]:
    code = _text(args, "material_code", 40)
    filename = _text(args, "filename", 200)
    try:
        data = base64.b64decode(str(args.get("data", "")), validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailed(
            "文件内容无效", errors=[FieldError("file", "文件内容无效")]
        ) from None
    if not data or len(data) > MAX_DOCUMENT_BYTES:
        raise ValidationFailed(
            "文件为空或超过 4 MB",
            errors=[FieldError("file", "文件为空或超过 4 MB")],
            status=413 if data else 422,
        )
    content_type = files.sniff(data)
    if content_type is None:
        raise ValidationFailed(
            "仅支持 PDF、PNG、JPEG 文件", errors=[FieldError("file", "文件类型不受支持")]
        )
    sha = files.write_blob(session, settings_of(session).upload_dir, data)
    att = Attachment(
        material_code=code,
        filename=files.safe_filename(filename, content_type),
        content_type=content_type,
        size=len(data),
        sha256=sha,
        uploaded_by=None,
    )
    session.add(att)
    session.flush()
    doc = WindowDocument(
        session_id=ws.id,
        attachment_id=att.id,
        material_code=code,
        filename=att.filename,
        sha256=sha,
        size=len(data),
    )
    session.add(doc)
    return {"material_code": code, "filename": att.filename, "sha256": sha, "size": len(data)}


def _record_identity(ws: WindowSession, args: dict[str, Any]) -> dict[str, Any]:
    method = args.get("method")
    errors = []
    if method not in domain.IDENTITY_METHODS:
        errors.append(FieldError("method", "请选择核验方式"))
    name = str(args.get("applicant_name") or "").strip()
    if not name or len(name) > 80:
        errors.append(FieldError("applicant_name", "请填写申请人姓名"))
    ident = ""
    try:
        ident = validate_id_number(str(args.get("applicant_identifier") or ""))
    except ValueError as e:
        errors.append(FieldError("applicant_identifier", str(e)))
    if errors:
        raise ValidationFailed("身份核验信息有误", errors=errors)
    ws.identity_method = str(method)
    ws.applicant_name = name
    ws.applicant_identifier = ident
    ws.identity_confirmed = False  # a new record must be confirmed again
    return {"method": method, "applicant_name": name, "applicant_identifier": ident}


def _submit(ws: WindowSession, args: dict[str, Any]) -> dict[str, Any]:
    if args.get("form_sha256") != form_digest(ws.form or {}):
        raise Conflict("申请表刚被修改，请确认后重新提交", type="form-changed")
    case_id = str(args.get("case_id") or "")
    number = str(args.get("case_number") or "")
    try:
        uuid.UUID(case_id)
    except ValueError:
        raise ValidationFailed("办件标识无效", errors=[FieldError("case_id", "无效")]) from None
    if not number or len(number) > 32:
        raise ValidationFailed("办件编号无效", errors=[FieldError("case_number", "无效")])
    ws.case_id = case_id
    ws.case_number = number
    return {"case_id": case_id, "case_number": number, "form_sha256": args["form_sha256"]}


def _signal(session: Session, ws: WindowSession, side: Side, args: dict[str, Any]) -> None:
    if ws.state != State.IN_PROGRESS:
        raise Conflict("会话未在进行中，不能建立音视频连接", type="session-not-live")
    kind = args.get("kind")
    body = args.get("body", "")
    if kind not in SIGNAL_KINDS or not isinstance(body, str) or len(body) > MAX_SIGNAL:
        raise ValidationFailed("音视频信令无效", errors=[FieldError("signal", "信令无效")])
    session.add(WindowSignal(session_id=ws.id, side=side.value, kind=kind, body=body))
    session.flush()
    push.touch(session, str(ws.id))


def officer_act(
    session: Session, officer: Account, session_id: uuid.UUID, op: str, args: dict[str, Any]
) -> WindowSession:
    """A step of the officer who took the session (another officer may only look)."""
    ws = get_for_officer(session, officer, session_id)
    if ws.officer_id != officer.id:
        raise PermissionDenied("该会话由其他工作人员接待", type="not-your-session")
    step(session, ws, Side.OFFICER, history.who(officer, kind=Side.OFFICER.value), op, args)
    return ws


def last_signal(session: Session, ws: WindowSession) -> int:
    """The id of the session's latest signal (a page that opens reads only newer ones)."""
    return int(
        session.scalar(select(func.max(WindowSignal.id)).where(WindowSignal.session_id == ws.id))
        or 0
    )


def view(
    session: Session, ws: WindowSession, side: Side, since: int = 0, signals_since: int = 0
) -> dict[str, Any]:
    """The session as `side` sees it: state, queue place, form, locks, identity check,
    documents and case, the events after `since`, the other side's signals after
    `signals_since`."""
    events = [e for e in ws.events if e.seq > since][-MAX_EVENTS:]
    signals = session.scalars(
        select(WindowSignal)
        .where(
            WindowSignal.session_id == ws.id,
            WindowSignal.id > signals_since,
            WindowSignal.side != side.value,
        )
        .order_by(WindowSignal.id)
    )
    docs = session.scalars(
        select(WindowDocument).where(WindowDocument.session_id == ws.id).order_by(WindowDocument.at)
    )
    state = State(ws.state)
    return {
        "id": str(ws.id),
        "number": ws.number,
        "state": state.value,
        "state_label": domain.STATE_LABELS[state],
        "position": position(session, ws),
        "waited": waited_seconds(ws),
        "officer_name": ws.officer_name,
        "clerk_name": ws.clerk_name,
        "matter_code": ws.matter_code,
        "competent_city": ws.competent_city,
        "seq": ws.event_seq,
        "form": dict(ws.form or {}),
        "locked": list(ws.locked or []),
        "identity": {
            "method": ws.identity_method,
            "method_label": domain.IDENTITY_METHODS.get(ws.identity_method or "", ""),
            "applicant_name": ws.applicant_name,
            "applicant_identifier": mask_id_number(ws.applicant_identifier)
            if ws.applicant_identifier
            else None,
            "confirmed": ws.identity_confirmed,
            # Only the clerk's node gets it, to submit the case (for_browser drops it).
            **({"identifier_full": ws.applicant_identifier} if side is Side.CLERK else {}),
        },
        "documents": [
            {
                "id": str(d.id),
                "material_code": d.material_code,
                "filename": d.filename,
                "size": d.size,
                "sha256": d.sha256,
            }
            for d in docs
        ],
        "case_id": ws.case_id,
        "case_number": ws.case_number,
        # Licences presented at the counter and verified here (免提交), as recorded.
        "licences": [
            {**_licence_shown(e.seq, e.payload), "at": e.at.isoformat()}
            for e in ws.events
            if e.action == Action.LICENCE
        ],
        "events": [
            {
                "seq": e.seq,
                "action": e.action,
                "label": domain.ACTION_LABELS.get(Action(e.action), e.action),
                "actor_name": e.actor_name,
                "side": e.actor_role,
                "at": e.at.isoformat(),
                "payload": _shown(e.action, e.payload),
            }
            for e in events
        ],
        "signals": [{"id": s.id, "kind": s.kind, "body": s.body} for s in signals],
    }


def _licence_shown(seq: int, payload: dict[str, Any] | None) -> dict[str, Any]:
    """A verified licence as the rooms show it: an ID number among its claims masked, as
    the identity check's is."""
    out = {"seq": seq, **(payload or {})}
    claims = dict(out.get("claims") or {})
    if isinstance(claims.get("id_number"), str):
        claims["id_number"] = mask_id_number(claims["id_number"])
    out["claims"] = claims
    return out


def _shown(action: str, payload: dict[str, Any] | None) -> dict[str, Any] | None:
    """What of an event's payload the pages show (no ID number)."""
    if payload is None or action == Action.RECORD_IDENTITY:
        return None
    if action == Action.LICENCE:
        return {k: v for k, v in _licence_shown(0, payload).items() if k != "seq"}
    return payload


def document_of(
    session: Session, officer: Account, session_id: uuid.UUID, document_id: uuid.UUID
) -> Attachment | None:
    """The attachment behind a session's document, for the officer of its authority."""
    ws = get_for_officer(session, officer, session_id)
    doc = session.get(WindowDocument, document_id)
    if doc is None or doc.session_id != ws.id:
        return None
    return session.get(Attachment, doc.attachment_id)


def accept_case(session: Session, officer: Account, session_id: uuid.UUID) -> str:
    """The officer who took the session accepts its case on the spot (受理), once the case
    has arrived on this node; returns the case number."""
    ws = get_for_officer(session, officer, session_id)
    if ws.officer_id != officer.id:
        raise PermissionDenied("该会话由其他工作人员接待", type="not-your-session")
    if not ws.case_id:
        raise Conflict("申请尚未提交", type="not-submitted")
    try:
        case = cases.get_case(session, officer, uuid.UUID(ws.case_id))
    except NotFound:
        raise Conflict("办件正在传送到本节点，请稍候再受理", type="case-in-transit") from None
    cases.act(session, officer, case.id, "accept", "远程虚拟窗口当场受理")
    return str(case.number)


# --- the competent node: answering the clerk's node ----------------------------------------


def _origin_node(sender: Sender) -> str | None:
    return sender.node


def _authorise_start(session: Session, ask: StartAsk, sender: Sender) -> None:
    sender.require(ask.origin_jurisdiction, "窗口所在辖区")
    if ask.competent_jurisdiction != sender.target_jurisdiction:
        raise Refused("not-allowed", "会话的主管辖区与查询的目标辖区不一致")


def _authorise_act(session: Session, ask: ActAsk | ViewAsk, sender: Sender) -> None:
    """The session exists here, was started from the sender's node for a jurisdiction it
    serves, and the sender presents the session's secret and its clerk."""
    ws = session.get(WindowSession, ask.session_id)
    if ws is None:
        raise Refused("not-allowed", "远程窗口会话不存在", 404)
    sender.require(ws.origin_jurisdiction, "会话发起的辖区")
    ok = secrets.compare_digest(digest(ask.secret), ws.secret_sha256)
    if ws.origin_node != sender.node or not ok or ask.clerk_ref != ws.clerk_ref:
        raise Refused("not-allowed", "无权操作该远程窗口会话")


@query.query_handler(START, schema=StartAsk, answer_schema=StartAnswer, authorise=_authorise_start)
def _answer_start(session: Session, ask: StartAsk, ctx: query.QueryContext) -> StartAnswer:
    ws = open_session(session, ask, _origin_node(ctx.sender))
    return StartAnswer(session_id=ws.id, number=ws.number)


@query.query_handler(ACT, schema=ActAsk, answer_schema=ViewAnswer, authorise=_authorise_act)
def _answer_act(session: Session, ask: ActAsk, ctx: query.QueryContext) -> ViewAnswer:
    ws = session.get(WindowSession, ask.session_id)
    assert ws is not None  # checked by the authoriser
    step(session, ws, Side.CLERK, Who(None, ws.clerk_name, Side.CLERK.value), ask.op, ask.args)
    return ViewAnswer(view=view(session, ws, Side.CLERK, ask.since, ask.signals_since))


def for_browser(v: dict[str, Any]) -> dict[str, Any]:
    """A view as a page may have it: without the applicant's full ID number (which only
    the clerk's node reads, to submit the case)."""
    identity = {k: x for k, x in v["identity"].items() if k != "identifier_full"}
    return {**v, "identity": identity}


@query.query_handler(
    VIEW, schema=ViewAsk, answer_schema=ViewAnswer, authorise=_authorise_act, recorded=False
)
def _answer_view(session: Session, ask: ViewAsk, ctx: query.QueryContext) -> ViewAnswer:
    ws = session.get(WindowSession, ask.session_id)
    assert ws is not None  # checked by the authoriser
    return ViewAnswer(view=view(session, ws, Side.CLERK, ask.since, ask.signals_since))
