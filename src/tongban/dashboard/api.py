"""Open data (公共数据开放): daily series per city pair and indicator at stable URLs, and a
DCAT-AP catalogue (JSON-LD) describing each dataset, its licence and update frequency.
Public, read-only, small cells suppressed; every answer names the audit chain position
(and signed checkpoint) its figures were computed at."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from tongban.calendar import service as calendar
from tongban.dashboard import cellkey, service
from tongban.dashboard.config import dashboard_settings
from tongban.dashboard.domain import INDICATORS, Indicator
from tongban.dashboard.tables import NOISE_NOTE
from tongban.db import utcnow
from tongban.errors import FieldError, NotFound, ValidationFailed
from tongban.web.deps import SessionDep

router = APIRouter(tags=["open-data"])

LICENCE = "https://creativecommons.org/licenses/by/4.0/"
DAILY = "http://publications.europa.eu/resource/authority/frequency/DAILY"
MAX_DAYS = 366
CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "adms": "http://www.w3.org/ns/adms#",
}
JSONLD = "application/ld+json"

Q = Annotated[str | None, Query()]


def _zh(text: str) -> dict[str, str]:
    return {"@value": text, "@language": "zh-CN"}


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def dataset(base: str, ind: Indicator, prov: dict[str, Any]) -> dict[str, Any]:
    info = INDICATORS[ind]
    url = f"{base}/api/v1/open-data/datasets/{ind.value}"
    parts = [f"每日按城市对（{info.pair_from} → {info.pair_to}）与分类统计的{info.label}。"]
    if info.category:
        parts.append(f"分类：{info.category}。")
    if info.total:
        parts.append(f"total 列：{info.total}。")
    if info.extra:
        parts.append(f"extra 列：{info.extra}。")
    parts.append(NOISE_NOTE)
    parts.append(
        f"扰动后小于 {dashboard_settings().threshold} 的单元不公布（suppressed 为 true）。"
    )
    return {
        "@id": url,
        "@type": "dcat:Dataset",
        "dct:identifier": ind.value,
        "dct:title": _zh(info.label),
        "dct:description": _zh("".join(parts)),
        "dct:license": {"@id": LICENCE},
        "dct:accrualPeriodicity": {"@id": DAILY},
        "dct:modified": prov.get("refreshed_at"),
        "dct:provenance": {
            "@type": "dct:ProvenanceStatement",
            "rdfs:label": _zh(
                f"计算至审计链第 {prov.get('audit_seq', 0)} 条（哈希 {prov.get('audit_hash', '')}）"
            ),
        },
        "dcat:keyword": [_zh("一体化监测"), _zh("跨域通办")],
        "dcat:distribution": [
            {
                "@id": f"{url}/daily.csv",
                "@type": "dcat:Distribution",
                "dcat:accessURL": {"@id": f"{url}/daily.csv"},
                "dcat:downloadURL": {"@id": f"{url}/daily.csv"},
                "dcat:mediaType": "text/csv",
                "dct:license": {"@id": LICENCE},
            },
            {
                "@id": f"{url}/daily.json",
                "@type": "dcat:Distribution",
                "dcat:accessURL": {"@id": f"{url}/daily.json"},
                "dcat:mediaType": "application/json",
                "dct:license": {"@id": LICENCE},
            },
        ],
    }


@router.get(
    "/api/v1/open-data/catalog.jsonld",
    response_class=Response,
    responses={200: {"content": {JSONLD: {}}}},
)
def catalog(request: Request, session: SessionDep) -> Response:
    """The DCAT-AP catalogue of the dashboard's datasets."""
    base = _base(request)
    prov = service.provenance(session)
    body = {
        "@context": CONTEXT,
        "@id": f"{base}/api/v1/open-data/catalog.jsonld",
        "@type": "dcat:Catalog",
        "dct:title": _zh("一体化监测开放数据"),
        "dct:description": _zh("跨城市、跨辖区政务服务通办的每日统计，按城市对与指标。"),
        "dct:publisher": {"@type": "foaf:Agent", "foaf:name": _zh("通办平台")},
        "dct:license": {"@id": LICENCE},
        "dct:language": {"@id": "http://publications.europa.eu/resource/authority/language/ZHO"},
        "dct:modified": prov.get("refreshed_at"),
        "dcat:dataset": [dataset(base, i, prov) for i in Indicator],
    }
    return JSONResponse(body, media_type=JSONLD)


