"""Open311 GeoReport v2 at /open311/v2/: discovery, services, service definitions,
service requests (GET with the standard filters, POST with api_key), one request, and
tokens — in JSON and XML, with errors in the spec's own format:

    [{"code": 404, "description": "..."}]
    <errors><error><code>404</code><description>...</description></error></errors>

`jurisdiction_id` selects a city by its GB/T 2260 code."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from tongban.errors import DomainError, ValidationFailed
from tongban.tickets.service import open311 as svc
from tongban.types import Latitude, Longitude, SaneDatetime, parse_form_value
from tongban.web import problems
from tongban.web.deps import SessionDep

#: How every error of this router is documented: GeoReport's own format, not problem+json.
GEOREPORT_ERRORS = {
    "application/json": {
        "schema": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["code", "description"],
                "properties": {"code": {"type": "integer"}, "description": {"type": "string"}},
            },
        }
    },
    "text/xml": {"schema": {"type": "string"}},
}
router = APIRouter(
    prefix="/open311/v2",
    tags=["open311"],
    responses=problems.responses(400, 403, 404, content=GEOREPORT_ERRORS),
)

SPEC = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-11-23T00:00:00+08:00"
JSON_TYPE = "application/json; charset=utf-8"
XML_TYPE = "text/xml; charset=utf-8"
FORMATS = ("json", "xml")
#: XML element names of list items, by list element.
ITEMS = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
    "errors": "error",
}


# --- rendering --------------------------------------------------------------------------


def _xml_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape(str(value))


def _xml(tag: str, value: Any) -> str:
    if isinstance(value, dict):
        inner = "".join(_xml(k, v) for k, v in value.items())
        return f"<{tag}>{inner}</{tag}>"
    if isinstance(value, list):
        item = ITEMS.get(tag, "item")
        return f"<{tag}>{''.join(_xml(item, v) for v in value)}</{tag}>"
    text = _xml_value(value)
    return f"<{tag}>{text}</{tag}>" if text else f"<{tag}/>"


def render(fmt: str, root: str, body: Any, status: int = 200) -> Response:
    """`body` as JSON, or as XML under `root` (a list becomes repeated item elements)."""
    if fmt == "xml":
        text = '<?xml version="1.0" encoding="utf-8"?>' + _xml(root, body)
        return Response(text, status_code=status, media_type=XML_TYPE)
    import json

    return Response(json.dumps(body, ensure_ascii=False), status_code=status, media_type=JSON_TYPE)


def error(fmt: str, status: int, description: str) -> Response:
    return render(fmt, "errors", [{"code": status, "description": description}], status)


def _guard(fmt: str, session: Session, work: Callable[[], Response]) -> Response:
    """Run `work`; domain errors become GeoReport errors (and the request's writes roll
    back: the session is not committed after a failure)."""
    if fmt not in FORMATS:
        return error("json", 404, f"format {fmt} not supported: use json or xml")
    try:
        return work()
    except DomainError as e:
        session.rollback()
        status = e.status if e.status in (400, 403, 404) else 400
        return error(fmt, status, _described(e))


#: Field names of the intake's errors as GeoReport calls the parameters.
_PARAMS = {"lat": "lat/long", "lon": "lat/long", "category_code": "service_code"}


def _described(e: DomainError) -> str:
    """The error's headline and, for each input it is about, the parameter's name and
    what is wrong with it (a GeoReport error has only a description)."""
    fields = "；".join(f"{_PARAMS.get(f.field, f.field)}: {f.message}" for f in e.errors)
    return f"{e.detail}（{fields}）" if fields else e.detail


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _when(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(f"{name} is not a w3 date-time: {value}") from None
    if moment.tzinfo is None:
        raise ValidationFailed(f"{name} must carry a timezone")
    try:
        return parse_form_value(SaneDatetime, moment.isoformat())  # type: ignore[no-any-return]
    except ValueError:
        raise ValidationFailed(f"{name} is out of range: {value}") from None


def _float(value: Any, name: str) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(parse_form_value(Latitude if name == "lat" else Longitude, str(value)))
    except ValueError:
        word = "纬度须在 -90 至 90 之间" if name == "lat" else "经度须在 -180 至 180 之间"
        raise ValidationFailed(f"{name} is not a valid coordinate: {value}（{word}）") from None


# --- endpoints ------------------------------------------------------------------------


@router.get("/discovery.{fmt}")
def discovery(fmt: str, request: Request, session: SessionDep) -> Response:
    """Service discovery: where the GeoReport v2 endpoint is and what it speaks."""

    def work() -> Response:
        base = str(request.base_url).rstrip("/") + "/open311/v2"
        body = {
            "changeset": CHANGESET,
            "contact": "12345 政务服务便民热线",
            "key_service": "API keys are issued by the platform operator: tongban tickets open311-key",
            "endpoints": [
                {
                    "specification": SPEC,
                    "url": base,
                    "changeset": CHANGESET,
                    "type": "production",
                    "formats": ["text/xml", "application/json"],
                }
            ],
        }
        return render(fmt, "discovery", body)

    return _guard(fmt, session, work)


@router.get("/services.{fmt}")
def services(fmt: str, session: SessionDep, jurisdiction_id: str | None = None) -> Response:
    """The service list (the work-order categories), with each city's deadlines."""

    def work() -> Response:
        city = svc.check_jurisdiction(session, jurisdiction_id)
        return render(fmt, "services", svc.services(session, city))

    return _guard(fmt, session, work)


