"""The clerk's half of the virtual window, on the clerk's own node: start a session on
the competent node, keep its ticket and secret, and relay every step of the clerk there
as a signed query (service.py is the competent node's half). Never commits."""

from __future__ import annotations

import base64
import contextlib
import secrets
import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.cases import service as cases
from tongban.catalog import service as catalog
from tongban.errors import (
    Conflict,
    DomainError,
    FieldError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from tongban.exchange import query
from tongban.files import service as files
from tongban.identity.domain import Role
from tongban.identity.models import Account
from tongban.kernel.node import settings_of
from tongban.regions import service as regions
from tongban.virtualwindow.domain import State
from tongban.virtualwindow.models import WindowTicket
from tongban.virtualwindow.schemas import ActAsk, Op, StartAnswer, StartAsk, ViewAnswer, ViewAsk
from tongban.virtualwindow.service import (
    ACT,
    MAX_DOCUMENT_BYTES,
    OPS,
    QUICK_OPS,
    START,
    VIEW,
    WRITE_TIMEOUT_MS,
    digest,
    form_digest,
)


def _require_clerk(user: Account) -> None:
    if user.role != Role.CLERK or not user.jurisdiction_code or not user.city_code:
        raise PermissionDenied("远程虚拟窗口仅供窗口受理员使用")


def start(session: Session, clerk: Account, matter_code: str, city_code: str) -> WindowTicket:
    """The clerk starts a session for a matter decided in `city_code`'s jurisdiction: the
    competent node opens and queues it; this node keeps its ticket and secret."""
    _require_clerk(clerk)
    try:
        city = regions.get_city(session, city_code)
    except NotFound:
        raise ValidationFailed(
            "请选择主管部门所在城市", errors=[FieldError("city_code", "请选择城市")]
        ) from None
    secret = secrets.token_hex(32)
    ask = StartAsk(
        matter_code=matter_code,
        competent_jurisdiction=city.jurisdiction_code,
        competent_city=city.code,
        origin_jurisdiction=str(clerk.jurisdiction_code),
        origin_city=str(clerk.city_code),
        clerk_ref=str(clerk.id),
        clerk_name=clerk.display_name,
        secret_sha256=digest(secret),
    )
    answer: StartAnswer = query.ask(
        session,
        START,
        source=ask.origin_jurisdiction,
        target=city.jurisdiction_code,
        payload=ask,
        timeout_ms=max(settings_of(session).query_timeout_ms, WRITE_TIMEOUT_MS),
    )
    ticket = WindowTicket(
        session_id=answer.session_id,
        number=answer.number,
        clerk_id=clerk.id,
        matter_code=matter_code,
        competent_jurisdiction=city.jurisdiction_code,
        secret=secret,
        uploads={},
    )
    session.add(ticket)
    session.flush()
    return ticket


def tickets(session: Session, clerk: Account) -> list[WindowTicket]:
    """The clerk's sessions, the latest first."""
    _require_clerk(clerk)
    q = select(WindowTicket).where(WindowTicket.clerk_id == clerk.id)
    return list(session.scalars(q.order_by(WindowTicket.created_at.desc()).limit(50)))


def ticket_of(session: Session, clerk: Account, session_id: uuid.UUID) -> WindowTicket:
    """The clerk's own ticket for a session; 404 for anyone else's."""
    _require_clerk(clerk)
    ticket = session.get(WindowTicket, session_id)
    if ticket is None or ticket.clerk_id != clerk.id:
        raise NotFound("远程窗口会话不存在或无权查看", type="unknown-session")
    return ticket


def relay(
    session: Session,
    clerk: Account,
    ticket: WindowTicket,
    op: str,
    args: dict[str, Any] | None = None,
    since: int = 0,
    signals_since: int = 0,
) -> dict[str, Any]:
    """One step of the clerk, sent to the competent node with the session's secret; the
    session's view as it answered."""
    if op not in OPS:
        raise ValidationFailed("未知的操作", errors=[FieldError("op", "未知的操作")])
    timeout = settings_of(session).query_timeout_ms
    if op == "sync":  # a read: not recorded on either node (service.VIEW)
        read = ViewAsk(
            session_id=ticket.session_id,
            secret=ticket.secret,
            clerk_ref=str(clerk.id),
            since=max(0, since),
            signals_since=max(0, signals_since),
        )
        seen: ViewAnswer = query.ask(
            session,
            VIEW,
            source=str(clerk.jurisdiction_code),
            target=ticket.competent_jurisdiction,
            payload=read,
            timeout_ms=timeout,
            # A read: this node's write lock (SQLite) is not held over the round trip.
            release_idle=True,
        )
        return seen.view
    ask = ActAsk(
        session_id=ticket.session_id,
        secret=ticket.secret,
        clerk_ref=str(clerk.id),
        op=cast(Op, op),
        args=args or {},
        since=max(0, since),
        signals_since=max(0, signals_since),
    )
    answer: ViewAnswer = query.ask(
        session,
        ACT,
        source=str(clerk.jurisdiction_code),
        target=ticket.competent_jurisdiction,
        payload=ask,
        timeout_ms=timeout if op in QUICK_OPS else max(timeout, WRITE_TIMEOUT_MS),
    )
    return answer.view


def upload(
    session: Session,
    clerk: Account,
    ticket: WindowTicket,
    material_code: str,
    filename: str,
    data: bytes,
) -> dict[str, Any]:
    """A document the clerk scanned: kept here (the case claims it at submission) and
    sent to the competent node, where the officer sees it at once."""
    settings = settings_of(session)
    limit = min(settings.max_upload_bytes, MAX_DOCUMENT_BYTES)
    att = files.store_upload(
        session,
        clerk,
        material_code=material_code,
        filename=filename,
        data=data,
        upload_dir=settings.upload_dir,
        max_bytes=limit,
    )
    args = {
        "material_code": material_code,
        "filename": att.filename,
        "data": base64.b64encode(data).decode(),
    }
    out = relay(session, clerk, ticket, "document", args)
    ticket.uploads = {**(ticket.uploads or {}), material_code: str(att.id)}
    session.flush()
    return out


def submit(session: Session, clerk: Account, ticket: WindowTicket) -> dict[str, Any]:
    """The application as the session's form holds it, submitted as a case of this node
    (mode: virtual window) with the documents scanned; the competent node records the
    case in the session (refused there without a confirmed identity check, or when the
    form changed since it was read, and then nothing is kept here either)."""
    current = relay(session, clerk, ticket, "sync")
    if not current["identity"]["confirmed"]:
        raise ValidationFailed(
            "身份核验尚未经主管部门工作人员确认，不能提交申请",
            type="identity-not-confirmed",
            errors=[FieldError("identity", "请先登记并确认申请人身份核验")],
        )
    if current["state"] != State.IN_PROGRESS:
        raise Conflict("会话未在进行中，不能提交", type="session-not-live")
    form = current["form"]
    identifier = str(current["identity"].get("identifier_full") or "")
    schema = catalog.form_schema_of(session, ticket.matter_code) or {}
    app = cases.Application(
        matter_code=ticket.matter_code,
        competent_jurisdiction=ticket.competent_jurisdiction,
        competent_city=current["competent_city"],
        form_data=catalog.coerce_form(schema, form),
        mode="virtual",
        delivery_method="window",
        consent=True,
        attachment_ids=[uuid.UUID(a) for a in (ticket.uploads or {}).values()],
        verified=verified_licences(session, ticket, current),
    )
    applicant = cases.WindowApplicant(
        name=str(current["identity"]["applicant_name"] or ""),
        identifier=identifier,
        identity_verified=True,
        materials_checked=True,
    )
    try:
        case = cases.submit_at_window(session, clerk, applicant, app)
    except DomainError as e:
        e.errors = [{**err, "field": _form_field(str(err.get("field", "")))} for err in e.errors]
        raise
    args = {"case_id": str(case.id), "case_number": case.number, "form_sha256": form_digest(form)}
    out = relay(session, clerk, ticket, "submit", args)
    ticket.case_id = case.id
    session.flush()
    return out


def verified_licences(
    session: Session, ticket: WindowTicket, current: dict[str, Any]
) -> list[cases.VerifiedLicence]:
    """免提交: the licences verified valid in the session (the latest verification of each
    licence counts: one verified again as revoked is dropped), each for the first material
    of the matter that takes its type; cases checks them again as a peer's claims. The
    verifying node is named here, from the jurisdiction this node asked."""
    matter = catalog.matter_ref(session, ticket.matter_code)
    latest: dict[str, dict[str, Any]] = {}
    for item in current.get("licences") or []:
        if isinstance(item, dict) and isinstance(item.get("licence_id"), str):
            latest[item["licence_id"]] = item
    city = current.get("competent_city")
    node = regions.jurisdiction_ref(session, ticket.competent_jurisdiction).name
    if isinstance(city, str) and city:
        with contextlib.suppress(NotFound):
            node += regions.city_ref(session, city).name
    out: list[cases.VerifiedLicence] = []
    taken: set[str] = set()
    for item in latest.values():
        if item.get("valid") is not True:
            continue
        material = next(
            (
                m
                for m in matter.materials
                if m.licence_type
                and m.licence_type == item.get("type_code")
                and m.code not in taken
            ),
            None,
        )
        if material is None:
            continue
        try:
            at = datetime.fromisoformat(str(item.get("at")))
        except ValueError:
            raise ValidationFailed(
                "主管部门节点返回的证照核验记录无效",
                type="licence-rejected",
                errors=[FieldError(f"materials.{material.code}", "核验时间无效")],
            ) from None
        taken.add(material.code)
        out.append(
            cases.VerifiedLicence(
                material_code=material.code,
                type_code=str(item.get("type_code")),
                type_name=str(item.get("type_name") or ""),
                licence_id=item["licence_id"],
                issuer=_issuer_of(item),
                verified_by=f"{node}节点",
                verified_at=at,
                presentation_sha256=str(item.get("presentation_sha256") or ""),
                result="valid",
            )
        )
    return out


def _issuer_of(item: dict[str, Any]) -> str:
    """The 发证机关 by name when the presentation disclosed it, else the issuer's id."""
    claims = item.get("claims")
    named = claims.get("issuing_authority") if isinstance(claims, dict) else None
    return named if isinstance(named, str) and named.strip() else str(item.get("issuer") or "")


def _form_field(name: str) -> str:
    return "form." + name.removeprefix("form_data.") if name.startswith("form_data.") else name
