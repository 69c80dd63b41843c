"""Bounded input types, shared by every schema and page form parser.

Whatever crosses the edge as a number, an amount, a date or a coordinate is one of
these: finite, within the range the rest of the code (and the database's 32/64-bit
integer columns) can hold, and — for datetimes — timezone-aware and in a sane range.
A value outside them is a 4xx naming the field, never a 500 deep in a service.

Pages parse their forms with `parse_form_value(Type, text)`, which raises `ValueError`
with a Chinese message, so both edges apply the same bounds.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, Field, TypeAdapter, ValidationError

#: Range of an SQL INTEGER (32-bit signed): counts, sequence numbers, list numbers.
INT32_MAX = 2**31 - 1
#: Range of an SQL BIGINT (64-bit signed).
INT64_MAX = 2**63 - 1
#: Largest amount in fen (分) anyone may send: ten billion yuan, far above any claim
#: or daily total, far below 64 bits even when summed over a year of claims.
MAX_FEN = 10**12
#: Dates and datetimes accepted from outside (validity periods, days, periods).
MIN_YEAR, MAX_YEAR = 1900, 2200

Int32 = Annotated[int, Field(ge=-(2**31), le=INT32_MAX)]
NonNegInt32 = Annotated[int, Field(ge=0, le=INT32_MAX)]
PositiveInt32 = Annotated[int, Field(ge=1, le=INT32_MAX)]
NonNegInt64 = Annotated[int, Field(ge=0, le=INT64_MAX)]

#: Money in fen. Amounts sent to reconcile or settle are never negative.
Fen = Annotated[int, Field(ge=0, le=MAX_FEN, description="金额（分）")]
#: A signed amount in fen (differences, net positions).
SignedFen = Annotated[int, Field(ge=-MAX_FEN, le=MAX_FEN, description="金额（分，可为负）")]
#: Money in yuan as typed by a person: at most two decimals, finite, non-negative.
Yuan = Annotated[
    Decimal,
    Field(ge=0, le=Decimal(MAX_FEN) / 100, max_digits=13, decimal_places=2, allow_inf_nan=False),
]

Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]


def _sane_datetime(value: datetime) -> datetime:
    if not MIN_YEAR <= value.astimezone(UTC).year < MAX_YEAR:
        raise ValueError(f"时间须在 {MIN_YEAR} 年至 {MAX_YEAR} 年之间")
    return value


def _sane_date(value: date) -> date:
    if not MIN_YEAR <= value.year < MAX_YEAR:
        raise ValueError(f"日期须在 {MIN_YEAR} 年至 {MAX_YEAR} 年之间")
    return value


#: A timezone-aware datetime between 1900 and 2200 (a naive one is ambiguous: refused).
SaneDatetime = Annotated[AwareDatetime, AfterValidator(_sane_datetime)]
#: A calendar date between 1900 and 2200.
SaneDate = Annotated[date, AfterValidator(_sane_date)]

#: Chinese messages for the pydantic errors these types raise.
MESSAGES = {
    "finite_number": "须为有限数值",
    "greater_than_equal": "数值过小",
    "less_than_equal": "数值过大",
    "greater_than": "数值过小",
    "less_than": "数值过大",
    "decimal_max_digits": "数字位数过多",
    "decimal_max_places": "小数位数过多",
    "decimal_whole_digits": "整数位数过多",
    "decimal_parsing": "应为数字",
    "decimal_type": "应为数字",
    "int_parsing": "应为整数",
    "int_from_float": "应为整数",
    "int_type": "应为整数",
    "float_parsing": "应为数字",
    "float_type": "应为数字",
    "timezone_aware": "须带时区",
    "datetime_parsing": "时间格式无效",
    "datetime_from_date_parsing": "时间格式无效",
    "date_parsing": "日期格式无效",
    "date_from_datetime_parsing": "日期格式无效",
    "date_from_datetime_inexact": "日期格式无效",
}

_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def parse_form_value(kind: Any, text: str) -> Any:
    """`text` from a page form, validated as `kind` (one of the types above);
    ValueError with a Chinese message when it is not one."""
    adapter = _ADAPTERS.get(kind)
    if adapter is None:
        adapter = _ADAPTERS[kind] = TypeAdapter(kind)
    try:
        return adapter.validate_python(text.strip(), strict=False)
    except ValidationError as e:
        err = e.errors()[0]
        ctx = err.get("ctx") or {}
        if err["type"] == "value_error" and "error" in ctx:
            raise ValueError(str(ctx["error"])) from None
        raise ValueError(MESSAGES.get(err["type"], "取值无效")) from None