def _indicator(name: str) -> Indicator:
    try:
        return Indicator(name)
    except ValueError:
        raise NotFound("没有这个数据集") from None


@router.get(
    "/api/v1/open-data/datasets/{name}",
    response_class=Response,
    responses={200: {"content": {JSONLD: {}}}},
)
def dataset_page(request: Request, session: SessionDep, name: str) -> Response:
    """One dataset's DCAT-AP description."""
    ind = _indicator(name)
    body = {"@context": CONTEXT, **dataset(_base(request), ind, service.provenance(session))}
    return JSONResponse(body, media_type=JSONLD)


def _series(
    session: Session,
    name: str,
    start: str | None,
    end: str | None,
    from_city: str | None,
    to_city: str | None,
) -> tuple[Indicator, service.Filters, list[dict[str, Any]]]:
    ind = _indicator(name)
    f = service.parse_filters(
        calendar.local_date(utcnow()), start=start, end=end, from_city=from_city, to_city=to_city
    )
    if (f.end - f.start).days >= MAX_DAYS:
        raise ValidationFailed(
            f"一次最多查询 {MAX_DAYS} 天",
            errors=[FieldError("start", f"一次最多查询 {MAX_DAYS} 天")],
        )
    return ind, f, service.daily_series(session, f, ind, dashboard_settings().threshold)


@router.get("/api/v1/open-data/datasets/{name}/daily.json")
def daily_json(
    session: SessionDep,
    name: str,
    start: Q = None,
    end: Q = None,
    from_city: Q = None,
    to_city: Q = None,
) -> dict[str, Any]:
    """Daily series of one indicator per city pair and category; `count`, `total` and
    `extra` are null where `suppressed` is true."""
    ind, f, rows = _series(session, name, start, end, from_city, to_city)
    return {
        "dataset": ind.value,
        "title": INDICATORS[ind].label,
        "start": f.start.isoformat(),
        "end": f.end.isoformat(),
        "threshold": dashboard_settings().threshold,
        "noise": {"method": "cell-key", "max": cellkey.NOISE_MAX, "note": NOISE_NOTE},
        "licence": LICENCE,
        "provenance": service.provenance(session),
        "rows": rows,
    }


@router.get("/api/v1/open-data/datasets/{name}/daily.csv")
def daily_csv(
    session: SessionDep,
    name: str,
    start: Q = None,
    end: Q = None,
    from_city: Q = None,
    to_city: Q = None,
) -> Response:
    """The same series as CSV (suppressed cells empty, `suppressed` = 1)."""
    ind, f, rows = _series(session, name, start, end, from_city, to_city)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(
        ["date", "from_city", "to_city", "category", "count", "total", "extra", "suppressed"]
    )
    for r in rows:
        w.writerow(
            [
                r["date"],
                r["from_city"],
                r["to_city"],
                r["category"],
                "" if r["count"] is None else r["count"],
                "" if r["total"] is None else r["total"],
                "" if r["extra"] is None else r["extra"],
                int(r["suppressed"]),
            ]
        )
    prov = service.provenance(session)
    headers = {
        "Content-Disposition": f'attachment; filename="{ind.value}-{f.start}-{f.end}.csv"',
        "X-Audit-Seq": str(prov.get("audit_seq", "")),
        "X-Audit-Hash": str(prov.get("audit_hash", "")),
        "Link": f'</api/v1/open-data/datasets/{ind.value}>; rel="describedby"; type="{JSONLD}"',
    }
    return Response(buf.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)
