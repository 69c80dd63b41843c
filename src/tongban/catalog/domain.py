"""Rules of the matter catalogue: handling modes, application-form validation, and the
checks a catalogue data file must pass before it is loaded.

Pure Python (plus `jsonschema`): no SQLAlchemy, no FastAPI.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker, SchemaError, ValidationError

from tongban.identity.domain import validate_id_number
from tongban.regions.domain import AuthorityType


class Mode(StrEnum):
    """Handling modes of 国办发〔2020〕35号."""

    ONLINE = "online"  # 全程网办
    PROXY = "proxy"  # 异地代收代办
    JOINT = "joint"  # 多地联办


MODE_LABELS: dict[str, str] = {
    Mode.ONLINE: "全程网办",
    Mode.PROXY: "异地代收代办",
    Mode.JOINT: "多地联办",
}

MODE_DESCRIPTIONS: dict[str, str] = {
    Mode.ONLINE: "申请、受理、审查、决定、送达全流程网上办理，无需到现场",
    Mode.PROXY: "在异地政务服务窗口提交材料，由窗口代收并转交有管辖权的部门办理",
    Mode.JOINT: "由一地受理，相关地区部门内部协同办理，申请人只需到一地",
}

SUBJECTS: tuple[str, ...] = ("个人", "法人")

LEVEL_LABELS: dict[str, str] = {"city": "市级", "province": "省级"}

#: The JSON types a flat application form may use, and how a page names them.
TYPE_LABELS: dict[str, str] = {
    "string": "文本",
    "integer": "整数",
    "number": "数字",
    "boolean": "是或否",
}

#: Keys of one catalogue entry and of one of its materials, exactly.
MATTER_KEYS = frozenset(
    {
        "code", "name", "subjects", "category", "authority_type", "authority_level", "modes",
        "time_limit_days", "description", "legal_basis", "result_licence_type",
        "joint_authority_types", "materials", "form_schema",
    }
)  # fmt: skip
MATERIAL_KEYS = frozenset({"code", "name", "required", "licence_type", "description"})
#: Keywords a form property may carry: enough to render it as one HTML input.
PROPERTY_KEYS = frozenset(
    {"type", "title", "description", "enum", "format", "pattern", "minLength", "maxLength",
     "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "const", "default",
     "x-personal-id"}
)  # fmt: skip
#: Annotation of a form field that holds a personal identifier (an ID number, a bank or
#: housing-fund account): shown masked to whoever does not handle the case, like the
#: applicant's own ID number (cases.access decides who sees full numbers).
PERSONAL_ID = "x-personal-id"
#: Formats a form field may declare: a date, a GB 11643 citizen ID number (its region
#: code, birth date and check digit, as registration and the window check them).
SUPPORTED_FORMATS = frozenset({"date", "gb11643"})

# GB/T 39554.1 leaves the coding scheme to the issuer; ours is upper-case segments.
MATTER_CODE = re.compile(r"^[A-Z0-9]+(?:-[A-Z0-9]+)*$")
SLUG = re.compile(r"^[a-z][a-z0-9_]*$")
FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
MAX_TIME_LIMIT_DAYS = 365


def _gb11643(value: object) -> bool:
    if isinstance(value, str):
        validate_id_number(value)  # raises ValueError saying which part is wrong
    return True


_FORMAT_CHECKER = FormatChecker()
_FORMAT_CHECKER.checks("gb11643", raises=ValueError)(_gb11643)


class CatalogueInvalid(ValueError):
    """The catalogue data file has problems; `problems` lists them (developer-facing)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("catalogue data is invalid:\n" + "\n".join(problems))
        self.problems = problems


# --------------------------------------------------------------------------- the data file


def catalogue_path() -> Path:
    """The catalogue shipped with the package."""
    return Path(str(resources.files("tongban.catalog") / "data" / "matters.json"))


def read_catalogue(path: Path | None = None) -> list[dict[str, Any]]:
    """The entries of a catalogue file (the shipped one by default), unchecked."""
    with (path or catalogue_path()).open(encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, list):
        raise CatalogueInvalid(["the catalogue must be a JSON list of matters"])
    return data


# --------------------------------------------------------------------------- forms


def _title(schema: Mapping[str, Any], field: str) -> str:
    prop = schema.get("properties", {}).get(field, {})
    return str(prop.get("title") or field) if isinstance(prop, Mapping) else field


