"""Clearing statements with each side on its own node: the two agencies' figures compared
through the exchange, the claims that differ listed, and a difference carried into the
next period when an agency decides so.

A statement between jurisdictions a and b has two directions (a's insured treated in b,
b's treated in a). For each direction the treatment side holds the claims as
settlements, the insured side as confirmed reservations (claim_lines.py), each on the
node serving it. Each node computes the figures of what it holds; the two nodes of a
statement exchange them over signed queries (exchange/query.py):

| query | asked by → of | answer |
|---|---|---|
| `medical.clearing_statement {period, side_a, side_b, asker, agency, figures}` | one side → the other | the other side's figures of both directions (count, amount, digest of the claim list and of its 256 buckets) and its agency's answer; the asker's figures and answer are kept there, and compared |
| `medical.clearing_claims {period, debtor, creditor, holder, buckets}` | one side → the other | the claim lines of the buckets whose digests differ |
| `medical.clearing_result {period, side_a, side_b, asker, reconciliation, differences}` | the comparing side → the other | the claims that differ, kept there too |
| `medical.clearing_carry {period, side_a, side_b, asker, lines}` | one side → the other | the differing claims moved into the next open period there too |

Of the two nodes the one with the smaller node id compares (asks for the figures, the
differing lines, and sends the result) when it clears a period; the other, when it
clears, compares its fresh figures with those the first one sent last. So no two nodes
ever wait for each other's answer while both clearing (on SQLite a clearing run holds
its node's write lock while it asks); an agency's answer or a carry is sent by either
side, with the ordinary short deadline. When this node serves both jurisdictions the
same figures are computed here, by the same functions, without a query. Figures that
agree: the statement is `agreed`; else `differs` — a dispute listing each claim held by
one side only or with another amount (`med_clearing_difference`), resolved when a later
comparison no longer finds it (a confirmation or reversal arrived meanwhile) or carried
into the next period."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints
from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.db import utcnow
from tongban.errors import DomainError, ValidationFailed
from tongban.exchange import query
from tongban.exchange import service as exchange
from tongban.exchange.contracts import Refused, Sender
from tongban.exchange.schema import Code, Count, Name, Payload, RegionCode, Sha256, ShortText
from tongban.medical import claim_lines, clearing_tally, domain
from tongban.medical.models import (
    ClearingDifference,
    ClearingRun,
    ClearingSide,
    ClearingStatement,
    Institution,
    InsuredPerson,
    Reservation,
    Settlement,
)
from tongban.medical.periods import open_period_from
from tongban.medical.queries import TxnId
from tongban.medical.reconcile import (
    Bucket,
    Difference,
    Figures,
    Holder,
    Kind,
    Line,
    Reconciliation,
    differences,
    differing_buckets,
    figures,
)

log = logging.getLogger(__name__)

STATEMENT = "medical.clearing_statement"
CLAIMS = "medical.clearing_claims"
RESULT = "medical.clearing_result"
CARRY = "medical.clearing_carry"

#: Clearing is a batch job, not a person waiting: the other node may take this long to
#: compute its side (asked only by the comparing node, whose peer never asks it back).
TIMEOUT_MS = 30_000
#: Most claim lines one answer carries (the buckets of a big difference are asked for
#: in several queries; a single bucket beyond this is listed as differing, not by claim).
MAX_LINES = 20_000

Period = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")]
Signed = Annotated[int, Field(ge=-(10**15), le=10**15)]
BucketNo = Annotated[int, Field(ge=0, le=255)]
AgencyStatus = Literal["pending", "confirmed", "disputed"]


class UnavailableForClearing(DomainError):
    status = 503
    type = "clearing-peer-unavailable"
    title = "对方节点暂不可用"


# --- contracts ---------------------------------------------------------------------------


class AgencyAnswer(Payload):
    """An agency's answer on its side of a statement."""

    status: AgencyStatus
    reason: ShortText | None = None
    by: Name | None = None
    at: datetime | None = None


class BucketOut(Payload):
    bucket: BucketNo
    lines: Count
    digest: Sha256


class FiguresOut(Payload):
    debtor: RegionCode
    creditor: RegionCode
    holder: Holder
    claims: Signed
    amount: Signed
    digest: Sha256
    buckets: Annotated[list[BucketOut], Field(max_length=256)]


