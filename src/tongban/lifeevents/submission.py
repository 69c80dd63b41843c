"""One submission of a bundle: checked whole (the merged form, every place, every step's
matter form, the materials each step needs), recorded, and started; and what its form
shows of the materials (asked once, with how each is provided)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy.orm import Session

from tongban.calendar import service as calendar
from tongban.catalog import service as catalog
from tongban.db import utcnow
from tongban.errors import (
    FieldError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from tongban.files.models import Attachment
from tongban.identity import service as identity
from tongban.identity.models import Account
from tongban.kernel import history, numbering
from tongban.lifeevents import domain
from tongban.lifeevents.catalogue import get_definition, licences_held, matter_info
from tongban.lifeevents.definitions import (
    BundleDef,
    CityName,
    MaterialInfo,
    MaterialSource,
    ResultOf,
    StepDef,
    included,
    material_plan,
    missing,
    step_form,
)
from tongban.lifeevents.domain import BundleAction, BundleState, StepState
from tongban.lifeevents.models import Bundle, BundleStep
from tongban.lifeevents.progress import advance, step_event
from tongban.regions import service as regions

# --- submission ---------------------------------------------------------------------------


@dataclass
class BundleApplication:
    """What an applicant submits: the merged form, the files it asks for (uploaded
    before, each naming its material), a phone number and the consent to share."""

    bundle_code: str
    form_data: dict[str, Any] = field(default_factory=dict)
    attachment_ids: list[uuid.UUID] = field(default_factory=list)
    phone: str | None = None
    consent: bool = False


@dataclass(frozen=True)
class _FormShape:
    """The merged form as catalogue validation takes a matter's: its `form_schema`."""

    form_schema: dict[str, Any]


def _validate_form(session: Session, defn: BundleDef, values: dict[str, Any]) -> list[FieldError]:
    """What is wrong with the merged form: its own schema (the catalogue's validation and
    Chinese messages), the places (each step's city chosen, existing; a 多地联办 step's
    two jurisdictions different), and each step's matter form as filled from it."""
    errors: list[FieldError] = []
    try:  # the catalogue validates a matter's form; the merged form has the same shape
        catalog.validate_form(cast(Any, _FormShape(dict(defn.form))), values)
    except ValidationFailed as e:
        errors += e.errors
    bad = {e.field for e in errors}
    steps = included(defn, values)
    places: dict[str, Any] = {}
    for key in dict.fromkeys([s.place for s in steps] + [s.joint for s in steps if s.joint]):
        place = defn.places[key]
        name = place.city_field(values)
        if (
            name is None
            or f"form_data.{name}" in bad
            or place.choose
            and f"form_data.{place.choose}" in bad
        ):
            continue
        if not values.get(name):
            title = defn.properties[name].get("title", name)
            errors.append(FieldError(f"form_data.{name}", f"请选择{title}"))
            continue
        try:
            places[key] = regions.get_city(session, str(values[name]))
        except NotFound:
            errors.append(FieldError(f"form_data.{name}", "所选城市不存在"))
    for s in steps:
        if (
            s.joint
            and s.place in places
            and s.joint in places
            and places[s.joint].jurisdiction_code == places[s.place].jurisdiction_code
        ):
            name = defn.places[s.joint].city_field(values) or "form"
            msg = f"{defn.places[s.joint].title}与{defn.places[s.place].title}须分属不同省（市）"
            errors.append(FieldError(f"form_data.{name}", msg))
    names = {k: c.name for k, c in places.items()}
    for s in steps:
        matter = catalog.get_matter(session, s.matter)
        filled = step_form(s, values, names, {})
        # Filled when the step starts (an earlier result), or from a place whose city is
        # reported missing above: not this matter's to complain about.
        later = {
            n
            for n, src in s.form.items()
            if isinstance(src, ResultOf) or (isinstance(src, CityName) and src.place not in names)
        }
        try:
            catalog.validate_form(matter, filled)
        except ValidationFailed as e:
            for err in e.errors:
                matter_field = err.field.removeprefix("form_data.")
                if matter_field in later:
                    continue  # filled with the earlier step's result when this one starts
                mapped = s.field_of(matter_field)
                target = f"form_data.{mapped}" if mapped else "form_data.form"
                if target in bad:
                    continue  # the merged form's own message says it already
                message = err.message if mapped else f"{s.title}：{err.message}"
                errors.append(FieldError(target, message))
    unique: dict[tuple[str, str], FieldError] = {}
    for found in errors:
        unique.setdefault((found.field, found.message), found)
    return list(unique.values())


def _claim_uploads(
    session: Session, actor: Account, ids: list[uuid.UUID], wanted: dict[str, MaterialInfo]
) -> dict[str, str]:
    """The uploads sent with a bundle by material code: the actor's own, not yet used,
    one per material the bundle asks for."""
    out: dict[str, str] = {}
    for att_id in ids:
        att = session.get(Attachment, att_id)
        if att is None or att.uploaded_by != actor.id or att.case_id is not None:
            raise ValidationFailed(
                "附件不存在或不能使用",
                type="attachment-not-yours",
                errors=[FieldError("attachment_ids", "附件不存在、不属于申请人或已提交")],
            )
        code = att.material_code
        if code not in wanted:
            raise ValidationFailed(
                "该“一件事”不需要此材料",
                errors=[FieldError(f"materials.{code}", "该“一件事”不需要此材料")],
            )
        if code in out:
            raise ValidationFailed(
                "每种材料请只上传一份",
                errors=[FieldError(f"materials.{code}", "每种材料请只上传一份")],
            )
        out[code] = str(att.id)
    return out