def _number(value: Any) -> str:
    """10.0 reads as 10 on a page."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _message(error: ValidationError, title: str, prop: Mapping[str, Any]) -> str:
    kind = error.validator
    value: Any = error.validator_value
    t = f"“{title}”"
    if kind == "type":
        types = [value] if isinstance(value, str) else list(value)
        return f"{t}应为{'或'.join(TYPE_LABELS.get(x, x) for x in types)}"
    if kind == "enum":
        return f"{t}应为以下之一：{'、'.join(str(v) for v in value)}"
    if kind == "const":
        return f"{t}必须勾选" if value is True else f"{t}的取值不符合要求"
    if kind == "pattern":
        hint = prop.get("description") if isinstance(prop, Mapping) else None
        return f"{t}格式不正确（{hint}）" if hint else f"{t}格式不正确"
    if kind == "minLength":
        return f"{t}为必填项" if value == 1 else f"{t}至少需要{value}个字符"
    if kind == "maxLength":
        return f"{t}不能超过{value}个字符"
    if kind == "minimum":
        return f"{t}不能小于{_number(value)}"
    if kind == "maximum":
        return f"{t}不能大于{_number(value)}"
    if kind == "exclusiveMinimum":
        return f"{t}应大于{_number(value)}"
    if kind == "exclusiveMaximum":
        return f"{t}应小于{_number(value)}"
    if kind == "format":
        if value == "date":
            return f"{t}应为有效日期，格式为 YYYY-MM-DD"
        if value == "gb11643":
            why = str(error.cause or "").removeprefix("身份证号码无效")
            return f"{t}无效{why}" if why else f"{t}无效（不符合 GB 11643）"
        return f"{t}格式不正确"
    return f"{t}填写有误"


#: When one field breaks several rules, the page shows the most basic one.
_PRIORITY = {"required": 0, "type": 1, "format": 2, "enum": 3, "const": 3}


def form_errors(schema: Mapping[str, Any], data: Mapping[str, Any]) -> list[dict[str, str]]:
    """What is wrong with `data` as an application form of `schema`: at most one entry per
    field, in the form's order, each naming the field (or "form") and saying in Chinese
    what to fix, e.g. {"field": "name", "message": "“姓名”为必填项"}."""
    if not isinstance(data, Mapping):
        return [{"field": "form", "message": "申请表内容应为对象"}]
    validator = Draft202012Validator(schema, format_checker=_FORMAT_CHECKER)
    found: dict[str, tuple[int, str]] = {}

    def add(field: str, kind: str, message: str) -> None:
        rank = _PRIORITY.get(kind, 9)
        if field not in found or rank < found[field][0]:
            found[field] = (rank, message)

    for error in validator.iter_errors(dict(data)):
        kind = str(error.validator)
        if kind == "required" and not error.path:
            # One error per missing name, but the name is only in the English message:
            # recompute which ones are missing.
            for name in error.validator_value:
                if name not in error.instance:
                    add(name, kind, f"“{_title(schema, name)}”为必填项")
        elif kind == "additionalProperties" and not error.path:
            allowed = set(schema.get("properties", {}))
            extra = sorted(str(k) for k in error.instance if k not in allowed)
            add("form", kind, f"申请表包含未定义的字段：{'、'.join(extra)}")
        elif error.path:
            field = str(error.path[0])
            prop = schema.get("properties", {}).get(field, {})
            add(field, kind, _message(error, _title(schema, field), prop))
        else:
            add("form", kind, "申请表填写有误")

    order = {name: i for i, name in enumerate(schema.get("properties", {}))}
    fields = sorted(found, key=lambda f: order.get(f, len(order)))
    return [{"field": f, "message": found[f][1]} for f in fields]


_TRUE = frozenset({"true", "on", "1", "yes", "是"})
_FALSE = frozenset({"false", "off", "0", "no", "否"})


def _coerce(prop: Mapping[str, Any], value: str) -> Any:
    kind = prop.get("type")
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            number = float(value)
            if not math.isfinite(number):
                return value
            return int(number) if re.fullmatch(r"[+-]?\d+", value) else number
    except ValueError:
        return value  # left as text, so validation says it is not a number
    if kind == "boolean":
        low = value.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
    return value


def coerce_form(schema: Mapping[str, Any], raw: Mapping[str, Any]) -> dict[str, Any]:
    """What a browser posted, as the schema's types: numbers parsed, checkboxes as booleans,
    blank fields left out (so "required" catches them), unknown fields (the CSRF token,
    buttons) dropped. A value that does not parse stays text and fails validation."""
    result: dict[str, Any] = {}
    for name, prop in schema.get("properties", {}).items():
        if name not in raw or not isinstance(prop, Mapping):
            continue
        value = raw[name]
        if value is None:
            continue
        if not isinstance(value, str):
            result[name] = value
            continue
        value = value.strip()
        if value == "":
            continue
        result[name] = _coerce(prop, value)
    return result


def personal_fields(schema: Mapping[str, Any] | None) -> frozenset[str]:
    """Names of the form's fields declared as personal identifiers (`x-personal-id`)."""
    props = (schema or {}).get("properties", {})
    if not isinstance(props, Mapping):
        return frozenset()
    return frozenset(
        name for name, prop in props.items() if isinstance(prop, Mapping) and prop.get(PERSONAL_ID)
    )


