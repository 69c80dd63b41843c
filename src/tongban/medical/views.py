"""Pages of cross-region outpatient settlement: the hospital counter (look up a patient,
register, enter items, pre-settle, settle, print a receipt, reverse) and the agencies'
clearing pages (matrix, net positions, statements to confirm or dispute)."""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import date
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import Field
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from tongban.calendar.service import local_date
from tongban.db import utcnow
from tongban.errors import DomainError, NotFound
from tongban.identity.models import Account
from tongban.kernel import paging
from tongban.medical import clearing_service as cs
from tongban.medical import domain, exports, reconcile, service, settlement, settlement_lists
from tongban.regions import service as regions
from tongban.types import Yuan, parse_form_value
from tongban.web.deps import CsrfChecked, CurrentUser, FormDep, SessionDep
from tongban.web.pages import form_failure, render

router = APIRouter(include_in_schema=False)

LABELS = {
    "classes": {c.value: label for c, label in domain.CLASS_LABELS.items()},
    "kinds": {k.value: label for k, label in domain.KIND_LABELS.items()},
    "schemes": {s.value: label for s, label in domain.SCHEME_LABELS.items()},
    "levels": domain.LEVEL_LABELS,
    "filings": {f.value: label for f, label in domain.FILING_LABELS.items()},
    "visit": {"open": "待结算", "settled": "已结算"},
    "settlement": {"settled": "已结算", "reversed": "已冲正"},
    "statement": exports.STATUS_LABELS,
    "differences": domain.DIFFERENCE_LABELS,
    "reconciliation": {k.value: v for k, v in reconcile.RECONCILIATION_LABELS.items()},
    "kinds_of_difference": {k.value: v for k, v in reconcile.KIND_LABELS.items()},
    "difference_status": reconcile.DIFFERENCE_STATUS_LABELS,
    "holders": {"insured": "参保地", "treatment": "就医地"},
    "channels": domain.FILING_CHANNEL_LABELS,
}
ITEM_ROWS = 6
#: Settlements of the day shown on the counter (the rest: the settlements list).
COUNTER_ROWS = 20


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _names(session: Any) -> dict[str, str]:
    names = {c.code: c.name for c in regions.list_cities(session)}
    names.update({j.code: j.name for j in regions.list_jurisdictions(session)})
    return names


def _page(
    request: Request, name: str, user: Account, status_code: int = 200, **ctx: Any
) -> Response:
    ctx.setdefault("labels", LABELS)
    ctx.setdefault("yuan", exports.yuan)
    return render(request, name, user, status_code=status_code, **ctx)


#: Largest quantity of one fee item (the API's bound too).
MAX_QUANTITY = 100_000
Quantity = Annotated[int, Field(ge=1, le=MAX_QUANTITY)]


def _fen(value: str) -> int:
    """A price typed in yuan ("12.5", "12.50") → fen, exactly; more than two decimals is
    refused rather than rounded, and so are NaN, infinities and absurd sizes."""
    try:
        yuan: Decimal = parse_form_value(Yuan, value)
    except ValueError as e:
        raise ValueError(f"单价{e}（须为非负数，最多两位小数）") from None
    return int(yuan * 100)


def _quantity(value: str) -> int:
    try:
        return int(parse_form_value(Quantity, value))
    except ValueError:
        raise ValueError(f"数量须为 1 至 {MAX_QUANTITY} 的整数") from None


# --- the counter -------------------------------------------------------------------


def _cities(session: Any) -> list[Any]:
    return regions.list_cities(session)