def materials_asked(
    session: Session, defn: BundleDef, steps: list[StepDef]
) -> dict[str, MaterialInfo]:
    """Every material of the steps' matters by code, asked once (the first step's name)."""
    out: dict[str, MaterialInfo] = {}
    for s in steps:
        for m in matter_info(session, s.matter).materials:
            if m.code not in s.materials:
                out.setdefault(m.code, m)
    return out


def submit(session: Session, actor: Account, app: BundleApplication) -> Bundle:
    """One submission of a bundle: checked whole (the merged form, every place, every
    step's matter form, the materials each step needs), then recorded, and every step
    whose inputs are there is started as a case at its competent authority."""
    defn = get_definition(app.bundle_code)
    if not identity.is_applicant(actor):
        raise PermissionDenied("只有个人或法人账户可以申请“一件事”")
    if actor.role not in defn.roles():
        who = "个人" if "resident" in defn.roles() else "法人（企业）"
        raise ValidationFailed(f"该“一件事”仅面向{who}办理", type="subject-mismatch")
    values = dict(app.form_data or {})
    errors = _validate_form(session, defn, values)
    if not app.consent:
        errors.append(
            FieldError("consent", "须同意为办理本“一件事”所含事项跨地区共享和使用申请信息")
        )
    steps = included(defn, values)
    asked = materials_asked(session, defn, steps)
    uploads = _claim_uploads(session, actor, app.attachment_ids, asked)
    wallet = set(licences_held(session, actor))
    for s in steps:
        for m in missing(material_plan(s, matter_info(session, s.matter), wallet, set(uploads))):
            err = FieldError(f"materials.{m.code}", f"请上传{m.name}")
            if err not in errors:
                errors.append(err)
    if errors:
        raise ValidationFailed("申请信息有误", errors=errors)
    city = regions.get_city(session, actor.city_code or _first_city(session, actor))
    day = calendar.local_date(utcnow()).strftime("%Y%m%d")
    bundle = Bundle(
        number=domain.bundle_number(
            city.code, day, numbering.next_value(session, f"lifeevents:{city.code}", day)
        ),
        bundle_code=defn.code,
        name=defn.name,
        applicant_id=actor.id,
        applicant_name=actor.display_name,
        jurisdiction_code=city.jurisdiction_code,
        city_code=city.code,
        state=BundleState.SUBMITTED.value,
        form_data=values,
        uploads=uploads,
        phone=app.phone,
        submitted_at=utcnow(),
    )
    asked_keys = {s.key for s in steps}
    for seq, s in enumerate(defn.steps, start=1):
        state = StepState.WAITING if s.key in asked_keys else StepState.SKIPPED
        bundle.steps.append(
            BundleStep(key=s.key, seq=seq, title=s.title, matter_code=s.matter, state=state.value)
        )
    session.add(bundle)
    history.record(
        session, bundle, BundleAction.SUBMIT, actor, None, BundleState.SUBMITTED, "网上申请"
    )
    for row in bundle.steps:
        if row.state == StepState.SKIPPED:
            step_event(session, bundle, row, BundleAction.STEP_SKIPPED, f"{row.title}：无需办理")
    advance(session, bundle)
    return bundle


def _first_city(session: Session, actor: Account) -> str:
    cities = regions.list_cities(session, actor.jurisdiction_code)
    if not cities:
        raise ValidationFailed("账户未设置所在城市", type="no-home-city")
    return cities[0].code


@dataclass(frozen=True)
class MaterialRow:
    """A material of a bundle as its form shows it: asked once, with how it is provided."""

    code: str
    name: str
    steps: list[str]
    #: "result" (an earlier step's e-licence), "wallet" (the applicant's own), "upload".
    source: str
    required: bool
    detail: str = ""


def material_overview(
    session: Session, actor: Account | None, defn: BundleDef
) -> list[MaterialRow]:
    """Every material of every step of the bundle (whether a step is asked for is the
    applicant's choice on the form), once, with how it will be provided for this actor."""
    wallet = (
        licences_held(session, actor) if actor is not None and identity.is_applicant(actor) else {}
    )
    titles = {s.key: s.title for s in defn.steps}
    # Per material: the first name, and per way of providing it the steps that use it.
    names: dict[str, str] = {}
    ways: dict[str, dict[str, list[str]]] = {}
    required: dict[str, bool] = {}
    details: dict[str, str] = {}
    for s in defn.steps:
        for p in material_plan(s, matter_info(session, s.matter), set(wallet), set(), None):
            m = p.material
            if p.source is MaterialSource.RESULT:
                source = "result"
                details.setdefault(m.code, f"由“{titles[p.step or '']}”的结果自动关联（免提交）")
            elif p.source is MaterialSource.WALLET:
                source = "wallet"
                details.setdefault(m.code, "使用我的电子证照（免提交）")
            else:
                source = "upload"
                required[m.code] = required.get(m.code, False) or m.required
            names.setdefault(m.code, m.name)
            ways.setdefault(m.code, {}).setdefault(source, []).append(s.title)
    rows = []
    for code, by_way in ways.items():
        # An upload is asked for when any step needs one (the others are told how theirs
        # is provided); else the licence of the applicant, else an earlier result.
        way = next(w for w in ("upload", "wallet", "result") if w in by_way)
        rows.append(
            MaterialRow(
                code,
                names[code],
                by_way[way],
                way,
                required.get(code, False) if way == "upload" else False,
                "" if way == "upload" else details[code],
            )
        )
    return rows
