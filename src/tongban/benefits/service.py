"""Use cases of 免申即享: what the platform knows about a person, evaluating the active
rules when something happens to them, offers and grants, the resident's acceptance, the
officer's reviews, and a new rule version's preview and activation. Never commits.

Every evaluation that reads a person's data writes one entry in that person's
我的数据使用记录 (evidence.record_data_use), keyed by (person, rule, version, trigger), so
a re-delivered trigger neither logs twice nor makes a second offer."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tongban.benefits import domain
from tongban.benefits.domain import (
    LIVE,
    OFFICER,
    RESIDENT,
    Change,
    Datum,
    DecisionFacts,
    Evaluation,
    Mode,
    OfferAction,
    OfferState,
    ReviewAction,
    ReviewState,
    Rule,
    TriggerKind,
)
from tongban.benefits.models import BenefitOffer, BenefitReview, BenefitRule, BenefitSubject
from tongban.calendar.service import local_date
from tongban.db import utcnow
from tongban.errors import NotFound, PermissionDenied, ValidationFailed
from tongban.evidence import service as evidence
from tongban.identity.assurance import require_assurance
from tongban.identity.domain import Role
from tongban.identity.models import Account
from tongban.kernel import history, numbering
from tongban.regions import service as regions

# --- what the data-use log calls these reads -----------------------------------------------

KIND = evidence.DataUseKind(
    "benefit_eligibility",
    "免申即享资格核验所用信息",
    tuple((k, d.label) for k, d in domain.DATA.items()),
)
PURPOSE = evidence.DataUsePurpose("proactive_benefits", "免申即享待遇资格核验")
PREVIEW_PURPOSE = evidence.DataUsePurpose("benefit_rule_preview", "待遇规则调整影响评估（抽样）")
evidence.declare_data_use(KIND, [PURPOSE, PREVIEW_PURPOSE])

_USE_NS = uuid.UUID("6f1d3c52-7a43-4d1e-9a7e-2b0b5d1c0e17")
OPERATOR = "免申即享自动核验"


@dataclass(frozen=True)
class Trigger:
    """What started an evaluation: its kind and a key unique to that occurrence (a
    case id, a day, a rule version), so that a re-delivery is recognised."""

    kind: TriggerKind
    key: str

    @property
    def label(self) -> str:
        return domain.TRIGGER_LABELS[self.kind]


# --- rules ---------------------------------------------------------------------------------


def ensure_rules(session: Session) -> None:
    """Version 1 of every rule of data/rules.json, active, unless the rule exists."""
    have = set(session.scalars(select(BenefitRule.rule_id).distinct()))
    for rule in domain.initial_rules():
        if rule.id not in have:
            session.add(
                BenefitRule(
                    rule_id=rule.id,
                    version=rule.version,
                    state="active",
                    name=rule.name,
                    definition=rule.as_json(),
                    activated_at=utcnow(),
                    activated_by="系统",
                )
            )
    session.flush()


def active_rules(session: Session) -> list[Rule]:
    """The active version of every rule."""
    ensure_rules(session)
    rows = session.scalars(
        select(BenefitRule).where(BenefitRule.state == "active").order_by(BenefitRule.rule_id)
    )
    return [domain.parse_rule(r.definition) for r in rows]


def rule_versions(session: Session, rule_id: str) -> list[BenefitRule]:
    ensure_rules(session)
    rows = list(
        session.scalars(
            select(BenefitRule)
            .where(BenefitRule.rule_id == rule_id)
            .order_by(BenefitRule.version.desc())
        )
    )
    if not rows:
        raise NotFound("未找到该待遇规则")
    return rows


def rule_row(session: Session, rule_id: str, version: int) -> BenefitRule:
    row = session.scalar(
        select(BenefitRule).where(BenefitRule.rule_id == rule_id, BenefitRule.version == version)
    )
    if row is None:
        raise NotFound("未找到该规则版本")
    return row


def require_officer(actor: Account) -> None:
    if actor.role not in (Role.OFFICER, Role.SUPERVISOR):
        raise PermissionDenied("仅审批人员可以管理免申即享规则与复核")


def may_manage(session: Session, actor: Account, rule: Rule) -> bool:
    """Whether `actor` is an officer of an authority that owns `rule` (changes it,
    decides its reviews)."""
    if actor.role != Role.OFFICER:
        return False
    if not rule.owners:
        return True
    if actor.authority_id is None:
        return False
    return regions.get_authority(session, actor.authority_id).type in rule.owners


def _require_owner(session: Session, actor: Account, rule: Rule) -> None:
    if not may_manage(session, actor, rule):
        raise PermissionDenied(
            f"仅{rule.authority or '主管部门'}的审批人员可以调整“{rule.name}”或作出其复核决定"
        )


def manageable(session: Session, actor: Account) -> set[str]:
    """Ids of the rules `actor` may change."""
    return {r.id for r in active_rules(session) if may_manage(session, actor, r)}


def all_versions(session: Session, actor: Account) -> list[BenefitRule]:
    """Every version of every rule, rule by rule, newest version first."""
    require_officer(actor)
    return [row for rule in domain.initial_rules() for row in rule_versions(session, rule.id)]


def draft_version(
    session: Session, actor: Account, rule_id: str, values: Mapping[int, str]
) -> BenefitRule:
    """A new draft version of a rule: the active version with some conditions' values
    changed. It applies to nobody until an officer activates it (after a preview)."""
    require_officer(actor)
    rows = rule_versions(session, rule_id)
    active = next((r for r in rows if r.state == "active"), rows[0])
    _require_owner(session, actor, domain.parse_rule(active.definition))
    rule = domain.with_values(domain.parse_rule(active.definition), values, rows[0].version + 1)
    if rule.conditions == domain.parse_rule(active.definition).conditions:
        raise ValidationFailed("新版本与现行版本相同，请修改至少一个条件")
    row = BenefitRule(
        rule_id=rule.id,
        version=rule.version,
        state="draft",
        name=rule.name,
        definition=rule.as_json(),
        created_by=actor.display_name,
    )
    session.add(row)
    session.flush()
    return row


# --- what the platform holds about a person ------------------------------------------------


def subject(session: Session, identifier: str) -> BenefitSubject | None:
    return session.scalar(select(BenefitSubject).where(BenefitSubject.identifier == identifier))


def record_facts(
    session: Session,
    identifier: str,
    name: str,
    facts: Mapping[str, Any],
    source: str,
    *,
    at: datetime | None = None,
) -> BenefitSubject:
    """Remember data about a person (keys of domain.DATA) with where it came from; a
    later value replaces an earlier one. Creates the person's record on first use."""
    unknown = set(facts) - set(domain.DATA)
    if unknown:
        raise ValueError(f"unknown benefit data {sorted(unknown)}")
    row = subject(session, identifier)
    if row is None:
        born = domain.id_birth_date(identifier)
        row = BenefitSubject(
            identifier=identifier,
            name=name[:80],
            birth_md=born.strftime("%m-%d") if born else None,
            facts={},
        )
        session.add(row)
    stamp = (at or utcnow()).isoformat()
    merged = dict(row.facts or {})
    for key, value in facts.items():
        if isinstance(value, date):
            value = value.isoformat()
        merged[key] = {"value": value, "source": source, "at": stamp}
    row.facts = merged
    if name and not row.name:
        row.name = name[:80]
    row.updated_at = utcnow()
    session.flush()
    return row


