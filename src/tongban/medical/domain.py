"""The rules of cross-region outpatient settlement (异地就医门诊直接结算). Pure Python.

The principle: the *treatment* region's catalogue classifies each item, the *insured*
region's policy decides how much the fund pays, the treatment region manages the visit.

Money is in fen (integers) everywhere. Ratios are basis points (1/10000, integers) and
turned into exact `Decimal`s here. There are exactly two roundings, both half-up to the
fen: `eligible` as soon as it is computed, and the fund's share. Everything else is
integer arithmetic, so `fund + account + cash == total` holds by construction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from tongban.kernel.lifecycle import StateMachine

BP = 10_000  # basis points in one


# --- the lifecycle of a settlement ---------------------------------------------------


class SettlementState(StrEnum):
    """A settlement row exists once the claim is settled (预结算 changes nothing)."""

    SETTLED = "settled"  # 已结算
    REVERSED = "reversed"  # 已冲正


class SettlementAction(StrEnum):
    SETTLE = "settle"  # creates the settlement: its first event, from no state
    REVERSE = "reverse"


#: Reversed is final: a reversal reopens the visit, which is settled again as a new
#: settlement (another transaction id).
SETTLEMENT: StateMachine[SettlementState, SettlementAction] = StateMachine(
    SettlementState,
    SettlementAction,
    {(SettlementState.SETTLED, SettlementAction.REVERSE): SettlementState.REVERSED},
    state_labels={SettlementState.SETTLED: "已结算", SettlementState.REVERSED: "已冲正"},
    action_labels={SettlementAction.SETTLE: "结算", SettlementAction.REVERSE: "冲正"},
    noun="结算",
)


# --- the reservation of accumulators on the insured person's node ---------------------


class ReservationState(StrEnum):
    """What the insured node holds for one hospital transaction. A reservation moves the
    accumulators when it is made, so while it is reserved or confirmed it counts: the
    same deductible, cap or balance can never be used twice. Released, expired and
    reversed give back exactly what it took."""

    RESERVED = "reserved"  # 已预留: waiting for the hospital's confirmation
    CONFIRMED = "confirmed"  # 已确认: the hospital's settlement exists
    RELEASED = "released"  # 已释放: the hospital's settlement failed
    EXPIRED = "expired"  # 已过期: overdue, and the hospital holds no settlement for it
    REVERSED = "reversed"  # 已冲正


class ReservationAction(StrEnum):
    RESERVE = "reserve"  # creates the reservation: its first event, from no state
    CONFIRM = "confirm"
    RELEASE = "release"
    EXPIRE = "expire"
    REVERSE = "reverse"


#: Confirmed, released, expired and reversed are final (a reversed claim is settled again
#: under another transaction id). A reversal may reach a reservation whose confirmation
#: has not arrived yet (the hospital settled, then reversed, while the link was down).
RESERVATION: StateMachine[ReservationState, ReservationAction] = StateMachine(
    ReservationState,
    ReservationAction,
    {
        (ReservationState.RESERVED, ReservationAction.CONFIRM): ReservationState.CONFIRMED,
        (ReservationState.RESERVED, ReservationAction.RELEASE): ReservationState.RELEASED,
        (ReservationState.RESERVED, ReservationAction.EXPIRE): ReservationState.EXPIRED,
        (ReservationState.RESERVED, ReservationAction.REVERSE): ReservationState.REVERSED,
        (ReservationState.CONFIRMED, ReservationAction.REVERSE): ReservationState.REVERSED,
    },
    state_labels={
        ReservationState.RESERVED: "已预留",
        ReservationState.CONFIRMED: "已确认",
        ReservationState.RELEASED: "已释放",
        ReservationState.EXPIRED: "已过期",
        ReservationState.REVERSED: "已冲正",
    },
    action_labels={
        ReservationAction.RESERVE: "预留",
        ReservationAction.CONFIRM: "确认",
        ReservationAction.RELEASE: "释放",
        ReservationAction.EXPIRE: "过期释放",
        ReservationAction.REVERSE: "冲正",
    },
    noun="累计额预留",
)

#: The states in which a reservation's amounts are part of the accumulators.
COUNTING = frozenset({ReservationState.RESERVED, ReservationState.CONFIRMED})


def gives_back(state: ReservationState, target: ReservationState) -> bool:
    """Whether moving a reservation from `state` to `target` returns its amounts to the
    accumulators (it counted before and does not after)."""
    return state in COUNTING and target not in COUNTING


def overdue_outcome(hospital_status: str | None) -> ReservationAction:
    """What an overdue reservation becomes once the hospital's node has said what it
    holds for the transaction: its settlement (confirm), its reversed settlement
    (reverse), or nothing (expire: the settlement never came)."""
    if hospital_status == SettlementState.SETTLED:
        return ReservationAction.CONFIRM
    if hospital_status == SettlementState.REVERSED:
        return ReservationAction.REVERSE
    return ReservationAction.EXPIRE


def pending_step(
    settlement: SettlementState, acknowledged: ReservationState
) -> ReservationAction | None:
    """What the hospital's node still owes the insured node for one settlement, given
    the reservation state the insured node last acknowledged: confirm a settled claim,
    reverse a reversed one; None when the two agree."""
    if settlement is SettlementState.SETTLED and acknowledged is ReservationState.RESERVED:
        return ReservationAction.CONFIRM
    if settlement is SettlementState.REVERSED and acknowledged in COUNTING:
        return ReservationAction.REVERSE
    return None


class ItemClass(StrEnum):
    """Catalogue class of an item in the treatment region's catalogue."""

    A = "A"  # 甲类: fully eligible
    B = "B"  # 乙类: eligible after a self-pay-first share
    C = "C"  # 丙类: not covered


