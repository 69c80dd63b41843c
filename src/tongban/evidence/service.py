"""Use cases of purpose-bound evidence (once-only) and of the resident's data-use log.

- `record_consent`: at submission, the applicant's consent for the evidence kinds the
  case may need (called by the cases context, online and at the window);
- `request_evidence`: an officer who handles a case asks the jurisdiction holding the
  data, naming a purpose; the provider decides (see `handlers.on_requested`);
- `my_data_use`: every access to the caller's data, across nodes;
- `jurisdiction_data_use`: a supervisor's read-only view of accesses involving their
  jurisdiction.

Services take a Session and never commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from tongban.cases import service as cases
from tongban.catalog import service as catalog
from tongban.db import utcnow
from tongban.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from tongban.evidence import domain, lookup, registers
from tongban.evidence.datause import (
    DataUseKind,
    DataUsePurpose,
    data_use_labels,
    declare_data_use,
    record_data_use,
)
from tongban.evidence.handlers import (
    MSG_ANSWERED,
    MSG_CONSENT,
    MSG_LOGGED,
    MSG_REFUSED,
    MSG_REQUESTED,
    MSG_WITHDRAWN,
    apply_withdrawal,
    consent_payload,
)
from tongban.evidence.models import Consent, DataAccess, EvidenceRequest
from tongban.exchange import query
from tongban.exchange import service as exchange
from tongban.exchange.models import OutboxMessage
from tongban.identity import service as identity
from tongban.identity.domain import Role
from tongban.identity.models import Account
from tongban.kernel import events
from tongban.kernel.node import settings_of
from tongban.regions import service as regions

__all__ = [
    "MSG_ANSWERED",
    "MSG_CONSENT",
    "MSG_LOGGED",
    "MSG_REFUSED",
    "MSG_REQUESTED",
    "catalogue",
    "kinds_for_matter",
    "record_consent",
    "consent_for",
    "my_consents",
    "withdraw_consent",
    "request_evidence",
    "requests_for_case",
    "panel",
    "my_data_use",
    "my_case_links",
    "jurisdiction_data_use",
    "seed_demo_registers",
    "DataUseKind",
    "DataUsePurpose",
    "declare_data_use",
    "record_data_use",
    "data_use_labels",
]


def catalogue() -> domain.Catalogue:
    """The evidence kinds and purposes of this federation."""
    return domain.catalogue()


def kinds_for_matter(
    session: Session, matter_code: str, subject_type: str | None = None
) -> list[domain.EvidenceKind]:
    """The evidence kinds a case of this matter may ask for: what the consent checkbox
    on the application form offers (empty when the matter needs none)."""
    try:
        matter = catalog.matter_ref(session, matter_code)  # cached per process
    except NotFound:
        return []
    return catalogue().kinds_for_matter(matter.code, matter.authority_type, subject_type)


# --- consent ------------------------------------------------------------------------


def record_consent(
    session: Session, case: cases.Case, scopes: Iterable[str], *, recorded_by: Account | None
) -> list[Consent]:
    """Store the applicant's consent, given at submission, to fetch the evidence kinds
    in `scopes` for `case` (and its 多地联办 sub-tasks), and send a copy to the competent
    jurisdiction. No scopes, no consent: a later request will be refused."""
    cat = catalogue()
    known, unknown = domain.normalise_scopes(cat, scopes)
    allowed = {k.code for k in kinds_for_matter(session, case.matter_code)}
    errors = [{"field": "evidence_consent", "message": f"未知的证明类型：{v}"} for v in unknown] + [
        {"field": "evidence_consent", "message": f"本事项不涉及调取{cat.kinds[k].label}"}
        for k in known
        if k not in allowed
    ]
    if errors:
        raise ValidationFailed("数据调取授权有误", errors=errors)
    # A kind that does not exist for this applicant (an enterprise has no 户籍) is
    # dropped rather than refused: the window form offers every kind of the matter.
    known = [k for k in known if case.applicant_type in cat.kinds[k].subjects]
    if not known:
        return []
    out = []
    for c in [case, *case.subtasks]:
        row = Consent(
            case_number=c.number,
            case_id=c.id,
            subject_identifier=c.applicant_identifier,
            subject_name=c.applicant_name,
            scopes=known,
            given_at=c.submitted_at,
            channel=c.channel,
            recorded_by=recorded_by.display_name if recorded_by else c.applicant_name,
        )
        session.add(row)
        session.flush()
        if c.competent_jurisdiction != c.receiving_jurisdiction:
            exchange.send(
                session,
                MSG_CONSENT,
                c.receiving_jurisdiction,
                c.competent_jurisdiction,
                consent_payload(row),
            )
        out.append(row)
    return out


def consent_for(session: Session, case_number: str) -> Consent | None:
    """The consent this node holds for a case (its own, or the copy sent to it)."""
    return session.scalar(select(Consent).where(Consent.case_number == case_number))


def my_consents(session: Session, actor: Account) -> list[Consent]:
    """The consents the caller gave that this node holds, newest first."""
    ident = subject_identifier(actor)
    if actor.role not in (Role.RESIDENT, Role.ENTERPRISE) or not ident:
        return []
    return list(
        session.scalars(
            select(Consent)
            .where(Consent.subject_identifier == ident)
            .order_by(Consent.given_at.desc())
            .limit(200)
        )
    )


def withdraw_consent(session: Session, actor: Account, case_number: str, kind: str) -> Consent:
    """The applicant withdraws consent for `kind` on one case: requests not yet made are
    refused from now on; those already answered stay answered and in the log. Both
    nodes of a case handled elsewhere hold the consent, and the applicant may withdraw
    on either: the other copy follows by `evidence.consent_withdrawn` (from the node
    where the case was received to the competent node, or back)."""
    if actor.role not in (Role.RESIDENT, Role.ENTERPRISE):
        raise PermissionDenied("只有申请人本人可以撤回数据调取授权")
    identity.require_assurance(actor)
    c = consent_for(session, case_number)
    if c is None or c.subject_identifier != subject_identifier(actor):
        raise NotFound("未找到该办件的数据调取授权", type="unknown-consent")
    if kind not in c.active_scopes():
        raise ValidationFailed(
            "该证明类型未授权或已撤回",
            type="not-consented",
            errors=[{"field": "kind", "message": "该证明类型未授权或已撤回"}],
        )
    at = utcnow().isoformat()
    apply_withdrawal(c, kind, at, actor.display_name)
    session.flush()
    route = _withdrawal_route(session, c)
    if route is not None:
        exchange.send(
            session,
            MSG_WITHDRAWN,
            *route,
            {
                "case_number": c.case_number,
                "subject": c.subject_identifier,
                "kind": kind,
                "at": at,
                "by": actor.display_name,
            },
        )
    return c


def _withdrawal_route(session: Session, c: Consent) -> tuple[str, str] | None:
    """(source, target) jurisdictions of the message that carries a withdrawal to the
    case's other node: receiving -> competent where the case was received here,
    competent -> receiving where this node holds the competent copy; None when both
    are one jurisdiction or the case is not known here. The consent's subject check
    authorised the applicant, so the case is read without an access check."""
    if c.case_id is None:
        return None
    try:
        case = cases.case_by_id(session, c.case_id)
    except NotFound:
        return None
    competent, receiving = case.competent_jurisdiction, case.receiving_jurisdiction
    if not competent or not receiving or competent == receiving:
        return None
    if exchange.serves_here(session, receiving):
        return receiving, competent
    return competent, receiving


def withdrawal_reached(session: Session, c: Consent) -> dict[str, str] | None:
    """Whether the withdrawals of `c` have reached the case's other node: None when
    there is none; else {"where": its jurisdiction's name, "state": "pending" |
    "delivered" | "failed"} of the last withdrawal message sent from here."""
    route = _withdrawal_route(session, c)
    if route is None or not c.withdrawals:
        return None
    sent = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.type == MSG_WITHDRAWN, OutboxMessage.target_jurisdiction == route[1])
        .order_by(OutboxMessage.created_at.desc())
        .limit(200)
    )
    last = next((m for m in sent if m.payload.get("case_number") == c.case_number), None)
    if last is None:
        return None  # withdrawn on the other node: it told this one
    state = {"delivered": "delivered", "dead": "failed"}.get(last.status, "pending")
    return {"where": regions.get_jurisdiction(session, route[1]).name, "state": state}


def _snapshot(c: Consent | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return domain.ConsentSnapshot(
        case_number=c.case_number,
        subject=c.subject_identifier,
        scopes=frozenset(c.active_scopes()),
        given_at=c.given_at,
        channel=c.channel,
    ).as_payload()


# --- requests -------------------------------------------------------------------------


def _require_handler(actor: Account, case: cases.Case) -> None:
    if actor.role != Role.OFFICER or cases.actor_kind(actor, case) is None:
        raise PermissionDenied("只有承办本办件的审核/审批人员可以调取证明", type="not-case-handler")


def window_closed(case: cases.Case) -> str | None:
    """Why evidence may not be asked for this case now (None: it may)."""
    return domain.window_closed(case.state)


def _matter_type(session: Session, matter_code: str) -> str | None:
    try:
        return catalog.get_matter(session, matter_code).authority_type
    except NotFound:
        return None


def provider_for(
    session: Session, kind: domain.EvidenceKind, case: cases.Case, chosen: str | None = None
) -> str:
    """Where the evidence lives: the subject's registered home for `home` kinds; for
    `choose` kinds the jurisdiction the officer names, the home by default."""
    home = domain.home_jurisdiction(case.applicant_identifier, case.applicant_type)
    target = chosen if (chosen and kind.provider is domain.Provider.CHOOSE) else home
    if target is None:
        raise ValidationFailed(
            "无法从申请人证件号码确定数据所在地，请选择数据所在地",
            errors=[{"field": "provider_jurisdiction", "message": "请选择数据所在地"}],
        )
    try:
        regions.get_jurisdiction(session, target)
    except NotFound:
        raise ValidationFailed(
            "数据所在地不在本联盟内，无法调取",
            type="provider-outside-federation",
            errors=[{"field": "provider_jurisdiction", "message": "数据所在地不在本联盟内"}],
        ) from None
    return target


def _reusable(
    session: Session, case_id: uuid.UUID, kind: str, provider: str
) -> EvidenceRequest | None:
    return session.scalar(
        select(EvidenceRequest)
        .where(
            EvidenceRequest.case_id == case_id,
            EvidenceRequest.kind == kind,
            EvidenceRequest.provider_jurisdiction == provider,
            EvidenceRequest.status.in_([domain.Status.ANSWERED.value, domain.Status.PENDING.value]),
        )
        .order_by(EvidenceRequest.requested_at.desc())
        .limit(1)
    )


def request_evidence(
    session: Session,
    actor: Account,
    case_id: uuid.UUID,
    kind: str,
    purpose: str,
    provider_jurisdiction: str | None = None,
) -> tuple[EvidenceRequest, bool]:
    """An officer who handles the case asks the jurisdiction holding the data for
    evidence of `kind`, naming a `purpose`; the applicant's consent travels with it.
    Returns (request, created): once-only — an answered or pending request of the same
    kind from the same provider for this case is returned instead of asking again.

    The requesting side checks only who asks; the provider is the judge of purpose,
    consent and authority, so every attempt, also a doomed one, is on the subject's log.
    """
    case = cases.get_case(session, actor, case_id)
    _require_handler(actor, case)
    if case.handoff != "delivered":
        raise Conflict("办件尚未推送到本部门", type="not-yet-forwarded")
    closed = window_closed(case)
    if closed is not None:
        raise Conflict(closed, type="case-not-in-handling")
    cat = catalogue()
    k = cat.kind(kind)
    errors = []
    if k is None:
        errors.append({"field": "kind", "message": "请选择证明类型"})
    if not purpose:
        errors.append({"field": "purpose", "message": "请选择调取用途"})
    if errors or k is None:
        raise ValidationFailed("调取请求不完整", errors=errors)
    fitting = cat.purposes_for(k.code, case.matter_code, _matter_type(session, case.matter_code))
    if purpose not in {p.code for p in fitting}:
        named = cat.purpose(purpose)
        label = named.label if named is not None else purpose
        raise ValidationFailed(
            f"用途“{label}”不适用于本办件事项调取{k.label}",
            type="purpose-not-for-matter",
            errors=[{"field": "purpose", "message": "请选择适用于本办件事项的调取用途"}],
        )
    provider = provider_for(session, k, case, provider_jurisdiction)
    existing = _reusable(session, case.id, k.code, provider)
    if existing is not None:
        return existing, False
    consent = consent_for(session, case.number)
    withdrawn_at = consent.withdrawn().get(k.code) if consent is not None else None
    if withdrawn_at is not None:
        raise Conflict(f"申请人已撤回对调取{k.label}的授权，不能再调取", type="consent-withdrawn")
    authority = regions.get_authority(session, case.authority_id)
    now = utcnow()
    snapshot = _snapshot(consent)
    req = EvidenceRequest(
        case_id=case.id,
        case_number=case.number,
        subject_identifier=case.applicant_identifier,
        kind=k.code,
        purpose=purpose,
        provider_jurisdiction=provider,
        requester_authority_code=authority.code,
        requester_authority_name=authority.name,
        officer_id=actor.id,
        officer_name=actor.display_name,
        consent=snapshot,
        status=domain.Status.PENDING.value,
        requested_at=now,
    )
    session.add(req)
    session.flush()
    _ask_provider(
        session,
        req,
        case.competent_jurisdiction,
        provider,
        {
            "request_id": str(req.id),
            "case_number": case.number,
            "matter_code": case.matter_code,
            "matter_name": case.matter_name,
            "receiving_jurisdiction": case.receiving_jurisdiction,
            "kind": k.code,
            "purpose": purpose,
            "provider_jurisdiction": provider,
            "subject": {
                "identifier": case.applicant_identifier,
                "type": case.applicant_type,
                "name": case.applicant_name,
            },
            "requester": {
                "authority_code": authority.code,
                "authority_name": authority.name,
                "jurisdiction": case.competent_jurisdiction,
                "officer_name": actor.display_name,
            },
            "requested_at": now.isoformat(),
            "case_state": case.state,
            "consent": snapshot,
        },
    )
    return req, True


def _ask_provider(
    session: Session, req: EvidenceRequest, source: str, provider: str, payload: dict[str, Any]
) -> None:
    """Ask the provider: at once, by the `evidence.lookup` query, where this deployment
    allows a synchronous answer (and keep the decision on the request now); by the
    `evidence.requested` message otherwise, or when the provider does not answer in time
    (the request stays pending until its answer arrives). A provider node that refuses
    the query itself (not the request: the exchange) is a clear error, nothing is sent."""
    if lookup.sync_allowed(settings_of(session), provider):
        try:
            got: lookup.LookupAnswer = query.ask(
                session, lookup.LOOKUP, source=source, target=provider, payload=payload
            )
        except query.QueryUnavailable:
            pass  # down or slow: ask by message, answered when it can be
        except query.QueryRefused as exc:
            raise Conflict(
                f"数据所在地节点拒绝了本次调取：{exc.detail}", type="evidence-lookup-refused"
            ) from exc
        else:
            _keep_answer(req, got)
            return
    exchange.send(session, MSG_REQUESTED, source, provider, payload)


def _keep_answer(req: EvidenceRequest, got: lookup.LookupAnswer) -> None:
    if got.outcome == domain.Status.ANSWERED.value:
        req.status = domain.Status.ANSWERED.value
        req.data = got.data or {}
    else:
        req.status = domain.Status.REFUSED.value
        req.reason_code = got.reason_code
        req.reason = got.reason
    req.answered_at = got.at


def requests_for_case(
    session: Session, actor: Account, case_id: uuid.UUID
) -> list[EvidenceRequest]:
    """The evidence requests of a case, newest first, for whoever may see the case on
    the workbench (its officers; the jurisdiction's supervisors, read-only)."""
    case = cases.get_case(session, actor, case_id)
    if actor.role not in (Role.OFFICER, Role.SUPERVISOR):
        raise PermissionDenied("只有审核/审批人员和督查督办人员可以查看调取记录")
    return list(
        session.scalars(
            select(EvidenceRequest)
            .where(EvidenceRequest.case_id == case.id)
            .order_by(EvidenceRequest.requested_at.desc())
        )
    )


@dataclass
class KindOption:
    kind: domain.EvidenceKind
    purposes: list[domain.Purpose]
    default_provider: str | None
    consented: bool
    #: When the applicant withdrew consent for this kind (ISO), if they did.
    withdrawn_at: str | None
    #: The answered (or pending) request that makes asking again unnecessary.
    existing: EvidenceRequest | None


def panel(session: Session, actor: Account, case: cases.Case) -> dict[str, Any]:
    """What the 调取证明 panel of the workbench case page shows to `actor`."""
    if actor.role not in (Role.OFFICER, Role.SUPERVISOR):
        return {"visible": False}
    consent = consent_for(session, case.number)
    scopes = set(consent.active_scopes()) if consent else set()
    withdrawn = consent.withdrawn() if consent else {}
    matter_type = _matter_type(session, case.matter_code)
    cat = catalogue()
    home = domain.home_jurisdiction(case.applicant_identifier, case.applicant_type)
    options = []
    for k in cat.kinds_for_matter(case.matter_code, matter_type, case.applicant_type):
        options.append(
            KindOption(
                kind=k,
                purposes=cat.purposes_for(k.code, case.matter_code, matter_type),
                default_provider=home,
                consented=k.code in scopes,
                withdrawn_at=withdrawn.get(k.code),
                existing=_reusable(session, case.id, k.code, home) if home else None,
            )
        )
    requests = list(
        session.scalars(
            select(EvidenceRequest)
            .where(EvidenceRequest.case_id == case.id)
            .order_by(EvidenceRequest.requested_at.desc())
        )
    )
    closed = window_closed(case)
    can_request = (
        actor.role == Role.OFFICER
        and cases.actor_kind(actor, case) is not None
        and case.handoff == "delivered"
        and closed is None
    )
    return {
        "visible": True,
        "can_request": can_request,
        "closed_reason": closed,
        "consent": consent,
        "options": options,
        "requests": requests,
        "kinds": cat.kinds,
        "purposes": cat.purposes,
        "jurisdictions": {j.code: j.name for j in regions.list_jurisdictions(session)},
        "status_labels": {s.value: label for s, label in domain.STATUS_LABELS.items()},
        "channel_labels": domain.CHANNEL_LABELS,
    }


# --- the data-use log ------------------------------------------------------------------


def subject_identifier(actor: Account) -> str | None:
    """The identifier an applicant's data is registered under."""
    return actor.id_number if actor.role == Role.RESIDENT else actor.credit_code


def my_data_use(session: Session, actor: Account, limit: int = 500) -> list[DataAccess]:
    """我的数据使用记录: every access to the caller's data this node knows of (on a
    federation, the caller's node holds a copy of every access decided elsewhere),
    newest first. Only the subject sees their own log."""
    if actor.role not in (Role.RESIDENT, Role.ENTERPRISE):
        raise PermissionDenied("“我的数据使用记录”仅供个人或法人账户查看本人记录")
    # The log is found by ID number / credit code: only a proven identity sees it.
    identity.require_assurance(actor)
    ident = subject_identifier(actor)
    if not ident:
        return []
    return list(
        session.scalars(
            select(DataAccess)
            .where(DataAccess.subject_identifier == ident)
            .order_by(DataAccess.at.desc(), DataAccess.id)
            .limit(limit)
        )
    )


def my_case_links(
    session: Session, actor: Account, rows: Iterable[DataAccess | Consent]
) -> dict[str, str]:
    """Case number → the caller's own case page, for the log's cases the caller may open
    on this node (a case received elsewhere, or someone else's, stays a bare number)."""
    links: dict[str, str] = {}
    for number in {r.case_number for r in rows}:
        try:
            case = cases.get_case(session, actor, number)
        except NotFound:
            continue
        if case.applicant_id == actor.id:
            links[number] = f"/my/cases/{case.id}"
    return links


def jurisdiction_data_use(
    session: Session, actor: Account, outcome: str | None = None, limit: int = 500
) -> list[DataAccess]:
    """A supervisor's read-only view: accesses to data held by, or requested by, their
    jurisdiction, newest first (identifiers are masked where shown)."""
    if actor.role != Role.SUPERVISOR or not actor.jurisdiction_code:
        raise PermissionDenied("仅督查督办人员可以查看本辖区的数据调取记录")
    j = actor.jurisdiction_code
    stmt = select(DataAccess).where(
        or_(DataAccess.provider_jurisdiction == j, DataAccess.requester_jurisdiction == j)
    )
    if outcome in (domain.Status.ANSWERED.value, domain.Status.REFUSED.value):
        stmt = stmt.where(DataAccess.outcome == outcome)
    return list(session.scalars(stmt.order_by(DataAccess.at.desc(), DataAccess.id).limit(limit)))


# --- registers ----------------------------------------------------------------------------


def put_register_record(
    session: Session, kind: str, jurisdiction_code: str, subject: str, data: dict[str, Any]
) -> None:
    """Create or replace a record of this node's register (operators, demo, tests)."""
    if catalogue().kind(kind) is None:
        raise ValidationFailed(f"未知的证明类型：{kind}")
    regions.get_jurisdiction(session, jurisdiction_code)
    registers.upsert(session, kind, jurisdiction_code, subject, data)


def seed_demo_registers(session: Session, subjects: Iterable[tuple[str, str, str, str]]) -> int:
    """Register records for demo subjects, each given as (identifier, name, subject type,
    home city code); idempotent. Returns how many records were written."""
    n = 0
    for identifier, name, subject_type, city_code in subjects:
        city = regions.get_city(session, city_code)
        home = domain.home_jurisdiction(identifier, subject_type) or city.jurisdiction_code
        j = regions.get_jurisdiction(session, home)
        for kind, jurisdiction, data in registers.demo_records(
            identifier, name, subject_type, city.name, j.code, j.name
        ):
            if registers.lookup(session, kind, jurisdiction, identifier) is None:
                registers.upsert(session, kind, jurisdiction, identifier, data)
                n += 1
    return n


# --- what evidence does when cases announce (kernel.events) -------------------------


@events.subscribe(events.CaseSubmitted)
def record_submitted_consent(session: Session, event: events.CaseSubmitted) -> None:
    """At submission: the applicant's consent to fetch evidence for the case."""
    recorder = session.get(Account, event.recorded_by) if event.recorded_by else None
    case = cases.case_by_id(session, event.case_id)
    record_consent(session, case, event.evidence_consent, recorded_by=recorder)


@events.subscribe(events.ApplicationFormShown)
def evidence_kinds(session: Session, event: events.ApplicationFormShown) -> list[Any]:
    """The consent checkboxes of the application form."""
    return kinds_for_matter(session, event.matter_code)


@events.subscribe(events.CasePageShown)
def evidence_panel(session: Session, event: events.CasePageShown) -> dict[str, Any]:
    """The 调取证明 panel of the officer's case page."""
    actor = session.get(Account, event.actor_id)
    if actor is None:
        return {"visible": False}
    return panel(session, actor, cases.case_by_id(session, event.case_id))
