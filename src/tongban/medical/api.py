"""The JSON API of cross-region outpatient settlement, in the shape of the national
medical-insurance transaction set: eligibility, registration, fee upload, pre-settle,
settle, reverse, daily reconciliation — for hospital systems authenticated as hospital
staff with a bearer token — and the clearing results and statements for agencies."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, BackgroundTasks, Request, Response
from sqlalchemy.orm import Session

from tongban.identity.domain import mask_id_number
from tongban.kernel import paging
from tongban.medical import clearing_service as cs
from tongban.medical import domain, exports, service, settlement, settlement_lists
from tongban.medical.models import ClearingRun, ClearingStatement, Settlement, Visit
from tongban.medical.reconcile import KIND_LABELS, Kind
from tongban.medical.schemas import (
    AccumulatorsPublic,
    ClearingDifferencePublic,
    CounterFilingCreate,
    DifferencePublic,
    DisputeRequest,
    EligibilityPublic,
    EligibilityQuery,
    FeeUpload,
    FilingCreate,
    FilingPublic,
    GrossPublic,
    NetPublic,
    PolicyPublic,
    PreSettlementPublic,
    ReconciliationPublic,
    ReconciliationRequest,
    ReverseRequest,
    RunPublic,
    SettlementPublic,
    SettlementSummary,
    SettleRequest,
    SidePublic,
    SplitPublic,
    StatementDetailPublic,
    StatementPublic,
    TotalsPublic,
    VisitCreate,
    VisitPublic,
)
from tongban.web.deps import CurrentUser, SessionDep
from tongban.web.downloads import bytes_download
from tongban.web.problems import responses

router = APIRouter(prefix="/api/v1/medical", tags=["medical"])


def split_public(s: domain.Split) -> SplitPublic:
    return SplitPublic(**s.as_dict(), self_pay_first=s.self_pay_first)


def settlement_public(s: Settlement) -> SettlementPublic:
    return SettlementPublic(
        id=s.id,
        txn_id=s.txn_id,
        visit_id=s.visit_id,
        status=s.status,
        period=s.period,
        settled_at=s.settled_at,
        settled_day=s.settled_day,
        insured_city=s.insured_city,
        treatment_city=s.treatment_city,
        split=split_public(settlement.split_of(s)),
        reversal_txn_id=s.reversal_txn_id,
        reversal_period=s.reversal_period,
        reversed_at=s.reversed_at,
        insured_ack=s.insured_ack,
    )


def _acc(a: domain.Accumulators) -> AccumulatorsPublic:
    return AccumulatorsPublic(
        deductible_used=a.deductible_used, fund_paid=a.fund_paid, account_balance=a.account_balance
    )


def _policy(p: domain.Policy) -> PolicyPublic:
    return PolicyPublic(
        deductible=p.deductible, fund_ratio_bp=p.fund_ratio_bp, annual_cap=p.annual_cap
    )


@router.post("/eligibility", response_model=EligibilityPublic)
def eligibility(body: EligibilityQuery, actor: CurrentUser, session: SessionDep) -> object:
    """参保信息查询: scheme, filing needed/present, policy, this year's accumulators and
    the personal account balance of an insured person, for the caller's institution."""
    e = service.eligibility(session, actor, body.id_number, body.insured_city)
    p = e.person
    return EligibilityPublic(
        name=p.name,
        id_number_masked=mask_id_number(p.id_number),
        insured_jurisdiction=p.jurisdiction_code,
        insured_city=p.city_code,
        scheme=p.scheme,
        scheme_label=domain.SCHEME_LABELS[domain.Scheme(p.scheme)],
        institution_level=e.institution.level,
        filing_required=e.decision.required,
        filing_present=e.filing is not None,
        may_settle=e.decision.allowed,
        filing_reason=e.decision.reason,
        filing=FilingPublic.model_validate(e.filing) if e.filing else None,
        policy=_policy(e.policy),
        year=e.year,
        deductible_used=e.accumulators.deductible_used,
        fund_paid=e.accumulators.fund_paid,
        account_balance=e.accumulators.account_balance,
    )