# --------------------------------------------------------------------------- the catalogue


def _form_schema_problems(where: str, schema: Any) -> list[str]:
    if not isinstance(schema, dict):
        return [f"{where}: form_schema must be an object"]
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as e:
        return [f"{where}: form_schema is not a valid draft 2020-12 schema: {e.message}"]
    problems: list[str] = []
    if schema.get("type") != "object":
        problems.append(f"{where}: form_schema must have type 'object'")
    if not isinstance(schema.get("title"), str) or not schema["title"]:
        problems.append(f"{where}: form_schema needs a title")
    props = schema.get("properties")
    if not isinstance(props, dict) or not props:
        return [*problems, f"{where}: form_schema needs properties"]
    required = schema.get("required")
    if not isinstance(required, list) or not required:
        problems.append(f"{where}: form_schema needs at least one required field")
    else:
        for name in required:
            if name not in props:
                problems.append(f"{where}: required field {name!r} is not a property")
    for name, prop in props.items():
        at = f"{where}: field {name!r}"
        if not FIELD_NAME.match(name):
            problems.append(f"{at}: name must be a lower-case identifier")
        if not isinstance(prop, dict):
            problems.append(f"{at}: must be an object")
            continue
        if prop.get("type") not in TYPE_LABELS:
            problems.append(f"{at}: type must be one of {sorted(TYPE_LABELS)} (forms are flat)")
        if not isinstance(prop.get("title"), str) or not prop["title"]:
            problems.append(f"{at}: needs a title")
        unknown = set(prop) - PROPERTY_KEYS
        if unknown:
            problems.append(f"{at}: unsupported keywords {sorted(unknown)}")
        if PERSONAL_ID in prop and (prop[PERSONAL_ID] is not True or prop.get("type") != "string"):
            problems.append(f"{at}: {PERSONAL_ID} must be true on a string field")
        if "format" in prop and prop["format"] not in SUPPORTED_FORMATS:
            problems.append(f"{at}: unsupported format {prop['format']!r}")
        if "enum" in prop and (
            not prop["enum"] or len(set(map(str, prop["enum"]))) != len(prop["enum"])
        ):
            problems.append(f"{at}: enum must list distinct values")
        if "pattern" in prop:
            try:
                re.compile(prop["pattern"])
            except (re.error, TypeError):
                problems.append(f"{at}: pattern does not compile")
    return problems


def _material_problems(where: str, materials: Any) -> list[str]:
    if not isinstance(materials, list) or not materials:
        return [f"{where}: materials must be a non-empty list"]
    problems: list[str] = []
    codes: set[str] = set()
    for i, m in enumerate(materials):
        at = f"{where}: material #{i + 1}"
        if not isinstance(m, dict):
            problems.append(f"{at}: must be an object")
            continue
        if set(m) != MATERIAL_KEYS:
            problems.append(f"{at}: keys must be exactly {sorted(MATERIAL_KEYS)}")
        code = m.get("code")
        if not isinstance(code, str) or not SLUG.match(code) or len(code) > 40:
            problems.append(f"{at}: code must be a slug of at most 40 characters")
        elif code in codes:
            problems.append(f"{at}: duplicate material code {code!r}")
        else:
            codes.add(code)
        if not isinstance(m.get("name"), str) or not m["name"] or len(m["name"]) > 120:
            problems.append(f"{at}: name must be 1-120 characters")
        if not isinstance(m.get("required"), bool):
            problems.append(f"{at}: required must be true or false")
        licence = m.get("licence_type")
        if licence is not None and (not isinstance(licence, str) or not SLUG.match(licence)):
            problems.append(f"{at}: licence_type must be null or a slug")
        if not isinstance(m.get("description", ""), str):
            problems.append(f"{at}: description must be text")
    return problems


