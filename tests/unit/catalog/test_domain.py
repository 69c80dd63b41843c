"""Form validation in Chinese, HTML-form coercion, and the shipped catalogue's integrity."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tongban.catalog.domain import (
    MODE_LABELS,
    Mode,
    coerce_form,
    form_errors,
    read_catalogue,
    validate_catalogue,
)
from tongban.regions.domain import AuthorityType

SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "测试表",
    "required": ["name", "age"],
    "properties": {
        "name": {"type": "string", "title": "姓名", "minLength": 2, "maxLength": 5},
        "age": {"type": "integer", "title": "年龄", "minimum": 0, "maximum": 150},
        "amount": {"type": "number", "title": "金额", "exclusiveMinimum": 0},
        "gender": {"type": "string", "title": "性别", "enum": ["男", "女"]},
        "born": {"type": "string", "title": "出生日期", "format": "date"},
        "id_number": {
            "type": "string", "title": "身份证号码", "pattern": r"^[1-9]\d{16}[\dXx]$",
            "description": "18位居民身份证号码",
        },
        "mail": {"type": "boolean", "title": "是否邮寄"},
    },
}  # fmt: skip
VALID = {"name": "王芳", "age": 30}


def errors_of(data: dict[str, Any]) -> dict[str, str]:
    return {e["field"]: e["message"] for e in form_errors(SCHEMA, data)}


def test_valid_data_passes() -> None:
    full = {**VALID, "amount": 1.5, "gender": "女", "born": "1990-03-07",
            "id_number": "32050219900307123X", "mail": False}  # fmt: skip
    assert form_errors(SCHEMA, VALID) == []
    assert form_errors(SCHEMA, full) == []


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"age": 30}, "name", "“姓名”为必填项"),
        ({"name": "王芳"}, "age", "“年龄”为必填项"),
        ({**VALID, "age": "三十"}, "age", "“年龄”应为整数"),
        ({**VALID, "age": 3.5}, "age", "“年龄”应为整数"),
        ({**VALID, "age": True}, "age", "“年龄”应为整数"),
        ({**VALID, "name": 12}, "name", "“姓名”应为文本"),
        ({**VALID, "mail": "yes"}, "mail", "“是否邮寄”应为是或否"),
        ({**VALID, "gender": "未知"}, "gender", "“性别”应为以下之一：男、女"),
        (
            {**VALID, "id_number": "123"},
            "id_number",
            "“身份证号码”格式不正确（18位居民身份证号码）",
        ),
        ({**VALID, "name": "王"}, "name", "“姓名”至少需要2个字符"),
        ({**VALID, "name": "王" * 6}, "name", "“姓名”不能超过5个字符"),
        ({**VALID, "age": -1}, "age", "“年龄”不能小于0"),
        ({**VALID, "age": 151}, "age", "“年龄”不能大于150"),
        ({**VALID, "amount": 0}, "amount", "“金额”应大于0"),
        ({**VALID, "born": "1990-02-30"}, "born", "“出生日期”应为有效日期，格式为 YYYY-MM-DD"),
        ({**VALID, "born": "19900307"}, "born", "“出生日期”应为有效日期，格式为 YYYY-MM-DD"),
    ],
)
def test_each_error_kind_is_named_in_chinese(
    data: dict[str, Any], field: str, message: str
) -> None:
    assert errors_of(data) == {field: message}


def test_one_message_per_field_the_most_basic_first_in_form_order() -> None:
    problems = form_errors(SCHEMA, {"born": "x", "age": "abc"})
    assert [p["field"] for p in problems] == ["name", "age", "born"]
    assert problems[1]["message"] == "“年龄”应为整数"


def test_non_object_and_unknown_fields() -> None:
    assert form_errors(SCHEMA, [1, 2]) == [{"field": "form", "message": "申请表内容应为对象"}]  # type: ignore[arg-type]
    closed = {**SCHEMA, "additionalProperties": False}
    assert form_errors(closed, {**VALID, "hack": 1}) == [
        {"field": "form", "message": "申请表包含未定义的字段：hack"}
    ]


def test_coerce_form_turns_browser_strings_into_schema_types() -> None:
    raw = {"name": "  王芳 ", "age": "30", "amount": "2.50", "mail": "true", "born": "",
           "gender": "女", "csrf_token": "abc"}  # fmt: skip
    assert coerce_form(SCHEMA, raw) == {
        "name": "王芳", "age": 30, "amount": 2.5, "mail": True, "gender": "女",
    }  # fmt: skip
    assert coerce_form(SCHEMA, {"amount": "3", "mail": "on"}) == {"amount": 3, "mail": True}
    assert coerce_form(SCHEMA, {"mail": "false"}) == {"mail": False}


def test_coerce_form_leaves_bad_numbers_for_validation_to_report() -> None:
    data = coerce_form(SCHEMA, {"name": "王芳", "age": "三十", "amount": "nan"})
    assert data == {"name": "王芳", "age": "三十", "amount": "nan"}
    assert errors_of(data) == {"age": "“年龄”应为整数", "amount": "“金额”应为数字"}


def test_blank_required_field_is_reported_missing_after_coercion() -> None:
    assert errors_of(coerce_form(SCHEMA, {"name": "   ", "age": "1"})) == {"name": "“姓名”为必填项"}


# --------------------------------------------------------------------------- the catalogue

CATALOGUE = read_catalogue()

#: One value per pattern the catalogue uses: a new pattern must bring its own sample.
PATTERN_SAMPLES = {
    r"^[1-9]\d{16}[\dXx]$": "320502199003071230",  # a valid GB 11643 number (format gb11643)
    r"^\d{4}-(0[1-9]|1[0-2])$": "2024-06",
    r"^[\u4e00-\u9fa5][A-Z][A-Z0-9]{5,6}$": "苏E12345",
    r"^\d{6,20}$": "12345678",
    r"^\d{12,19}$": "6222021234567890",
}


def minimal_document(schema: dict[str, Any]) -> dict[str, Any]:
    """A value for each required field, built from the field's own constraints."""
    doc: dict[str, Any] = {}
    for name in schema["required"]:
        prop = schema["properties"][name]
        if "enum" in prop:
            doc[name] = prop["enum"][0]
        elif prop["type"] == "boolean":
            doc[name] = True
        elif prop["type"] in ("integer", "number"):
            doc[name] = prop.get("minimum", 1)
        elif prop.get("format") == "date":
            doc[name] = "2024-02-29"
        elif "pattern" in prop:
            doc[name] = PATTERN_SAMPLES[prop["pattern"]]
        else:
            doc[name] = "测" * max(prop.get("minLength", 1), 2)
    return doc


