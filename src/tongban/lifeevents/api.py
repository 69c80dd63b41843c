"""JSON API of life-event bundles: the definitions, one submission, the applicant's
bundles and each one's progress (its steps, their cases, what waits on what)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from sqlalchemy.orm import Session

from tongban.kernel.history import EventPublic
from tongban.lifeevents import domain, service
from tongban.lifeevents.definitions import BundleDef
from tongban.lifeevents.domain import BundleState
from tongban.lifeevents.models import Bundle
from tongban.lifeevents.schemas import (
    BundleCreate,
    BundleDefPublic,
    BundlePublic,
    BundleSummary,
    PlacePublic,
    StepCase,
    StepDefPublic,
    StepPublic,
)
from tongban.web.deps import CurrentUser, SessionDep

router = APIRouter(prefix="/api/v1/lifeevents", tags=["lifeevents"])


def definition_public(defn: BundleDef) -> BundleDefPublic:
    return BundleDefPublic(
        code=defn.code,
        name=defn.name,
        description=defn.description,
        subjects=list(defn.subjects),
        form=dict(defn.form),
        places=[
            PlacePublic(
                key=p.key, title=p.title, city_field=p.city, choose=p.choose, cities=dict(p.cities)
            )
            for p in defn.places.values()
        ],
        steps=[
            StepDefPublic(
                key=s.key,
                title=s.title,
                matter_code=s.matter,
                place=s.place,
                after=list(s.after),
                mode=s.mode,
                joint=s.joint,
                when=s.when,
                materials_from=dict(s.materials),
            )
            for s in defn.steps
        ],
    )


def summary(bundle: Bundle) -> BundleSummary:
    return BundleSummary(
        id=bundle.id,
        number=bundle.number,
        bundle_code=bundle.bundle_code,
        name=bundle.name,
        state=bundle.state,
        state_label=domain.STATE_LABELS[BundleState(bundle.state)],
        submitted_at=bundle.submitted_at,
        closed_at=bundle.closed_at,
    )


def bundle_public(session: Session, bundle: Bundle) -> BundlePublic:
    steps = []
    for v in service.describe(session, bundle):
        row, case = v.row, v.case
        steps.append(
            StepPublic(
                key=row.key,
                title=row.title,
                matter_code=row.matter_code,
                state=row.state,
                state_label=v.state_label,
                waits_on=v.waits_on,
                blocks=v.blocks,
                note=row.note,
                jurisdiction_code=row.jurisdiction_code,
                authority_name=row.authority_name,
                case=None
                if case is None
                else StepCase(
                    id=case.id,
                    number=case.number,
                    state=case.state,
                    state_label=v.case_state_label,
                    authority_name=case.authority_name,
                    result_text=case.result_text,
                ),
                licence_id=row.licence_id,
                licence_identifier=row.licence_identifier,
                started_at=row.started_at,
                closed_at=row.closed_at,
            )
        )
    return BundlePublic(
        **summary(bundle).model_dump(),
        steps=steps,
        events=[EventPublic.model_validate(e) for e in bundle.events],
    )


@router.get("/bundles", response_model=list[BundleDefPublic])
def list_definitions() -> list[BundleDefPublic]:
    """The life-event bundles this node offers: steps, order, merged form, places."""
    return [definition_public(b) for b in service.definitions()]


@router.get("/bundles/{code}", response_model=BundleDefPublic)
def get_definition(code: str) -> BundleDefPublic:
    return definition_public(service.get_definition(code))


@router.post("", response_model=BundlePublic, status_code=201)
def submit(body: BundleCreate, session: SessionDep, user: CurrentUser) -> BundlePublic:
    """One submission: a case per step whose inputs are there, at its competent authority;
    the later steps start by themselves as the earlier ones' results arrive."""
    bundle = service.submit(
        session,
        user,
        service.BundleApplication(
            bundle_code=body.bundle,
            form_data=body.form_data,
            attachment_ids=body.attachment_ids,
            phone=body.phone,
            consent=body.consent,
        ),
    )
    return bundle_public(session, bundle)


@router.get("", response_model=list[BundleSummary])
def list_mine(session: SessionDep, user: CurrentUser) -> list[BundleSummary]:
    return [summary(b) for b in service.list_mine(session, user)]


@router.get("/{bundle_id}", response_model=BundlePublic)
def get_bundle(bundle_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> BundlePublic:
    """One of the caller's bundles with every step, its case and what waits on what."""
    return bundle_public(session, service.get_bundle(session, user, bundle_id))