class ItemKind(StrEnum):
    DRUG = "drug"
    TREATMENT = "treatment"
    MATERIAL = "material"


class Scheme(StrEnum):
    EMPLOYEE = "employee"  # 职工基本医疗保险
    RESIDENT = "resident"  # 城乡居民基本医疗保险


class FilingType(StrEnum):
    """备案类型."""

    RESIDENCE = "residence"  # 异地长期居住（含异地安置）
    WORK = "work"  # 常驻异地工作
    REFERRAL = "referral"  # 异地转诊
    TEMPORARY = "temporary"  # 临时外出就医


CLASS_LABELS = {ItemClass.A: "甲类", ItemClass.B: "乙类", ItemClass.C: "丙类"}
KIND_LABELS = {ItemKind.DRUG: "药品", ItemKind.TREATMENT: "诊疗项目", ItemKind.MATERIAL: "医用耗材"}
SCHEME_LABELS = {Scheme.EMPLOYEE: "职工医保", Scheme.RESIDENT: "居民医保"}
LEVEL_LABELS = {1: "一级", 2: "二级", 3: "三级"}
FILING_LABELS = {
    FilingType.RESIDENCE: "异地长期居住",
    FilingType.WORK: "常驻异地工作",
    FilingType.REFERRAL: "异地转诊",
    FilingType.TEMPORARY: "临时外出就医",
}


def round_half_up(value: Decimal) -> int:
    """Half-up to the fen (0.5 → 1, 2.5 → 3); the only rounding the split uses."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def ratio(bp: int) -> Decimal:
    """Basis points as an exact Decimal ratio: 8500 → 0.85."""
    return Decimal(bp) / BP


@dataclass(frozen=True)
class Policy:
    """The insured region's policy for one scheme and hospital level (per year)."""

    deductible: int  # 起付线, fen per year
    fund_ratio_bp: int  # 统筹基金支付比例, basis points
    annual_cap: int  # 封顶线, fen of fund payments per year

    def __post_init__(self) -> None:
        if self.deductible < 0 or self.annual_cap < 0:
            raise ValueError("起付线和封顶线不能为负数")
        if not 0 <= self.fund_ratio_bp <= BP:
            raise ValueError("基金支付比例须在 0 至 100% 之间")


@dataclass(frozen=True)
class Accumulators:
    """What one insured person has used this year, and their personal account."""

    deductible_used: int = 0
    fund_paid: int = 0
    account_balance: int = 0


@dataclass(frozen=True)
class Line:
    """One fee item as classified by the treatment region's catalogue."""

    amount: int  # fen
    item_class: ItemClass
    self_pay_first_bp: int = 0  # 乙类 先行自付比例

    def __post_init__(self) -> None:
        if self.amount < 0:
            raise ValueError("费用金额不能为负数")
        if not 0 <= self.self_pay_first_bp <= BP:
            raise ValueError("先行自付比例须在 0 至 100% 之间")


@dataclass(frozen=True)
class Split:
    """How one claim is paid. `fund + account + cash == total` always."""

    total: int
    class_a: int  # Σ 甲
    class_b: int  # Σ 乙 (before the self-pay-first share)
    class_c: int  # Σ 丙
    eligible: int  # Σ 甲 + Σ 乙 × (1 − share), rounded half-up once
    deductible_part: int  # part of eligible filling this year's deductible
    fund: int  # 统筹基金支付
    account: int  # 个人账户支付
    cash: int  # 现金支付

    @property
    def self_pay_first(self) -> int:
        """乙类先行自付: what the 乙 items' shares left outside `eligible`."""
        return self.class_a + self.class_b - self.eligible

    def as_dict(self) -> dict[str, int]:
        return {
            "total": self.total,
            "class_a": self.class_a,
            "class_b": self.class_b,
            "class_c": self.class_c,
            "eligible": self.eligible,
            "deductible_part": self.deductible_part,
            "fund": self.fund,
            "account": self.account,
            "cash": self.cash,
        }


