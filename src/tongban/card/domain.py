"""Rules of the resident service card (社会保障卡, 居民服务一卡通) that need no database:
the card's lifecycle on the kernel's state machine, card numbers, the holder's age band
and concession categories (what a gate's benefit rule looks at), and the validity of
the short-lived credential the holder's node issues to a device.

The binary format of the dynamic code is in codec.py; verification at a gate in
verifier.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import IntEnum, IntFlag, StrEnum

from stdnum import luhn

from tongban.errors import ValidationFailed
from tongban.kernel.lifecycle import StateMachine, reason_required

# --- the card's lifecycle --------------------------------------------------------------


class CardStatus(StrEnum):
    NORMAL = "normal"
    LOST = "lost"
    REPLACED = "replaced"
    CANCELLED = "cancelled"


class CardAction(StrEnum):
    #: The card is made (the first event of every card; not a transition).
    ISSUE = "issue"
    REPORT_LOST = "report_lost"
    FOUND = "found"
    REPLACE = "replace"
    CANCEL = "cancel"
    #: A new device of the holder was enrolled for the dynamic code (not a transition).
    ENROL = "enrol_device"


class Actor(StrEnum):
    """Who acts on a card: its holder (their own pages, the API), a window clerk of the
    card's jurisdiction (for a walk-in), or the system (demo, imports)."""

    HOLDER = "holder"
    CLERK = "clerk"
    SYSTEM = "system"


STATUS_LABELS = {
    CardStatus.NORMAL: "正常",
    CardStatus.LOST: "挂失",
    CardStatus.REPLACED: "补换",
    CardStatus.CANCELLED: "注销",
}
ACTION_LABELS = {
    CardAction.ISSUE: "制卡发卡",
    CardAction.REPORT_LOST: "挂失",
    CardAction.FOUND: "解除挂失",
    CardAction.REPLACE: "补换",
    CardAction.CANCEL: "注销",
    CardAction.ENROL: "登记电子社保卡设备",
}
ACTOR_LABELS = {Actor.HOLDER: "持卡人", Actor.CLERK: "窗口工作人员", Actor.SYSTEM: "系统"}

_BOTH = {Actor.HOLDER, Actor.CLERK}
_CLERK = {Actor.CLERK}

#: (from, action) -> (to, who). A replaced or cancelled card is final: a replacement is
#: a new card (with a new number) that names the one it replaces.
TRANSITIONS = {
    (CardStatus.NORMAL, CardAction.REPORT_LOST): (CardStatus.LOST, _BOTH),
    (CardStatus.LOST, CardAction.FOUND): (CardStatus.NORMAL, _BOTH),
    (CardStatus.NORMAL, CardAction.REPLACE): (CardStatus.REPLACED, _BOTH),
    (CardStatus.LOST, CardAction.REPLACE): (CardStatus.REPLACED, _BOTH),
    (CardStatus.NORMAL, CardAction.CANCEL): (CardStatus.CANCELLED, _CLERK),
    (CardStatus.LOST, CardAction.CANCEL): (CardStatus.CANCELLED, _CLERK),
}

#: The longest reason a card event carries.
REASON_MAX = 500


@dataclass(frozen=True)
class StepFacts:
    """What a request brings to a card's transition: the reason given."""

    reason: str = ""


def _reason_bounded(facts: StepFacts | None) -> ValidationFailed | None:
    if facts is not None and len(facts.reason) > REASON_MAX:
        message = f"原因不能超过 {REASON_MAX} 个字符"
        return ValidationFailed(message, errors=[{"field": "reason", "message": message}])
    return None


MACHINE: StateMachine[CardStatus, CardAction] = StateMachine(
    CardStatus,
    CardAction,
    TRANSITIONS,
    guards={
        CardAction.REPORT_LOST: [_reason_bounded],
        CardAction.FOUND: [_reason_bounded],
        CardAction.REPLACE: [_reason_bounded],
        CardAction.CANCEL: [_reason_bounded, reason_required("注销", field="reason")],
    },
    state_labels=STATUS_LABELS,
    action_labels=ACTION_LABELS,
    noun="社保卡",
)

#: Statuses in which a card (and every credential issued for it) is refused at a gate.
REVOKED_STATUSES = frozenset({CardStatus.LOST, CardStatus.REPLACED, CardStatus.CANCELLED})