def held_facts(row: BenefitSubject) -> dict[str, Datum]:
    return {
        k: Datum(v.get("value"), str(v.get("source", ""))) for k, v in (row.facts or {}).items()
    }


def facts_of(row: BenefitSubject, today: date) -> dict[str, Datum]:
    """What rules see of the person on `today` (held data and what follows from it)."""
    return domain.derive(row.identifier, held_facts(row), today)


def today() -> date:
    return local_date(utcnow())


# --- evaluation on a trigger ---------------------------------------------------------------


@dataclass
class Result:
    """What one rule's evaluation for one person did."""

    evaluation: Evaluation
    offer: BenefitOffer | None = None
    review: BenefitReview | None = None
    created: bool = False
    trace: dict[str, Any] = field(default_factory=dict)


def _holder_jurisdiction(row: BenefitSubject) -> str:
    hj = (row.facts or {}).get("household_jurisdiction", {}).get("value")
    if isinstance(hj, str) and len(hj) == 6:
        return hj
    return row.identifier[:2] + "0000"


def _log_use(
    session: Session,
    row: BenefitSubject,
    ev: Evaluation,
    trigger_key: str,
    *,
    purpose: evidence.DataUsePurpose = PURPOSE,
    operator: str = OPERATOR,
    reference: str = "",
) -> None:
    if not ev.used:
        return
    rule = ev.rule
    j = _holder_jurisdiction(row)
    evidence.record_data_use(
        session,
        use_id=uuid.uuid5(
            _USE_NS, f"{purpose.code}|{row.identifier}|{rule.id}|{rule.version}|{trigger_key}"
        ),
        subject_identifier=row.identifier,
        subject_name=row.name,
        user_code=f"benefits:{rule.id}",
        user_name=f"{rule.authority or '主管部门'}（{rule.name}）",
        user_jurisdiction=j,
        operator_name=operator,
        kind=KIND.code,
        purpose=purpose.code,
        holder_jurisdiction=j,
        answered=True,
        requested_at=utcnow(),
        reference=reference,
        matter_name=f"免申即享：{rule.name}（第{rule.version}版）",
        fields=ev.fields,
    )