@router.post("/filings", response_model=FilingPublic, status_code=201)
def file(body: FilingCreate, actor: CurrentUser, session: SessionDep) -> object:
    """异地就医备案: an insured resident files for treatment away from home."""
    return service.file_for_self(session, actor, **body.model_dump())


@router.get("/filings", response_model=list[FilingPublic], responses=responses(404))
def my_filings(actor: CurrentUser, session: SessionDep) -> object:
    """The signed-in resident's filings, on their own (insured) node, newest first."""
    return service.my_filings(session, actor)[1]


@router.post("/counter/filings", response_model=FilingPublic, status_code=201)
def file_at_counter(body: CounterFilingCreate, actor: CurrentUser, session: SessionDep) -> object:
    """代办备案: with the patient's consent (`consent: true`, else 422), a filing for
    treatment in the caller's city is made on the patient's insured node and answered
    from there (nothing is kept here: eligibility shows it from then on); 503 when that
    node does not answer."""
    return service.file_at_counter(
        session,
        actor,
        body.id_number,
        consent=body.consent,
        insured_city=body.insured_city,
        valid_to=body.valid_to,
    )


@router.post("/visits", response_model=VisitPublic, status_code=201)
def register(body: VisitCreate, actor: CurrentUser, session: SessionDep) -> Visit:
    """就诊登记: the insured node is asked who the person is; refused with the reason
    when a required filing is missing."""
    return service.register_visit(session, actor, **body.model_dump())


@router.get("/visits/{visit_id}", response_model=VisitPublic)
def get_visit(visit_id: uuid.UUID, actor: CurrentUser, session: SessionDep) -> Visit:
    return service.get_visit(session, actor, visit_id)


@router.put("/visits/{visit_id}/items", response_model=VisitPublic)
def upload_items(
    visit_id: uuid.UUID, body: FeeUpload, actor: CurrentUser, session: SessionDep
) -> Visit:
    """费用明细上传: replaces the visit's items; every code must be in the treatment
    jurisdiction's catalogue (an unknown code is refused)."""
    items = [service.ItemInput(i.code, i.quantity, i.unit_price) for i in body.items]
    return service.upload_items(session, actor, visit_id, items)


@router.post("/visits/{visit_id}/presettle", response_model=PreSettlementPublic)
def presettle(visit_id: uuid.UUID, actor: CurrentUser, session: SessionDep) -> object:
    """预结算: the split of the claim now; changes nothing."""
    pre = settlement.presettle(session, actor, visit_id)
    return PreSettlementPublic(
        visit_id=pre.visit.id,
        split=split_public(pre.split),
        before=_acc(pre.before),
        after=_acc(pre.after),
        policy=_policy(pre.policy),
    )


@router.post("/settlements", response_model=SettlementPublic, status_code=201)
def settle(
    body: SettleRequest,
    actor: CurrentUser,
    session: SessionDep,
    response: Response,
    request: Request,
    background: BackgroundTasks,
) -> SettlementPublic:
    """结算: 201 with the new settlement; 200 with the same settlement when the same
    transaction id is sent again for the same claim; 409 when it is reused for another;
    503 when the insured person's node does not answer in time (nothing settled).
    `insured_ack` is `reserved` until the insured node has acknowledged the
    confirmation, sent right after this answer (GET the settlement to see it)."""
    s, created = settlement.settle(session, actor, body.visit_id, body.txn_id)
    if not created:
        response.status_code = 200
    return _then_tell_the_insured_node(session, s, request, background)


