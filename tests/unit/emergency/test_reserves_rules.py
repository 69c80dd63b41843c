"""Reserves without a database: the catalogue, what a movement does to a lot, expiry and
quota rules, and reading an upload (CSV in UTF-8 or GB18030, XLSX) into rows with an
error per bad row."""

from __future__ import annotations

import io
from datetime import date

import pytest
from openpyxl import Workbook

from tongban.emergency import catalogue as cat_module
from tongban.emergency import domain, rows
from tongban.emergency.catalogue import catalogue
from tongban.emergency.domain import Freshness, Movement
from tongban.errors import ValidationFailed

CAT = catalogue()


def test_the_packaged_catalogue_is_coded_and_complete() -> None:
    assert {"TST-AG", "PPE-MASK-N95", "PPE-SUIT", "DEV-VENT", "LIV-TENT", "LIV-WATER"} <= set(
        CAT.items
    )
    assert set(CAT.categories) == {i.category for i in CAT.items.values()}
    assert CAT.items["TST-AG"].perishable and not CAT.items["DEV-VENT"].perishable
    assert all(i.min_city > 0 for i in CAT.items.values())


@pytest.mark.parametrize(
    "bad",
    [
        {"code": "tst-ag"},  # lower case
        {"category": "nope"},
        {"min_city": -1},
    ],
)
def test_a_malformed_catalogue_entry_is_refused(bad: dict[str, object]) -> None:
    entry = {
        "code": "TST-X",
        "name": "x",
        "unit": "个",
        "category": "testing",
        "perishable": True,
        "min_city": 1,
        "warn_days": 10,
    }
    with pytest.raises(ValueError):
        cat_module.parse({"categories": {"testing": "检测"}, "items": [{**entry, **bad}]})


def test_duplicate_codes_are_refused() -> None:
    entry = {
        "code": "A-1",
        "name": "x",
        "unit": "个",
        "category": "c",
        "perishable": False,
        "min_city": 0,
    }
    with pytest.raises(ValueError, match="twice"):
        cat_module.parse({"categories": {"c": "c"}, "items": [entry, entry]})


def test_movements_add_take_and_set() -> None:
    assert domain.move(10, Movement.RECEIVE, 5).after == 15
    assert domain.move(10, Movement.AID_IN, 5).after == 15
    assert domain.move(10, Movement.DISPATCH, 10).after == 0
    assert domain.move(10, Movement.ISSUE, 3, "发放").delta == -3
    counted = domain.move(10, Movement.COUNT, 7)
    assert (counted.before, counted.after, counted.delta) == (10, 7, -3)
    assert domain.move(10, Movement.COUNT, 0).after == 0  # a count may empty a lot