def _offer_for(session: Session, identifier: str, rule_id: str, ent: str) -> BenefitOffer | None:
    return session.scalar(
        select(BenefitOffer).where(
            BenefitOffer.subject_identifier == identifier,
            BenefitOffer.rule_id == rule_id,
            BenefitOffer.entitlement == ent,
        )
    )


def _new_number(session: Session, day: date) -> str:
    d = day.strftime("%Y%m%d")
    return f"MS{d}{numbering.next_value(session, 'benefit-offer', d):06d}"


def _apply(session: Session, row: BenefitSubject, ev: Evaluation, trigger: Trigger) -> Result:
    rule = ev.rule
    trace = ev.trace(trigger.label)
    existing = _offer_for(session, row.identifier, rule.id, ev.entitlement)
    result = Result(ev, existing, trace=trace)
    if ev.eligible:
        if existing is None:
            state = OfferState.OFFERED if rule.mode is Mode.OFFER else OfferState.GRANTED
            action = OfferAction.OFFER if rule.mode is Mode.OFFER else OfferAction.GRANT
            offer = BenefitOffer(
                number=_new_number(session, ev.today),
                subject_identifier=row.identifier,
                subject_name=row.name,
                rule_id=rule.id,
                rule_version=rule.version,
                name=rule.name,
                entitlement=ev.entitlement,
                trigger_key=trigger.key[:120],
                state=state.value,
                trace=trace,
            )
            session.add(offer)
            history.record(
                session,
                offer,
                action,
                None,
                None,
                state,
                f"{trigger.label}后自动核验：{trace['conclusion']}",
                {"rule": rule.id, "version": rule.version, "trigger": trigger.key},
            )
            result.offer, result.created = offer, True
        return result
    if existing is None or OfferState(existing.state) not in LIVE:
        return result
    # No longer eligible: an officer decides; nothing is stopped here.
    open_review = session.scalar(
        select(BenefitReview).where(
            BenefitReview.offer_id == existing.id, BenefitReview.state == ReviewState.OPEN
        )
    )
    same = session.scalar(
        select(BenefitReview).where(
            BenefitReview.offer_id == existing.id, BenefitReview.trigger_key == trigger.key[:120]
        )
    )
    if open_review is not None or same is not None:
        result.review = open_review or same
        return result
    review = BenefitReview(
        offer=existing,
        offer_id=existing.id,
        trigger_key=trigger.key[:120],
        rule_version=rule.version,
        state=ReviewState.OPEN.value,
        trace=trace,
    )
    session.add(review)
    history.record(
        session,
        review,
        ReviewAction.OPEN,
        None,
        None,
        ReviewState.OPEN,
        f"{trigger.label}后重新核验不再符合条件，待人工复核",
        {"rule": rule.id, "version": rule.version, "trigger": trigger.key},
    )
    result.review, result.created = review, True
    return result


def evaluate_person(
    session: Session,
    identifier: str,
    trigger: Trigger,
    *,
    rules: Iterable[Rule] | None = None,
    on: date | None = None,
) -> list[Result]:
    """Evaluate the active rules this kind of trigger concerns (or `rules`) for one
    person whose data the platform holds; make offers/grants, open reviews, and log
    each evaluation in the person's data-use log. Idempotent per trigger."""
    row = subject(session, identifier)
    if row is None:
        return []
    day = on or today()
    facts = facts_of(row, day)
    chosen = (
        list(rules)
        if rules is not None
        else [r for r in active_rules(session) if trigger.kind in r.triggers]
    )
    results = []
    for rule in chosen:
        ev = domain.evaluate(rule, facts, day)
        _log_use(session, row, ev, trigger.key)
        results.append(_apply(session, row, ev, trigger))
    return results


