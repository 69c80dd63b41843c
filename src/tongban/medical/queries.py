"""The synchronous queries of cross-region settlement (exchange/query.py): what a hospital's
node asks the insured person's node while the patient waits, and what that node asks
back about an overdue reservation. Their schemas are the contracts both sides check; the
`ask_*` functions are the hospital's side of the call, turning a missing answer into the
counter's Chinese answer.

| type | asked by → of | what |
|---|---|---|
| `medical.eligibility` | treatment → insured node | person, scheme, filing decision, policy at this level, the year's accumulators |
| `medical.file` | treatment → insured node | a filing for the institution's city made there, with the patient's consent |
| `medical.reserve` | treatment → insured | the split, computed under the person's lock, and its amounts reserved |
| `medical.confirm` / `medical.release` / `medical.reverse` | treatment → insured | the reservation's next state |
| `medical.settlement_status` | insured → treatment node | what the hospital holds for an overdue reservation's transaction |

Confirm, reverse and settlement status carry the claim's clearing periods as the
hospital's node assigned them: the insured node keeps its side of the claim in the
same period (clearing_exchange.py compares the two sides).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints
from sqlalchemy.orm import Session

from tongban.errors import Conflict, DomainError, NotFound, PermissionDenied, ValidationFailed
from tongban.exchange import query
from tongban.exchange.schema import Code, Day, Name, Payload, RegionCode, Sha256, ShortText, Uuid
from tongban.identity.domain import area_city_code
from tongban.medical import domain
from tongban.medical.domain import ReservationState, Scheme, SettlementState
from tongban.medical.models import Institution
from tongban.regions import service as regions

ELIGIBILITY = "medical.eligibility"
FILE = "medical.file"
RESERVE = "medical.reserve"
CONFIRM = "medical.confirm"
RELEASE = "medical.release"
REVERSE = "medical.reverse"
SETTLEMENT_STATUS = "medical.settlement_status"

#: What the counter is told when the insured node gives no answer in time.
UNAVAILABLE = "参保地系统暂不可用，请稍后结算或转为手工报销"

IdNumber = Annotated[str, StringConstraints(pattern=r"^[0-9]{17}[0-9X]$")]
TxnId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,40}$")]
Fen = Annotated[int, Field(ge=0, le=10**12)]
Signed = Annotated[int, Field(ge=-(10**12), le=10**12)]
BasisPoints = Annotated[int, Field(ge=0, le=domain.BP)]
Level = Annotated[int, Field(ge=1, le=3)]
Year = Annotated[int, Field(ge=2000, le=2200)]
#: A clearing period, YYYY-MM.
Period = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")]


# --- contracts ---------------------------------------------------------------------------


class InstitutionRef(Payload):
    """The institution a query is asked for: the treatment side of the principle."""

    code: Code
    name: Name
    jurisdiction: RegionCode
    city: RegionCode
    district: RegionCode | None = None
    level: Level


class EligibilityAsk(Payload):
    id_number: IdNumber
    institution: InstitutionRef
    #: Who at the counter asks (the person's data-use log names them).
    operator: Name = ""


class PersonOut(Payload):
    name: Name
    jurisdiction: RegionCode
    city: RegionCode
    district: RegionCode | None = None
    scheme: Scheme


class FilingOut(Payload):
    id: Uuid
    type: domain.FilingType
    target_city: RegionCode | None = None
    target_jurisdiction: RegionCode | None = None
    valid_from: Day
    valid_to: Day | None = None
    #: self (the resident) | counter (a treatment counter, with consent).
    channel: Literal["self", "counter"] = "self"
    filed_by: Name | None = None


class PolicyOut(Payload):
    deductible: Fen
    fund_ratio_bp: BasisPoints
    annual_cap: Fen


class AccumulatorsOut(Payload):
    deductible_used: Signed
    fund_paid: Signed
    account_balance: Signed


class EligibilityAnswer(Payload):
    person: PersonOut
    filing_required: bool
    filing_reason: ShortText
    filing: FilingOut | None = None
    policy: PolicyOut
    year: Year
    accumulators: AccumulatorsOut

    @property
    def may_settle(self) -> bool:
        return not self.filing_required or self.filing is not None


class FileAsk(Payload):
    """代办备案 at a treatment counter: 临时外出就医 for the institution's city, from the
    day it is made, with the patient's consent (the counter says so, the insured node
    records when)."""

    id_number: IdNumber
    institution: InstitutionRef
    operator: Name = ""
    consent: Literal[True]
    #: Valid until (at most domain.COUNTER_FILING_DAYS ahead; that by default).
    valid_to: Day | None = None


class LineIn(Payload):
    """One fee item as the treatment catalogue classified it (codes stay at the hospital)."""

    amount: Fen
    item_class: domain.ItemClass
    self_pay_first_bp: BasisPoints = 0


class ReserveAsk(Payload):
    txn_id: TxnId
    #: The hospital's fingerprint of the claim: the same txn_id for other content is refused.
    request_hash: Sha256
    id_number: IdNumber
    institution: InstitutionRef
    operator: Name = ""
    lines: Annotated[list[LineIn], Field(min_length=1, max_length=500)]


class SplitOut(Payload):
    total: Fen
    class_a: Fen
    class_b: Fen
    class_c: Fen
    eligible: Fen
    deductible_part: Fen
    fund: Fen
    account: Fen
    cash: Fen


class ReserveAnswer(Payload):
    reservation_id: Uuid
    state: ReservationState
    person: PersonOut
    filing_id: Uuid | None = None
    policy: PolicyOut
    year: Year
    split: SplitOut
    before: AccumulatorsOut
    after: AccumulatorsOut
    expires_at: datetime


class TxnRef(Payload):
    institution_code: Code
    institution_jurisdiction: RegionCode
    txn_id: TxnId


class ConfirmAsk(TxnRef):
    #: The clearing period the hospital's node settled the claim in: the insured node
    #: counts its side of the claim there (clearing with each side on its own node).
    period: Period | None = None


class ReleaseAsk(TxnRef):
    reason: ShortText = ""


class ReverseAsk(TxnRef):
    reversal_txn_id: TxnId
    reason: ShortText = ""
    #: The claim's period and the one its reversal counts in, as the hospital's node
    #: assigned them.
    period: Period | None = None
    reversal_period: Period | None = None


class StateAnswer(Payload):
    reservation_id: Uuid
    state: ReservationState


class SettlementStatusAsk(Payload):
    institution_code: Code
    txn_id: TxnId


class SettlementStatusAnswer(Payload):
    #: None: this node holds no settlement for the transaction (it never committed).
    status: SettlementState | None = None
    #: Its clearing periods (claim, reversal), for the insured side's statement.
    period: Period | None = None
    reversal_period: Period | None = None


# --- conversions -------------------------------------------------------------------------


def split_out(s: domain.Split) -> SplitOut:
    return SplitOut(**s.as_dict())


def split_in(s: SplitOut) -> domain.Split:
    return domain.Split(**s.model_dump())


def policy_out(p: domain.Policy) -> PolicyOut:
    return PolicyOut(
        deductible=p.deductible, fund_ratio_bp=p.fund_ratio_bp, annual_cap=p.annual_cap
    )


def policy_in(p: PolicyOut) -> domain.Policy:
    return domain.Policy(p.deductible, p.fund_ratio_bp, p.annual_cap)


def acc_out(a: domain.Accumulators) -> AccumulatorsOut:
    return AccumulatorsOut(
        deductible_used=a.deductible_used, fund_paid=a.fund_paid, account_balance=a.account_balance
    )


def acc_in(a: AccumulatorsOut) -> domain.Accumulators:
    return domain.Accumulators(a.deductible_used, a.fund_paid, a.account_balance)


def institution_ref(inst: Institution) -> InstitutionRef:
    return InstitutionRef(
        code=inst.code,
        name=inst.name,
        jurisdiction=inst.jurisdiction_code,
        city=inst.city_code,
        district=inst.district_code,
        level=inst.level,
    )


def place_of(ref: InstitutionRef) -> domain.Place:
    return domain.Place(ref.city, ref.jurisdiction, ref.district)


# --- where the person is insured ---------------------------------------------------------


def insured_jurisdiction(session: Session, id_number: str, insured_city: str | None) -> str:
    """The jurisdiction whose node holds the person's insurance record: that of the
    insured city read from their medical-insurance card (医保电子凭证) when the counter
    gives it, else of the area their ID number was issued in — right for most, and a
    person insured elsewhere is not found there (the counter then names the city)."""
    if insured_city:
        try:
            return regions.get_city(session, insured_city).jurisdiction_code
        except NotFound:
            raise ValidationFailed(
                "参保地城市代码无效",
                errors=[{"field": "insured_city", "message": "不是联盟内的城市"}],
            ) from None
    for guess in (area_city_code(id_number), id_number[:2] + "0000"):
        try:
            return regions.get_city(session, guess).jurisdiction_code
        except NotFound:
            pass
        try:
            return regions.get_jurisdiction(session, guess).code
        except NotFound:
            pass
    raise ValidationFailed(
        "无法从身份证号码确定参保地，请选择参保地",
        type="insured-city-required",
        errors=[{"field": "insured_city", "message": "请选择参保地"}],
    )


# --- asking (the treatment side) ---------------------------------------------------------


class InsuredNodeUnavailable(DomainError):
    """The insured node gave no answer in time (or none that verifies): settle later, or
    reimburse by hand — never a guessed split."""

    status = 503
    type = "insured-node-unavailable"
    title = "参保地系统暂不可用"


def ask(
    session: Session,
    name: str,
    *,
    source: str,
    target: str,
    payload: Payload,
    release_idle: bool = False,
) -> Any:
    """Ask the insured (or treatment) node; a missing answer becomes the counter's 503,
    a refusal keeps the answering node's type, status and Chinese detail — except one of
    the exchange itself (a contract or right refused), which says the node refused.
    `release_idle`: see `query.ask`."""
    try:
        return query.ask(
            session, name, source=source, target=target, payload=payload, release_idle=release_idle
        )
    except query.QueryUnavailable as exc:
        raise InsuredNodeUnavailable(UNAVAILABLE) from exc
    except query.QueryRefused as exc:
        if exc.type.startswith("exchange/"):
            raise DomainError(
                f"对方节点拒绝了本次查询：{exc.detail}", type="query-refused", status=409
            ) from exc
        # The same typed failure as the answering node raised, with its problem type.
        cls = _FAILURES.get(exc.status, DomainError)
        raise cls(exc.detail, type=exc.type, status=exc.status, errors=exc.errors) from exc


_FAILURES: dict[int, type[DomainError]] = {
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    422: ValidationFailed,
}
