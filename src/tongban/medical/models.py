"""ORM tables of cross-region outpatient settlement: parties, rules, transactions and
clearing. Money columns are integers in fen; ratios are integer basis points."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tongban.db import Base, UTCDateTime, new_id, utcnow
from tongban.kernel.history import EventRow, HasHistory, Versioned

# --- parties -------------------------------------------------------------------------


class Institution(Base):
    """A designated medical institution (定点医疗机构) with its city, district and level."""

    __tablename__ = "med_institution"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    jurisdiction_code: Mapped[str] = mapped_column(ForeignKey("jurisdiction.code"), index=True)
    city_code: Mapped[str] = mapped_column(ForeignKey("city.code"), index=True)
    #: GB/T 2260 district (county) code; decides "treated in the demonstration zone".
    district_code: Mapped[str | None] = mapped_column(String(6))
    level: Mapped[int] = mapped_column(Integer)  # 1 一级, 2 二级, 3 三级


class HospitalStaff(Base):
    """Which institution a hospital staff account (role `hospital`) works for."""

    __tablename__ = "med_hospital_staff"
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id"), primary_key=True)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("med_institution.id"), index=True)


class InsuredPerson(Base):
    """An insured person (参保人) of a city, with their scheme and personal account."""

    __tablename__ = "med_insured"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    id_number: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(40))
    jurisdiction_code: Mapped[str] = mapped_column(ForeignKey("jurisdiction.code"), index=True)
    city_code: Mapped[str] = mapped_column(ForeignKey("city.code"), index=True)
    #: District of the insured registration; decides "insured in the demonstration zone".
    district_code: Mapped[str | None] = mapped_column(String(6))
    scheme: Mapped[str] = mapped_column(String(10))  # employee | resident
    #: 个人账户余额 (employee scheme), fen.
    account_balance: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Accumulator(Base):
    """Yearly accumulators of one insured person; moved by settlements and reversals
    while the person's row is locked."""

    __tablename__ = "med_accumulator"
    insured_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("med_insured.id"), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    deductible_used: Mapped[int] = mapped_column(BigInteger, default=0)
    fund_paid: Mapped[int] = mapped_column(BigInteger, default=0)


