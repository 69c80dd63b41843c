"""Pages of the card context: the holder's 我的社保卡 (card, status, 挂失 / 补换, usage
history), the dynamic code page (its script and service worker, served from this node),
and a window clerk's card service for walk-ins."""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from tongban.card import benefits, domain, figures, scanning, service
from tongban.card.api import figures_args, scan_out
from tongban.card.benefits import KIND_LABELS
from tongban.card.domain import CardAction
from tongban.card.models import Card
from tongban.card.schemas import ScanOut
from tongban.card.verifier import REFUSAL_LABELS
from tongban.errors import DomainError, NotFound, PermissionDenied, ValidationFailed
from tongban.identity.domain import Role
from tongban.identity.models import Account
from tongban.kernel import paging
from tongban.regions import service as regions
from tongban.web.deps import CsrfChecked, CurrentUser, SessionDep
from tongban.web.pages import form_failure, render

router = APIRouter(include_in_schema=False)

#: Why each action exists, said on its form.
EXPLAIN = {
    CardAction.REPORT_LOST.value: "卡片遗失或被盗时办理：实体卡和电子社保卡码立即停用，各地闸机同步后拒绝。",
    CardAction.FOUND.value: "找回卡片后办理：卡片恢复正常使用。",
    CardAction.REPLACE.value: "卡片遗失、损坏或信息变更时办理：原卡作废，制作新卡（新卡号）。",
    CardAction.CANCEL.value: "注销后卡片不可恢复。",
}

DONE = {
    CardAction.REPORT_LOST.value: "已挂失，卡片和电子社保卡码已停用。",
    CardAction.FOUND.value: "已解除挂失，卡片恢复正常。",
    CardAction.REPLACE.value: "已补换，新卡已制作，原卡作废。",
    CardAction.CANCEL.value: "已注销。",
}

LABELS: dict[str, Any] = {
    "status": {s.value: label for s, label in domain.STATUS_LABELS.items()},
    "actions": {a.value: label for a, label in domain.ACTION_LABELS.items()},
    "generation": {int(g): label for g, label in domain.GENERATION_LABELS.items()},
    "concessions": domain.concession_labels,
    "explain": EXPLAIN,
}


def _cities(session: Session) -> dict[str, str]:
    return {c.code: c.name for c in regions.list_cities(session)}


def _card_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("社保卡不存在或无权查看", type="unknown-card") from None


def _failed(action: str, reason: str, exc: DomainError) -> dict[str, str]:
    return {"action": action, "reason": reason, "error": exc.detail}


# --- the holder ----------------------------------------------------------------------------


def _my_page(
    request: Request,
    session: Session,
    user: Account,
    *,
    done: str | None = None,
    failed: dict[str, str] | None = None,
    message: str | None = None,
    status_code: int = 200,
) -> Response:
    cards = service.list_mine(session, user)
    current = service.current_card(session, user)
    return render(
        request,
        "card/my_card.html",
        user,
        status_code=status_code,
        cards=cards,
        current=current,
        actions=[a.value for a in service.allowed_actions(user, current)] if current else [],
        usage=service.history_of(session, user),
        refusals={r.value: label for r, label in REFUSAL_LABELS.items()},
        labels=LABELS,
        cities=_cities(session),
        done=done,
        failed=failed or {},
        message=message,
    )