def birthdays(session: Session, on: date | None = None) -> int:
    """The daily job's work: evaluate the age rules for everyone whose birthday is
    `on`. Returns how many people were evaluated."""
    day = on or today()
    md = day.strftime("%m-%d")
    ids = list(
        session.scalars(select(BenefitSubject.identifier).where(BenefitSubject.birth_md == md))
    )
    trigger = Trigger(TriggerKind.BIRTHDAY, f"birthday:{day.isoformat()}")
    for ident in ids:
        evaluate_person(session, ident, trigger, on=day)
    return len(ids)


# --- the resident --------------------------------------------------------------------------


def _resident_identifier(actor: Account) -> str:
    if actor.role != Role.RESIDENT:
        raise PermissionDenied("“我的免申即享待遇”仅供个人账户查看")
    require_assurance(actor)
    if not actor.id_number:
        raise PermissionDenied("账户未绑定身份证件号码")
    return actor.id_number


def my_offers(session: Session, actor: Account) -> list[BenefitOffer]:
    """The caller's offers and grants, newest first (only a proven identity)."""
    ident = _resident_identifier(actor)
    return list(
        session.scalars(
            select(BenefitOffer)
            .where(BenefitOffer.subject_identifier == ident)
            .order_by(BenefitOffer.created_at.desc(), BenefitOffer.number.desc())
        )
    )


def my_offer(session: Session, actor: Account, offer_id: uuid.UUID) -> BenefitOffer:
    ident = _resident_identifier(actor)
    offer = session.get(BenefitOffer, offer_id)
    if offer is None or offer.subject_identifier != ident:
        raise NotFound("未找到该待遇")
    return offer


def accept(session: Session, actor: Account, offer_id: uuid.UUID) -> BenefitOffer:
    """The resident accepts an offer: one action, no form."""
    offer = my_offer(session, actor, offer_id)
    current = OfferState(offer.state)
    target = domain.OFFER_MACHINE.next_state(current, OfferAction.ACCEPT, RESIDENT)
    offer.state = target.value
    history.record(session, offer, OfferAction.ACCEPT, actor, current, target, "本人确认领取")
    return offer


# --- the officer's reviews -----------------------------------------------------------------


def reviews(session: Session, actor: Account, state: str | None = "open") -> list[BenefitReview]:
    """The review queue (open ones by default), oldest first: an officer's of the rules
    their authority owns, a supervisor's of every rule (to read)."""
    require_officer(actor)
    stmt = select(BenefitReview)
    if state:
        stmt = stmt.where(BenefitReview.state == state)
    found = list(session.scalars(stmt.order_by(BenefitReview.created_at, BenefitReview.id)))
    if actor.role == Role.SUPERVISOR:
        return found
    mine = manageable(session, actor)
    return [r for r in found if r.offer.rule_id in mine]


def get_review(session: Session, actor: Account, review_id: uuid.UUID) -> BenefitReview:
    require_officer(actor)
    review = session.get(BenefitReview, review_id)
    if review is None:
        raise NotFound("未找到该复核")
    return review


def decide_review(
    session: Session, actor: Account, review_id: uuid.UUID, decision: str, reason: str
) -> BenefitReview:
    """An officer keeps or stops the benefit under review, with a reason; stopping is
    the only way an offer or grant ever stops."""
    if actor.role != Role.OFFICER:
        raise PermissionDenied("仅审批人员可以作出复核决定")
    review = get_review(session, actor, review_id)
    owner = rule_versions(session, review.offer.rule_id)[0]
    _require_owner(session, actor, domain.parse_rule(owner.definition))
    try:
        action = ReviewAction(decision)
    except ValueError:
        raise ValidationFailed(
            "请选择复核决定", errors=[{"field": "decision", "message": "请选择继续发放或停发"}]
        ) from None
    if action is ReviewAction.OPEN:
        raise ValidationFailed(
            "请选择复核决定", errors=[{"field": "decision", "message": "请选择继续发放或停发"}]
        )
    facts = DecisionFacts(reason)
    current = ReviewState(review.state)
    target = domain.REVIEW_MACHINE.next_state(current, action, OFFICER, facts)
    review.state = target.value
    review.decided_at = utcnow()
    history.record(session, review, action, actor, current, target, reason.strip())
    if action is ReviewAction.STOP:
        offer = review.offer
        was = OfferState(offer.state)
        to = domain.OFFER_MACHINE.next_state(was, OfferAction.STOP, OFFICER, facts)
        offer.state = to.value
        history.record(
            session,
            offer,
            OfferAction.STOP,
            actor,
            was,
            to,
            reason.strip(),
            {"review": str(review.id)},
        )
    return review