def _then_tell_the_insured_node(
    session: Session, s: Settlement, request: Request, background: BackgroundTasks
) -> SettlementPublic:
    """Commit the hospital's transaction (the settlement or reversal exists from here
    on), answer, and then confirm or reverse on the insured node, after the response
    has gone: the counter does not wait for that round trip (the reservation holds the
    amounts meanwhile). What the insured node does not acknowledge then, the worker
    sends later (see settlement.sync_with_insured)."""
    session.commit()
    out = settlement_public(s)
    if domain.pending_step(
        domain.SettlementState(s.status), domain.ReservationState(s.insured_ack)
    ):
        background.add_task(settlement.sync_after_response, request.app.state.session_factory, s.id)
    return out


@router.get("/settlements", response_model=list[SettlementSummary], responses=responses(403))
def list_settlements(
    actor: CurrentUser,
    session: SessionDep,
    request: Request,
    response: Response,
    q: str | None = None,
    hospital: str | None = None,
    state: str | None = None,
    since: str | None = None,
    until: str | None = None,
    cursor: str | None = None,
    page_size: str | None = None,
) -> object:
    """Settlements, newest first, a page at a time (default 50, at most 200): a hospital's
    own, or those treated or insured in the medical-insurance agency's jurisdiction;
    filtered by part of the transaction number, hospital (institution code), state
    (settled | reversed) and settlement dates (`since`/`until`, YYYY-MM-DD). The next
    page is in the `Link: <…>; rel="next"` header (a tampered `cursor` is 422)."""
    f = settlement_lists.filters(q=q, hospital=hospital, state=state, since=since, until=until)
    result = settlement_lists.page(session, actor, f, settlement_lists.request(cursor, page_size))
    paging.link_next(request, response, result)
    return [SettlementSummary.model_validate(r) for r in result.rows]


@router.get("/settlements/{txn_id}", response_model=SettlementPublic)
def get_settlement(txn_id: str, actor: CurrentUser, session: SessionDep) -> SettlementPublic:
    return settlement_public(settlement.get_settlement(session, actor, txn_id))


@router.post("/settlements/{txn_id}/reverse", response_model=SettlementPublic)
def reverse(
    txn_id: str,
    body: ReverseRequest,
    actor: CurrentUser,
    session: SessionDep,
    request: Request,
    background: BackgroundTasks,
) -> SettlementPublic:
    """冲正: undo a settlement exactly; idempotent. The insured node's accumulators are
    given back right after this answer (`insured_ack` shows when it acknowledged)."""
    s = settlement.reverse(
        session, actor, txn_id, reversal_txn_id=body.reversal_txn_id, reason=body.reason
    )
    return _then_tell_the_insured_node(session, s, request, background)


@router.post("/reconciliations", response_model=ReconciliationPublic)
def reconcile(
    body: ReconciliationRequest, actor: CurrentUser, session: SessionDep
) -> ReconciliationPublic:
    """日对账: the hospital's count and totals of a day (and optionally its details);
    the differences are listed settlement by settlement."""
    totals = domain.Totals(body.count, body.total, body.fund, body.account, body.cash)
    details = [d.model_dump() for d in body.details] if body.details is not None else None
    r = settlement.reconcile_day(session, actor, day=body.day, totals=totals, details=details)
    return ReconciliationPublic(
        day=body.day,
        balanced=r.balanced,
        hospital=TotalsPublic(**vars(r.hospital)),
        centre=TotalsPublic(**vars(r.centre)),
        differences=[
            DifferencePublic(
                txn_id=d.txn_id,
                kind=d.kind,
                label=domain.DIFFERENCE_LABELS[d.kind],
                fields=list(d.fields),
                hospital=d.hospital,
                centre=d.centre,
            )
            for d in r.differences
        ],
    )


# --- clearing (agencies) ---------------------------------------------------------------