# --- card numbers ----------------------------------------------------------------------


def card_number(city_code: str, seq: int) -> str:
    """A card number: the issuing city's GB/T 2260 code, an 8-digit sequence of that
    city and a Luhn check digit (15 digits)."""
    if len(city_code) != 6 or not city_code.isdigit():
        raise ValueError(f"not a city code: {city_code!r}")
    if not 0 < seq < 10**8:
        raise ValueError(f"card sequence out of range: {seq}")
    body = f"{city_code}{seq:08d}"
    return body + luhn.calc_check_digit(body)


def valid_card_number(number: str) -> bool:
    return len(number) == 15 and number.isdigit() and luhn.is_valid(number)


# --- what a gate's benefit rule sees -----------------------------------------------------


class AgeBand(IntEnum):
    """The holder's age band, as a code carries it (one byte): what transit and venue
    concessions are defined by, never the birth date itself."""

    UNKNOWN = 0
    UNDER_6 = 1
    AGE_6_17 = 2
    AGE_18_59 = 3
    AGE_60_64 = 4
    AGE_65_69 = 5
    AGE_70_PLUS = 6


AGE_BAND_LABELS = {
    AgeBand.UNKNOWN: "未知",
    AgeBand.UNDER_6: "6周岁以下",
    AgeBand.AGE_6_17: "6至17周岁",
    AgeBand.AGE_18_59: "18至59周岁",
    AgeBand.AGE_60_64: "60至64周岁",
    AgeBand.AGE_65_69: "65至69周岁",
    AgeBand.AGE_70_PLUS: "70周岁及以上",
}

#: The youngest age of each band, oldest first.
_BAND_FLOORS = (
    (70, AgeBand.AGE_70_PLUS),
    (65, AgeBand.AGE_65_69),
    (60, AgeBand.AGE_60_64),
    (18, AgeBand.AGE_18_59),
    (6, AgeBand.AGE_6_17),
    (0, AgeBand.UNDER_6),
)


def age_on(birth: date, on: date) -> int:
    """Completed years of age on `on` (a 29 February birthday counts on 1 March)."""
    years = on.year - birth.year
    if (on.month, on.day) < (birth.month, birth.day):
        years -= 1
    return years


def age_band(birth: date | None, on: date) -> AgeBand:
    """The band of someone born on `birth`, on day `on`."""
    if birth is None or birth > on:
        return AgeBand.UNKNOWN
    age = age_on(birth, on)
    return next(band for floor, band in _BAND_FLOORS if age >= floor)


def birth_date_of(id_number: str | None) -> date | None:
    """The birth date in a GB 11643 citizen ID number (digits 7–14), if it has one."""
    if not id_number or len(id_number) != 18 or not id_number[:17].isdigit():
        return None
    try:
        return date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
    except ValueError:
        return None


class Concession(IntFlag):
    """Concession categories a code carries (one byte, a bit each), besides the age
    band: the categories same-city benefit rules name."""

    NONE = 0
    DISABLED = 1  # 残疾人
    VETERAN = 2  # 优抚对象（退役军人、军烈属等）
    LOW_INCOME = 4  # 最低生活保障对象
    BLOOD_DONOR = 8  # 无偿献血者


CONCESSION_LABELS = {
    Concession.DISABLED: "残疾人",
    Concession.VETERAN: "优抚对象",
    Concession.LOW_INCOME: "低保对象",
    Concession.BLOOD_DONOR: "无偿献血者",
}
#: Every defined concession bit; a code with others is malformed.
CONCESSION_MASK = int(Concession.DISABLED | Concession.VETERAN | Concession.LOW_INCOME) | int(
    Concession.BLOOD_DONOR
)


def concession_labels(value: int) -> list[str]:
    """The Chinese names of the categories in `value`, in bit order."""
    return [label for flag, label in CONCESSION_LABELS.items() if value & flag]


class Generation(IntEnum):
    """Card generations: the second has a chip for social insurance only; the third adds
    the transport function (交通联合) and a bank account by default."""

    SECOND = 2
    THIRD = 3


GENERATION_LABELS = {Generation.SECOND: "第二代社保卡", Generation.THIRD: "第三代社保卡"}