def eligible_amount(lines: Iterable[Line]) -> int:
    """Σ 甲 + Σ 乙 × (1 − self-pay-first share), computed exactly, rounded half-up once."""
    exact = Decimal(0)
    for line in lines:
        if line.item_class is ItemClass.A:
            exact += line.amount
        elif line.item_class is ItemClass.B:
            exact += Decimal(line.amount) * (BP - line.self_pay_first_bp) / BP
    return round_half_up(exact)


def split_claim(lines: Sequence[Line], policy: Policy, acc: Accumulators, scheme: Scheme) -> Split:
    """Split one claim given the year's accumulators *before* it.

    1. eligible = Σ 甲 + Σ 乙 × (1 − share), half-up to the fen;
    2. the part of eligible that fills the rest of the year's deductible is not paid
       by the fund;
    3. fund = min(ratio × (eligible − that part) half-up, cap left this year);
    4. employee scheme: the personal account pays what is left, up to its balance
       (the resident scheme has no personal account);
    5. cash pays the rest.
    """
    total = sum(line.amount for line in lines)
    by_class = {c: sum(x.amount for x in lines if x.item_class is c) for c in ItemClass}
    eligible = eligible_amount(lines)
    deductible_left = max(0, policy.deductible - acc.deductible_used)
    deductible_part = min(eligible, deductible_left)
    cap_left = max(0, policy.annual_cap - acc.fund_paid)
    fund = min(round_half_up(ratio(policy.fund_ratio_bp) * (eligible - deductible_part)), cap_left)
    rest = total - fund
    account = min(rest, max(0, acc.account_balance)) if scheme is Scheme.EMPLOYEE else 0
    cash = rest - account
    return Split(
        total=total,
        class_a=by_class[ItemClass.A],
        class_b=by_class[ItemClass.B],
        class_c=by_class[ItemClass.C],
        eligible=eligible,
        deductible_part=deductible_part,
        fund=fund,
        account=account,
        cash=cash,
    )


def settle(acc: Accumulators, split: Split) -> Accumulators:
    """The accumulators after a settlement of `split`."""
    return Accumulators(
        deductible_used=acc.deductible_used + split.deductible_part,
        fund_paid=acc.fund_paid + split.fund,
        account_balance=acc.account_balance - split.account,
    )


def reverse(acc: Accumulators, split: Split) -> Accumulators:
    """The accumulators after reversing (冲正) a settlement of `split`: exactly what
    `settle` added is taken back, so settle-then-reverse is the identity."""
    return Accumulators(
        deductible_used=acc.deductible_used - split.deductible_part,
        fund_paid=acc.fund_paid - split.fund,
        account_balance=acc.account_balance + split.account,
    )


