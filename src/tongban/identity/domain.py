"""Roles, what each may do in general, and identifier validation (no database here)."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from stdnum.cn import ric, uscc
from stdnum.exceptions import ValidationError as StdnumError

from tongban import localtime


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
    VENUE = "venue_staff"  # 场馆/站点工作人员: scans residents' card codes (tongban.card)


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
    Role.VENUE: "场馆工作人员",
}

APPLICANT_ROLES = frozenset({Role.RESIDENT, Role.ENTERPRISE})
STAFF_ROLES = frozenset({Role.CLERK, Role.OFFICER, Role.SUPERVISOR, Role.ADMIN})


class Duty(StrEnum):
    REVIEWER = "reviewer"
    APPROVER = "approver"


DUTY_LABELS = {Duty.REVIEWER: "受理/审核", Duty.APPROVER: "审批"}

#: The roles an administrator may give an account: every staff role. An applicant's role
#: is what it registered as, and staff never become applicants (nor the reverse).
ASSIGNABLE_ROLES = tuple(r for r in Role if r not in APPLICANT_ROLES)


class Post(StrEnum):
    """Where the holder of a staff role is posted: the scope its powers cover, and so what
    a change of role must name."""

    AUTHORITY = "authority"  # an officer acts for one department (and its city/jurisdiction)
    CITY = "city"  # a window, a 12345 centre, a grid, a hospital counter: one city
    JURISDICTION = "jurisdiction"  # a supervisor oversees a jurisdiction
    NONE = "none"  # the federation's administrator: no post


POST_OF_ROLE = {
    Role.OFFICER: Post.AUTHORITY,
    Role.CLERK: Post.CITY,
    Role.HOSPITAL: Post.CITY,
    Role.HOTLINE: Post.CITY,
    Role.GRID: Post.CITY,
    Role.DISPATCHER: Post.CITY,
    Role.VENUE: Post.CITY,
    Role.SUPERVISOR: Post.JURISDICTION,
    Role.ADMIN: Post.NONE,
}

#: The longest reason a change of role may carry.
ROLE_REASON_MAX = 500


def assignable_role(value: str) -> Role:
    """The staff role named `value`; raises ValueError in Chinese for an unknown role or an
    applicant's (resident, enterprise), which no administrator gives."""
    try:
        role = Role((value or "").strip())
    except ValueError:
        raise ValueError("不是有效的角色") from None
    if role not in ASSIGNABLE_ROLES:
        raise ValueError("只能授予工作人员角色（个人、法人账户的角色不能变更）")
    return role


def role_reason_problem(reason: str) -> str | None:
    """What is wrong with the reason of a change of role, in Chinese; None when it will do."""
    text = (reason or "").strip()
    if not text:
        return "请填写变更原因"
    if len(text) > ROLE_REASON_MAX:
        return f"变更原因不能超过 {ROLE_REASON_MAX} 字"
    return None


#: GB/T 2260 province-level codes: the first two digits of a GB 11643 number.
ID_PROVINCES = frozenset(
    [
        "11",
        "12",
        "13",
        "14",
        "15",
        "21",
        "22",
        "23",
        "31",
        "32",
        "33",
        "34",
        "35",
        "36",
        "37",
        "41",
        "42",
        "43",
        "44",
        "45",
        "46",
        "50",
        "51",
        "52",
        "53",
        "54",
        "61",
        "62",
        "63",
        "64",
        "65",
        "71",
        "81",
        "82",
    ]
)
_ID_EARLIEST = date(1900, 1, 1)


