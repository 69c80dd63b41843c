"""How a bundle moves: the steps whose inputs are all there start as cases (submitted for
the applicant through `tongban.cases.service`), the steps that can no longer start are
blocked, and the bundle follows its cases through `kernel.events.CaseStepTaken`,
published whether a step was taken on this node or followed from another node.

Idempotent by construction: a step starts only from `waiting`, its case id is unique,
and every step change is an event of the bundle, whose version guards it, so an event
delivered twice (or two at once) never starts a second case."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.cases import service as cases
from tongban.db import utcnow
from tongban.errors import (
    ConcurrentChange,
    DomainError,
    FieldError,
    PermissionDenied,
    ValidationFailed,
)
from tongban.files import service as files
from tongban.files.models import Attachment
from tongban.identity import service as identity
from tongban.identity.models import Account
from tongban.kernel import events, history
from tongban.kernel.node import settings_of
from tongban.licences import service as licences
from tongban.lifeevents import domain
from tongban.lifeevents.catalogue import get_definition, licences_held, matter_info
from tongban.lifeevents.definitions import (
    BundleDef,
    MaterialSource,
    StepDef,
    material_plan,
    missing,
    step_form,
)
from tongban.lifeevents.domain import BundleAction, BundleState, StepState, Who
from tongban.lifeevents.models import Bundle, BundleStep
from tongban.regions import service as regions

# --- moving on ------------------------------------------------------------------------------


def step_event(
    session: Session, bundle: Bundle, row: BundleStep, action: BundleAction, comment: str
) -> None:
    """A step's change, recorded as an event of the bundle (the machine allows step
    events in every state but completed; the bundle's version guards the change)."""
    state = BundleState(bundle.state)
    domain.MACHINE.next_state(state, action, Who.SYSTEM)
    payload: dict[str, Any] = {"step": row.key, "state": row.state}
    if row.case_number:
        payload["case"] = row.case_number
    history.record(session, bundle, action, history.SYSTEM, state, state, comment, payload)


def _titles(bundle: Bundle, keys: list[str]) -> str:
    by_key = {s.key: s.title for s in bundle.steps}
    return "、".join(f"“{by_key[k]}”" for k in keys)


def advance(session: Session, bundle: Bundle) -> None:
    """Start every step whose inputs are all there, block every step that can no longer
    start (a step it waits for failed), until nothing moves; then the bundle's state."""
    defn = get_definition(bundle.bundle_code)
    rows = {s.key: s for s in bundle.steps}
    while True:
        states = {k: StepState(r.state) for k, r in rows.items()}
        stopped = domain.doomed(defn.nodes, states)
        for key, causes in stopped.items():
            row = rows[key]
            row.state = StepState.BLOCKED.value
            row.note = f"因{_titles(bundle, causes)}未通过，本环节无法办理"
            row.closed_at = utcnow()
            step_event(session, bundle, row, BundleAction.STEP_BLOCKED, row.note)
        todo = domain.ready(defn.nodes, {k: StepState(r.state) for k, r in rows.items()})
        if not todo and not stopped:
            break
        for key in todo:
            _start(session, bundle, defn, defn.step(key), rows)
    _settle(session, bundle)


def _settle(session: Session, bundle: Bundle) -> None:
    states = [StepState(s.state) for s in bundle.steps]
    current = BundleState(bundle.state)
    target = domain.overall(states)
    action = domain.move_to(current, target)
    if action is not None:
        bundle.state = target.value
        history.record(
            session, bundle, action, history.SYSTEM, current, target, domain.MOVE_NOTES[action]
        )
    if not domain.is_open(states) and bundle.closed_at is None:
        bundle.closed_at = utcnow()
        history.flush(session)


def _result_ref(row: BundleStep) -> str | None:
    """What a later step's form says of `row`'s result: its e-licence's identifier, or its
    case number and authority when the licence is not held on this node."""
    if row.state != StepState.DONE:
        return None
    if row.licence_identifier:
        return row.licence_identifier
    return f"{row.case_number}（{row.authority_name}办件）"