def _counter_page(
    request: Request,
    session: Any,
    user: Account,
    id_number: str,
    insured_city: str = "",
    status_code: int = 200,
    message: str | None = None,
    notice: str | None = None,
) -> Response:
    inst = service.institution_of(session, user)
    elig = None
    if id_number:
        try:
            elig = service.eligibility(session, user, id_number, insured_city or None)
        except DomainError as e:
            refused = form_failure(session, e)
            message, status_code = refused.message, refused.status_code
    return _page(
        request,
        "medical/counter.html",
        user,
        status_code=status_code,
        institution=inst,
        elig=elig,
        message=message,
        notice=notice,
        id_number=id_number,
        insured_city=insured_city,
        cities=_cities(session),
        names=_names(session),
        suggested_visit_no=f"MZ{local_date(utcnow()):%Y%m%d}{secrets.randbelow(10**6):06d}",
        today=settlement.list_settlements(session, user, limit=COUNTER_ROWS),
        counter_filing_days=domain.COUNTER_FILING_DAYS,
    )


@router.get("/medical/counter")
def counter(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    return _counter_page(request, session, user, "")


@router.post("/medical/counter", dependencies=[CsrfChecked])
def lookup(request: Request, session: SessionDep, user: CurrentUser, form: FormDep) -> Response:
    """The patient's eligibility. The ID number travels in the POST body, never in a URL
    (URLs end up in access logs, browser history and Referer headers)."""
    return _counter_page(
        request, session, user, _text(form, "id_number"), _text(form, "insured_city")
    )


@router.post("/medical/counter/filings", dependencies=[CsrfChecked])
def file_at_counter(
    request: Request, session: SessionDep, user: CurrentUser, form: FormDep
) -> Response:
    """代办备案 on the patient's insured node, with their consent; the counter then shows
    their eligibility as that node answers it now."""
    id_number, insured_city = _text(form, "id_number"), _text(form, "insured_city")
    try:
        valid_to = _day(_text(form, "valid_to"), "valid_to")
        f = service.file_at_counter(
            session,
            user,
            id_number,
            consent=_text(form, "consent") == "yes",
            insured_city=insured_city or None,
            valid_to=valid_to,
        )
    except DomainError as e:
        refused = form_failure(session, e)
        message = "；".join([refused.message, *refused.errors.values()][:2])
        return _counter_page(
            request,
            session,
            user,
            id_number,
            insured_city,
            status_code=refused.status_code,
            message=message,
        )
    session.commit()  # the query's record; the filing itself is on the insured node
    until = f"至 {f.valid_to:%Y-%m-%d}" if f.valid_to else "长期有效"
    return _counter_page(
        request,
        session,
        user,
        id_number,
        insured_city,
        notice=f"已在参保地办理临时外出就医备案（{until}）",
    )


def _day(value: str, field: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise DomainError(
            "日期格式无效", status=422, errors=[{"field": field, "message": "日期格式无效"}]
        ) from None


@router.post("/medical/counter/visits", dependencies=[CsrfChecked])
def register(request: Request, session: SessionDep, user: CurrentUser, form: FormDep) -> Response:
    id_number, insured_city = _text(form, "id_number"), _text(form, "insured_city")
    try:
        visit = service.register_visit(
            session,
            user,
            id_number=id_number,
            visit_no=_text(form, "visit_no"),
            department=_text(form, "department"),
            diagnosis=_text(form, "diagnosis"),
            insured_city=insured_city or None,
        )
    except DomainError as e:
        refused = form_failure(session, e)
        inst = service.institution_of(session, user)
        return _page(
            request,
            "medical/counter.html",
            user,
            **refused.context,
            institution=inst,
            elig=None,
            id_number=id_number,
            insured_city=insured_city,
            cities=_cities(session),
            names=_names(session),
            suggested_visit_no=_text(form, "visit_no"),
            today=settlement.list_settlements(session, user, limit=COUNTER_ROWS),
        )
    return RedirectResponse(f"/medical/counter/visits/{visit.id}", status_code=303)


def _visit_page(
    request: Request,
    session: Any,
    user: Account,
    visit_id: uuid.UUID,
    status_code: int = 200,
    **ctx: Any,
) -> Response:
    visit = service.get_visit(session, user, visit_id)
    ctx.setdefault("pre", None)
    ctx.setdefault("message", None)
    ctx.setdefault("rows", [])
    ctx.setdefault("row_errors", {})
    ctx.setdefault("q", "")
    catalogue = service.catalogue(session, visit.institution.jurisdiction_code)
    return _page(
        request,
        "medical/visit.html",
        user,
        status_code=status_code,
        visit=visit,
        catalogue=catalogue,
        found=_search(catalogue, ctx["q"]),
        item_rows=ITEM_ROWS,
        names=_names(session),
        **ctx,
    )


def _uuid(value: str, what: str = "就诊记录") -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"{what}不存在") from None


#: Most catalogue matches listed for one search.
SEARCH_ROWS = 20


def _search(catalogue: list[Any], q: str) -> list[Any] | None:
    """Catalogue items whose code or name contains `q` (None: no search asked)."""
    q = q.strip().casefold()[:40]
    if not q:
        return None
    return [c for c in catalogue if q in c.code.casefold() or q in c.name.casefold()][:SEARCH_ROWS]


@router.get("/medical/counter/visits/{visit_id}")
def visit_page(
    request: Request, session: SessionDep, user: CurrentUser, visit_id: str, q: str = ""
) -> Response:
    """The visit; `q` searches the catalogue by code or name (the page's script filters
    the same list as the clerk types; without it, this GET is the search)."""
    return _visit_page(request, session, user, _uuid(visit_id), q=q)


@router.post("/medical/counter/visits/{visit_id}/items", dependencies=[CsrfChecked])
def upload_items(
    request: Request, session: SessionDep, user: CurrentUser, visit_id: str, form: FormDep
) -> Response:
    """Every bad row is reported beside it, all at once: the typing errors found here and
    the catalogue's refusals (an unknown code) together, so the clerk fixes them in one go."""
    vid = _uuid(visit_id)
    codes, qtys, prices = form.getlist("code"), form.getlist("quantity"), form.getlist("price")
    reference = _reference_prices(session, user, vid, codes, prices)
    items: list[service.ItemInput] = []
    rows: list[dict[str, str]] = []
    row_errors: dict[int, list[str]] = {}
    for code, qty, price in zip(codes, qtys, prices, strict=False):
        code, qty, price = str(code).strip(), str(qty).strip(), str(price).strip()
        if not (code or qty or price):
            continue
        n = len(rows)
        rows.append({"code": code, "quantity": qty, "price": price})
        wrong: list[str] = []
        quantity = unit_price = 0
        try:
            quantity = _quantity(qty)
        except ValueError as e:
            wrong.append(str(e))
        try:
            # An empty price takes the catalogue's reference price, where it has one.
            unit_price = reference[code] if not price and code in reference else _fen(price)
        except ValueError as e:
            wrong.append(str(e))
        if wrong:
            row_errors[n] = wrong
        items.append(service.ItemInput(code, quantity, unit_price))
    try:
        if row_errors:
            visit = service.get_visit(session, user, vid)
            known = {
                c.code for c in service.catalogue(session, visit.institution.jurisdiction_code)
            }
            for n, it in enumerate(items):
                if it.code not in known:
                    row_errors.setdefault(n, []).insert(0, _unknown_code(it.code))
            raise DomainError("费用明细有误", status=422)
        service.upload_items(session, user, vid, items)
    except DomainError as e:
        refused = form_failure(session, e)
        for field, text in refused.errors.items():
            m = re.fullmatch(r"items\.(\d+)\.\w+", field)
            if m:
                row_errors.setdefault(int(m.group(1)), []).append(text)
        detail = refused.message
        if row_errors:
            detail = f"费用明细有 {len(row_errors)} 行有误，请按各行提示修改后重新保存"
        elif refused.errors:
            detail = "；".join(refused.errors.values())
        return _visit_page(
            request,
            session,
            user,
            vid,
            refused.status_code,
            message=detail,
            rows=rows,
            row_errors=row_errors,
        )
    return RedirectResponse(f"/medical/counter/visits/{vid}", status_code=303)


def _reference_prices(
    session: Session, user: Account, vid: uuid.UUID, codes: list[Any], prices: list[Any]
) -> dict[str, int]:
    """The catalogue's reference prices by code, read only when some row left its price
    empty (the clerk typed every price otherwise: no catalogue read)."""
    if all(str(p).strip() for c, p in zip(codes, prices, strict=False) if str(c).strip()):
        return {}
    visit = service.get_visit(session, user, vid)
    return {
        c.code: c.price_fen
        for c in service.catalogue(session, visit.institution.jurisdiction_code)
        if c.price_fen is not None
    }


def _unknown_code(code: str) -> str:
    return f"项目编码 {code} 不在就医地医保目录中" if code else "请填写项目编码"


@router.post("/medical/counter/visits/{visit_id}/presettle", dependencies=[CsrfChecked])
def presettle(request: Request, session: SessionDep, user: CurrentUser, visit_id: str) -> Response:
    vid = _uuid(visit_id)
    try:
        pre = settlement.presettle(session, user, vid)
    except DomainError as e:
        return _visit_page(request, session, user, vid, **form_failure(session, e).context)
    # The transaction id is fixed when the split is shown: pressing 结算 twice settles once.
    txn = f"{pre.visit.visit_no[:24]}-{secrets.token_hex(4)}"
    return _visit_page(request, session, user, vid, pre=pre, txn_id=txn)


@router.post("/medical/counter/visits/{visit_id}/settle", dependencies=[CsrfChecked])
def settle(
    request: Request, session: SessionDep, user: CurrentUser, visit_id: str, form: FormDep
) -> Response:
    vid = _uuid(visit_id)
    try:
        s, _ = settlement.settle(session, user, vid, _text(form, "txn_id"))
    except DomainError as e:
        return _visit_page(request, session, user, vid, **form_failure(session, e).context)
    _then_tell_the_insured_node(session, s)
    return RedirectResponse(f"/medical/counter/settlements/{s.id}", status_code=303)


def _then_tell_the_insured_node(session: Any, s: Any) -> None:
    """Commit the hospital's transaction, then confirm or reverse on the insured node
    (the worker sends later what it does not acknowledge now)."""
    session.commit()
    settlement.sync_with_insured(session, s)


@router.get("/medical/counter/settlements/{settlement_id}")
def receipt(
    request: Request, session: SessionDep, user: CurrentUser, settlement_id: str
) -> Response:
    s = settlement.get_settlement_by_id(session, user, _uuid(settlement_id, "结算记录"))
    return _page(
        request,
        "medical/receipt.html",
        user,
        s=s,
        split=settlement.split_of(s),
        names=_names(session),
        message=None,
    )


@router.post("/medical/counter/settlements/{settlement_id}/reverse", dependencies=[CsrfChecked])
def reverse(
    request: Request, session: SessionDep, user: CurrentUser, settlement_id: str, form: FormDep
) -> Response:
    s = settlement.get_settlement_by_id(session, user, _uuid(settlement_id, "结算记录"))
    settlement.reverse(session, user, s.txn_id, reason=_text(form, "reason"))
    _then_tell_the_insured_node(session, s)
    return RedirectResponse(f"/medical/counter/settlements/{s.id}", status_code=303)


# --- the resident's filings --------------------------------------------------------


def _filings_page(
    request: Request,
    session: Any,
    user: Account,
    status_code: int = 200,
    message: str | None = None,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    person: Any = None
    filings: list[Any] = []
    try:
        person, filings = service.my_filings(session, user)
    except NotFound as e:
        message, status_code = message or e.detail, 404
    return _page(
        request,
        "medical/filings.html",
        user,
        status_code=status_code,
        person=person,
        filings=filings,
        message=message,
        errors=errors or {},
        form=form or {},
        cities=_cities(session),
        names=_names(session),
        today=local_date(utcnow()).isoformat(),
    )


@router.get("/medical/filings")
def my_filings(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    """异地就医备案: the resident's filings on their own node, and the form to file."""
    return _filings_page(request, session, user)


@router.post("/medical/filings", dependencies=[CsrfChecked])
def file_for_self(
    request: Request, session: SessionDep, user: CurrentUser, form: FormDep
) -> Response:
    values = {k: _text(form, k) for k in ("type", "target_city", "valid_from", "valid_to")}
    try:
        valid_from = _day(values["valid_from"], "valid_from")
        if valid_from is None:
            raise DomainError(
                "请填写有效期起", status=422, errors=[{"field": "valid_from", "message": "必填"}]
            )
        service.file_for_self(
            session,
            user,
            type=values["type"],
            valid_from=valid_from,
            valid_to=_day(values["valid_to"], "valid_to"),
            target_city=values["target_city"] or None,
            target_jurisdiction=None,
        )
    except DomainError as e:
        refused = form_failure(session, e)
        return _filings_page(
            request,
            session,
            user,
            refused.status_code,
            refused.message,
            refused.errors,
            values,
        )
    return RedirectResponse("/medical/filings", status_code=303)


# --- clearing (agencies) -------------------------------------------------------------


@router.get("/medical/clearing")
def clearing_list(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    runs = cs.list_runs(session, user)
    return _page(
        request,
        "medical/clearing_list.html",
        user,
        runs=runs,
        jurisdiction=cs.agency_jurisdiction(session, user),
        names=_names(session),
    )


@router.get("/medical/clearing/{period}")
def clearing_detail(
    request: Request, session: SessionDep, user: CurrentUser, period: str, message: str = ""
) -> Response:
    j = cs.agency_jurisdiction(session, user)
    run = cs.get_run(session, period)
    return _page(
        request,
        "medical/clearing_detail.html",
        user,
        run=run,
        jurisdiction=j,
        gross=cs.gross(session, run),
        cities=cs.gross(session, run, "city"),
        nets=cs.nets(session, run),
        statements=cs.statements(session, user, period),
        names=_names(session),
        message=message or None,
    )


@router.post("/medical/clearing/statements/{statement_id}/{answer}", dependencies=[CsrfChecked])
def answer(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    statement_id: str,
    answer: str,
    form: FormDep,
) -> Response:
    sid = _uuid(statement_id, "对账单")
    st = cs.get_statement(session, user, sid)
    period = cs.run_of(session, st).period
    actions = {
        "confirm": lambda: cs.confirm_statement(session, user, sid),
        "dispute": lambda: cs.dispute_statement(session, user, sid, _text(form, "reason")),
        "carry": lambda: cs.carry_statement(session, user, sid),
    }
    if answer not in actions:
        raise NotFound("页面不存在")
    try:
        actions[answer]()
    except DomainError as e:
        if e.status in (401, 403, 404):
            raise
        refused = form_failure(session, e)
        return RedirectResponse(
            f"/medical/clearing/{period}?message={quote(refused.message)}", status_code=303
        )
    return RedirectResponse(f"/medical/clearing/{period}", status_code=303)


# --- settlement lists ----------------------------------------------------------------


@router.get("/medical/settlements")
def settlements_list(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    q: str | None = None,
    hospital: str | None = None,
    state: str | None = None,
    since: str | None = None,
    until: str | None = None,
    cursor: str | None = None,
    page_size: str | None = None,
) -> Response:
    """Settlements a page at a time: the counter's own, or the agency's jurisdiction's;
    filtered by transaction number, hospital, dates and state (reversed included)."""
    f = settlement_lists.filters(q=q, hospital=hospital, state=state, since=since, until=until)
    result = settlement_lists.page(session, user, f, settlement_lists.request(cursor, page_size))
    params = f.params() | {"page_size": page_size or ""}
    return _page(
        request,
        "medical/settlements.html",
        user,
        result=result,
        filters=f.params(),
        filtered=any(f.params().values()),
        first_link=paging.query_string(params),
        next_link=paging.query_string(params, cursor=result.next_cursor)
        if result.next_cursor
        else None,
        names=_names(session),
        hospital_staff=user.role == "hospital",
    )
