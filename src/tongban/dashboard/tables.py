"""The data of every table and chart of the dashboard as plain tables (title, header,
rows), so that the page, its text alternatives and the CSV/XLSX exports show the same
numbers; and the writers of those exports."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from markupsafe import Markup, escape
from openpyxl import Workbook
from sqlalchemy.orm import Session

from tongban.catalog import service as catalog
from tongban.dashboard import cellkey, service
from tongban.dashboard.domain import CATEGORY_LABELS, INDICATORS, Indicator
from tongban.dashboard.service import Figure, Filters
from tongban.regions import service as regions

SUPPRESSED_TEXT = "<阈值"
#: What every published count carries (cellkey.py), said wherever figures are published.
NOISE_NOTE = (
    f"件数已加入不超过 ±{cellkey.NOISE_MAX} 的固定扰动（同一组事件在各处扰动相同，"
    "合计与分项之和可能略有出入），金额按同一比例调整，比率与办理用时按未扰动数据计算。"
)
TABLES = ("headlines", "matrix", "trend", "authorities", "matters", "series")


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    header: Sequence[str]
    rows: Sequence[Sequence[Any]]

    def body_html(self) -> Markup:
        """The table's rows as HTML `<tr>`s, each cell labelled with its column for the
        phone layout. Built here rather than in the template: the city-pair table has up
        to 1,681 rows, and escaping cell by cell in Jinja was most of the page's render
        time (profiled at 300,000 events: ≈ 48 of the 53 ms a year's page spent rendering)."""
        labels = [f'<td data-label="{escape(h)}">' for h in self.header]
        out = []
        for row in self.rows:
            cells = "".join(
                f"{label}{cell if isinstance(cell, int) else escape(cell)}</td>"
                for label, cell in zip(labels, row, strict=False)
            )
            out.append(f"<tr>{cells}</tr>")
        return Markup("\n".join(out))


def _n(f: Figure) -> Any:
    return SUPPRESSED_TEXT if f.suppressed else (f.n or 0)


def _pct(x: float | None) -> Any:
    return "" if x is None else round(x * 100, 1)


def city_names(session: Session) -> dict[str, str]:
    return {c.code: c.name for c in regions.list_cities(session)}


def build(
    session: Session,
    name: str,
    f: Filters,
    threshold: int,
    *,
    indicator: str = Indicator.CASE_RECEIVED,
    grain: str = "day",
    timed_top: int | None = None,
) -> Table:
    """The table `name` for filters `f` (a name not in TABLES is a KeyError); a ranking
    with `timed_top` has p50/p90 in its first `timed_top` rows only (what a page shows)."""
    label = INDICATORS[Indicator(indicator)].label
    rows: list[Sequence[Any]]
    if name == "headlines":
        rows = [(h.label, h.value, h.note) for h in service.headlines(session, f, threshold)]
        return Table(name, "主要指标", ("指标", "数值", "说明"), rows)
    names = city_names(session)
    if name == "matrix":
        info = INDICATORS[Indicator(indicator)]
        return matrix_table(
            names,
            service.matrix(session, f, indicator, threshold),
            label,
            (info.pair_from, info.pair_to),
        )
    if name == "trend":
        return trend_table(service.trend(session, f, indicator, grain, threshold), label)
    if name in ("authorities", "matters"):
        by = "authority" if name == "authorities" else "matter"
        ranked = service.ranking(session, f, by, threshold, timed_top=timed_top)
        rows = [
            (
                who,
                _n(received),
                _n(decided),
                _pct(decided.share()),
                "" if decided.p50 is None else decided.p50,
                "" if decided.p90 is None else decided.p90,
            )
            for who, decided, received in ranked
        ]
        if by == "matter":
            titles = {m.code: m.name for m in catalog.list_matters(session)}
            rows = [(r[0], titles.get(str(r[0]), ""), *r[1:]) for r in rows]
            return Table(
                name,
                "事项排名",
                (
                    "事项编码",
                    "事项名称",
                    "收件",
                    "办结",
                    "按时办结率(%)",
                    "用时中位数(工作日)",
                    "用时P90(工作日)",
                ),
                rows,
            )
        return Table(
            name,
            "部门排名" if by == "authority" else "事项排名",
            (
                "部门" if by == "authority" else "事项编码",
                "收件",
                "办结",
                "按时办结率(%)",
                "用时中位数(工作日)",
                "用时P90(工作日)",
            ),
            rows,
        )
    if name == "series":
        data = service.daily_series(session, f, indicator, threshold)
        rows = [
            (
                r["date"],
                r["from_city"],
                r["to_city"],
                CATEGORY_LABELS.get(r["category"], r["category"]),
                SUPPRESSED_TEXT if r["suppressed"] else r["count"],
            )
            for r in data
        ]
        info = INDICATORS[Indicator(indicator)]
        return Table(
            name, f"{label}日序列", ("日期", info.pair_from, info.pair_to, "分类", "件数"), rows
        )
    raise KeyError(name)


def matrix_table(
    names: dict[str, str],
    cells: dict[tuple[str, str], Figure],
    label: str,
    pair: tuple[str, str] = ("收件城市", "办理城市"),
) -> Table:
    rows = [
        (fc, names.get(fc, fc), tc, names.get(tc, tc), _n(fig))
        for (fc, tc), fig in sorted(cells.items())
    ]
    src, dst = pair
    return Table(
        "matrix",
        f"城市间{label}（{src} → {dst}）",
        (f"{src}代码", src, f"{dst}代码", dst, "件数"),
        rows,
    )


def trend_table(series: Sequence[tuple[date, Figure]], label: str) -> Table:
    return Table(
        "trend", f"{label}趋势", ("日期", "件数"), [(d.isoformat(), _n(f)) for d, f in series]
    )


def to_csv(t: Table) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(t.header)
    w.writerows(t.rows)
    return ("\ufeff" + buf.getvalue()).encode("utf-8")  # BOM: Excel opens it as UTF-8


def to_xlsx(t: Table, note: str) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = t.name[:31]
    ws.append([t.title])
    ws.append([note])
    ws.append(list(t.header))
    for row in t.rows:
        ws.append(list(row))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