def _upload_for(session: Session, bundle: Bundle, code: str, applicant: Account) -> uuid.UUID:
    """The file uploaded with the bundle for material `code`: itself for the first case
    that uses it, a copy (same bytes, stored once by hash) for each later one."""
    att = session.get(Attachment, uuid.UUID(bundle.uploads[code]))
    if att is None:
        raise ValidationFailed(f"随“一件事”上传的材料 {code} 已不存在", type="materials-missing")
    if att.case_id is None:
        return att.id
    settings = settings_of(session)
    try:
        data = files.blob_path(Path(settings.upload_dir), att.sha256).read_bytes()
    except OSError:
        raise ValidationFailed(
            f"随“一件事”上传的{att.filename}已无法读取", type="materials-missing"
        ) from None
    copy = files.store_upload(
        session,
        applicant,
        material_code=code,
        filename=att.filename,
        data=data,
        upload_dir=Path(settings.upload_dir),
        max_bytes=settings.max_upload_bytes,
    )
    return copy.id


def _application(
    session: Session,
    bundle: Bundle,
    defn: BundleDef,
    step: StepDef,
    rows: dict[str, BundleStep],
    applicant: Account,
) -> cases.Application:
    """The case application of `step`: its place, its matter form filled from the merged
    form and the earlier results, its materials (earlier e-licences, the applicant's own,
    the files uploaded with the bundle). ValidationFailed when a required one is missing."""
    values = bundle.form_data
    cities = {}
    for key, place in defn.places.items():
        name = place.city_field(values)
        if name and values.get(name):
            cities[key] = regions.get_city(session, str(values[name]))
    city = cities[step.place]
    results = {k: ref for k, r in rows.items() if (ref := _result_ref(r)) is not None}
    form = step_form(step, values, {k: c.name for k, c in cities.items()}, results)
    matter = matter_info(session, step.matter)
    wallet = licences_held(session, applicant)
    held = {k: r.licence_id is not None for k, r in rows.items()}
    plan = material_plan(step, matter, set(wallet), set(bundle.uploads), held)
    lacking = missing(plan)
    if lacking:
        raise ValidationFailed(
            "缺少材料：" + "、".join(m.name for m in lacking),
            type="materials-missing",
            errors=[FieldError(f"materials.{m.code}", f"缺少{m.name}") for m in lacking],
        )
    chosen: dict[str, Any] = {}
    attachments: list[uuid.UUID] = []
    for p in plan:
        if p.source is MaterialSource.RESULT and p.step is not None:
            chosen[p.material.code] = rows[p.step].licence_id
        elif p.source is MaterialSource.WALLET and p.material.licence_type:
            chosen[p.material.code] = wallet[p.material.licence_type].id
        elif p.source is MaterialSource.UPLOAD:
            attachments.append(_upload_for(session, bundle, p.material.code, applicant))
    joint = [cities[step.joint].jurisdiction_code] if step.joint else []
    return cases.Application(
        matter_code=step.matter,
        competent_jurisdiction=city.jurisdiction_code,
        competent_city=city.code,
        form_data=form,
        mode=step.mode,
        consent=True,  # given once for the whole bundle
        attachment_ids=attachments,
        joint_jurisdictions=joint,
        phone=bundle.phone,
        licences=chosen,
    )