class StatementAsk(Payload):
    period: Period
    side_a: RegionCode
    side_b: RegionCode
    #: The asking side (one of the two): its node serves it.
    asker: RegionCode
    agency: AgencyAnswer
    #: What the asker holds: the insured side of asker → other, the treatment side of
    #: other → asker.
    figures: Annotated[list[FiguresOut], Field(min_length=2, max_length=2)]


class StatementAnswer(Payload):
    #: What the answering side holds: the treatment side of asker → it, the insured
    #: side of it → asker.
    figures: Annotated[list[FiguresOut], Field(min_length=2, max_length=2)]
    #: Its agency's answer; None while it has no statement for the pair.
    agency: AgencyAnswer | None = None


class ClaimsAsk(Payload):
    period: Period
    debtor: RegionCode
    creditor: RegionCode
    holder: Holder
    buckets: Annotated[list[BucketNo], Field(min_length=1, max_length=256)]


class LineOut(Payload):
    institution_code: Code
    txn_id: TxnId
    sign: Literal[1, -1]
    fund: Annotated[int, Field(ge=0, le=10**12)]


class ClaimsAnswer(Payload):
    lines: Annotated[list[LineOut], Field(max_length=MAX_LINES)]


class DifferenceOut(Payload):
    debtor: RegionCode
    creditor: RegionCode
    institution_code: Code
    txn_id: TxnId
    sign: Literal[1, -1]
    kind: Kind
    insured_fund: Annotated[int, Field(ge=0, le=10**12)] | None = None
    treatment_fund: Annotated[int, Field(ge=0, le=10**12)] | None = None


class ResultAsk(Payload):
    period: Period
    side_a: RegionCode
    side_b: RegionCode
    asker: RegionCode
    reconciliation: Literal["agreed", "differs"]
    differences: Annotated[list[DifferenceOut], Field(max_length=MAX_LINES)]


class ResultAnswer(Payload):
    #: False: the answering side has no open statement for the pair (yet).
    kept: bool


class CarryLine(Payload):
    debtor: RegionCode
    creditor: RegionCode
    institution_code: Code
    txn_id: TxnId
    sign: Literal[1, -1]


class CarryAsk(Payload):
    period: Period
    side_a: RegionCode
    side_b: RegionCode
    asker: RegionCode
    by: Name = ""
    lines: Annotated[list[CarryLine], Field(min_length=1, max_length=10_000)]


class CarryAnswer(Payload):
    carried: Count
    to_period: Period | None = None


# --- conversions ---------------------------------------------------------------------------


def figures_out(debtor: str, creditor: str, holder: Holder, f: Figures) -> FiguresOut:
    return FiguresOut(
        debtor=debtor,
        creditor=creditor,
        holder=holder,
        claims=f.claims,
        amount=f.amount,
        digest=f.digest,
        buckets=[
            BucketOut(bucket=k, lines=b.lines, digest=b.digest)
            for k, b in sorted(f.buckets.items())
        ],
    )


def figures_in(f: FiguresOut) -> Figures:
    return Figures(
        f.claims, f.amount, f.digest, {b.bucket: Bucket(b.lines, b.digest) for b in f.buckets}
    )


def _agency_of(st: ClearingStatement, side: str) -> AgencyAnswer:
    s = "a" if side == st.side_a else "b"
    return AgencyAnswer(
        status=getattr(st, f"{s}_status"),
        reason=getattr(st, f"{s}_reason"),
        by=getattr(st, f"{s}_by"),
        at=getattr(st, f"{s}_at"),
    )


def _mirror(st: ClearingStatement, side: str, agency: AgencyAnswer | None) -> None:
    """Keep the other side's agency answer, as its node said it."""
    if agency is None:
        return
    s = "a" if side == st.side_a else "b"
    setattr(st, f"{s}_status", agency.status)
    setattr(st, f"{s}_reason", (agency.reason or None) and agency.reason[:1000])
    setattr(st, f"{s}_by", (agency.by or None) and agency.by[:80])
    setattr(st, f"{s}_at", agency.at)


# --- who may ask ----------------------------------------------------------------------------


