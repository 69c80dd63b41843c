"""Pages of the emergency context's reserves: the overview with alerts, the reserve table
per city with filters, a city's batches with the keeper's movement form, a batch's
history, and the bulk upload with its errors per row. Mutual aid's pages are in
views_aid.py, incidents' and hand-overs' in views_incidents.py, capacity's and drills'
in views_capacity.py; what they all do with a form (read it, run the step, show the
page again on a refusal) is here."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from tongban.emergency import access, alerts, domain, stock
from tongban.emergency.catalogue import catalogue
from tongban.emergency.domain import Duty
from tongban.errors import DomainError, FieldError, NotFound, PermissionDenied, ValidationFailed
from tongban.exchange import service as exchange
from tongban.identity.models import Account
from tongban.kernel import paging
from tongban.regions import service as regions
from tongban.web.deps import CsrfChecked, CurrentUser, SessionDep, SettingsDep
from tongban.web.pages import form_failure, render

router = APIRouter(include_in_schema=False)

DONE = {
    "moved": "已登记库存变动。",
    "uploaded": "导入完成。",
}


def labels() -> dict[str, Any]:
    """Chinese labels the emergency templates share."""
    cat = catalogue()
    return {
        "items": cat.items,
        "categories": cat.categories,
        "movements": {m.value: label for m, label in domain.MOVEMENT_LABELS.items()},
        "manual": [m.value for m in domain.MANUAL_MOVEMENTS],
        "freshness": {f.value: label for f, label in domain.FRESHNESS_LABELS.items()},
        "duties": {d.value: label for d, label in domain.DUTY_LABELS.items()},
        "kinds": {k.value: label for k, label in domain.POINT_KIND_LABELS.items()},
        "alerts": {k.value: label for k, label in domain.ALERT_LABELS.items()},
    }


def places(session: Session) -> dict[str, Any]:
    return {
        "jurisdictions": regions.list_jurisdictions(session),
        "cities": regions.list_cities(session),
        "city_names": {c.code: c.name for c in regions.list_cities(session)},
        "jurisdiction_names": {j.code: j.name for j in regions.list_jurisdictions(session)},
    }


def optional(value: str | None) -> str | None:
    """A query or form value stripped; None when it is empty."""
    value = (value or "").strip()
    return value or None


#: Rows of a long table (the reserve table, the batches) shown per page: the whole
#: federation's reserves are over a thousand rows, hundreds of thousands of pixels on a
#: phone, with the keeper's movement form below them.
PAGE_ROWS = 50
#: The batches page reads at most this many (stock.lots' own bound) and says so.
LOTS_SHOWN = 500


def _own_cities(session: Session, user: Account) -> list[str]:
    """The cities where `user` holds an emergency duty for one city."""
    return sorted({d.city_code for d in access.duties_of(session, user) if d.city_code})


def own_first(session: Session, user: Account, rows: list[Any]) -> list[Any]:
    """`rows` (with city_code and jurisdiction_code) with the user's duty cities first,
    then the rest of their jurisdictions, then the others, each in its order."""
    duties = access.duties_of(session, user)
    cities = {d.city_code for d in duties if d.city_code}
    jurisdictions = {d.jurisdiction_code for d in duties}

    def rank(row: Any) -> int:
        if row.city_code in cities:
            return 0
        return 1 if row.jurisdiction_code in jurisdictions else 2

    return sorted(rows, key=rank)


def paged(request: Request, rows: list[Any], size: int = PAGE_ROWS) -> paging.Numbered:
    """The page `?page=N` of `rows` (not a number: the first), with the other parameters
    kept for the pager's links."""
    try:
        wanted = int(request.query_params.get("page", "1"))
    except ValueError:
        wanted = 1
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "page"]
    return paging.numbered(rows, wanted, size, urlencode(kept))


# --- what every emergency page does with a form ------------------------------------------------


def record_id(value: str) -> uuid.UUID:
    """A record's id from its URL; a malformed one is a record that does not exist."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("记录不存在", type="not-found") from None


def form_text(form: FormData, name: str, limit: int) -> str:
    """A text field of a multipart or urlencoded form, cut to `limit` characters."""
    value = form.get(name)
    return str(value)[:limit] if isinstance(value, str) else ""


def form_int(value: Any, field: str, *, required: bool = False) -> int:
    """A whole number typed in `field`; left empty it is 0 unless `required`."""
    text = str(value or "").strip()
    if not text and not required:
        return 0
    try:
        return int(text)
    except ValueError:
        raise ValidationFailed("请填写整数", errors=[FieldError(field, "请填写整数")]) from None


def shown(
    texts: Mapping[str, str],
    *,
    done: str | None = None,
    message: str | None = None,
    errors: dict[str, str] | None = None,
    failed: str | None = None,
    form: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What a page says about its last form, for its template: `done` (a key of `texts`)
    as its sentence, a refusal's message and field errors, which form failed, and what
    was typed in it."""
    return {
        "done": texts.get(done or ""),
        "message": message,
        "errors": errors or {},
        "failed": failed,
        "form": form or {},
    }