def validate_id_number(value: str, today: date | None = None) -> str:
    """A GB 11643 citizen ID number, normalised; raises ValueError in Chinese saying what
    is wrong: its length, its region code (a GB/T 2260 province and a county below it),
    its birth date (a real day, not in the future), or its check digit (ISO 7064 MOD
    11-2). The county is not looked up in a table: python-stdnum's is incomplete
    (abolished and new county codes are real numbers' prefixes)."""
    number = ric.compact((value or "").strip().upper())
    if len(number) != 18 or not number[:17].isdigit() or number[-1] not in "0123456789X":
        raise ValueError("身份证号码无效：应为 18 位数字（最后一位可为 X）")
    if number[:2] not in ID_PROVINCES or number[2:6] == "0000":
        raise ValueError("身份证号码无效：前 6 位地区码不是有效的行政区划代码")
    try:
        born = ric.get_birth_date(number)
    except StdnumError:
        born = None
    if born is None or not _ID_EARLIEST <= born <= (today or localtime.today()):
        raise ValueError("身份证号码无效：第 7–14 位出生日期不正确")
    if ric.calc_check_digit(number) != number[-1]:
        raise ValueError("身份证号码无效：校验位不正确，请核对")
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


class AssuranceLevel(StrEnum):
    """How well an applicant account's identity is proven (身份核验等级).

    Mapped to the eIDAS levels of assurance (Regulation 910/2014, art. 8):

    - ``self_declared`` ~ eIDAS *low*: the person typed an ID number at registration;
      nothing proves it is theirs. May browse and apply online (the case says the
      applicant is unverified), sees nothing bound to the ID number.
    - ``window_verified`` ~ eIDAS *substantial*: a window clerk saw the ID card of the
      person in front of them (身份证读卡 / 证件核验) and recorded it.
    - ``oidc_verified`` ~ eIDAS *substantial* (or *high*, if the provider's own proofing
      is; its rank comes from TONGBAN_OIDC_PROVIDERS' ``level``): signed in through an
      external OpenID Connect provider (a provincial unified identity platform) whose
      signed ID token carries the ID number.

    Staff accounts carry no level (None): they act for their post, not as a person
    whose ID number binds records.
    """

    SELF_DECLARED = "self_declared"
    WINDOW_VERIFIED = "window_verified"
    OIDC_VERIFIED = "oidc_verified"


#: Rank of each level; a check compares ranks. Both proofs are "substantial".
ASSURANCE_RANK = {
    AssuranceLevel.SELF_DECLARED: 1,
    AssuranceLevel.WINDOW_VERIFIED: 2,
    AssuranceLevel.OIDC_VERIFIED: 2,
}

#: The level anything bound to an ID number or credit code needs (licences, the data-use
#: log, medical records, cards).
PROVEN = AssuranceLevel.WINDOW_VERIFIED

ASSURANCE_LABELS = {
    AssuranceLevel.SELF_DECLARED: "未核验（自行注册）",
    AssuranceLevel.WINDOW_VERIFIED: "已核验（窗口核验身份证件）",
    AssuranceLevel.OIDC_VERIFIED: "已核验（统一身份认证平台）",
}


class WindowCheckMethod(StrEnum):
    """How a window clerk saw the person's identity document."""

    CARD_READER = "id_card_reader"  # 身份证读卡 (the chip read by a reader)
    DOCUMENT = "document_check"  # 证件核验 (the card or business licence inspected)


WINDOW_CHECK_LABELS = {
    WindowCheckMethod.CARD_READER: "身份证读卡",
    WindowCheckMethod.DOCUMENT: "证件核验",
}


def meets(level: str | None, required: AssuranceLevel) -> bool:
    """Whether an account at `level` may do what needs `required` (None: staff, never)."""
    if level is None:
        return False
    try:
        return ASSURANCE_RANK[AssuranceLevel(level)] >= ASSURANCE_RANK[required]
    except ValueError:
        return False


def is_raise(current: str | None, new: AssuranceLevel) -> bool:
    """Whether moving from `current` to `new` is a change worth recording: a higher rank,
    or the same rank proven another way (window -> OIDC records the second proof)."""
    if current is None:
        return True
    try:
        cur = AssuranceLevel(current)
    except ValueError:
        return True
    return cur != new and ASSURANCE_RANK[new] >= ASSURANCE_RANK[cur]


def area_city_code(id_number: str) -> str:
    """The GB/T 2260 prefecture code an ID number was issued in (its first four digits
    and ``00``): a guess at a new account's home city, never an authorisation input."""
    return id_number[:4] + "00"
