"""Pages of the dashboard (一体化监测) for leaders and supervisors: headline figures, the
city-pair heat map, a trend, rankings, drill-down to an authority and a matter, and the
CSV/XLSX export of every table. Filters travel in the query string, so a view can be
bookmarked and printed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response
from sqlalchemy.orm import Session

from tongban.calendar import service as calendar
from tongban.catalog import service as catalog
from tongban.dashboard import charts, service, tables
from tongban.dashboard.config import dashboard_settings
from tongban.dashboard.domain import CATEGORY_LABELS, INDICATORS, Indicator
from tongban.db import utcnow
from tongban.errors import NotFound, PermissionDenied
from tongban.identity.models import Account
from tongban.regions import service as regions
from tongban.web.deps import CurrentUser, OptionalUser, SessionDep
from tongban.web.pages import render

router = APIRouter(include_in_schema=False)

VIEWERS = ("supervisor", "admin")
STATIC = Path(__file__).with_name("static")
MATRIX_INDICATORS = (
    Indicator.CASE_RECEIVED,
    Indicator.CASE_DECIDED,
    Indicator.CASE_DELIVERED,
    Indicator.SETTLEMENT,
    Indicator.LICENCE_VERIFIED,
    Indicator.RECT_OPENED,
    Indicator.CLEARING,
)


def require_viewer(user: Account) -> None:
    if user.role not in VIEWERS:
        raise PermissionDenied("仅领导和督查督办人员可以查看一体化监测", type="not-a-viewer")


def _filters(session: Session, q: dict[str, str | None]) -> service.Filters:
    return service.parse_filters(
        calendar.local_date(utcnow()),
        start=q.get("start"),
        end=q.get("end"),
        period=q.get("period"),
        jurisdiction=q.get("jurisdiction"),
        authority=q.get("authority"),
        matter=q.get("matter"),
        scope=q.get("scope"),
    )


def _indicator(raw: str | None) -> str:
    if not raw:
        return Indicator.CASE_RECEIVED.value
    if raw not in {i.value for i in Indicator}:
        raise NotFound("没有这个指标")
    return raw


def _grain(raw: str | None) -> str:
    return raw if raw in service.GRAINS else "day"


Q = Annotated[str | None, Query()]


def _context(session: Session, f: service.Filters, indicator: str, grain: str) -> dict[str, Any]:
    threshold = dashboard_settings().threshold
    cities_all = cities = [(c.code, c.name) for c in regions.list_cities(session)]
    if f.jurisdiction:
        cities = [(c.code, c.name) for c in regions.list_cities(session, f.jurisdiction)]
    matrix = service.matrix(session, f, indicator, threshold)
    seen = {c for pair in matrix for c in pair}
    shown = [c for c in cities if c[0] in seen] or cities[:12]
    series = service.trend(session, f, indicator, grain, threshold)
    info = INDICATORS[Indicator(indicator)]
    label, pair = info.label, (info.pair_from, info.pair_to)
    query = {**f.query(), "indicator": indicator, "grain": grain}
    return {
        "f": f,
        "indicator": indicator,
        "indicator_label": label,
        "grain": grain,
        "threshold": threshold,
        "headlines": service.headlines(session, f, threshold),
        "heatmap": charts.heatmap(shown, matrix, title=f"城市间{label}热力图", pair=pair),
        "legend": charts.legend(max((x.n or 0 for x in matrix.values()), default=0)),
        "matrix": tables.matrix_table(dict(cities_all), matrix, label, pair),
        "trend_chart": charts.bars(series, title=f"{label}趋势"),
        "trend": tables.trend_table(series, label),
        "indicators": [(i.value, INDICATORS[i].label) for i in Indicator],
        "matrix_indicators": [(i.value, INDICATORS[i].label) for i in MATRIX_INDICATORS],
        "jurisdictions": regions.list_jurisdictions(session),
        "provenance": service.provenance(session),
        "qs": urlencode(query),
        "categories": CATEGORY_LABELS,
    }


@router.get("/dashboard")
def dashboard(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    start: Q = None,
    end: Q = None,
    period: Q = None,
    jurisdiction: Q = None,
    scope: Q = None,
    indicator: Q = None,
    grain: Q = None,
) -> Response:
    require_viewer(user)
    f = _filters(
        session,
        {
            "start": start,
            "end": end,
            "period": period,
            "jurisdiction": jurisdiction,
            "scope": scope,
        },
    )
    ind, gr = _indicator(indicator), _grain(grain)
    ctx = _context(session, f, ind, gr)
    threshold = ctx["threshold"]
    # The page shows the first 20 authorities: their p50/p90 only (the export has all).
    authorities = tables.build(session, "authorities", f, threshold, timed_top=20)
    ctx["authorities"] = authorities
    ctx["authority_bars"] = charts.hbars(
        [(str(r[0]), r[2] if isinstance(r[2], int) else None) for r in authorities.rows[:10]],
        title="办结量前十的部门",
    )
    return render(request, "dashboard/home.html", user, **ctx)


@router.get("/dashboard/authority")
def authority(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    name: Q = None,
    start: Q = None,
    end: Q = None,
    period: Q = None,
    scope: Q = None,
    grain: Q = None,
) -> Response:
    """Drill-down: one authority's matters and trend."""
    require_viewer(user)
    if not name:
        raise NotFound("请选择部门")
    f = _filters(
        session,
        {"start": start, "end": end, "period": period, "scope": scope, "authority": name},
    )
    ctx = _context(session, f, Indicator.CASE_RECEIVED, _grain(grain))
    ctx["matters"] = tables.build(session, "matters", f, ctx["threshold"])
    ctx["authority_name"] = name
    return render(request, "dashboard/authority.html", user, **ctx)