def _matter_problems(where: str, item: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    missing, extra = MATTER_KEYS - set(item), set(item) - MATTER_KEYS
    if missing:
        problems.append(f"{where}: missing keys {sorted(missing)}")
    if extra:
        problems.append(f"{where}: unknown keys {sorted(extra)}")
    authority_types = {t.value for t in AuthorityType}

    for key, limit in (("name", 120), ("category", 40)):
        v = item.get(key)
        if not isinstance(v, str) or not v.strip() or len(v) > limit:
            problems.append(f"{where}: {key} must be 1-{limit} characters")
    for key in ("description", "legal_basis"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            problems.append(f"{where}: {key} must be non-empty text")

    subjects = item.get("subjects")
    if (
        not isinstance(subjects, list)
        or not subjects
        or len(set(subjects)) != len(subjects)
        or not set(subjects) <= set(SUBJECTS)
    ):
        problems.append(f"{where}: subjects must be a non-empty subset of {list(SUBJECTS)}")

    if item.get("authority_type") not in authority_types:
        problems.append(f"{where}: unknown authority type {item.get('authority_type')!r}")
    if item.get("authority_level") not in LEVEL_LABELS:
        problems.append(f"{where}: authority_level must be 'city' or 'province'")

    modes = item.get("modes")
    mode_values = {m.value for m in Mode}
    if (
        not isinstance(modes, list)
        or not modes
        or len(set(modes)) != len(modes)
        or not set(modes) <= mode_values
    ):
        problems.append(f"{where}: modes must be a non-empty subset of {sorted(mode_values)}")
        modes = []

    joint = item.get("joint_authority_types")
    if not isinstance(joint, list):
        problems.append(f"{where}: joint_authority_types must be a list")
    else:
        for t in joint:
            if t not in authority_types:
                problems.append(f"{where}: unknown joint authority type {t!r}")
        if Mode.JOINT in modes and not joint:
            problems.append(f"{where}: a joint (多地联办) matter needs joint_authority_types")
        if Mode.JOINT not in modes and joint:
            problems.append(f"{where}: joint_authority_types given but 'joint' is not a mode")

    days = item.get("time_limit_days")
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_TIME_LIMIT_DAYS:
        problems.append(
            f"{where}: time_limit_days must be an integer from 1 to {MAX_TIME_LIMIT_DAYS}"
        )

    licence = item.get("result_licence_type")
    if licence is not None and (not isinstance(licence, str) or not SLUG.match(licence)):
        problems.append(f"{where}: result_licence_type must be null or a slug")

    problems += _material_problems(where, item.get("materials"))
    problems += _form_schema_problems(where, item.get("form_schema"))
    return problems


def validate_catalogue(items: list[dict[str, Any]]) -> list[str]:
    """Problems of a catalogue data file, one line each (for developers; empty when the file
    can be loaded): duplicate or malformed codes, unknown authority types, bad modes, a joint
    matter without joint authorities, a form schema that is not a flat draft 2020-12 schema…"""
    if not isinstance(items, list):
        return ["the catalogue must be a JSON list of matters"]
    problems: list[str] = []
    codes: set[str] = set()
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            problems.append(f"entry #{i + 1}: must be an object")
            continue
        code = item.get("code")
        where = f"{code}" if isinstance(code, str) and code else f"entry #{i + 1}"
        if not isinstance(code, str) or not MATTER_CODE.match(code) or len(code) > 40:
            problems.append(
                f"{where}: code must be upper-case letters, digits and hyphens (at most 40)"
            )
        elif code in codes:
            problems.append(f"{where}: duplicate code")
        else:
            codes.add(code)
        problems += _matter_problems(where, item)
    return problems
