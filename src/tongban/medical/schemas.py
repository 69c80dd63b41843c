"""Request and response bodies of the medical-settlement API. Money is in fen (integers);
ratios in basis points."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tongban.types import Fen, NonNegInt32, SaneDate

_CODE = r"^[A-Za-z0-9_.-]{1,40}$"


_CITY = r"^[0-9]{6}$"


class EligibilityQuery(BaseModel):
    id_number: str = Field(min_length=15, max_length=18)
    #: 参保地 (the insured city on the person's medical-insurance card); when absent, the
    #: area of the ID number decides which node is asked.
    insured_city: str | None = Field(default=None, pattern=_CITY)


class PolicyPublic(BaseModel):
    deductible: int
    fund_ratio_bp: int
    annual_cap: int


class FilingPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    type: str
    target_city: str | None
    target_jurisdiction: str | None
    valid_from: date
    valid_to: date | None
    #: self (filed by the resident) | counter (at a treatment counter, with consent).
    channel: str = "self"
    filed_by: str | None = None


class CounterFilingCreate(BaseModel):
    """代办备案 at the caller's counter, for treatment in its city (临时外出就医)."""

    id_number: str = Field(min_length=15, max_length=18)
    insured_city: str | None = Field(default=None, pattern=_CITY)
    #: The patient has agreed that the counter files for them.
    consent: bool
    valid_to: SaneDate | None = None


class FilingCreate(BaseModel):
    type: str = Field(max_length=20)
    valid_from: SaneDate
    valid_to: SaneDate | None = None
    target_city: str | None = Field(default=None, max_length=6)
    target_jurisdiction: str | None = Field(default=None, max_length=6)


class EligibilityPublic(BaseModel):
    name: str
    id_number_masked: str
    insured_jurisdiction: str
    insured_city: str
    scheme: str
    scheme_label: str
    institution_level: int
    filing_required: bool
    filing_present: bool
    may_settle: bool
    filing_reason: str
    filing: FilingPublic | None
    policy: PolicyPublic
    year: int
    deductible_used: int
    fund_paid: int
    account_balance: int


class VisitCreate(BaseModel):
    id_number: str = Field(min_length=15, max_length=18)
    insured_city: str | None = Field(default=None, pattern=_CITY)
    visit_no: str = Field(pattern=_CODE)
    department: str = Field(default="", max_length=40)
    diagnosis: str = Field(default="", max_length=200)


class FeeItemIn(BaseModel):
    code: str = Field(min_length=1, max_length=40)
    quantity: int = Field(ge=1, le=100_000)
    unit_price: int = Field(ge=0, le=100_000_000, description="分")


class FeeUpload(BaseModel):
    items: list[FeeItemIn] = Field(min_length=1, max_length=500)


class FeeItemPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    seq: int
    code: str
    name: str
    kind: str
    item_class: str
    self_pay_first_bp: int
    quantity: int
    unit_price: int
    amount: int


class VisitPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    visit_no: str
    status: str
    department: str
    diagnosis: str
    registered_at: datetime
    items: list[FeeItemPublic]


class SplitPublic(BaseModel):
    total: int
    class_a: int
    class_b: int
    class_c: int
    eligible: int
    self_pay_first: int
    deductible_part: int
    fund: int
    account: int
    cash: int


class AccumulatorsPublic(BaseModel):
    deductible_used: int
    fund_paid: int
    account_balance: int


class PreSettlementPublic(BaseModel):
    visit_id: uuid.UUID
    split: SplitPublic
    before: AccumulatorsPublic
    after: AccumulatorsPublic
    policy: PolicyPublic


class SettleRequest(BaseModel):
    visit_id: uuid.UUID
    txn_id: str = Field(pattern=_CODE, description="医疗机构交易流水号（幂等键）")