def _for_a_side(
    session: Session, payload: StatementAsk | CarryAsk | ResultAsk, sender: Sender
) -> None:
    """One side of a statement asks the other: the asker is one of its two jurisdictions,
    served by the sending node, and this node serves the other."""
    a, b = payload.side_a, payload.side_b
    if not a < b:
        raise Refused("bad-payload", "对账单双方须按辖区代码升序且不相同", 422)
    if payload.asker not in (a, b):
        raise Refused("not-allowed", "只有对账单的一方可以询问另一方")
    sender.require(payload.asker, "对账单的询问方")
    if sender.source_jurisdiction != payload.asker:
        raise Refused("not-allowed", "查询的来源辖区须为对账单的询问方")
    other = b if payload.asker == a else a
    if sender.target_jurisdiction != other:
        raise Refused("not-allowed", "查询须发往对账单另一方的节点")
    if isinstance(payload, CarryAsk):
        for line in payload.lines:
            if {line.debtor, line.creditor} != {a, b}:
                raise Refused("bad-payload", "结转的结算不属于该对账单的双方", 422)
    if isinstance(payload, StatementAsk):
        held = {(payload.asker, Holder.INSURED), (other, Holder.TREATMENT)}
        got = {(f.debtor, f.holder) for f in payload.figures}
        if got != held or any({f.debtor, f.creditor} != {a, b} for f in payload.figures):
            raise Refused("bad-payload", "询问方只能报送其自身持有的结算数据", 422)
    if isinstance(payload, ResultAsk):
        for d in payload.differences:
            if {d.debtor, d.creditor} != {a, b}:
                raise Refused("bad-payload", "差异结算不属于该对账单的双方", 422)


def _for_the_counterparty(session: Session, payload: ClaimsAsk, sender: Sender) -> None:
    """The claims a side holds of one direction are listed only for the other party of
    that direction."""
    if payload.debtor == payload.creditor:
        raise Refused("bad-payload", "应付方与应收方不能相同", 422)
    holder, party = (
        (payload.debtor, payload.creditor)
        if payload.holder is Holder.INSURED
        else (payload.creditor, payload.debtor)
    )
    sender.require(party, "该方向的另一方")
    if sender.source_jurisdiction != party or sender.target_jurisdiction != holder:
        raise Refused("not-allowed", "只有该方向的另一方可以向持有方查询结算明细")


# --- this node's side -------------------------------------------------------------------------


def held_figures(
    session: Session, period: str, debtor: str, creditor: str, holder: Holder
) -> Figures:
    """The figures of one direction as this node holds it on the `holder` side."""
    return figures(claim_lines.lines(session, period, debtor, creditor, holder))


def _statement(
    session: Session, period: str, a: str, b: str, *, lock: bool
) -> ClearingStatement | None:
    q = (
        select(ClearingStatement)
        .join(ClearingRun, ClearingRun.id == ClearingStatement.run_id)
        .where(
            ClearingRun.period == period,
            ClearingRun.status == "open",
            ClearingStatement.side_a == a,
            ClearingStatement.side_b == b,
        )
    )
    if lock:
        # Never wait for this node's own clearing run (which may be asking us meanwhile):
        # a row it holds is skipped, its answer is exchanged again at the next run.
        q = q.with_for_update(skip_locked=True, of=ClearingStatement)
    return session.scalar(q)


def _own_figures(
    session: Session, period: str, st_or_pair: tuple[str, str], here: set[str]
) -> dict[tuple[str, Holder], Figures]:
    """The figures of what this node holds of a pair's two directions."""
    a, b = st_or_pair
    out = {}
    for d, c in ((a, b), (b, a)):
        if d in here:
            out[(d, Holder.INSURED)] = held_figures(session, period, d, c, Holder.INSURED)
        if c in here:
            out[(d, Holder.TREATMENT)] = held_figures(session, period, d, c, Holder.TREATMENT)
    return out


@query.query_handler(
    STATEMENT, schema=StatementAsk, answer_schema=StatementAnswer, authorise=_for_a_side
)
def answer_statement(
    session: Session, payload: StatementAsk, ctx: query.QueryContext
) -> StatementAnswer:
    """This side's figures of the statement's two directions and its agency's answer.
    The asker's figures and answer are kept on this side's statement (when it has one),
    which is compared with them at once; the claims that differ follow in the result."""
    me = ctx.sender.target_jurisdiction
    other = payload.asker
    pair = (payload.side_a, payload.side_b)
    own = _own_figures(session, payload.period, pair, {me})
    theirs = {(f.debtor, f.holder): figures_in(f) for f in payload.figures}
    st = _statement(session, payload.period, *pair, lock=True)
    if st is None and any(not f.agrees(Figures()) for f in theirs.values()):
        st = _new_statement(session, payload.period, pair)
    mine = None
    if st is not None:
        now = utcnow()
        _mirror(st, other, payload.agency)
        _keep_sides(st, {k: (v, ctx.sender.node) for k, v in theirs.items()}, now)
        _keep_sides(st, {k: (v, None) for k, v in own.items()}, now)
        _compare_kept(st, now)
        mine = _agency_of(st, me)
    out = [figures_out(d, _other(pair, d), h, f) for (d, h), f in sorted(own.items())]
    return StatementAnswer(figures=out, agency=mine)


