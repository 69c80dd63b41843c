"""GB/T 36904 licence identifiers and their ISO 7064 MOD 37,36 check character."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.cn import uscc
from stdnum.iso7064 import mod_37_36

from tongban.licences.identifier import (
    LicenceIdentifier,
    check_character,
    make_identifier,
    parse_identifier,
)

ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
CREDIT = "91320000134567890Y"  # valid GB 32100 code (check character Y)


def test_credit_fixture_is_valid() -> None:
    assert uscc.is_valid(CREDIT)


def test_make_and_parse() -> None:
    value = make_identifier("DL", CREDIT, "2024000001")
    assert value == "1.2.156.3005.2.DL.91320000134567890Y.2024000001.01.W"
    parsed = parse_identifier(value)
    assert parsed == LicenceIdentifier("DL", CREDIT, "2024000001", 1, "W")
    assert str(parsed) == value


def test_check_runs_over_the_concatenated_fields() -> None:
    expected = mod_37_36.calc_check_digit("DL" + CREDIT + "2024000001" + "01")
    assert check_character("DL", CREDIT, "2024000001", 1) == expected
    assert mod_37_36.is_valid("DL" + CREDIT + "2024000001" + "01" + expected)


def test_versions_and_normalisation() -> None:
    v7 = make_identifier("dl", CREDIT.lower(), "abc", 7)
    assert v7.split(".")[-2] == "07" and v7 == v7.upper()
    assert parse_identifier("  " + v7.lower() + "\n").version == 7
    assert make_identifier("DL", CREDIT, "ABC", 2) != make_identifier("DL", CREDIT, "ABC", 1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("", CREDIT, "1"), "类型"),
        (("D-L", CREDIT, "1"), "类型"),
        (("A" * 41, CREDIT, "1"), "类型"),
        (("DL", "91320000134567890X", "1"), "信用代码"),
        (("DL", "9132000013456789", "1"), "信用代码"),
        (("DL", CREDIT, ""), "流水号"),
        (("DL", CREDIT, "12.3"), "流水号"),
        (("DL", CREDIT, "1", 0), "版本"),
        (("DL", CREDIT, "1", 100), "版本"),
    ],
)
def test_make_refuses(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_identifier(*args)


GOOD = make_identifier("DL", CREDIT, "2024000001")


@pytest.mark.parametrize(
    "value",
    [
        "",
        "DL.91320000134567890Y.2024000001.01.W",
        "1.2.156.3005.3.DL.91320000134567890Y.2024000001.01.W",
        GOOD + ".X",
        GOOD.rsplit(".", 1)[0],
        GOOD.replace(".01.", ".1."),
        GOOD.replace(".01.", ".001."),
        GOOD.replace(".01.", ".00."),
        GOOD.replace(".01.", ".AB."),
        GOOD[:-1] + "*",
        GOOD[:-1] + "",
        GOOD[:-1] + "WW",
        GOOD.replace("Y.", "X."),  # credit code check
        GOOD.replace("2024000001", "2024-00001"),
        GOOD.replace("2024000001.01", "202400000.101"),  # dot moved
        GOOD.replace("DL.9", "DL9."),  # dot moved into the credit code
        GOOD[:-1] + "X",
    ],
)
def test_parse_refuses(value: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_identifier(value)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in str(info.value))  # Chinese message


def test_parse_refuses_non_string() -> None:
    with pytest.raises(ValueError):
        parse_identifier(12345)  # type: ignore[arg-type]


fields = st.text(alphabet=ALNUM, min_size=1, max_size=12)


@settings(deadline=None)  # a loaded shared machine must not fail a correct test
@given(type_code=fields, serial=fields, version=st.integers(1, 99), data=st.data())
def test_every_single_substitution_is_caught(
    type_code: str, serial: str, version: int, data: st.DataObject
) -> None:
    value = make_identifier(type_code, CREDIT, serial, version)
    assert parse_identifier(value).serial == serial
    pos = data.draw(st.integers(0, len(value) - 1))
    replacement = data.draw(st.sampled_from(ALNUM + ".").filter(lambda c: c != value[pos]))
    mutated = value[:pos] + replacement + value[pos + 1 :]
    with pytest.raises(ValueError):
        parse_identifier(mutated)


@settings(deadline=None)  # a loaded shared machine must not fail a correct test
@given(type_code=fields, serial=fields, version=st.integers(1, 99))
def test_every_substitution_of_every_position(type_code: str, serial: str, version: int) -> None:
    value = make_identifier(type_code, CREDIT, serial, version)
    for pos, original in enumerate(value):
        for replacement in ALNUM:
            if replacement != original:
                with pytest.raises(ValueError):
                    parse_identifier(value[:pos] + replacement + value[pos + 1 :])