class Filing(Base):
    """备案 for treatment away from the insured city, with its type and validity; on the
    insured node. Made by the resident (`self`) or at a treatment institution's counter
    with the patient's consent (`counter`, through the insured node's query); each one
    is an entry of the audit chain."""

    __tablename__ = "med_filing"
    __audit_kind__ = "medical.filing"
    __audit_subject__ = ("filing", "id")
    __audit_fields__ = (
        "insured_id",
        "type",
        "target_city",
        "target_jurisdiction",
        "valid_from",
        "valid_to",
        "channel",
        "filed_by",
    )
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    insured_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("med_insured.id"), index=True)
    type: Mapped[str] = mapped_column(String(12))
    #: The city covered; NULL with a jurisdiction: all its cities; both NULL: anywhere.
    target_city: Mapped[str | None] = mapped_column(ForeignKey("city.code"))
    target_jurisdiction: Mapped[str | None] = mapped_column(ForeignKey("jurisdiction.code"))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: self (the resident, online) | counter (an institution's counter, with consent).
    channel: Mapped[str] = mapped_column(String(10), default="self", server_default="self")
    #: Counter filings: the institution and its operator.
    filed_by: Mapped[str | None] = mapped_column(String(120))
    #: Counter filings: when the patient consented (as the counter said).
    consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# --- rules ---------------------------------------------------------------------------


class PolicyRule(Base):
    """The insured city's policy for one scheme and hospital level."""

    __tablename__ = "med_policy"
    __table_args__ = (UniqueConstraint("city_code", "scheme", "level"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    city_code: Mapped[str] = mapped_column(ForeignKey("city.code"))
    scheme: Mapped[str] = mapped_column(String(10))
    level: Mapped[int] = mapped_column(Integer)
    deductible: Mapped[int] = mapped_column(BigInteger)  # 起付线, fen per year
    fund_ratio_bp: Mapped[int] = mapped_column(Integer)  # basis points
    annual_cap: Mapped[int] = mapped_column(BigInteger)  # 封顶线, fen per year


class CatalogueItem(Base):
    """An item of the treatment jurisdiction's catalogue, with its class (甲/乙/丙)."""

    __tablename__ = "med_catalogue_item"
    __table_args__ = (UniqueConstraint("jurisdiction_code", "code"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    jurisdiction_code: Mapped[str] = mapped_column(ForeignKey("jurisdiction.code"))
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(10))  # drug | treatment | material
    item_class: Mapped[str] = mapped_column(String(1))  # A | B | C
    self_pay_first_bp: Mapped[int] = mapped_column(Integer, default=0)
    #: 参考单价, fen: what the counter proposes when the clerk leaves the price empty.
    price_fen: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


# --- transactions --------------------------------------------------------------------


class Visit(Base):
    """就诊登记: one outpatient visit at an institution, with its fee items. The insured
    person is who the insured node said they are at registration (their record stays
    on that node): ID number, name, where and in which scheme they are insured."""

    __tablename__ = "med_visit"
    __table_args__ = (UniqueConstraint("institution_id", "visit_no"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("med_institution.id"))
    id_number: Mapped[str] = mapped_column(String(18), index=True)
    insured_name: Mapped[str] = mapped_column(String(40))
    insured_jurisdiction: Mapped[str] = mapped_column(String(6))
    insured_city: Mapped[str] = mapped_column(String(6))
    insured_district: Mapped[str | None] = mapped_column(String(6))
    scheme: Mapped[str] = mapped_column(String(10))
    #: The hospital's own visit number (门诊流水号).
    visit_no: Mapped[str] = mapped_column(String(40))
    department: Mapped[str] = mapped_column(String(40), default="")
    diagnosis: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(10), default="open")  # open | settled
    registered_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("account.id"))
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    items: Mapped[list[FeeItem]] = relationship(
        back_populates="visit", order_by="FeeItem.seq", cascade="all, delete-orphan"
    )
    institution: Mapped[Institution] = relationship()


class FeeItem(Base):
    """One uploaded fee item, classified by the treatment jurisdiction's catalogue."""

    __tablename__ = "med_fee_item"
    __table_args__ = (UniqueConstraint("visit_id", "seq"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    visit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("med_visit.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(10))
    item_class: Mapped[str] = mapped_column(String(1))
    self_pay_first_bp: Mapped[int] = mapped_column(Integer, default=0)
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[int] = mapped_column(BigInteger)  # fen
    amount: Mapped[int] = mapped_column(BigInteger)  # quantity × unit_price, fen

    visit: Mapped[Visit] = relationship(back_populates="items")


class Settlement(Base, HasHistory["SettlementEvent"], Versioned):
    """A settled outpatient claim, on the treatment (hospital's) node. Idempotent by
    (institution, hospital transaction id); a reversal (冲正) marks it reversed and
    carries its own clearing period. Its states are the kernel machine
    `domain.SETTLEMENT` (settled → reversed); each change is a SettlementEvent, and every
    UPDATE checks its `version`. The accumulators it moved are the insured node's
    reservation (`reservation_id`); `insured_ack` is the reservation state the insured
    node last acknowledged, so the worker knows what it is still owed (confirm, reverse)."""

    __tablename__ = "med_settlement"
    __audit_kind__ = "medical.settlement"
    __audit_subject__ = ("settlement", "id")
    __audit_actor__ = ("account", "settled_by")
    __audit_fields__ = (
        "institution_id",
        "txn_id",
        "request_hash",
        "insured_jurisdiction",
        "treatment_jurisdiction",
        "insured_city",
        "treatment_city",
        "period",
        "total",
        "fund",
        "account",
        "cash",
    )
    __table_args__ = (
        UniqueConstraint("institution_id", "txn_id"),
        Index("ix_med_settlement_period", "period"),
        Index("ix_med_settlement_reversal_period", "reversal_period"),
        Index("ix_med_settlement_institution_day", "institution_id", "settled_day"),
        # Lists (migration 0041): a hospital's, an agency's, newest first.
        Index("ix_med_settlement_institution_at", "institution_id", "settled_at"),
        Index("ix_med_settlement_treatment_at", "treatment_jurisdiction", "settled_at"),
        Index("ix_med_settlement_insured_at", "insured_jurisdiction", "settled_at"),
    )
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("med_institution.id"))
    txn_id: Mapped[str] = mapped_column(String(40))
    request_hash: Mapped[str] = mapped_column(String(64))
    visit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("med_visit.id"), index=True)
    id_number: Mapped[str] = mapped_column(String(18), index=True)
    insured_name: Mapped[str] = mapped_column(String(40))
    scheme: Mapped[str] = mapped_column(String(10))
    level: Mapped[int] = mapped_column(Integer)
    insured_jurisdiction: Mapped[str] = mapped_column(String(6))
    insured_city: Mapped[str] = mapped_column(String(6))
    treatment_jurisdiction: Mapped[str] = mapped_column(String(6))
    treatment_city: Mapped[str] = mapped_column(String(6))
    #: Filing used, on the insured node (NULL when none was needed).
    filing_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    #: The insured node's reservation of the accumulators this claim moved.
    reservation_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    #: reserved (confirmation owed) | confirmed | reversed (see domain.pending_step).
    insured_ack: Mapped[str] = mapped_column(
        String(10), default="reserved", server_default="confirmed", index=True
    )
    year: Mapped[int] = mapped_column(Integer)
    settled_day: Mapped[date] = mapped_column(Date)  # local (Asia/Shanghai) date
    period: Mapped[str] = mapped_column(String(7))  # clearing period YYYY-MM
    total: Mapped[int] = mapped_column(BigInteger)
    class_a: Mapped[int] = mapped_column(BigInteger)
    class_b: Mapped[int] = mapped_column(BigInteger)
    class_c: Mapped[int] = mapped_column(BigInteger)
    eligible: Mapped[int] = mapped_column(BigInteger)
    deductible_part: Mapped[int] = mapped_column(BigInteger)
    fund: Mapped[int] = mapped_column(BigInteger)
    account: Mapped[int] = mapped_column(BigInteger)
    cash: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(10), default="settled")  # settled | reversed
    settled_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("account.id"))
    settled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reversal_txn_id: Mapped[str | None] = mapped_column(String(40))
    reversal_reason: Mapped[str | None] = mapped_column(String(200))
    reversed_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("account.id"))
    reversed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The clearing period the reversal counts in: the claim's own period while that is
    #: open, otherwise the first open period after it.
    reversal_period: Mapped[str | None] = mapped_column(String(7))

    visit: Mapped[Visit] = relationship()
    institution: Mapped[Institution] = relationship()
    events: Mapped[list[SettlementEvent]] = relationship(
        back_populates="settlement", order_by="SettlementEvent.seq", cascade="all, delete-orphan"
    )


class SettlementEvent(Base, EventRow):
    """Append-only history of a settlement: settled, reversed (who, when, why, and the
    amounts moved as the payload), each one in the audit chain."""

    __tablename__ = "med_settlement_event"
    __history_key__ = "settlement_id"
    __audit_kind__ = "medical.settlement.event"
    __audit_subject__ = ("settlement", "settlement_id")
    settlement_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("med_settlement.id"), index=True)

    settlement: Mapped[Settlement] = relationship(back_populates="events")