def unknown_record(e: DomainError) -> bool:
    """A refusal that is no form's fault: the record itself does not exist."""
    return isinstance(e, NotFound) and not e.errors


def never(e: DomainError) -> bool:
    """Every refusal is the form's: shown on the page again."""
    return False


def denied(e: DomainError) -> bool:
    return isinstance(e, PermissionDenied)


def denied_or_unknown(e: DomainError) -> bool:
    return isinstance(e, NotFound | PermissionDenied)


def after_form(
    session: Session,
    step: Callable[[], str],
    again: Callable[..., Response],
    *,
    passes_on: Callable[[DomainError], bool] = unknown_record,
    inputs: Mapping[str, str] | None = None,
) -> Response:
    """Run `step` (what a page's form asks: a service call that returns the URL to go to
    next, 303). A refusal that `passes_on` is left to the problem+json handler; any other
    is rolled back and the page is built again by `again(status_code=…, message=…,
    errors=…)`, the message beside the form (`inputs` maps error fields to inputs)."""
    try:
        url = step()
    except DomainError as e:
        if passes_on(e):
            raise
        return again(**form_failure(session, e, inputs=inputs).context)
    return RedirectResponse(url, status_code=303)


async def record_step(
    request: Request,
    session: Session,
    user: Account,
    record: uuid.UUID,
    what: str,
    step: Callable[[FormData], str],
    page: Callable[..., Response],
    url: str,
) -> Response:
    """One step from the form `what` of a record's page (built by `page`, at
    `url`/<record>): `step(form)` returns the `done` the page then says; on a refusal
    the page again with the message beside that form. A missing record or a forbidden
    step is a problem+json answer."""
    form = await request.form()
    return after_form(
        session,
        lambda: f"{url}/{record}?done={step(form)}",
        lambda **refused: page(request, session, user, record, **refused, failed=what),
        passes_on=denied_or_unknown,
    )


#: A step of a record page's form: (session, user, record, form) -> the `done` the page says.
FormStep = Callable[[Session, Account, uuid.UUID, FormData], str]


@dataclass(frozen=True)
class RecordPage:
    """A kind of record's page and the forms on it, as one pair of routes: the page at
    `url`/<id> (GET, built by `page(request, session, user, id, status_code=…,
    **feedback)`) and its forms at `url`/<id>/<action> (POST): `forms` maps an action
    to the form's name on the page and its step. An action the page has not is 404."""

    url: str
    page: Callable[..., Response]
    forms: Mapping[str, tuple[str, FormStep]]

    async def act(
        self, request: Request, session: Session, user: Account, record: str, action: str
    ) -> Response:
        if action not in self.forms:
            raise NotFound("操作不存在", type="not-found")
        what, step = self.forms[action]
        rid = record_id(record)
        return await record_step(
            request,
            session,
            user,
            rid,
            what,
            lambda form: step(session, user, rid, form),
            self.page,
            self.url,
        )

    def add_routes(self, router: APIRouter) -> None:
        def show(
            record: str,
            request: Request,
            session: SessionDep,
            user: CurrentUser,
            done: str | None = None,
        ) -> Response:
            return self.page(request, session, user, record_id(record), done=done)

        async def act(
            record: str, action: str, request: Request, session: SessionDep, user: CurrentUser
        ) -> Response:
            return await self.act(request, session, user, record, action)

        router.add_api_route(f"{self.url}/{{record}}", show, methods=["GET"])
        router.add_api_route(
            f"{self.url}/{{record}}/{{action}}",
            act,
            methods=["POST"],
            dependencies=[CsrfChecked],
        )