def run_public(session: Session, run: ClearingRun) -> RunPublic:
    return RunPublic(
        period=run.period,
        status=run.status,
        computed_at=run.computed_at,
        claim_count=run.claim_count,
        reversal_count=run.reversal_count,
        total_fund=run.total_fund,
        cross_fund=run.cross_fund,
        digest=run.digest,
        closed_at=run.closed_at,
        jurisdictions=[GrossPublic.model_validate(g) for g in cs.gross(session, run)],
        cities=[GrossPublic.model_validate(g) for g in cs.gross(session, run, "city")],
        nets=[NetPublic.model_validate(n) for n in cs.nets(session, run)],
    )


@router.get("/clearing/{period}", response_model=RunPublic)
def clearing_run(period: str, actor: CurrentUser, session: SessionDep) -> RunPublic:
    """A cleared period: gross matrices (jurisdictions, cities) and net positions."""
    cs.agency_jurisdiction(session, actor)
    return run_public(session, cs.get_run(session, period))


@router.get("/clearing/{period}/statements", response_model=list[StatementPublic])
def clearing_statements(period: str, actor: CurrentUser, session: SessionDep) -> object:
    """The period's statements the caller's agency is a side of."""
    return cs.statements(session, actor, period)


def _download(data: bytes, media: str, filename: str) -> Response:
    # nosniff and a Content-Disposition no file name can break (web/downloads.py).
    return bytes_download(data, media, filename)


@router.get("/clearing/{period}/statements.csv")
def statements_csv(period: str, actor: CurrentUser, session: SessionDep) -> Response:
    sts = cs.statements(session, actor, period)
    return _download(
        exports.to_csv(session, period, sts), "text/csv; charset=utf-8", f"statements-{period}.csv"
    )


@router.get("/clearing/{period}/statements.xlsx")
def statements_xlsx(period: str, actor: CurrentUser, session: SessionDep) -> Response:
    sts = cs.statements(session, actor, period)
    return _download(
        exports.to_xlsx(session, period, sts),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        f"statements-{period}.xlsx",
    )


def statement_detail(session: Session, st: ClearingStatement) -> StatementDetailPublic:
    base = StatementPublic.model_validate(st).model_dump()
    return StatementDetailPublic(
        **base,
        period=cs.run_of(session, st).period,
        sides=[SidePublic.model_validate(x) for x in st.sides],
        differences=[
            ClearingDifferencePublic.model_validate(d).model_copy(
                update={"label": KIND_LABELS[Kind(d.kind)]}
            )
            for d in st.differences
        ],
    )


@router.get("/clearing/statements/{statement_id}", response_model=StatementDetailPublic)
def statement(
    statement_id: uuid.UUID, actor: CurrentUser, session: SessionDep
) -> StatementDetailPublic:
    """One statement with both sides' figures of each direction (which node said them)
    and every claim the two sides disagreed on: open, resolved or carried."""
    return statement_detail(session, cs.get_statement(session, actor, statement_id))


@router.post("/clearing/statements/{statement_id}/confirm", response_model=StatementPublic)
def confirm(statement_id: uuid.UUID, actor: CurrentUser, session: SessionDep) -> ClearingStatement:
    """The caller's agency confirms its side of a statement (409 while the two sides'
    claims differ or have not been compared)."""
    return cs.confirm_statement(session, actor, statement_id)


@router.post("/clearing/statements/{statement_id}/carry", response_model=StatementDetailPublic)
def carry(
    statement_id: uuid.UUID, actor: CurrentUser, session: SessionDep
) -> StatementDetailPublic:
    """结转下期: the claims the two sides disagree on are carried into the next open
    period, on both sides' nodes (503 when the other node does not answer: nothing is
    carried); the period is cleared again."""
    return statement_detail(session, cs.carry_statement(session, actor, statement_id))


@router.post("/clearing/statements/{statement_id}/dispute", response_model=StatementPublic)
def dispute(
    statement_id: uuid.UUID, body: DisputeRequest, actor: CurrentUser, session: SessionDep
) -> ClearingStatement:
    """The caller's agency disputes its side of a statement, with a reason."""
    return cs.dispute_statement(session, actor, statement_id, body.reason)
