import pytest
from stdnum.cn import ric

from tongban.identity.domain import (
    mask_id_number,
    validate_credit_code,
    validate_id_number,
)


def test_valid_id_number_passes_and_is_normalised():
    assert validate_id_number(" 11010519491231002x ") == "11010519491231002X"


@pytest.mark.parametrize(
    "bad",
    ["110105194912310021", "11010519491331002X", "1101051949123100", "abcdefghijklmnopqr", ""],
)
def test_invalid_id_numbers_are_refused_in_chinese(bad):
    with pytest.raises(ValueError, match="身份证号码无效"):
        validate_id_number(bad)


def test_credit_code():
    assert validate_credit_code("91110000600037341L") == "91110000600037341L"
    with pytest.raises(ValueError, match="统一社会信用代码无效"):
        validate_credit_code("91110000600037341A")


def test_masking():
    assert mask_id_number("320102199001011234") == "3201**********1234"
    assert mask_id_number(None) == ""


def test_area_code_missing_from_stdnum_table_still_checked() -> None:
    """python-stdnum raises KeyError for county codes it does not list (310002); such a
    number passes on its check digit and birth date, and fails on either."""
    body = "310002" + "19851112" + "357"
    good = body + ric.calc_check_digit(body + "0")
    assert validate_id_number(good) == good
    wrong_digit = good[:-1] + ("0" if good[-1] != "0" else "1")
    with pytest.raises(ValueError, match="身份证号码无效"):
        validate_id_number(wrong_digit)
    bad_date = "310002" + "19851340" + "357"
    with pytest.raises(ValueError, match="身份证号码无效"):
        validate_id_number(bad_date + ric.calc_check_digit(bad_date + "0"))


def _with_check(body: str) -> str:
    return body + ric.calc_check_digit(body + "0")


@pytest.mark.parametrize(
    ("number", "says"),
    [
        (_with_check("99010219900307123"), "地区码"),  # no such province
        (_with_check("34000019900307123"), "地区码"),  # a province is no household's place
        (_with_check("34010230000307123"), "出生日期"),  # born in the future
        (_with_check("34010218890307123"), "出生日期"),  # before 1900
        ("34010219900307123" + "Y", "18 位"),
    ],
)
def test_gb11643_says_which_part_is_wrong(number: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        validate_id_number(number)
