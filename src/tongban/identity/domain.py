"""Roles, what each may do in general, and identifier validation (no database here)."""

from __future__ import annotations

from enum import StrEnum

from stdnum.cn import ric, uscc
from stdnum.exceptions import ValidationError as StdnumError


class Role(StrEnum):
    RESIDENT = "resident"
    ENTERPRISE = "enterprise"
    CLERK = "clerk"  # 窗口受理员 of a city
    OFFICER = "officer"  # 审核/审批人员 of an authority
    SUPERVISOR = "supervisor"  # 督查督办
    ADMIN = "admin"  # federation operator
    HOSPITAL = "hospital"  # 医疗机构工作人员 (medical settlement counter)
    HOTLINE = "hotline"  # 12345话务员: records calls as work orders
    GRID = "grid_inspector"  # 网格员: reports problems found on patrol
    DISPATCHER = "dispatcher"  # 派单员 of a city's 12345 centre


ROLE_LABELS = {
    Role.RESIDENT: "个人",
    Role.ENTERPRISE: "法人",
    Role.CLERK: "窗口受理员",
    Role.OFFICER: "审核/审批人员",
    Role.SUPERVISOR: "督查督办人员",
    Role.ADMIN: "平台管理员",
    Role.HOSPITAL: "医疗机构工作人员",
    Role.HOTLINE: "12345话务员",
    Role.GRID: "网格员",
    Role.DISPATCHER: "派单员",
}

APPLICANT_ROLES = frozenset({Role.RESIDENT, Role.ENTERPRISE})
STAFF_ROLES = frozenset({Role.CLERK, Role.OFFICER, Role.SUPERVISOR, Role.ADMIN})


class Duty(StrEnum):
    REVIEWER = "reviewer"
    APPROVER = "approver"


def validate_id_number(value: str) -> str:
    """A GB 11643 citizen ID number, normalised; raises ValueError in Chinese."""
    try:
        return str(ric.validate(value.strip().upper()))
    except StdnumError as e:
        raise ValueError("身份证号码无效（校验位或出生日期不符合 GB 11643）") from e
    except KeyError:
        # python-stdnum's area table is incomplete (abolished or new county codes) and it
        # raises KeyError for those; such numbers are real, so the check digit and the
        # birth date are checked without the table.
        number = ric.compact(value)
        if (
            len(number) != 18
            or not number[:17].isdigit()
            or ric.calc_check_digit(number) != number[-1]
        ):
            raise ValueError("身份证号码无效（校验位或出生日期不符合 GB 11643）") from None
        try:
            ric.get_birth_date(number)
        except StdnumError as e:
            raise ValueError("身份证号码无效（校验位或出生日期不符合 GB 11643）") from e
        return number


def validate_credit_code(value: str) -> str:
    """A GB 32100 unified social credit code, normalised; raises ValueError in Chinese."""
    try:
        return str(uscc.validate(value.strip().upper()))
    except StdnumError as e:
        raise ValueError("统一社会信用代码无效（不符合 GB 32100）") from e


def mask_id_number(value: str | None) -> str:
    """`3201**********1234`: enough to recognise, not enough to misuse."""
    if not value:
        return ""
    if len(value) <= 8:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]
