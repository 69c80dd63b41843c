"""Reading a stock upload (CSV or XLSX) into rows, with an error per bad row. Pure Python
(openpyxl reads the workbook; nothing here touches the database).

One row is one batch at one reserve point: 储备点编码, 物资编码, 批号, 有效期, 数量 (or the
English headers point_code, item_code, batch, expiry, quantity), in any column order.
Every row is checked before anything is written, and every problem is reported with
its line number (the header is line 1), so a keeper fixes the file once."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from tongban.emergency import domain
from tongban.emergency.catalogue import Catalogue
from tongban.errors import FieldError, ValidationFailed

#: The most rows one upload may carry.
MAX_ROWS = 20_000

#: Header names (lower-cased, trimmed) -> field.
HEADERS = {
    "储备点编码": "point_code",
    "储备点": "point_code",
    "point_code": "point_code",
    "物资编码": "item_code",
    "item_code": "item_code",
    "批号": "batch",
    "batch": "batch",
    "有效期": "expiry",
    "有效期至": "expiry",
    "expiry": "expiry",
    "数量": "quantity",
    "quantity": "quantity",
}
REQUIRED = ("point_code", "item_code", "quantity")
FIELD_LABELS = {
    "point_code": "储备点编码",
    "item_code": "物资编码",
    "batch": "批号",
    "expiry": "有效期",
    "quantity": "数量",
}
#: How the template file starts.
TEMPLATE_HEADER = ["储备点编码", "物资编码", "批号", "有效期", "数量"]

_XLSX_MAGIC = b"PK\x03\x04"


class Unreadable(ValueError):
    """The file is neither a CSV nor an XLSX this reader understands (Chinese message)."""


@dataclass(frozen=True)
class UploadRow:
    line: int
    point_code: str
    item_code: str
    batch: str
    expiry: date | None
    quantity: int


def row_error(line: int, field: str, message: str) -> FieldError:
    """An error of one row, named `rows.<line>.<field>` (a page shows it by line)."""
    return FieldError(
        f"rows.{line}.{field}", f"第 {line} 行{FIELD_LABELS.get(field, '')}：{message}"
    )


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise Unreadable("文件编码无法识别，请保存为 UTF-8 编码的 CSV 或 XLSX")


def _csv_records(data: bytes) -> list[list[Any]]:
    text = _decode(data)
    try:
        return [row for row in csv.reader(io.StringIO(text))]
    except csv.Error as e:
        raise Unreadable(f"CSV 格式错误：{e}") from e


def _xlsx_records(data: bytes) -> list[list[Any]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as e:  # noqa: BLE001 - a corrupt workbook raises many kinds
        raise Unreadable("XLSX 文件无法读取，请确认文件未损坏") from e
    try:
        sheet = book.worksheets[0]
        out: list[list[Any]] = []
        for row in sheet.iter_rows(values_only=True):
            out.append(list(row))
            if len(out) > MAX_ROWS + 1:
                break
        return out
    finally:
        book.close()


def records(data: bytes) -> list[list[Any]]:
    """The rows of a CSV or XLSX file (told apart by content, not by name)."""
    if data.startswith(_XLSX_MAGIC):
        return _xlsx_records(data)
    return _csv_records(data)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _date(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    if re.fullmatch(r"\d{8}", text):
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    parts = [p for p in re.split(r"[-/.年月日\s]", text) if p]
    if len(parts) != 3 or not all(p.isdigit() for p in parts) or len(parts[0]) != 4:
        raise ValueError(text)
    return date(int(parts[0]), int(parts[1]), int(parts[2]))


def _quantity(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError
        return int(value)
    text = str(value).strip().replace(",", "")
    if not text.isdigit():
        raise ValueError
    return int(text)


def parse(
    data: bytes, catalogue: Catalogue, *, adds: bool = False
) -> tuple[list[UploadRow], list[FieldError]]:
    """The rows of an upload and every problem found, by line. `adds`: the rows add
    stock (入库), so a quantity must be above zero (a count may be zero)."""
    table = [r for r in records(data) if any(_text(v) for v in r)]
    if not table:
        return [], [FieldError("file", "文件中没有数据")]
    header = [HEADERS.get(_text(h).lower(), "") for h in table[0]]
    missing = [FIELD_LABELS[f] for f in REQUIRED if f not in header]
    if missing:
        return [], [FieldError("file", f"缺少列：{'、'.join(missing)}（首行须为表头）")]
    if len(table) - 1 > MAX_ROWS:
        return [], [FieldError("file", f"一次最多导入 {MAX_ROWS} 行")]
    rows: list[UploadRow] = []
    errors: list[FieldError] = []
    seen: dict[tuple[str, str, str], int] = {}
    for line, raw in enumerate(table[1:], start=2):
        cells = {f: raw[i] if i < len(raw) else None for i, f in enumerate(header) if f}
        bad: list[FieldError] = []
        point = _text(cells.get("point_code"))
        if not point:
            bad.append(row_error(line, "point_code", "必填"))
        code = _text(cells.get("item_code")).upper()
        item = catalogue.get(code)
        if item is None:
            bad.append(row_error(line, "item_code", f"物资目录中没有“{code or '（空）'}”"))
        expiry: date | None = None
        try:
            expiry = _date(cells.get("expiry"))
        except ValueError:
            bad.append(row_error(line, "expiry", "日期格式应为 YYYY-MM-DD"))
        batch = _text(cells.get("batch"))
        try:
            batch = domain.check_batch(batch)
        except ValidationFailed as e:
            bad += [row_error(line, err.field, err.message) for err in e.errors]
        quantity = 0
        try:
            quantity = _quantity(cells.get("quantity"))
            if quantity > domain.MAX_QUANTITY or (adds and quantity == 0):
                raise ValueError
        except ValueError:
            low = 1 if adds else 0
            bad.append(row_error(line, "quantity", f"须为 {low} 至 {domain.MAX_QUANTITY} 的整数"))
        key = (point, code, batch)
        if not bad and key in seen:
            bad.append(
                row_error(line, "batch", f"与第 {seen[key]} 行重复（同一储备点、物资和批号）")
            )
        if bad:
            errors.extend(bad)
            continue
        seen[key] = line
        rows.append(UploadRow(line, point, code, batch, expiry, quantity))
    return rows, errors


def template_csv() -> bytes:
    """An empty upload with its header and one example row (UTF-8 with BOM, so that
    Excel opens it in Chinese)."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(TEMPLATE_HEADER)
    w.writerow(["340100-01", "TST-AG", "AG20261101", "2027-11-01", "5000"])
    return out.getvalue().encode("utf-8-sig")
