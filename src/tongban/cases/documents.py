"""Result documents (决定书) and the window's acknowledgement (受理回执) as PDF.

Rendered with reportlab and its built-in CID font STSong-Light (Adobe-GB1): Chinese text
needs no font file embedded, so a decision is a few kilobytes and the app ships no font.
The canvas is `invariant`, so the same text gives the same bytes. The QR code is drawn
from segno's module matrix, so the URL it carries is exactly the one printed under it.

Pure rendering: no database. `results` decides what a document says and stores it.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

import segno
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas

FONT = "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(FONT))

#: Kinds of result document and their titles.
TITLES = {
    "approval": "准予行政许可决定书",
    "refusal": "不予受理决定书",
    "denial": "不予行政许可决定书",
}

#: The applicant's rights of review and appeal, printed on every refusal and denial
#: (《行政复议法》第二十条, 《行政诉讼法》第四十六条).
RIGHTS = (
    "申请人如对本决定不服，可以自收到本决定书之日起六十日内依法申请行政复议，"
    "或者自收到本决定书之日起六个月内依法向人民法院提起行政诉讼。"
)

_MARGIN = 22 * mm
_WIDTH, _HEIGHT = A4


@dataclass(frozen=True)
class Decision:
    """What a result document says."""

    kind: str
    case_number: str
    authority: str
    applicant: str
    matter: str
    issued_on: date
    #: The decision itself (准予…/不予…的理由).
    text: str
    verify_url: str

    @property
    def title(self) -> str:
        return TITLES[self.kind]

    @property
    def doc_number(self) -> str:
        """The document's number: the case number with the kind's mark."""
        mark = {"approval": "准", "refusal": "不受", "denial": "不准"}[self.kind]
        return f"{self.case_number}-{mark}"


@dataclass(frozen=True)
class Receipt:
    """What the window's acknowledgement (受理回执) says."""

    case_number: str
    matter: str
    applicant: str
    receiving_office: str
    authority: str
    received_on: date
    time_limit_days: int
    materials: list[str] = field(default_factory=list)
    follow_url: str = ""