# --- a new rule version: preview, then activate --------------------------------------------


@dataclass
class Preview:
    rule_id: str
    version: int
    against: int
    counts: dict[str, int]
    samples: dict[str, list[dict[str, Any]]]
    evaluated: int


def _mask(identifier: str) -> str:
    return identifier[:4] + "*" * 10 + identifier[-4:] if len(identifier) == 18 else identifier


def preview(
    session: Session, actor: Account, rule_id: str, version: int, *, sample: int = 5
) -> Preview:
    """What version `version` would do over the data held now, compared with the active
    version: how many people gain, lose, keep or stay without the benefit, and a few
    traces of each change (the people sampled see the read in their data-use log)."""
    require_officer(actor)
    new_row = rule_row(session, rule_id, version)
    rows = rule_versions(session, rule_id)
    active_row = next((r for r in rows if r.state == "active"), None)
    new = domain.parse_rule(new_row.definition)
    old = domain.parse_rule(active_row.definition) if active_row is not None else None
    day = today()
    counts = {c.value: 0 for c in Change}
    samples: dict[str, list[dict[str, Any]]] = {Change.GAIN.value: [], Change.LOSE.value: []}
    n = 0
    stmt = select(BenefitSubject).order_by(BenefitSubject.identifier)
    for person in session.scalars(stmt).yield_per(1000):
        n += 1
        facts = facts_of(person, day)
        ev_new = domain.evaluate(new, facts, day)
        before = domain.evaluate(old, facts, day).eligible if old is not None else False
        what = domain.change(before, ev_new.eligible)
        counts[what.value] += 1
        if what.value in samples and len(samples[what.value]) < sample:
            _log_use(
                session,
                person,
                ev_new,
                f"preview:{actor.id}",
                purpose=PREVIEW_PURPOSE,
                operator=actor.display_name,
            )
            samples[what.value].append(
                {
                    "who": f"{person.name[:1]}**（{_mask(person.identifier)}）",
                    "trace": ev_new.trace(domain.TRIGGER_LABELS[TriggerKind.RULE_CHANGE]),
                }
            )
    return Preview(rule_id, version, active_row.version if active_row else 0, counts, samples, n)


def activate(session: Session, actor: Account, rule_id: str, version: int) -> dict[str, int]:
    """Make a draft version the active one and evaluate it for everyone the platform
    holds data on: new offers/grants for those who gain, reviews for those who would
    lose (nothing is withdrawn). Returns how many offers and reviews it created."""
    if actor.role != Role.OFFICER:
        raise PermissionDenied("仅审批人员可以启用规则新版本")
    row = rule_row(session, rule_id, version)
    _require_owner(session, actor, domain.parse_rule(row.definition))
    if row.state != "draft":
        raise ValidationFailed("只有草稿版本可以启用")
    for other in rule_versions(session, rule_id):
        if other.state == "active":
            other.state = "retired"
    row.state = "active"
    row.activated_at = utcnow()
    row.activated_by = actor.display_name
    session.flush()
    rule = domain.parse_rule(row.definition)
    trigger = Trigger(TriggerKind.RULE_CHANGE, f"rule:{rule.id}:v{rule.version}")
    made = {"offers": 0, "reviews": 0, "evaluated": 0}
    for ident in list(session.scalars(select(BenefitSubject.identifier))):
        for r in evaluate_person(session, ident, trigger, rules=[rule]):
            made["evaluated"] += 1
            if r.created and r.offer is not None and r.review is None:
                made["offers"] += 1
            if r.created and r.review is not None:
                made["reviews"] += 1
    return made


def counts_by_state(session: Session) -> dict[str, int]:
    """Offers by state (the officer's overview)."""
    rows = session.execute(select(BenefitOffer.state, func.count()).group_by(BenefitOffer.state))
    return {s: int(n) for s, n in rows}