class Reservation(Base, HasHistory["ReservationEvent"], Versioned):
    """On the insured person's node: the accumulators one hospital transaction took
    (deductible part, fund, personal account), keyed by (institution, transaction id).
    Its states are the kernel machine `domain.RESERVATION` (reserved → confirmed /
    released / expired / reversed); the accumulators move when it is made and move back
    when it is released, expires or is reversed, each under the person's row lock."""

    __tablename__ = "med_reservation"
    __audit_kind__ = "medical.reservation"
    __audit_subject__ = ("reservation", "id")
    __audit_fields__ = (
        "insured_id",
        "institution_code",
        "txn_id",
        "request_hash",
        "treatment_jurisdiction",
        "year",
        "deductible_part",
        "fund",
        "account",
        "expires_at",
    )
    __table_args__ = (
        UniqueConstraint("institution_code", "txn_id"),
        Index("ix_med_reservation_state_expires", "state", "expires_at"),
        Index("ix_med_reservation_period", "period"),
        Index("ix_med_reservation_reversal_period", "reversal_period"),
    )
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    insured_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("med_insured.id"), index=True)
    institution_code: Mapped[str] = mapped_column(String(20))
    institution_name: Mapped[str] = mapped_column(String(80))
    treatment_jurisdiction: Mapped[str] = mapped_column(String(6))
    treatment_city: Mapped[str] = mapped_column(String(6))
    level: Mapped[int] = mapped_column(Integer)
    txn_id: Mapped[str] = mapped_column(String(40))
    request_hash: Mapped[str] = mapped_column(String(64))
    filing_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("med_filing.id"))
    year: Mapped[int] = mapped_column(Integer)
    #: The split, as computed here under the person's lock (fen).
    total: Mapped[int] = mapped_column(BigInteger)
    class_a: Mapped[int] = mapped_column(BigInteger)
    class_b: Mapped[int] = mapped_column(BigInteger)
    class_c: Mapped[int] = mapped_column(BigInteger)
    eligible: Mapped[int] = mapped_column(BigInteger)
    deductible_part: Mapped[int] = mapped_column(BigInteger)
    fund: Mapped[int] = mapped_column(BigInteger)
    account: Mapped[int] = mapped_column(BigInteger)
    cash: Mapped[int] = mapped_column(BigInteger)
    #: The accumulators it started from.
    before_deductible_used: Mapped[int] = mapped_column(BigInteger)
    before_fund_paid: Mapped[int] = mapped_column(BigInteger)
    before_balance: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(10), default="reserved")
    reserved_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: After this the worker asks the hospital's node what became of the transaction.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The clearing period of the claim, as the hospital's node assigned it (sent with
    #: the confirmation or the reversal; the first open period here from it): this
    #: node's side of the claim in the monthly statement. NULL until it is known.
    period: Mapped[str | None] = mapped_column(String(7))
    #: The period its reversal counts in (reversed claims), as for the settlement.
    reversal_period: Mapped[str | None] = mapped_column(String(7))

    insured: Mapped[InsuredPerson] = relationship()
    events: Mapped[list[ReservationEvent]] = relationship(
        back_populates="reservation", order_by="ReservationEvent.seq", cascade="all, delete-orphan"
    )


class ReservationEvent(Base, EventRow):
    """Append-only history of a reservation (reserved, confirmed, released, expired,
    reversed: who — the hospital's node or the worker — when, and the amounts), each one
    in the audit chain."""

    __tablename__ = "med_reservation_event"
    __history_key__ = "reservation_id"
    __audit_kind__ = "medical.reservation.event"
    __audit_subject__ = ("reservation", "reservation_id")
    reservation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("med_reservation.id"), index=True)

    reservation: Mapped[Reservation] = relationship(back_populates="events")