@query.query_handler(RESULT, schema=ResultAsk, answer_schema=ResultAnswer, authorise=_for_a_side)
def answer_result(session: Session, payload: ResultAsk, ctx: query.QueryContext) -> ResultAnswer:
    """The comparing side's result: the claims that differ, kept on this side too."""
    st = _statement(session, payload.period, payload.side_a, payload.side_b, lock=True)
    if st is None:
        return ResultAnswer(kept=False)
    now = utcnow()
    found = [
        (
            d.debtor,
            d.creditor,
            Difference(
                d.institution_code, d.txn_id, d.sign, d.kind, d.insured_fund, d.treatment_fund
            ),
        )
        for d in payload.differences
    ]
    _keep_differences(st, found, now)
    st.reconciliation, st.reconciled_at = payload.reconciliation, now
    session.flush()
    return ResultAnswer(kept=True)


def _new_statement(
    session: Session, period: str, pair: tuple[str, str]
) -> ClearingStatement | None:
    """A statement for a pair this side holds no claim of, when the other side holds
    some — in a period this node has cleared and not closed (else none: the other side
    sends its figures again after this node's clearing)."""
    run = session.scalar(
        select(ClearingRun).where(
            ClearingRun.period == period,
            ClearingRun.status == "open",
            ClearingRun.computed_at.is_not(None),
        )
    )
    if run is None:
        return None
    st = ClearingStatement(
        run_id=run.id,
        side_a=pair[0],
        side_b=pair[1],
        a_owes_b=0,
        b_owes_a=0,
        claims_a_to_b=0,
        claims_b_to_a=0,
    )
    session.add(st)
    session.flush()
    return st


def kept_from_the_other_side(st: ClearingStatement) -> bool:
    """Whether the statement must stay although this side holds no claim of it: a
    difference not resolved, or the other side holds claims."""
    empty = Figures()
    return any(d.status != "resolved" for d in st.differences) or any(
        x.node is not None and (x.claims, x.amount, x.digest) != (0, 0, empty.digest)
        for x in st.sides
    )


def _other(pair: tuple[str, str], j: str) -> str:
    return pair[1] if j == pair[0] else pair[0]


@query.query_handler(
    CLAIMS, schema=ClaimsAsk, answer_schema=ClaimsAnswer, authorise=_for_the_counterparty
)
def answer_claims(session: Session, payload: ClaimsAsk, ctx: query.QueryContext) -> ClaimsAnswer:
    """The claim lines of the asked buckets of one direction, as this side holds them."""
    found: list[LineOut] = []
    for line in claim_lines.lines(
        session,
        payload.period,
        payload.debtor,
        payload.creditor,
        payload.holder,
        frozenset(payload.buckets),
    ):
        if len(found) >= MAX_LINES:
            raise ValidationFailed(
                f"所查询的结算明细超过 {MAX_LINES} 笔，请分批查询", type="too-many-claims"
            )
        found.append(
            LineOut(
                institution_code=line.institution_code,
                txn_id=line.txn_id,
                sign=1 if line.sign > 0 else -1,
                fund=line.fund,
            )
        )
    return ClaimsAnswer(lines=found)


@query.query_handler(CARRY, schema=CarryAsk, answer_schema=CarryAnswer, authorise=_for_a_side)
def answer_carry(session: Session, payload: CarryAsk, ctx: query.QueryContext) -> CarryAnswer:
    """The other side carries differing claims into the next period: this side moves the
    same claims it holds, so that both sides' statements of the period agree."""
    lines = [(x.debtor, x.creditor, x.institution_code, x.txn_id, x.sign) for x in payload.lines]
    moved, to = move_lines(session, payload.period, lines)
    st = _statement(session, payload.period, payload.side_a, payload.side_b, lock=False)
    if st is not None:
        _mark_carried(st, lines, to, f"{payload.by or payload.asker}（对方结转）")
    return CarryAnswer(carried=moved, to_period=to)


