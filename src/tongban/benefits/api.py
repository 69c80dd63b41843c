"""JSON API of 免申即享: the resident's offers and acceptance, the officer's review queue
and decisions, rule versions with their preview and activation. Thin: parse, call a
service, render."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from tongban.benefits import domain, service
from tongban.benefits.models import BenefitOffer, BenefitReview, BenefitRule
from tongban.benefits.schemas import (
    ActivationOut,
    DraftIn,
    OfferPublic,
    PreviewPublic,
    ReviewDecision,
    ReviewPublic,
    RulePublic,
)
from tongban.errors import FieldError, ValidationFailed
from tongban.kernel.history import EventPublic
from tongban.web.deps import CurrentUser, SessionDep
from tongban.web.problems import responses

router = APIRouter(prefix="/api/v1", tags=["benefits"], responses=responses(403, 404))


def offer_public(offer: BenefitOffer, *, events: bool = False) -> OfferPublic:
    return OfferPublic(
        id=offer.id,
        number=offer.number,
        rule_id=offer.rule_id,
        rule_version=offer.rule_version,
        name=offer.name,
        entitlement=offer.entitlement,
        state=offer.state,
        state_label=domain.OFFER_STATE_LABELS[domain.OfferState(offer.state)],
        trace=offer.trace,
        created_at=offer.created_at,
        events=[EventPublic.model_validate(e) for e in offer.events] if events else [],
    )


def review_public(review: BenefitReview) -> ReviewPublic:
    offer = review.offer
    return ReviewPublic(
        id=review.id,
        offer_number=offer.number,
        subject_name=offer.subject_name,
        subject_identifier=offer.subject_identifier,
        rule_id=offer.rule_id,
        rule_version=review.rule_version,
        name=offer.name,
        state=review.state,
        state_label=domain.REVIEW_STATE_LABELS[domain.ReviewState(review.state)],
        offer_state=offer.state,
        trace=review.trace,
        created_at=review.created_at,
        decided_at=review.decided_at,
        events=[EventPublic.model_validate(e) for e in review.events],
    )


def rule_public(row: BenefitRule) -> RulePublic:
    return RulePublic(
        rule_id=row.rule_id,
        version=row.version,
        state=row.state,
        name=row.name,
        definition=row.definition,
        created_by=row.created_by,
        created_at=row.created_at,
        activated_at=row.activated_at,
    )


@router.get("/me/benefits", response_model=list[OfferPublic])
def my_benefits(user: CurrentUser, session: SessionDep) -> list[OfferPublic]:
    """我的免申即享待遇: offers and grants, each with its trace."""
    return [offer_public(o) for o in service.my_offers(session, user)]


@router.get("/me/benefits/{offer_id}", response_model=OfferPublic)
def my_benefit(offer_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> OfferPublic:
    return offer_public(service.my_offer(session, user, offer_id), events=True)


@router.post("/me/benefits/{offer_id}/accept", response_model=OfferPublic, responses=responses(409))
def accept(offer_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> OfferPublic:
    """Accept an offer (one action)."""
    return offer_public(service.accept(session, user, offer_id), events=True)


@router.get("/benefits/reviews", response_model=list[ReviewPublic])
def reviews(user: CurrentUser, session: SessionDep, state: str = "open") -> list[ReviewPublic]:
    return [review_public(r) for r in service.reviews(session, user, state or None)]


@router.post(
    "/benefits/reviews/{review_id}/decide",
    response_model=ReviewPublic,
    responses=responses(409, 422),
)
def decide(
    review_id: uuid.UUID, body: ReviewDecision, user: CurrentUser, session: SessionDep
) -> ReviewPublic:
    """Keep or stop a benefit under review, with a reason."""
    return review_public(
        service.decide_review(session, user, review_id, body.decision, body.reason)
    )


@router.get("/benefits/rules", response_model=list[RulePublic])
def rules(user: CurrentUser, session: SessionDep) -> list[RulePublic]:
    return [rule_public(row) for row in service.all_versions(session, user)]


def _values(body: DraftIn) -> dict[int, str]:
    out: dict[int, str] = {}
    for key, value in body.values.items():
        if not key.isdigit():
            raise ValidationFailed(
                "条件序号有误", errors=[FieldError(f"values.{key}", "条件序号应为数字")]
            )
        out[int(key)] = value
    return out


@router.post(
    "/benefits/rules/{rule_id}/versions",
    response_model=RulePublic,
    status_code=201,
    responses=responses(409, 422),
)
def new_version(rule_id: str, body: DraftIn, user: CurrentUser, session: SessionDep) -> RulePublic:
    """A draft version with some conditions' values changed."""
    return rule_public(service.draft_version(session, user, rule_id, _values(body)))


@router.get("/benefits/rules/{rule_id}/versions/{version}/preview", response_model=PreviewPublic)
def preview(rule_id: str, version: int, user: CurrentUser, session: SessionDep) -> PreviewPublic:
    """How many people the version would give or take the benefit from, on current data."""
    p = service.preview(session, user, rule_id, version)
    return PreviewPublic(
        rule_id=p.rule_id,
        version=p.version,
        against=p.against,
        evaluated=p.evaluated,
        counts=p.counts,
        samples=p.samples,
    )


@router.post(
    "/benefits/rules/{rule_id}/versions/{version}/activate",
    response_model=ActivationOut,
    responses=responses(409, 422),
)
def activate(rule_id: str, version: int, user: CurrentUser, session: SessionDep) -> ActivationOut:
    made = service.activate(session, user, rule_id, version)
    return ActivationOut(**made)