class SettlementPublic(BaseModel):
    id: uuid.UUID
    txn_id: str
    visit_id: uuid.UUID
    status: str
    period: str
    settled_at: datetime
    settled_day: date
    insured_city: str
    treatment_city: str
    split: SplitPublic
    reversal_txn_id: str | None
    reversal_period: str | None
    reversed_at: datetime | None
    #: What the insured node last acknowledged of this claim's reservation: reserved
    #: (its confirmation is on its way), confirmed, reversed — or refused.
    insured_ack: str


class SettlementSummary(BaseModel):
    """A row of the settlements list (GET /api/v1/medical/settlements); amounts in fen."""

    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    txn_id: str
    institution_code: str
    institution_name: str
    status: str
    period: str
    settled_at: datetime
    settled_day: date
    insured_city: str
    treatment_city: str
    total: int
    fund: int
    account: int
    cash: int
    reversal_period: str | None
    reversed_at: datetime | None


class ReverseRequest(BaseModel):
    reversal_txn_id: str | None = Field(default=None, pattern=_CODE)
    reason: str = Field(default="", max_length=200)


class ReconciliationDetail(BaseModel):
    txn_id: str = Field(min_length=1, max_length=40)
    total: Fen
    fund: Fen
    account: Fen
    cash: Fen


class ReconciliationRequest(BaseModel):
    day: SaneDate
    count: NonNegInt32
    total: Fen
    fund: Fen
    account: Fen
    cash: Fen
    details: list[ReconciliationDetail] | None = Field(default=None, max_length=100_000)


class TotalsPublic(BaseModel):
    count: int
    total: int
    fund: int
    account: int
    cash: int


class DifferencePublic(BaseModel):
    txn_id: str
    kind: str
    label: str
    fields: list[str]
    hospital: dict[str, int] | None
    centre: dict[str, int] | None


class ReconciliationPublic(BaseModel):
    day: date
    balanced: bool
    hospital: TotalsPublic
    centre: TotalsPublic
    differences: list[DifferencePublic]


class GrossPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    debtor: str
    creditor: str
    claims: int
    amount: int


class NetPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    jurisdiction_code: str
    receivable: int
    payable: int
    net: int


class StatementPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    side_a: str
    side_b: str
    a_owes_b: int
    b_owes_a: int
    net_a_to_b: int
    claims_a_to_b: int
    claims_b_to_a: int
    status: str
    a_status: str
    a_reason: str | None
    a_by: str | None
    b_status: str
    b_reason: str | None
    b_by: str | None
    #: How the two sides' claims compare: pending, agreed, differs, unreachable.
    reconciliation: str
    reconciled_at: datetime | None
    #: Claims the two sides disagree on, still to be resolved or carried.
    open_differences: int = 0

    @field_validator("open_differences", mode="before")
    @classmethod
    def _count(cls, v: object) -> object:
        return len(v) if isinstance(v, list) else v


class SidePublic(BaseModel):
    """One side's figures of one direction (debtor's insured treated at the creditor's
    institutions): held by the insured side (reservations) or the treatment side
    (settlements); `node` is the node that answered (null: this node)."""

    model_config = ConfigDict(from_attributes=True)
    debtor: str
    creditor: str
    holder: str
    claims: int
    amount: int
    digest: str
    node: str | None
    at: datetime


class ClearingDifferencePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    debtor: str
    creditor: str
    institution_code: str
    txn_id: str
    sign: int
    kind: str
    label: str = ""
    insured_fund: int | None
    treatment_fund: int | None
    status: str
    found_at: datetime
    closed_at: datetime | None
    closed_by: str | None
    carried_to: str | None


class StatementDetailPublic(StatementPublic):
    period: str
    sides: list[SidePublic]
    differences: list[ClearingDifferencePublic]


class RunPublic(BaseModel):
    period: str
    status: str
    computed_at: datetime | None
    claim_count: int
    reversal_count: int
    total_fund: int
    cross_fund: int
    digest: str | None
    closed_at: datetime | None
    jurisdictions: list[GrossPublic]
    cities: list[GrossPublic]
    nets: list[NetPublic]


class DisputeRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=1000)