# --- moving claims into the next period -------------------------------------------------------

LineRef = tuple[str, str, str, str, int]  # debtor, creditor, institution code, txn id, sign


def move_lines(session: Session, period: str, lines: Sequence[LineRef]) -> tuple[int, str | None]:
    """Move the claims (sign +1) or reversals (−1) of `period` that this node holds —
    settlements of its institutions, reservations of its insured — into the first open
    period after it. Returns how many moved and where to."""
    to: str | None = None
    moved = 0
    for debtor, creditor, code, txn, sign in lines:
        records: list[Settlement | Reservation] = []
        if exchange.serves_here(session, creditor):
            s = session.scalar(
                select(Settlement)
                .join(Institution, Institution.id == Settlement.institution_id)
                .where(
                    Institution.code == code,
                    Settlement.txn_id == txn,
                    Settlement.insured_jurisdiction == debtor,
                    Settlement.treatment_jurisdiction == creditor,
                )
            )
            if s is not None:
                records.append(s)
        if exchange.serves_here(session, debtor):
            r = session.scalar(
                select(Reservation)
                .join(InsuredPerson, InsuredPerson.id == Reservation.insured_id)
                .where(
                    Reservation.institution_code == code,
                    Reservation.txn_id == txn,
                    InsuredPerson.jurisdiction_code == debtor,
                    Reservation.treatment_jurisdiction == creditor,
                )
            )
            if r is not None:
                records.append(r)
        for rec in records:
            if to is None:
                to = open_period_from(session, domain.next_period(period), lock=True)
            before = (rec.period, getattr(rec, "status", ""), rec.reversal_period)
            if sign > 0 and rec.period == period:
                rec.period = to
                if rec.reversal_period == period:
                    rec.reversal_period = to
                moved += 1
            elif sign < 0 and rec.reversal_period == period and rec.period != period:
                rec.reversal_period = to
                moved += 1
            after = (rec.period, before[1], rec.reversal_period)
            if isinstance(rec, Settlement) and before[0] is not None and after != before:
                clearing_tally.moved(session, rec, (before[0], before[1], before[2]))
    session.flush()
    return moved, to


def _mark_carried(st: ClearingStatement, lines: Iterable[LineRef], to: str | None, by: str) -> None:
    keys = {(code, txn, sign) for _, _, code, txn, sign in lines}
    now = utcnow()
    for d in st.differences:
        if d.status == "open" and (d.institution_code, d.txn_id, d.sign) in keys:
            d.status, d.closed_at, d.closed_by, d.carried_to = "carried", now, by[:80], to


def carry(session: Session, run: ClearingRun, st: ClearingStatement, by: str) -> str | None:
    """Carry the statement's open differences into the next open period, on the other
    side's node first (503 when it does not answer: nothing is carried), then here."""
    lines = [
        (d.debtor, d.creditor, d.institution_code, d.txn_id, d.sign) for d in st.open_differences
    ]
    if not lines:
        return None
    here, other = _sides(session, st)
    to: str | None = None
    if other is not None:
        asker = next(iter(here))
        ask = CarryAsk(
            period=run.period,
            side_a=st.side_a,
            side_b=st.side_b,
            asker=asker,
            by=by[:200],
            lines=[
                CarryLine(
                    debtor=d,
                    creditor=c,
                    institution_code=code,
                    txn_id=txn,
                    sign=1 if sign > 0 else -1,
                )
                for d, c, code, txn, sign in lines
            ],
        )
        try:
            got: CarryAnswer = query.ask(session, CARRY, source=asker, target=other, payload=ask)
        except query.QueryUnavailable as exc:
            raise UnavailableForClearing("对方节点暂不可用，差异未结转，请稍后再试") from exc
        except query.QueryRefused as exc:
            raise DomainError(
                f"对方节点拒绝结转：{exc.detail}", type="carry-refused", status=409
            ) from exc
        to = got.to_period
    _, here_to = move_lines(session, run.period, lines)
    to = here_to or to or domain.next_period(run.period)
    _mark_carried(st, lines, to, by)
    from tongban.audit import service as audit  # carrying moves claims between periods

    audit.record_change(
        session,
        "medical.clearing.carried",
        f"medical:clearing:{run.period}:{st.side_a}-{st.side_b}",
        "system",
        reason=f"{by} 结转下期",
        period=run.period,
        to_period=to,
        claims=len(lines),
        claims_digest=audit.digest(sorted(list(x) for x in lines), session),
    )
    session.flush()
    return to