@router.get("/emergency")
def home(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    access.require_viewer(session, user)
    return render(
        request,
        "emergency/home.html",
        user,
        alerts=alerts.open_alerts(session, user, limit=50),
        duties=access.duties_of(session, user),
        labels=labels(),
        **places(session),
    )


@router.get("/emergency/reserves")
def reserves(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    jurisdiction: str | None = None,
    city: str | None = None,
    category: str | None = None,
    item: str | None = None,
    low: str | None = None,
    expiring: str | None = None,
) -> Response:
    f = stock.Filters(
        optional(jurisdiction),
        optional(city),
        optional(category),
        optional(item),
        low_only=bool(low),
        expiring_only=bool(expiring),
    )
    rows = own_first(session, user, stock.table(session, user, f))
    return render(
        request,
        "emergency/reserves.html",
        user,
        rows=rows,
        shown=paged(request, rows),
        f=f,
        served={
            j.code
            for j in regions.list_jurisdictions(session)
            if exchange.serves_here(session, j.code)
        },
        labels=labels(),
        **places(session),
    )


def _lots_page(
    request: Request,
    session: Session,
    user: Account,
    *,
    city: str | None,
    item: str | None,
    point: str | None,
    done: str | None = None,
    message: str | None = None,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    found = stock.lots(
        session, user, city_code=city, item_code=item, point_code=point, limit=LOTS_SHOWN
    )
    if not (city or item or point):
        # The first 500 of the federation's batches are other cities' (ordered by point
        # code): a keeper's own batches lead, read on their own, then the others.
        own = [
            lot
            for c in _own_cities(session, user)
            for lot in stock.lots(session, user, city_code=c, limit=LOTS_SHOWN)
        ]
        ids = {lot.id for lot in own}
        found = (own + [lot for lot in found if lot.id not in ids])[:LOTS_SHOWN]
    today = stock.today()
    cat = catalogue()
    return render(
        request,
        "emergency/lots.html",
        user,
        status_code=status_code,
        lots=found,
        shown=paged(request, found),
        capped=len(found) >= LOTS_SHOWN,
        fresh={
            lot.id: domain.freshness(lot.expiry, today, cat.items[lot.item_code].warn_days).value
            if lot.item_code in cat.items
            else "ok"
            for lot in found
        },
        city=city,
        item=item,
        point=point,
        kept=stock.points_kept_by(session, user, Duty.KEEPER),
        done=done,
        message=message,
        errors=errors or {},
        form=form or {},
        labels=labels(),
        **places(session),
    )


@router.get("/emergency/reserves/lots")
def lots(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    city: str | None = None,
    item: str | None = None,
    point: str | None = None,
    done: str | None = None,
) -> Response:
    return _lots_page(
        request,
        session,
        user,
        city=optional(city),
        item=optional(item),
        point=optional(point),
        done=DONE.get(done or ""),
    )


def _date(value: str, field: str = "expiry") -> date | None:
    value = value.strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(
            "日期格式应为 YYYY-MM-DD", errors=[FieldError(field, "日期格式应为 YYYY-MM-DD")]
        ) from None


@router.post("/emergency/reserves/move", dependencies=[CsrfChecked])
def move(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    point_code: Annotated[str, Form(max_length=40)] = "",
    item_code: Annotated[str, Form(max_length=40)] = "",
    batch: Annotated[str, Form(max_length=domain.BATCH_MAX)] = "",
    expiry: Annotated[str, Form(max_length=10)] = "",
    movement: Annotated[str, Form(max_length=20)] = "",
    amount: Annotated[str, Form(max_length=12)] = "",
    reason: Annotated[str, Form(max_length=domain.REASON_MAX)] = "",
) -> Response:
    form = {
        "point_code": point_code,
        "item_code": item_code,
        "batch": batch,
        "expiry": expiry,
        "movement": movement,
        "amount": amount,
        "reason": reason,
    }
    point = optional(point_code)

    def step() -> str:
        stock.move(
            session,
            user,
            point_code=point_code,
            item_code=item_code,
            batch=batch,
            expiry=_date(expiry),
            movement=movement,
            amount=form_int(amount, "amount", required=True),
            reason=reason,
        )
        return f"/emergency/reserves/lots?point={point or ''}&item={item_code}&done=moved"

    return after_form(
        session,
        step,
        lambda **refused: _lots_page(
            request,
            session,
            user,
            city=None,
            item=optional(item_code),
            point=point,
            **refused,
            form=form,
        ),
    )


@router.get("/emergency/reserves/lots/{lot_id}")
def lot(request: Request, session: SessionDep, user: CurrentUser, lot_id: str) -> Response:
    access.require_viewer(session, user)
    try:
        found = stock.get_lot(session, uuid.UUID(lot_id))
    except ValueError:
        raise NotFound("库存批次不存在", type="unknown-lot") from None
    return render(
        request, "emergency/lot.html", user, lot=found, labels=labels(), **places(session)
    )


def _upload_page(
    request: Request,
    session: Session,
    user: Account,
    *,
    done: str | None = None,
    message: str | None = None,
    errors: list[FieldError] | None = None,
    status_code: int = 200,
) -> Response:
    access.require_viewer(session, user)
    return render(
        request,
        "emergency/upload.html",
        user,
        status_code=status_code,
        kept=stock.points_kept_by(session, user, Duty.KEEPER),
        done=done,
        message=message,
        row_errors=errors or [],
        labels=labels(),
    )


@router.get("/emergency/reserves/upload")
def upload_form(
    request: Request, session: SessionDep, user: CurrentUser, rows: int | None = None
) -> Response:
    done = f"导入完成：共 {rows} 行。" if rows is not None else None
    return _upload_page(request, session, user, done=done)


@router.post("/emergency/reserves/upload", dependencies=[CsrfChecked])
def upload(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
    file: Annotated[UploadFile | None, File()] = None,
    mode: Annotated[str, Form(max_length=10)] = "count",
    reason: Annotated[str, Form(max_length=domain.REASON_MAX)] = "",
) -> Response:
    try:
        data = file.file.read(settings.max_upload_bytes + 1) if file is not None else b""
        if not data:
            raise ValidationFailed("请选择文件", errors=[FieldError("file", "请选择文件")])
        if len(data) > settings.max_upload_bytes:
            raise ValidationFailed("文件过大", errors=[FieldError("file", "文件过大")])
        result = stock.upload(session, user, data, mode, reason)
    except DomainError as e:
        if not isinstance(e, ValidationFailed):
            raise
        form_failure(session, e)
        return _upload_page(
            request, session, user, message=e.detail, errors=e.errors, status_code=e.status
        )
    return RedirectResponse(f"/emergency/reserves/upload?rows={result.rows}", status_code=303)