class Reconciliation(Base):
    """A daily reconciliation (对账) sent by an institution, with its outcome."""

    __tablename__ = "med_reconciliation"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("med_institution.id"), index=True)
    day: Mapped[date] = mapped_column(Date)
    hospital_count: Mapped[int] = mapped_column(Integer)
    hospital_total: Mapped[int] = mapped_column(BigInteger)
    hospital_fund: Mapped[int] = mapped_column(BigInteger)
    centre_count: Mapped[int] = mapped_column(Integer)
    centre_total: Mapped[int] = mapped_column(BigInteger)
    centre_fund: Mapped[int] = mapped_column(BigInteger)
    balanced: Mapped[bool] = mapped_column(Boolean)
    differences: Mapped[int] = mapped_column(Integer, default=0)
    submitted_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("account.id"))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- clearing ------------------------------------------------------------------------


class ClearingRun(Base):
    """One clearing period. Created on demand (a reversal locks it to decide where it
    lands); `computed_at` is set when it has been cleared; closed is immutable."""

    __tablename__ = "med_clearing_run"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    period: Mapped[str] = mapped_column(String(7), unique=True)
    status: Mapped[str] = mapped_column(String(10), default="open")  # open | closed
    computed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claim_count: Mapped[int] = mapped_column(Integer, default=0)
    reversal_count: Mapped[int] = mapped_column(Integer, default=0)
    total_fund: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Σ of the fund shares that cross a jurisdiction border.
    cross_fund: Mapped[int] = mapped_column(BigInteger, default=0)
    digest: Mapped[str | None] = mapped_column(String(64))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by: Mapped[str | None] = mapped_column(String(80))