# --- reconciling a statement -----------------------------------------------------------------


def _sides(session: Session, st: ClearingStatement) -> tuple[set[str], str | None]:
    """The statement's jurisdictions this node serves, and the other one when this node
    serves only one of them."""
    here = {j for j in (st.side_a, st.side_b) if exchange.serves_here(session, j)}
    if len(here) == 1:
        return here, st.side_b if st.side_a in here else st.side_a
    return here, None


def _ask_statement(
    session: Session,
    run: ClearingRun,
    st: ClearingStatement,
    me: str,
    other: str,
    own: dict[tuple[str, Holder], Figures],
    timeout_ms: int | None = None,
) -> StatementAnswer:
    pair = (st.side_a, st.side_b)
    ask = StatementAsk(
        period=run.period,
        side_a=st.side_a,
        side_b=st.side_b,
        asker=me,
        agency=_agency_of(st, me),
        figures=[figures_out(d, _other(pair, d), h, f) for (d, h), f in sorted(own.items())],
    )
    answer: StatementAnswer = query.ask(
        session, STATEMENT, source=me, target=other, payload=ask, timeout_ms=timeout_ms
    )
    return answer


def exchange_agency(session: Session, run: ClearingRun, st: ClearingStatement) -> bool:
    """Tell the other side's node this side's agency answer (with this side's figures)
    and keep its own answer and figures (best effort, within the ordinary deadline:
    False when it does not answer; the next clearing exchanges them again)."""
    here, other = _sides(session, st)
    if other is None:
        return True
    me = next(iter(here))
    own = _own_figures(session, run.period, (st.side_a, st.side_b), here)
    try:
        got = _ask_statement(session, run, st, me, other, own)
    except query.QueryFailed as exc:
        log.warning(
            "statement %s %s-%s: no answer from %s (%s)",
            run.period,
            st.side_a,
            st.side_b,
            other,
            exc.detail,
        )
        return False
    now = utcnow()
    _mirror(st, other, got.agency)
    node = _node_serving(session, other)
    _keep_sides(st, {(f.debtor, f.holder): (figures_in(f), node) for f in got.figures}, now)
    _keep_sides(st, {k: (v, None) for k, v in own.items()}, now)
    _compare_kept(st, now)
    session.flush()
    return True


class _Remote:
    """The other side's node for one statement: its claim lines, in batches."""

    def __init__(self, session: Session, period: str, me: str, other: str) -> None:
        self.session, self.period, self.me, self.other = session, period, me, other

    def lines(
        self, debtor: str, creditor: str, holder: Holder, buckets: list[int], sizes: dict[int, int]
    ) -> list[Line]:
        out: list[Line] = []
        batch: list[int] = []
        count = 0
        for b in [*buckets, -1]:
            n = sizes.get(b, 0)
            if batch and (b < 0 or count + n > MAX_LINES):
                ask = ClaimsAsk(
                    period=self.period,
                    debtor=debtor,
                    creditor=creditor,
                    holder=holder,
                    buckets=batch,
                )
                got: ClaimsAnswer = query.ask(
                    self.session,
                    CLAIMS,
                    source=self.me,
                    target=self.other,
                    payload=ask,
                    timeout_ms=TIMEOUT_MS,
                )
                out += [Line(x.institution_code, x.txn_id, x.sign, x.fund) for x in got.lines]
                batch, count = [], 0
            if b >= 0:
                batch.append(b)
                count += n
        return out


def compares(session: Session, other: str) -> bool:
    """Whether this node compares the statements it shares with the node serving `other`
    (the smaller node id of the two does), rather than waiting for that node's figures."""
    from tongban.kernel.node import settings_of

    peer = _node_serving(session, other)
    return peer is None or settings_of(session).node_id < peer