@pytest.mark.parametrize(
    ("quantity", "movement", "amount", "reason", "field"),
    [
        (10, Movement.ISSUE, 11, "发放", "amount"),  # more than held
        (10, Movement.DISPATCH, 11, "", "amount"),
        (10, Movement.RECEIVE, 0, "", "amount"),  # nothing to move
        (10, Movement.RECEIVE, -1, "", "amount"),
        (10, Movement.ISSUE, 1, " ", "reason"),  # taken without a reason
        (10, Movement.DISPOSE, 1, "", "reason"),
        (domain.MAX_QUANTITY, Movement.RECEIVE, 1, "", "amount"),
    ],
)
def test_a_movement_that_cannot_be_is_refused_naming_the_input(
    quantity: int, movement: Movement, amount: int, reason: str, field: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        domain.move(quantity, movement, amount, reason)
    assert [e.field for e in refused.value.errors] == [field]


def test_a_new_perishable_batch_needs_an_expiry_date() -> None:
    with pytest.raises(ValidationFailed) as refused:
        domain.check_new_lot(True, None)
    assert refused.value.errors[0].field == "expiry"
    domain.check_new_lot(True, date(2027, 1, 1))
    domain.check_new_lot(False, None)
    assert domain.check_batch(" AG01 ") == "AG01"
    with pytest.raises(ValidationFailed):
        domain.check_batch("x" * (domain.BATCH_MAX + 1))


def test_freshness_and_low_stock() -> None:
    today = date(2026, 12, 1)
    assert domain.freshness(None, today, 60) is Freshness.OK
    assert domain.freshness(date(2026, 11, 30), today, 60) is Freshness.EXPIRED
    assert domain.freshness(today, today, 60) is Freshness.EXPIRING  # usable on its last day
    assert domain.freshness(date(2027, 1, 30), today, 60) is Freshness.EXPIRING
    assert domain.freshness(date(2027, 1, 31), today, 60) is Freshness.OK
    assert domain.freshness(date(2026, 12, 2), today, 0) is Freshness.OK  # no window
    assert domain.low_stock(99, 100) and not domain.low_stock(100, 100)
    assert not domain.low_stock(0, 0)


CSV_OK = (
    "储备点编码,物资编码,批号,有效期,数量\n"
    "340100-01,TST-AG,AG01,2027-06-30,5000\n"
    "340100-01,dev-vent,,,12\n"
)


def test_a_csv_upload_with_chinese_headers_reads_into_rows() -> None:
    for data in (CSV_OK.encode("utf-8-sig"), CSV_OK.encode("gb18030")):
        parsed, errors = rows.parse(data, CAT)
        assert errors == []
        assert [(r.line, r.item_code, r.batch, r.expiry, r.quantity) for r in parsed] == [
            (2, "TST-AG", "AG01", date(2027, 6, 30), 5000),
            (3, "DEV-VENT", "", None, 12),
        ]


def test_english_headers_in_any_order() -> None:
    data = b"quantity,item_code,point_code,expiry,batch\n3,LIV-TENT,310000-01,,\n"
    parsed, errors = rows.parse(data, CAT)
    assert errors == [] and parsed[0].point_code == "310000-01" and parsed[0].quantity == 3


def test_every_bad_row_is_reported_by_line_and_field() -> None:
    data = (
        "储备点编码,物资编码,批号,有效期,数量\n"
        "340100-01,TST-AG,AG01,2027-06-30,5000\n"  # line 2: fine
        ",NOPE,,,x\n"  # line 3: three problems
        "340100-01,TST-AG,AG02,,10\n"  # line 4: fine here (a known batch keeps its date)
        "340100-01,TST-AG,AG03,2027-13-01,10\n"  # line 5: no such date
        "340100-01,TST-AG,AG01,2027-06-30,1\n"  # line 6: repeats line 2
        "340100-01,LIV-TENT,,,1.5\n"  # line 7: not a whole number
    ).encode()
    parsed, errors = rows.parse(data, CAT)
    assert [r.line for r in parsed] == [2, 4]
    fields = [e.field for e in errors]
    assert fields == [
        "rows.3.point_code",
        "rows.3.item_code",
        "rows.3.quantity",
        "rows.5.expiry",
        "rows.6.batch",
        "rows.7.quantity",
    ]
    assert errors[0].message.startswith("第 3 行储备点编码")
    assert "与第 2 行重复" in errors[4].message


def test_an_upload_that_adds_needs_quantities_above_zero() -> None:
    data = b"point_code,item_code,quantity\n310000-01,LIV-TENT,0\n"
    assert rows.parse(data, CAT)[1] == []  # a count of zero is a count
    assert [e.field for e in rows.parse(data, CAT, adds=True)[1]] == ["rows.2.quantity"]


def test_a_file_without_the_required_columns_or_rows_is_refused_whole() -> None:
    assert [e.field for e in rows.parse(b"", CAT)[1]] == ["file"]
    _, errors = rows.parse("储备点编码,批号\n1,2\n".encode(), CAT)
    assert errors[0].field == "file" and "物资编码" in errors[0].message


def test_an_xlsx_upload_reads_like_a_csv() -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["储备点编码", "物资编码", "批号", "有效期", "数量"])
    sheet.append(["340100-01", "TST-AG", "AG01", date(2027, 6, 30), 5000])
    sheet.append(["340100-01", "DEV-VENT", None, None, 12.0])
    sheet.append(["340100-01", "TST-AG", "AG09", "2027/7/1", "x"])
    out = io.BytesIO()
    book.save(out)
    parsed, errors = rows.parse(out.getvalue(), CAT)
    assert [(r.item_code, r.expiry, r.quantity) for r in parsed] == [
        ("TST-AG", date(2027, 6, 30), 5000),
        ("DEV-VENT", None, 12),
    ]
    assert [e.field for e in errors] == ["rows.4.quantity"]


def test_a_corrupt_workbook_is_unreadable_not_a_crash() -> None:
    with pytest.raises(rows.Unreadable):
        rows.parse(b"PK\x03\x04 not really a zip", CAT)


def test_the_template_parses_as_a_valid_upload() -> None:
    parsed, errors = rows.parse(rows.template_csv(), CAT)
    assert errors == [] and len(parsed) == 1