class ClearingTally(Base):
    """Per period and city pair, the clearing's partial sums over the treatment side's
    settlements (`clearing_tally.py`): claim and reversal line counts and the fund's sum
    in fen, exactly what the direct GROUP BY (`claim_lines.settlement_lines`) gives.
    Folded from the audit chain by a job and by the clearing command, never by the
    settlement's own transaction (no hot row on the write path); a carry between
    periods adds its move here in its own transaction."""

    __tablename__ = "med_clearing_tally"
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    insured_j: Mapped[str] = mapped_column(String(6), primary_key=True)
    treatment_j: Mapped[str] = mapped_column(String(6), primary_key=True)
    insured_city: Mapped[str] = mapped_column(String(6), primary_key=True)
    treatment_city: Mapped[str] = mapped_column(String(6), primary_key=True)
    claims: Mapped[int] = mapped_column(BigInteger, default=0)
    reversals: Mapped[int] = mapped_column(BigInteger, default=0)
    amount: Mapped[int] = mapped_column(BigInteger, default=0)


class ClearingTallyMark(Base):
    """The one row (id 1): the audit chain position up to which `med_clearing_tally`
    holds every settlement and reversal. Locked by the fold only."""

    __tablename__ = "med_clearing_tally_mark"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    position: Mapped[int] = mapped_column(BigInteger, default=0)
    folded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ClearingGross(Base):
    """Gross amount the insured side (debtor) owes the treatment side (creditor), at
    jurisdiction or city level."""

    __tablename__ = "med_clearing_gross"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("med_clearing_run.id"), index=True)
    level: Mapped[str] = mapped_column(String(12))  # jurisdiction | city
    debtor: Mapped[str] = mapped_column(String(6))  # insured jurisdiction / city
    creditor: Mapped[str] = mapped_column(String(6))  # treatment jurisdiction / city
    claims: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(BigInteger)


class ClearingNet(Base):
    """A jurisdiction's net position in a period: receivable − payable (Σ = 0)."""

    __tablename__ = "med_clearing_net"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("med_clearing_run.id"), index=True)
    jurisdiction_code: Mapped[str] = mapped_column(String(6))
    receivable: Mapped[int] = mapped_column(BigInteger)
    payable: Mapped[int] = mapped_column(BigInteger)
    net: Mapped[int] = mapped_column(BigInteger)