def reconcile_statement(
    session: Session, run: ClearingRun, st: ClearingStatement
) -> Reconciliation:
    """Compare the statement's two directions as the insured side and the treatment side
    hold them and keep both sides' figures and the claims that differ: all here when this
    node serves both jurisdictions; with the other node's figures and lines (asked, then
    the result sent to it) when this node compares; else against the figures the other
    node sent last."""
    period = run.period
    here, other = _sides(session, st)
    if not here:
        return Reconciliation(st.reconciliation)
    now = utcnow()
    own = _own_figures(session, period, (st.side_a, st.side_b), here)
    if other is not None and not compares(session, other):
        _keep_sides(st, {k: (v, None) for k, v in own.items()}, now)
        outcome = _compare_kept(st, now)
        session.flush()
        return outcome
    sides: dict[tuple[str, Holder], tuple[Figures, str | None]] = {
        k: (v, None) for k, v in own.items()
    }
    remote: _Remote | None = None
    if other is not None:
        me = next(iter(here))
        try:
            got = _ask_statement(session, run, st, me, other, own, timeout_ms=TIMEOUT_MS)
        except query.QueryFailed as exc:
            log.warning(
                "statement %s %s-%s: %s did not answer (%s)",
                period,
                st.side_a,
                st.side_b,
                other,
                exc.detail,
            )
            st.reconciliation, st.reconciled_at = Reconciliation.UNREACHABLE.value, now
            session.flush()
            return Reconciliation.UNREACHABLE
        remote = _Remote(session, period, me, other)
        node = _node_serving(session, other)
        sides.update({(f.debtor, f.holder): (figures_in(f), node) for f in got.figures})
        _mirror(st, other, got.agency)
    found: list[tuple[str, str, Difference]] = []
    try:
        for d, c in ((st.side_a, st.side_b), (st.side_b, st.side_a)):
            ins = sides.get((d, Holder.INSURED), (Figures(), None))[0]
            trt = sides.get((d, Holder.TREATMENT), (Figures(), None))[0]
            if ins.agrees(trt):
                continue
            buckets = differing_buckets(ins, trt)
            held: dict[Holder, list[Line]] = {}
            for holder, fig in ((Holder.INSURED, ins), (Holder.TREATMENT, trt)):
                held_by = d if holder is Holder.INSURED else c
                if held_by in here:
                    held[holder] = list(
                        claim_lines.lines(session, period, d, c, holder, frozenset(buckets))
                    )
                    continue
                assert remote is not None
                sizes = {k: b.lines for k, b in fig.buckets.items()}
                if any(sizes.get(k, 0) > MAX_LINES for k in buckets):
                    held[holder] = []  # too big to list: the figures say it differs
                    continue
                held[holder] = remote.lines(d, c, holder, buckets, sizes)
            found += [(d, c, x) for x in differences(held[Holder.INSURED], held[Holder.TREATMENT])]
    except query.QueryFailed as exc:
        log.warning(
            "statement %s %s-%s: claims not listed (%s)", period, st.side_a, st.side_b, exc.detail
        )
        st.reconciliation, st.reconciled_at = Reconciliation.UNREACHABLE.value, now
        session.flush()
        return Reconciliation.UNREACHABLE
    _keep_sides(st, sides, now)
    agreed = all(
        sides.get((d, Holder.INSURED), (Figures(), None))[0].agrees(
            sides.get((d, Holder.TREATMENT), (Figures(), None))[0]
        )
        for d in (st.side_a, st.side_b)
    )
    _keep_differences(st, found, now)
    outcome = Reconciliation.AGREED if agreed else Reconciliation.DIFFERS
    st.reconciliation, st.reconciled_at = outcome.value, now
    session.flush()
    if other is not None:
        _send_result(session, run, st, next(iter(here)), other, outcome, found)
    return outcome


def _send_result(
    session: Session,
    run: ClearingRun,
    st: ClearingStatement,
    me: str,
    other: str,
    outcome: Reconciliation,
    found: list[tuple[str, str, Difference]],
) -> None:
    """The other side keeps the claims that differ too (best effort: sent again at the
    next clearing)."""
    ask = ResultAsk(
        period=run.period,
        side_a=st.side_a,
        side_b=st.side_b,
        asker=me,
        reconciliation="agreed" if outcome is Reconciliation.AGREED else "differs",
        differences=[
            DifferenceOut(
                debtor=d,
                creditor=c,
                institution_code=x.institution_code,
                txn_id=x.txn_id,
                sign=1 if x.sign > 0 else -1,
                kind=x.kind,
                insured_fund=x.insured_fund,
                treatment_fund=x.treatment_fund,
            )
            for d, c, x in found[:MAX_LINES]
        ],
    )
    try:
        query.ask(session, RESULT, source=me, target=other, payload=ask, timeout_ms=TIMEOUT_MS)
    except query.QueryFailed as exc:
        log.warning(
            "statement %s %s-%s: result not sent (%s)", run.period, st.side_a, st.side_b, exc.detail
        )


