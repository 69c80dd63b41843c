"""Charts drawn on the server as SVG (no JavaScript, no CDN): a city-pair heat map, a bar
series, horizontal ranking bars. Every chart has a <title> and <desc>, and each page
shows the same numbers as a table beside it (the text alternative). Colours are SVG
presentation attributes, not inline styles, so the pages' CSP holds."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date

from markupsafe import Markup, escape

from tongban.dashboard.service import Figure

#: Sequential blues, light to dark (ColorBrewer Blues 7).
RAMP = ("#eff3ff", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#084594")
SUPPRESSED = "#d9d9d9"
EMPTY = "#ffffff"


def _e(text: object) -> str:
    return str(escape(str(text)))


def colour(n: int, top: int) -> str:
    """The ramp colour of `n` on a log scale up to `top`."""
    if n <= 0 or top <= 0:
        return EMPTY
    i = int(math.log1p(n) / math.log1p(top) * (len(RAMP) - 1) + 0.5)
    return RAMP[min(max(i, 0), len(RAMP) - 1)]


def heatmap(
    cities: Sequence[tuple[str, str]],
    cells: Mapping[tuple[str, str], Figure],
    *,
    title: str,
    cell: int = 16,
    pair: tuple[str, str] = ("收件城市", "办理城市"),
) -> Markup:
    """Rows: from city (e.g. 收件城市); columns: to city (e.g. 办理城市), as `pair` names
    them for the indicator. A suppressed cell is grey."""
    label_w, label_h = 64, 64
    n = len(cities)
    w, h = label_w + n * cell + 4, label_h + n * cell + 4
    top = max((f.n or 0 for f in cells.values()), default=0)
    out = [
        f'<svg class="chart heatmap" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
        f'role="img" aria-labelledby="hm-t hm-d" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="hm-t">{_e(title)}</title>',
        f'<desc id="hm-d">行为{_e(pair[0])}，列为{_e(pair[1])}，颜色越深件数越多；'
        "灰色为小于阈值已隐藏。数据见下方表格。</desc>",
    ]
    for j, (_, name) in enumerate(cities):
        x = label_w + j * cell + cell / 2
        out.append(
            f'<text x="{x:.1f}" y="{label_h - 4}" font-size="10" '
            f'transform="rotate(-60 {x:.1f} {label_h - 4})">{_e(name)}</text>'
        )
    names = [(code, _e(name)) for code, name in cities]  # escaped once, not per cell
    for i, (fc, fname) in enumerate(names):
        y = label_h + i * cell
        out.append(
            f'<text x="{label_w - 4}" y="{y + cell - 4}" font-size="10" '
            f'text-anchor="end">{fname}</text>'
        )
        for j, (tc, tname) in enumerate(names):
            f = cells.get((fc, tc))
            x = label_w + j * cell
            if f is None:
                fill, tip = EMPTY, "0"
            elif f.suppressed:
                fill, tip = SUPPRESSED, "小于阈值，已隐藏"
            else:
                fill, tip = colour(f.n or 0, top), f"{f.n:,}"
            out.append(
                f'<rect x="{x}" y="{y}" width="{cell - 1}" height="{cell - 1}" fill="{fill}" '
                f'stroke="#eee"><title>{fname} → {tname}：{tip}</title></rect>'
            )
    out.append("</svg>")
    return Markup("".join(out))


def legend(top: int) -> Markup:
    parts = [
        '<svg class="legend" viewBox="0 0 320 24" width="320" height="24" role="img" '
        'aria-label="图例：颜色由浅到深表示件数由少到多；灰色为已隐藏的小单元" '
        'xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, c in enumerate(RAMP):
        parts.append(f'<rect x="{i * 22}" y="4" width="20" height="14" fill="{c}" stroke="#ccc"/>')
    text = f"1 … {top:,}" if top else "暂无可公开"
    parts.append(f'<text x="{len(RAMP) * 22 + 4}" y="16" font-size="11">{text}</text>')
    parts.append(f'<rect x="230" y="4" width="20" height="14" fill="{SUPPRESSED}"/>')
    parts.append('<text x="254" y="16" font-size="11">已隐藏</text></svg>')
    return Markup("".join(parts))


def bars(
    series: Sequence[tuple[date, Figure]], *, title: str, width: int = 720, height: int = 200
) -> Markup:
    """A bar per bucket; a suppressed bucket is a short grey mark."""
    n = max(len(series), 1)
    pad_l, pad_b, pad_t = 48, 28, 10
    plot_w, plot_h = width - pad_l - 8, height - pad_b - pad_t
    top = max((f.n or 0 for _, f in series), default=0) or 1
    bw = plot_w / n
    out = [
        f'<svg class="chart bars" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-labelledby="tr-t" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="tr-t">{_e(title)}</title>',
        f'<line x1="{pad_l}" y1="{pad_t + plot_h}" x2="{width - 8}" y2="{pad_t + plot_h}" '
        'stroke="#888"/>',
        f'<text x="{pad_l - 6}" y="{pad_t + 8}" font-size="10" text-anchor="end">{top:,}</text>',
        f'<text x="{pad_l - 6}" y="{pad_t + plot_h}" font-size="10" text-anchor="end">0</text>',
    ]
    step = max(1, n // 8)
    for i, (d, f) in enumerate(series):
        x = pad_l + i * bw
        if f.suppressed:
            bh, fill, tip = 3.0, SUPPRESSED, "小于阈值，已隐藏"
        else:
            bh, fill, tip = (f.n or 0) / top * plot_h, RAMP[5], f"{f.n or 0:,}"
        out.append(
            f'<rect x="{x + bw * 0.1:.1f}" y="{pad_t + plot_h - bh:.1f}" '
            f'width="{max(bw * 0.8, 1):.1f}" height="{bh:.1f}" fill="{fill}">'
            f"<title>{d.isoformat()}：{_e(tip)}</title></rect>"
        )
        if i % step == 0:
            out.append(
                f'<text x="{x + bw / 2:.1f}" y="{height - 8}" font-size="10" '
                f'text-anchor="middle">{d.strftime("%m-%d")}</text>'
            )
    out.append("</svg>")
    return Markup("".join(out))


def hbars(rows: Sequence[tuple[str, int | None]], *, title: str, width: int = 480) -> Markup:
    """Horizontal bars for a ranking (name, value); None is a suppressed value."""
    row_h, label_w = 22, 150
    height = row_h * max(len(rows), 1) + 4
    top = max((v or 0 for _, v in rows), default=0) or 1
    out = [
        f'<svg class="chart hbars" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{_e(title)}" '
        'xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, (name, v) in enumerate(rows):
        y = i * row_h + 2
        short = name if len(name) <= 10 else name[:9] + "…"
        out.append(
            f'<text x="{label_w - 6}" y="{y + 15}" font-size="11" text-anchor="end">'
            f"{_e(short)}<title>{_e(name)}</title></text>"
        )
        bw = 0 if v is None else v / top * (width - label_w - 60)
        fill = SUPPRESSED if v is None else RAMP[4]
        out.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{max(bw, 2):.1f}" height="{row_h - 8}" '
            f'fill="{fill}"/>'
        )
        label = "已隐藏" if v is None else f"{v:,}"
        out.append(
            f'<text x="{label_w + max(bw, 2) + 4:.1f}" y="{y + 15}" font-size="11">{label}</text>'
        )
    out.append("</svg>")
    return Markup("".join(out))