def test_shipped_catalogue_is_valid() -> None:
    assert validate_catalogue(CATALOGUE) == []


def test_catalogue_is_large_and_covers_every_mode() -> None:
    assert len(CATALOGUE) >= 30
    joint = [m for m in CATALOGUE if Mode.JOINT in m["modes"]]
    assert len(joint) >= 3 and all(m["joint_authority_types"] for m in joint)
    assert {mode for m in CATALOGUE for mode in m["modes"]} == set(MODE_LABELS)
    assert {s for m in CATALOGUE for s in m["subjects"]} == {"个人", "法人"}
    assert len({m["authority_type"] for m in CATALOGUE}) >= 10
    names = {m["name"] for m in CATALOGUE}
    for expected in (
        "企业设立登记",
        "异地就医登记备案",
        "住房公积金异地转移接续",
        "社会保障卡申领",
    ):
        assert expected in names


@pytest.mark.parametrize("matter", CATALOGUE, ids=[m["code"] for m in CATALOGUE])
def test_each_form_is_a_flat_valid_schema_its_minimal_document_passes(
    matter: dict[str, Any],
) -> None:
    schema = matter["form_schema"]
    Draft202012Validator.check_schema(schema)
    assert 3 <= len(schema["properties"]) <= 8
    assert schema["required"]
    assert all(
        p["type"] in ("string", "integer", "number", "boolean")
        for p in schema["properties"].values()
    )
    assert all(re.search(r"[\u4e00-\u9fff]", p["title"]) for p in schema["properties"].values())
    assert form_errors(schema, minimal_document(schema)) == []
    # Every required field is really required.
    assert {e["field"] for e in form_errors(schema, {})} == set(schema["required"])