@router.get("/services/{service_code}.{fmt}")
def service_definition(
    service_code: str, fmt: str, session: SessionDep, jurisdiction_id: str | None = None
) -> Response:
    """A service definition: its attributes (the urgency levels)."""

    def work() -> Response:
        svc.check_jurisdiction(session, jurisdiction_id)
        return render(fmt, "service_definition", svc.service_definition(session, service_code))

    return _guard(fmt, session, work)


@router.get("/requests.{fmt}")
def get_requests(
    fmt: str,
    session: SessionDep,
    jurisdiction_id: str | None = None,
    service_request_id: str | None = None,
    service_code: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    status: str | None = None,
    page: str | None = None,
    page_size: str | None = None,
) -> Response:
    """Service requests by ids, or by service codes, date window (the last 90 days by
    default) and status, newest first, a page at a time: `page` (from 1) and
    `page_size` (default 50, at most 200), the extension common deployments offer."""

    def work() -> Response:
        city = svc.check_jurisdiction(session, jurisdiction_id)
        statuses = _split(status)
        if any(s not in ("open", "closed") for s in statuses):
            raise ValidationFailed("status must be open, closed or both")
        number, size = svc.page_of(page, page_size)
        rows = svc.search_requests(
            session,
            city_code=city,
            ids=_split(service_request_id),
            codes=_split(service_code),
            start=_when(start_date, "start_date"),
            end=_when(end_date, "end_date"),
            statuses=statuses,
            page=number,
            page_size=size,
        )
        return render(fmt, "service_requests", rows)

    return _guard(fmt, session, work)


@router.post("/requests.{fmt}")
async def post_request(fmt: str, request: Request, session: SessionDep) -> Response:
    """Create a service request (form-encoded, as the spec says) with an api_key."""
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}

    def work() -> Response:
        client = svc.client_for_key(session, fields.get("api_key"))
        attributes = {
            k[len("attribute[") : -1]: v
            for k, v in fields.items()
            if k.startswith("attribute[") and k.endswith("]")
        }
        if not fields.get("service_code"):
            raise ValidationFailed("service_code is required")
        lat, lon = _float(fields.get("lat"), "lat"), _float(fields.get("long"), "long")
        if (lat is None) != (lon is None):
            raise ValidationFailed("lat and long must be given together")
        wo, token = svc.create_request(
            session,
            client,
            svc.PostedRequest(
                jurisdiction_id=fields.get("jurisdiction_id"),
                service_code=fields["service_code"],
                lat=lat,
                long=lon,
                address_string=fields.get("address_string", ""),
                description=fields.get("description", "").strip() or "（未填写描述）",
                attributes=attributes,
                email=fields.get("email") or None,
                phone=fields.get("phone") or None,
                first_name=fields.get("first_name") or None,
                last_name=fields.get("last_name") or None,
                device_id=fields.get("device_id") or None,
                account_id=fields.get("account_id") or None,
                media_url=fields.get("media_url") or None,
            ),
        )
        body = [
            {
                "service_request_id": wo.number,
                "token": token,
                "service_notice": svc.service_notice(wo),
                "account_id": wo.open311_account,
            }
        ]
        return render(fmt, "service_requests", body)

    # The body is read; the database work runs in the thread pool, off the event loop.
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(_guard, fmt, session, work)


@router.get("/requests/{service_request_id}.{fmt}")
def get_request(
    service_request_id: str, fmt: str, session: SessionDep, jurisdiction_id: str | None = None
) -> Response:
    """One service request."""

    def work() -> Response:
        city = svc.check_jurisdiction(session, jurisdiction_id)
        wo = svc.request_by_id(session, service_request_id, city)
        return render(fmt, "service_requests", [svc.as_request(wo)])

    return _guard(fmt, session, work)


@router.get("/tokens/{token}.{fmt}")
def get_token(
    token: str, fmt: str, session: SessionDep, jurisdiction_id: str | None = None
) -> Response:
    """The service request id a token stands for."""

    def work() -> Response:
        svc.check_jurisdiction(session, jurisdiction_id)
        wo = svc.request_by_token(session, token)
        return render(fmt, "service_requests", [{"service_request_id": wo.number, "token": token}])

    return _guard(fmt, session, work)


@router.api_route("/{rest:path}", methods=["GET", "POST"], include_in_schema=False)
def not_found(rest: str) -> Response:
    """Anything else under /open311/v2/ answers in the GeoReport error format."""
    fmt = "xml" if rest.endswith(".xml") else "json"
    return error(fmt, 404, f"no such resource: /open311/v2/{rest}")
