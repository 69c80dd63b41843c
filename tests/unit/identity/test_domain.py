import pytest

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