def test_matter_codes_and_materials() -> None:
    codes = [m["code"] for m in CATALOGUE]
    assert len(codes) == len(set(codes))
    for m in CATALOGUE:
        assert re.fullmatch(r"[A-Z0-9]+(-[A-Z0-9]+)*", m["code"])
        assert m["authority_type"] in {t.value for t in AuthorityType}
        material_codes = [x["code"] for x in m["materials"]]
        assert len(material_codes) == len(set(material_codes))
    id_cards = [x for m in CATALOGUE for x in m["materials"] if x["name"] == "居民身份证"]
    assert id_cards and all(x["licence_type"] == "resident_id_card" for x in id_cards)


def _broken(change: Any) -> list[str]:
    items = copy.deepcopy(CATALOGUE)
    change(items)
    return validate_catalogue(items)


def _set(index: int, key: str, value: Any) -> Any:
    def change(items: list[dict[str, Any]]) -> None:
        items[index][key] = value

    return change


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda items: items.append(copy.deepcopy(items[0])), "duplicate code"),
        (_set(0, "code", "yrd ga 1"), "code must be upper-case"),
        (_set(0, "authority_type", "police"), "unknown authority type 'police'"),
        (_set(0, "modes", ["online", "by_post"]), "modes must be a non-empty subset"),
        (_set(0, "modes", []), "modes must be a non-empty subset"),
        (_set(0, "joint_authority_types", []), "needs joint_authority_types"),
        (_set(1, "joint_authority_types", ["tax"]), "'joint' is not a mode"),
        (_set(0, "subjects", ["公民"]), "subjects must be"),
        (_set(0, "authority_level", "county"), "authority_level"),
        (_set(0, "time_limit_days", 0), "time_limit_days"),
        (_set(0, "time_limit_days", "20"), "time_limit_days"),
        (_set(0, "materials", []), "materials must be a non-empty list"),
        (lambda items: items[0].pop("legal_basis"), "missing keys ['legal_basis']"),
        (lambda items: items[0].update(extra=1), "unknown keys ['extra']"),
        (lambda items: items[0]["materials"].append(copy.deepcopy(items[0]["materials"][0])),
         "duplicate material code"),
        (lambda items: items[0]["form_schema"].update(type="objekt"), "not a valid draft 2020-12 schema"),
        (lambda items: items[0]["form_schema"].update(required=[]), "at least one required field"),
        (lambda items: items[0]["form_schema"]["required"].append("ghost"), "'ghost' is not a property"),
        (lambda items: items[0]["form_schema"]["properties"].update(
            nested={"type": "object", "title": "嵌套"}), "forms are flat"),
        (lambda items: items[0]["form_schema"]["properties"]["remarks"].pop("title"), "needs a title"),
        (lambda items: items[0]["form_schema"]["properties"]["remarks"].update(format="email"),
         "unsupported format"),
    ],
)  # fmt: skip
def test_broken_catalogue_is_flagged(change: Any, expected: str) -> None:
    problems = _broken(change)
    assert any(expected in p for p in problems), problems


def test_catalogue_must_be_a_list() -> None:
    assert validate_catalogue({"code": "X"}) == ["the catalogue must be a JSON list of matters"]  # type: ignore[arg-type]