def _start(
    session: Session,
    bundle: Bundle,
    defn: BundleDef,
    step: StepDef,
    rows: dict[str, BundleStep],
) -> None:
    """Submit `step`'s case for the applicant. In a savepoint: a step that cannot be
    submitted (a licence no longer valid, a material missing) is blocked with the reason,
    and nothing of its attempt is kept; the bundle and the step that triggered it go on."""
    row = rows[step.key]
    applicant = identity.get_account(session, bundle.applicant_id)
    try:
        with session.begin_nested():
            app = _application(session, bundle, defn, step, rows, applicant)
            case = cases.submit_online(session, applicant, app)
    except ConcurrentChange:
        raise  # another transaction moved first: the whole change is retried, not blocked
    except DomainError as e:
        details = "；".join(dict.fromkeys(err.message for err in e.errors if err.message))
        row.state = StepState.BLOCKED.value
        row.note = f"未能提交：{e.detail}" + (
            f"（{details}）" if details and details not in e.detail else ""
        )
        row.closed_at = utcnow()
        step_event(session, bundle, row, BundleAction.STEP_BLOCKED, row.note)
        return
    row.state = StepState.STARTED.value
    row.case_id = case.id
    row.case_number = case.number
    row.jurisdiction_code = case.competent_jurisdiction
    row.authority_name = case.authority_name
    row.started_at = utcnow()
    row.note = ""
    step_event(
        session,
        bundle,
        row,
        BundleAction.STEP_STARTED,
        f"{row.title}：已提交至{case.authority_name}（办件编号 {case.number}）",
    )


# --- following the cases ----------------------------------------------------------------------


def _failure_reason(case: cases.Case) -> str:
    for ev in reversed(case.events):
        if ev.to_state in domain.CASE_FAILED:
            return ev.comment or ""
    return ""


def _licence_of(session: Session, applicant: Account, row: BundleStep, ltype: str | None) -> Any:
    """The e-licence issued for `row`'s case to the applicant, when this node holds it."""
    if not ltype:
        return None
    try:
        held = licences.list_mine(session, applicant, type_code=ltype)
    except PermissionDenied:
        return None
    return next((lic for lic in held if lic.case_id == row.case_id), None)


def case_moved(session: Session, case_id: uuid.UUID) -> Bundle | None:
    """A case took a step (here, or on another node and this node's copy followed it):
    when it is a bundle's step and the case is now delivered (approved) or refused /
    denied, the step is closed and the bundle moves on. Anything else changes nothing;
    so does a step already closed (an event delivered twice)."""
    row = session.scalar(select(BundleStep).where(BundleStep.case_id == case_id))
    if row is None or row.state != StepState.STARTED:
        return None
    case = cases.case_by_id(session, case_id)
    approved = any(ev.to_state == "approved" for ev in case.events)
    outcome = domain.step_outcome(case.state, approved)
    if outcome is StepState.STARTED:
        return None
    bundle = row.bundle
    defn = get_definition(bundle.bundle_code)
    row.state = outcome.value
    row.closed_at = utcnow()
    if outcome is StepState.DONE:
        applicant = identity.get_account(session, bundle.applicant_id)
        ltype = matter_info(session, row.matter_code).result_licence_type
        lic = _licence_of(session, applicant, row, ltype)
        if lic is not None:
            row.licence_id = lic.id
            row.licence_identifier = lic.identifier
        step_event(session, bundle, row, BundleAction.STEP_DONE, f"{row.title}：已办结")
    else:
        blocked = domain.dependants(defn.nodes, row.key)
        waiting = [
            k
            for k in blocked
            if next(s for s in bundle.steps if s.key == k).state == StepState.WAITING
        ]
        reason = _failure_reason(case)
        row.note = f"{'不予受理' if case.state == 'refused' else '不予办理'}" + (
            f"：{reason}" if reason else ""
        )
        if waiting:
            row.note += f"。受影响的后续环节：{_titles(bundle, waiting)}"
        step_event(session, bundle, row, BundleAction.STEP_FAILED, f"{row.title}：{row.note}")
    advance(session, bundle)
    return bundle


@events.subscribe(events.CaseStepTaken)
def follow_case(session: Session, event: events.CaseStepTaken) -> None:
    """Cases announce every step (kernel.events): the bundles follow theirs."""
    case_moved(session, event.case_id)