def _date_cn(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def _wrap(text: str, size: float, width: float) -> list[str]:
    """Lines of `text` no wider than `width` (CJK text breaks between any characters)."""
    lines: list[str] = []
    for para in text.splitlines() or [""]:
        line = ""
        for ch in para:
            if pdfmetrics.stringWidth(line + ch, FONT, size) > width:
                lines.append(line)
                line = ch
            else:
                line += ch
        lines.append(line)
    return lines


class _Page:
    """A top-down writer on one A4 canvas."""

    def __init__(self, title: str) -> None:
        self.buf = io.BytesIO()
        self.c = Canvas(self.buf, pagesize=A4, invariant=True, pageCompression=1)
        self.c.setTitle(title)
        self.c.setAuthor("tongban")
        self.y = _HEIGHT - _MARGIN

    def centered(self, text: str, size: float, gap: float = 4 * mm) -> None:
        self.c.setFont(FONT, size)
        self.c.drawCentredString(_WIDTH / 2, self.y - size, text)
        self.y -= size + gap

    def paragraph(self, text: str, size: float = 11, indent: bool = False) -> None:
        width = _WIDTH - 2 * _MARGIN
        body = ("\u3000\u3000" if indent else "") + text
        self.c.setFont(FONT, size)
        for line in _wrap(body, size, width):
            if self.y < _MARGIN + 40 * mm:
                self.c.showPage()
                self.c.setFont(FONT, size)
                self.y = _HEIGHT - _MARGIN
            self.c.drawString(_MARGIN, self.y - size, line)
            self.y -= size * 1.7
        self.y -= 2 * mm

    def rows(self, rows: Iterable[tuple[str, str]], size: float = 11) -> None:
        for label, value in rows:
            self.paragraph(f"{label}：{value}", size)

    def right(self, text: str, size: float = 11) -> None:
        self.c.setFont(FONT, size)
        self.c.drawRightString(_WIDTH - _MARGIN, self.y - size, text)
        self.y -= size * 1.8

    def qr(self, url: str, caption: str) -> None:
        """The QR code of `url` at the bottom left, with the URL printed beside it."""
        matrix = qr_matrix(url)
        side = 30 * mm
        cell = side / len(matrix)
        x0, y0 = _MARGIN, _MARGIN
        self.c.setFillColorRGB(0, 0, 0)
        for r, row in enumerate(matrix):
            for col, dark in enumerate(row):
                if dark:
                    self.c.rect(x0 + col * cell, y0 + side - (r + 1) * cell, cell, cell, 0, 1)
        self.c.setFont(FONT, 9)
        tx = x0 + side + 5 * mm
        self.c.drawString(tx, y0 + side - 9, caption)
        for i, line in enumerate(_url_lines(url, 9, _WIDTH - _MARGIN - tx)):
            self.c.drawString(tx, y0 + side - 22 - i * 12, line)

    def done(self) -> bytes:
        self.c.showPage()
        self.c.save()
        return self.buf.getvalue()


def _url_lines(url: str, size: float, width: float) -> list[str]:
    lines, line = [], ""
    for ch in url:
        if pdfmetrics.stringWidth(line + ch, "Helvetica", size) > width:
            lines.append(line)
            line = ch
        else:
            line += ch
    return [*lines, line]


def qr_matrix(url: str) -> list[list[bool]]:
    """The QR modules of `url`, quiet zone included (what `_Page.qr` draws)."""
    code = segno.make(url, error="m", micro=False)
    return [[bool(v) for v in row] for row in code.matrix_iter(scale=1, border=4)]


def render_decision(d: Decision) -> bytes:
    """The result document of a case as a one-page PDF."""
    page = _Page(f"{d.title} {d.doc_number}")
    page.centered(d.authority, 16, 2 * mm)
    page.centered(d.title, 20)
    page.right(f"编号：{d.doc_number}", 10)
    page.paragraph(f"{d.applicant}：")
    opening = {
        "approval": f"你（单位）申请的“{d.matter}”（办件编号 {d.case_number}），经审查，"
        "符合法定条件、标准，本机关决定准予办理。",
        "refusal": f"你（单位）提出的“{d.matter}”申请（办件编号 {d.case_number}），经审查，"
        "本机关决定不予受理。理由如下：",
        "denial": f"你（单位）申请的“{d.matter}”（办件编号 {d.case_number}），经审查，"
        "本机关决定不予许可。理由如下：",
    }[d.kind]
    page.paragraph(opening, indent=True)
    page.paragraph(d.text, indent=True)
    if d.kind != "approval":
        page.paragraph(RIGHTS, indent=True)
    page.y -= 6 * mm
    page.right(d.authority)
    page.right(_date_cn(d.issued_on))
    page.qr(d.verify_url, "扫码核验本文书真伪：")
    return page.done()


def render_receipt(r: Receipt) -> bytes:
    """The window's acknowledgement of receipt (受理回执) as a one-page PDF."""
    page = _Page(f"受理回执 {r.case_number}")
    page.centered("受理回执", 20)
    page.right(f"办件编号：{r.case_number}", 10)
    page.rows(
        [
            ("申请事项", r.matter),
            ("申请人", r.applicant),
            ("收件窗口", r.receiving_office),
            ("承办部门", r.authority),
            ("收件日期", _date_cn(r.received_on)),
            ("承诺时限", f"受理后 {r.time_limit_days} 个工作日内办结"),
        ]
    )
    page.paragraph("已收材料：")
    for i, name in enumerate(r.materials or ["（无）"], start=1):
        page.paragraph(f"{i}. {name}")
    page.paragraph(
        "本回执仅证明窗口已收到上述申请材料，是否受理以承办部门的决定为准。"
        "需要补正的，承办部门将一次性告知需补正的全部内容。",
        10,
    )
    if r.follow_url:
        page.qr(r.follow_url, "扫码查看办理进度：")
    return page.done()