# --- filing (备案) -------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    """Where a person is insured or treated: city, its jurisdiction, and the district
    when known (the demonstration zone is decided by district)."""

    city: str
    jurisdiction: str
    district: str | None = None


@dataclass(frozen=True)
class FilingRecord:
    """A filing as the rules need it: which places it covers and when."""

    type: FilingType
    valid_from: date
    valid_to: date | None
    target_city: str | None  # None: any city of target_jurisdiction
    target_jurisdiction: str | None  # None with target_city None: anywhere
    revoked: bool = False

    def covers(self, place: Place, day: date) -> bool:
        if self.revoked or day < self.valid_from:
            return False
        if self.valid_to is not None and day > self.valid_to:
            return False
        if self.target_city is not None:
            return self.target_city == place.city
        if self.target_jurisdiction is not None:
            return self.target_jurisdiction == place.jurisdiction
        return True


@dataclass(frozen=True)
class FilingDecision:
    required: bool
    reason: str  # why (not) required, in Chinese
    filing: FilingRecord | None = None

    @property
    def allowed(self) -> bool:
        return not self.required or self.filing is not None


def filing_decision(
    insured: Place,
    treated: Place,
    filings: Iterable[FilingRecord],
    day: date,
    zone_districts: frozenset[str],
) -> FilingDecision:
    """Whether treatment at `treated` needs a filing, and the one that covers it.

    No filing is needed in the insured city itself, nor when both the insured person's
    district and the institution's district lie in the demonstration zone (示范区免备案).
    Otherwise a filing valid on `day` that covers the treatment city must exist."""
    if insured.city == treated.city:
        return FilingDecision(required=False, reason="参保地就医，无需备案")
    if (
        insured.district is not None
        and treated.district is not None
        and insured.district in zone_districts
        and treated.district in zone_districts
    ):
        return FilingDecision(required=False, reason="一体化发展示范区内参保并就医，免备案")
    for f in filings:
        if f.covers(treated, day):
            return FilingDecision(required=True, reason="已办理异地就医备案", filing=f)
    return FilingDecision(
        required=True, reason="未办理异地就医备案或备案不在有效期内，不能直接结算"
    )


#: How a filing was made: by the resident online, or at a treatment counter.
FILING_CHANNEL_LABELS = {"self": "本人申请", "counter": "就医机构代办"}
#: Longest validity of a filing made at a treatment counter, in days from the day.
COUNTER_FILING_DAYS = 180


def counter_filing_until(today: date, valid_to: date | None) -> date:
    """Until when a filing made at a treatment counter (临时外出就医, for the
    institution's city, from today, with the patient's consent) is valid: the day asked
    for, at most COUNTER_FILING_DAYS ahead; raises ValueError in Chinese otherwise."""
    last = date.fromordinal(today.toordinal() + COUNTER_FILING_DAYS)
    if valid_to is None:
        return last
    if valid_to < today:
        raise ValueError("有效期止不能早于今天")
    if valid_to > last:
        raise ValueError(f"就医机构代办的备案有效期最长 {COUNTER_FILING_DAYS} 天")
    return valid_to


# --- periods and fingerprints ---------------------------------------------------------


def period_of(day: date) -> str:
    """The clearing period (YYYY-MM) a local date belongs to."""
    return f"{day.year:04d}-{day.month:02d}"


def parse_period(value: str) -> tuple[int, int]:
    """`YYYY-MM` → (year, month); raises ValueError in Chinese."""
    try:
        y, m = value.split("-")
        year, month = int(y), int(m)
    except ValueError:
        raise ValueError("清算期间格式应为 YYYY-MM") from None
    if len(value) != 7 or not (1 <= month <= 12) or year < 2000:
        raise ValueError("清算期间格式应为 YYYY-MM")
    return year, month


def next_period(period: str) -> str:
    year, month = parse_period(period)
    return f"{year + 1:04d}-01" if month == 12 else f"{year:04d}-{month + 1:02d}"


def period_bounds(period: str) -> tuple[date, date]:
    """First day of the period and first day of the next one."""
    year, month = parse_period(period)
    ny, nm = parse_period(next_period(period))
    return date(year, month, 1), date(ny, nm, 1)


def fingerprint(visit_id: str, items: Iterable[tuple[str, int, int]]) -> str:
    """What a settlement request is about: its visit and its items (code, quantity, unit
    price). The same hospital transaction id with another fingerprint is a conflict."""
    body = json.dumps([visit_id, sorted(items)], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


# --- reconciliation (对账) -------------------------------------------------------------


@dataclass(frozen=True)
class Totals:
    count: int = 0
    total: int = 0
    fund: int = 0
    account: int = 0
    cash: int = 0

    def add(self, total: int, fund: int, account: int, cash: int) -> Totals:
        return Totals(
            self.count + 1,
            self.total + total,
            self.fund + fund,
            self.account + account,
            self.cash + cash,
        )


@dataclass(frozen=True)
class Difference:
    """One settlement on which hospital and centre disagree."""

    txn_id: str
    kind: str  # missing_at_centre | missing_at_hospital | amount_mismatch
    fields: tuple[str, ...]  # which amounts differ (amount_mismatch)
    hospital: dict[str, int] | None
    centre: dict[str, int] | None


AMOUNT_FIELDS = ("total", "fund", "account", "cash")


def reconcile(
    centre: dict[str, dict[str, int]], hospital: dict[str, dict[str, int]]
) -> list[Difference]:
    """Item-by-item differences between the centre's settlements of a day and the
    hospital's, both keyed by the hospital's transaction id; sorted by id."""
    out: list[Difference] = []
    for txn in sorted(set(centre) | set(hospital)):
        c, h = centre.get(txn), hospital.get(txn)
        if c is None:
            out.append(Difference(txn, "missing_at_centre", (), h, None))
        elif h is None:
            out.append(Difference(txn, "missing_at_hospital", (), None, c))
        else:
            fields = tuple(f for f in AMOUNT_FIELDS if c.get(f) != h.get(f))
            if fields:
                out.append(Difference(txn, "amount_mismatch", fields, h, c))
    return out


DIFFERENCE_LABELS = {
    "missing_at_centre": "医保中心无此结算",
    "missing_at_hospital": "医疗机构未报送此结算",
    "amount_mismatch": "金额不一致",
}