@router.get("/my/card")
def my_card(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    done = request.query_params.get("done") or ""
    return _my_page(request, session, user, done=DONE.get(done))


@router.post("/my/card/{card_id}/act", dependencies=[CsrfChecked])
def my_card_act(
    card_id: str,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    action: Annotated[str, Form(max_length=30)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    try:
        service.act(session, user, _card_id(card_id), action, reason)
    except (NotFound, PermissionDenied):
        raise
    except DomainError as e:
        refused = form_failure(session, e)
        return _my_page(
            request,
            session,
            user,
            failed=_failed(action, reason, e),
            message=refused.message,
            status_code=refused.status_code,
        )
    return RedirectResponse(f"/my/card?done={action}", status_code=303)


# --- the dynamic code ---------------------------------------------------------------------

STATIC = Path(__file__).with_name("static")
#: What /card/assets serves (nothing else is read from the directory).
ASSETS = {"card-code.js": "text/javascript", "card.css": "text/css"}


@router.get("/my/card/code")
def code_page(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    card = service.current_card(session, user)
    problem = None
    if card is None:
        problem = "您名下没有社保卡，请到窗口申领。"
    elif card.state != domain.CardStatus.NORMAL.value:
        label = domain.STATUS_LABELS[domain.CardStatus(card.state)]
        problem = f"社保卡当前状态为“{label}”，不能出示电子社保卡码。"
    response = render(
        request, "card/code.html", user, card=None if problem else card, problem=problem
    )
    response.headers["Cache-Control"] = "no-cache"
    return response


@router.get("/my/card/sw.js")
def service_worker() -> Response:
    """The code page's service worker (its scope is /my/card/)."""
    return FileResponse(
        STATIC / "sw.js",
        media_type="text/javascript",
        headers={
            "Cache-Control": "no-cache",
            "Service-Worker-Allowed": "/my/card/",
            # A worker runs under its own script's policy: it may fetch from this node
            # (to keep the page and its scripts), nothing else.
            "Content-Security-Policy": "default-src 'none'; connect-src 'self'",
        },
    )


@router.get("/card/assets/{name}")
def asset(name: str) -> Response:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise NotFound("文件不存在")
    return FileResponse(STATIC / name, media_type=media_type, headers={"Cache-Control": "no-cache"})


# --- a window clerk ------------------------------------------------------------------------


def _require_clerk(user: Account) -> None:
    if user.role != Role.CLERK.value:
        raise PermissionDenied("仅窗口工作人员可使用社保卡窗口服务")


@router.get("/window/cards")
def window_cards(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    _require_clerk(user)
    return render(request, "card/window_search.html", user, labels=LABELS, searched=False)


@router.post("/window/cards", dependencies=[CsrfChecked])
def window_search(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    id_number: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    _require_clerk(user)
    try:
        cards = service.find_for_clerk(session, user, id_number)
    except DomainError as e:
        refused = form_failure(session, e)
        return render(
            request,
            "card/window_search.html",
            user,
            labels=LABELS,
            searched=False,
            id_number=id_number,
            **refused.context,
        )
    return render(
        request,
        "card/window_search.html",
        user,
        labels=LABELS,
        searched=True,
        cards=cards,
        id_number=id_number,
        cities=_cities(session),
    )


def _window_page(
    request: Request,
    session: Session,
    user: Account,
    card: Card,
    *,
    done: str | None = None,
    failed: dict[str, str] | None = None,
    message: str | None = None,
    status_code: int = 200,
) -> Response:
    replacement = None
    if card.state == domain.CardStatus.REPLACED.value:
        replacement = next(
            (c for c in service.find_replacements(session, card) if c.id != card.id), None
        )
    return render(
        request,
        "card/window_card.html",
        user,
        status_code=status_code,
        card=card,
        replacement=replacement,
        actions=[a.value for a in service.allowed_actions(user, card)],
        labels=LABELS,
        cities=_cities(session),
        done=done,
        failed=failed or {},
        message=message,
    )


@router.get("/window/cards/{card_id}")
def window_card(card_id: str, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    _require_clerk(user)
    card = service.get_for(session, user, _card_id(card_id))
    done = request.query_params.get("done") or ""
    return _window_page(request, session, user, card, done=DONE.get(done))


@router.post("/window/cards/{card_id}/act", dependencies=[CsrfChecked])
def window_card_act(
    card_id: str,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    action: Annotated[str, Form(max_length=30)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    _require_clerk(user)
    cid = _card_id(card_id)
    try:
        service.act(session, user, cid, action, reason)
    except (NotFound, PermissionDenied):
        raise
    except DomainError as e:
        refused = form_failure(session, e)
        card = service.get_for(session, user, cid)
        return _window_page(
            request,
            session,
            user,
            card,
            failed=_failed(action, reason, e),
            message=refused.message,
            status_code=refused.status_code,
        )
    return RedirectResponse(f"/window/cards/{cid}?done={action}", status_code=303)


# --- venue staff: the scan page; operators: the figures ---------------------------------------------

ASSETS["card-scan.js"] = "text/javascript"


def _scan_page(
    request: Request,
    session: Session,
    user: Account,
    venue_code: str | None,
    *,
    result: ScanOut | None = None,
    message: str | None = None,
    status_code: int = 200,
) -> Response:
    place = scanning.require_staff(session, user, venue_code or None)
    response = render(
        request,
        "card/scan.html",
        user,
        status_code=status_code,
        venue=place,
        kind_label=KIND_LABELS[place.kind],
        mine=scanning.venues_of(session, user),
        result=result,
        message=message,
    )
    response.headers["Cache-Control"] = "no-store"
    # The page uses the camera of this origin (Permissions-Policy allows it only here).
    response.headers["Permissions-Policy"] = "camera=(self)"
    return response


@router.get("/venue/scan")
def scan_page(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    return _scan_page(request, session, user, request.query_params.get("venue"))


@router.post("/venue/scan", dependencies=[CsrfChecked])
def scan_form(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    code: Annotated[str, Form(max_length=scanning.MAX_SCANNED)] = "",
    venue: Annotated[str, Form(max_length=60)] = "",
) -> Response:
    """The scan without JavaScript (a typed code, or a scanner gun typing into the box)."""
    try:
        done = scanning.scan(session, user, venue or None, code)
    except PermissionDenied:
        raise
    except DomainError as e:
        refused = form_failure(session, e)
        return _scan_page(
            request,
            session,
            user,
            venue,
            message=refused.message,
            status_code=refused.status_code,
        )
    return _scan_page(request, session, user, done.venue.code, result=scan_out(session, done))


def _operator_names() -> dict[str, str]:
    names: dict[str, list[str]] = {}
    for v in benefits.venues().values():
        names.setdefault(v.operator, []).append(v.name)
    return {op: "、".join(n) for op, n in names.items()}


#: Rows of the figures table per page.
FIGURE_ROWS = 50


def _day(text: str, name: str) -> date | None:
    """A date typed into the figures form: None when left empty."""
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(
            "日期格式不正确，请按“年-月-日”填写",
            errors=[{"field": name, "message": "请输入有效日期，如 2026-11-30"}],
        ) from None


@router.get("/card/figures")
def figures_page(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    start: Annotated[str, Query(max_length=10)] = "",
    end: Annotated[str, Query(max_length=10)] = "",
    period: Annotated[str, Query(max_length=10)] = "day",
    operator: Annotated[str | None, Query(max_length=60)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    operators = figures.operators_listed(session, user)
    all_allowed = figures.operators_for(session, user) is None
    if not operator and not all_allowed and operators:
        operator = operators[0]
    common: dict[str, Any] = {
        "operators": operators,
        "all_allowed": all_allowed,
        "operator_names": _operator_names(),
    }
    try:
        a, b, p = figures_args(_day(start, "start"), _day(end, "end"), period)
        got = figures.figures(session, user, start=a, end=b, period=p, operator=operator or None)
    except ValidationFailed as e:
        # The form again, as it was filled in, with what to correct beside its input.
        refused = form_failure(session, e)
        form = {"start": start, "end": end, "period": period, "operator": operator or ""}
        return render(
            request, "card/figures.html", user, figures=None, form=form, **common, **refused.context
        )
    query = urlencode(
        {"start": a.isoformat(), "end": b.isoformat(), "period": p, "operator": operator or ""}
    )
    # A month by day is hundreds of rows (a phone's stacked rows: metres of page): the page
    # shows them FIGURE_ROWS at a time; the CSV has them all.
    shown = paging.numbered(got.rows, page, FIGURE_ROWS)
    form = {"start": a.isoformat(), "end": b.isoformat(), "period": p, "operator": operator or ""}
    return render(
        request,
        "card/figures.html",
        user,
        figures=got,
        form=form,
        shown=shown.rows,
        number=shown.number,
        pages=shown.pages,
        query=query,
        cities=_cities(session),
        csv_url=f"/api/v1/card/figures?{query}&format=csv",
        **common,
    )