@router.get("/dashboard/matter")
def matter(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    code: Q = None,
    start: Q = None,
    end: Q = None,
    period: Q = None,
    scope: Q = None,
    grain: Q = None,
    indicator: Q = None,
) -> Response:
    """Drill-down: one matter's city pairs and trend."""
    require_viewer(user)
    if not code:
        raise NotFound("请选择事项")
    f = _filters(
        session, {"start": start, "end": end, "period": period, "scope": scope, "matter": code}
    )
    ctx = _context(session, f, _indicator(indicator), _grain(grain))
    ctx["matter_code"] = code
    try:
        ctx["matter_name"] = catalog.get_matter(session, code).name
    except NotFound:
        ctx["matter_name"] = ""
    return render(request, "dashboard/matter.html", user, **ctx)


@router.get("/dashboard/export/{name}.{fmt}")
def export(
    session: SessionDep,
    user: CurrentUser,
    name: str,
    fmt: str,
    start: Q = None,
    end: Q = None,
    period: Q = None,
    jurisdiction: Q = None,
    authority: Q = None,
    matter: Q = None,
    scope: Q = None,
    indicator: Q = None,
    grain: Q = None,
) -> Response:
    """The data of one table or chart as CSV or XLSX, for the same filters."""
    require_viewer(user)
    if name not in tables.TABLES or fmt not in ("csv", "xlsx"):
        raise NotFound("没有这个导出")
    f = _filters(
        session,
        {
            "start": start,
            "end": end,
            "period": period,
            "jurisdiction": jurisdiction,
            "authority": authority,
            "matter": matter,
            "scope": scope,
        },
    )
    threshold = dashboard_settings().threshold
    t = tables.build(
        session, name, f, threshold, indicator=_indicator(indicator), grain=_grain(grain)
    )
    filename = f"dashboard-{name}-{f.start.isoformat()}-{f.end.isoformat()}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if fmt == "csv":
        return Response(tables.to_csv(t), media_type="text/csv; charset=utf-8", headers=headers)
    prov = service.provenance(session)
    note = (
        f"{f.start}至{f.end}；{tables.NOISE_NOTE}"
        f"扰动后小于 {threshold} 的单元已隐藏（{tables.SUPPRESSED_TEXT}）；"
        f"计算于审计链序号 {prov.get('audit_seq', '—')}"
    )
    return Response(
        tables.to_xlsx(t, note),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers=headers,
    )


@router.get("/dashboard/assets/dashboard.css")
def stylesheet() -> Response:
    return FileResponse(STATIC / "dashboard.css", media_type="text/css")


@router.get("/open-data")
def open_data(request: Request, session: SessionDep, user: OptionalUser) -> Response:
    """The public list of open datasets with their downloads."""
    return render(
        request,
        "dashboard/open_data.html",
        user,
        datasets=[(i.value, INDICATORS[i]) for i in Indicator],
        threshold=dashboard_settings().threshold,
        provenance=service.provenance(session),
    )
