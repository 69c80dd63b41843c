"""Clearing statements as CSV (UTF-8 with BOM, for spreadsheet programs) and XLSX
(openpyxl): one row per statement, and in the workbook a second sheet with the city
pairs behind each statement. Amounts in fen (integers) beside yuan for reading."""

from __future__ import annotations

import csv
import io

from openpyxl import Workbook
from sqlalchemy.orm import Session

from tongban.medical import clearing_service as cs
from tongban.medical.models import ClearingStatement
from tongban.regions import service as regions

STATUS_LABELS = {"pending": "待确认", "confirmed": "已确认", "disputed": "有异议"}

HEADER = [
    "清算期间",
    "甲方辖区代码",
    "甲方辖区",
    "乙方辖区代码",
    "乙方辖区",
    "甲方参保人在乙方就医笔数",
    "甲方应付乙方（分）",
    "乙方参保人在甲方就医笔数",
    "乙方应付甲方（分）",
    "甲方净付乙方（分）",
    "甲方净付乙方（元）",
    "对账单状态",
    "甲方状态",
    "甲方经办人",
    "甲方异议理由",
    "乙方状态",
    "乙方经办人",
    "乙方异议理由",
]
CITY_HEADER = [
    "清算期间",
    "参保城市代码",
    "参保城市",
    "就医城市代码",
    "就医城市",
    "笔数",
    "基金支付（分）",
    "基金支付（元）",
]


def yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100}.{fen % 100:02d}"


def _names(session: Session) -> dict[str, str]:
    names = {c.code: c.name for c in regions.list_cities(session)}
    names.update({j.code: j.name for j in regions.list_jurisdictions(session)})
    return names


def statement_rows(
    session: Session, period: str, statements: list[ClearingStatement]
) -> list[list[object]]:
    n = _names(session)
    return [
        [
            period,
            s.side_a,
            n.get(s.side_a, ""),
            s.side_b,
            n.get(s.side_b, ""),
            s.claims_a_to_b,
            s.a_owes_b,
            s.claims_b_to_a,
            s.b_owes_a,
            s.net_a_to_b,
            yuan(s.net_a_to_b),
            STATUS_LABELS[s.status],
            STATUS_LABELS[s.a_status],
            s.a_by or "",
            s.a_reason or "",
            STATUS_LABELS[s.b_status],
            s.b_by or "",
            s.b_reason or "",
        ]
        for s in statements
    ]


def city_rows(
    session: Session, period: str, statements: list[ClearingStatement]
) -> list[list[object]]:
    n = _names(session)
    out: list[list[object]] = []
    for s in statements:
        for d in cs.city_details(session, s):
            out.append(
                [
                    period,
                    d.debtor,
                    n.get(d.debtor, ""),
                    d.creditor,
                    n.get(d.creditor, ""),
                    d.claims,
                    d.amount,
                    yuan(d.amount),
                ]
            )
    return out


def to_csv(session: Session, period: str, statements: list[ClearingStatement]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(HEADER)
    w.writerows(statement_rows(session, period, statements))
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def to_xlsx(session: Session, period: str, statements: list[ClearingStatement]) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "对账单"
    ws.append(HEADER)
    for row in statement_rows(session, period, statements):
        ws.append(row)
    detail = wb.create_sheet("城市明细")
    detail.append(CITY_HEADER)
    for row in city_rows(session, period, statements):
        detail.append(row)
    for sheet in (ws, detail):
        sheet.freeze_panes = "A2"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