class ClearingStatement(Base):
    """The statement between two jurisdictions (a < b by code) for a period, which the
    medical-insurance agency of each side confirms or disputes."""

    __tablename__ = "med_clearing_statement"
    __table_args__ = (UniqueConstraint("run_id", "side_a", "side_b"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("med_clearing_run.id"), index=True)
    side_a: Mapped[str] = mapped_column(String(6))
    side_b: Mapped[str] = mapped_column(String(6))
    a_owes_b: Mapped[int] = mapped_column(BigInteger)
    b_owes_a: Mapped[int] = mapped_column(BigInteger)
    claims_a_to_b: Mapped[int] = mapped_column(Integer)  # claims of a's insured in b
    claims_b_to_a: Mapped[int] = mapped_column(Integer)
    a_status: Mapped[str] = mapped_column(String(10), default="pending")
    a_reason: Mapped[str | None] = mapped_column(Text)
    a_by: Mapped[str | None] = mapped_column(String(80))
    a_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    b_status: Mapped[str] = mapped_column(String(10), default="pending")
    b_reason: Mapped[str | None] = mapped_column(Text)
    b_by: Mapped[str | None] = mapped_column(String(80))
    b_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The claims of each direction as the insured side and the treatment side hold
    #: them: pending (not compared yet), agreed, differs (a dispute: the claims are in
    #: `differences`), unreachable (the other side's node did not answer).
    reconciliation: Mapped[str] = mapped_column(
        String(12), default="pending", server_default="pending"
    )
    reconciled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    sides: Mapped[list[ClearingSide]] = relationship(
        back_populates="statement",
        order_by="[ClearingSide.debtor, ClearingSide.holder]",
        cascade="all, delete-orphan",
    )
    differences: Mapped[list[ClearingDifference]] = relationship(
        back_populates="statement",
        order_by="[ClearingDifference.status, ClearingDifference.institution_code, "
        "ClearingDifference.txn_id]",
        cascade="all, delete-orphan",
    )

    @property
    def net_a_to_b(self) -> int:
        """What a pays b after netting (negative: b pays a)."""
        return self.a_owes_b - self.b_owes_a

    @property
    def status(self) -> str:
        """disputed if either side disputes or the two sides' claims differ, confirmed
        when both confirm, else pending."""
        if "disputed" in (self.a_status, self.b_status) or self.reconciliation == "differs":
            return "disputed"
        if self.a_status == self.b_status == "confirmed":
            return "confirmed"
        return "pending"

    @property
    def open_differences(self) -> list[ClearingDifference]:
        return [d for d in self.differences if d.status == "open"]


class ClearingSide(Base):
    """One side's figures of one direction of a statement: the claims of the debtor's
    insured treated at the creditor's institutions as the insured side (its
    reservations) or the treatment side (its settlements) holds them — count, fund
    amount and the digest of the claim list — and which node said so."""

    __tablename__ = "med_clearing_side"
    __table_args__ = (UniqueConstraint("statement_id", "debtor", "holder"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    statement_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("med_clearing_statement.id"), index=True
    )
    debtor: Mapped[str] = mapped_column(String(6))  # insured jurisdiction
    creditor: Mapped[str] = mapped_column(String(6))  # treatment jurisdiction
    holder: Mapped[str] = mapped_column(String(10))  # insured | treatment
    claims: Mapped[int] = mapped_column(Integer)  # claims minus reversals
    amount: Mapped[int] = mapped_column(BigInteger)  # fen
    digest: Mapped[str] = mapped_column(String(64))
    #: The node that answered for this side; NULL: this node.
    node: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    statement: Mapped[ClearingStatement] = relationship(back_populates="sides")


class ClearingDifference(Base):
    """A claim on which the two sides of a statement disagree: held by one side only,
    or with other amounts. Open until a later comparison no longer finds it (resolved)
    or an agency carries it into the next period (carried)."""

    __tablename__ = "med_clearing_difference"
    __table_args__ = (UniqueConstraint("statement_id", "institution_code", "txn_id", "sign"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    statement_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("med_clearing_statement.id"), index=True
    )
    debtor: Mapped[str] = mapped_column(String(6))
    creditor: Mapped[str] = mapped_column(String(6))
    institution_code: Mapped[str] = mapped_column(String(20))
    txn_id: Mapped[str] = mapped_column(String(40))
    #: +1 the claim, −1 its reversal counted in this period.
    sign: Mapped[int] = mapped_column(Integer)
    #: missing_at_insured | missing_at_treatment | amount_mismatch
    kind: Mapped[str] = mapped_column(String(24))
    insured_fund: Mapped[int | None] = mapped_column(BigInteger)
    treatment_fund: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(10), default="open")  # open | resolved | carried
    found_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by: Mapped[str | None] = mapped_column(String(80))
    #: Carried: the period the claim now counts in.
    carried_to: Mapped[str | None] = mapped_column(String(7))

    statement: Mapped[ClearingStatement] = relationship(back_populates="differences")