def _compare_kept(st: ClearingStatement, now: datetime) -> Reconciliation:
    """Compare the figures kept for both sides of each direction (this node's fresh
    ones, the other node's as it last sent them): agreed resolves what was open;
    pending while the other side has not sent its figures yet; differs otherwise (the
    claims that differ come with the comparing side's result)."""
    kept = {(x.debtor, x.holder): x for x in st.sides}
    outcome = Reconciliation.AGREED
    for d in (st.side_a, st.side_b):
        ins, trt = kept.get((d, Holder.INSURED.value)), kept.get((d, Holder.TREATMENT.value))
        if ins is None or trt is None:
            outcome = Reconciliation.PENDING
            break
        if (ins.claims, ins.amount, ins.digest) != (trt.claims, trt.amount, trt.digest):
            outcome = Reconciliation.DIFFERS
    if outcome is Reconciliation.AGREED:
        _keep_differences(st, [], now)
    st.reconciliation, st.reconciled_at = outcome.value, now
    return outcome


def _node_serving(session: Session, jurisdiction: str) -> str | None:
    from tongban.exchange.service import federation_for
    from tongban.kernel.node import settings_of

    try:
        node = federation_for(settings_of(session)).node_for(jurisdiction)
    except Exception:  # noqa: BLE001 - only a label for the figures
        return None
    return node.id if node is not None else None


def _keep_sides(
    st: ClearingStatement,
    sides: dict[tuple[str, Holder], tuple[Figures, str | None]],
    now: datetime,
) -> None:
    rows = {(x.debtor, x.holder): x for x in st.sides}
    for (debtor, holder), (f, node) in sides.items():
        creditor = st.side_b if debtor == st.side_a else st.side_a
        row = rows.get((debtor, holder.value))
        if row is None:
            row = ClearingSide(debtor=debtor, creditor=creditor, holder=holder.value)
            st.sides.append(row)
        row.claims, row.amount, row.digest, row.node, row.at = (
            f.claims,
            f.amount,
            f.digest,
            node,
            now,
        )


def _keep_differences(
    st: ClearingStatement, found: list[tuple[str, str, Difference]], now: datetime
) -> None:
    """Open what is found (again), resolve what is no longer found; carried ones stay."""
    rows = {(x.institution_code, x.txn_id, x.sign): x for x in st.differences}
    seen = set()
    for debtor, creditor, diff in found:
        seen.add(diff.key)
        row = rows.get(diff.key)
        if row is None:
            st.differences.append(
                ClearingDifference(
                    debtor=debtor,
                    creditor=creditor,
                    institution_code=diff.institution_code,
                    txn_id=diff.txn_id,
                    sign=diff.sign,
                    kind=diff.kind.value,
                    insured_fund=diff.insured_fund,
                    treatment_fund=diff.treatment_fund,
                    status="open",
                    found_at=now,
                )
            )
            continue
        row.kind, row.insured_fund, row.treatment_fund = (
            diff.kind.value,
            diff.insured_fund,
            diff.treatment_fund,
        )
        if row.status != "open":
            row.status, row.closed_at, row.closed_by, row.carried_to = "open", None, None, None
            row.found_at = now
    for key, row in rows.items():
        if key not in seen and row.status == "open":
            row.status, row.closed_at, row.closed_by = "resolved", now, "复核一致"


def empty(st: ClearingStatement) -> bool:
    """Nothing on either side and nothing to keep: the statement need not exist. (Nothing
    here and the other node unreachable: nothing to show either — a fresh federation's
    first clearing, its peers still starting; the next clearing asks again.)"""
    return (
        not (st.a_owes_b or st.b_owes_a or st.claims_a_to_b or st.claims_b_to_a)
        and all(s.claims == 0 and s.amount == 0 and s.digest == Figures().digest for s in st.sides)
        and not any(d.status != "resolved" for d in st.differences)
        and st.reconciliation in (Reconciliation.AGREED, Reconciliation.UNREACHABLE)
    )
