"""What the pages of applications share: labels, reading and re-rendering forms, the
context of a case page. The pages themselves are views.py (applicants), views_window.py
(the window clerk) and views_workbench.py (officers and supervisors)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from tongban.cases import access, service
from tongban.cases.attachments import store_upload
from tongban.cases.domain import (
    ACTION_LABELS,
    DELIVERY_LABELS,
    MODE_LABELS,
    RECT_ACTION_LABELS,
    RECT_ACTIONS,
    RECT_REOPENS_MAX,
    RECT_STATE_LABELS,
    RECT_TEXT_MAX,
    STATE_LABELS,
    Mode,
)
from tongban.cases.models import Case
from tongban.catalog import service as catalog
from tongban.errors import DomainError, FieldError, NotFound, PermissionDenied
from tongban.identity.domain import Role, mask_id_number
from tongban.identity.models import Account
from tongban.kernel import events
from tongban.licences import service as licences
from tongban.regions import service as regions
from tongban.web.deps import node_settings

APPLICANTS = (Role.RESIDENT, Role.ENTERPRISE)
STAFF_DESK = (Role.OFFICER, Role.SUPERVISOR)

STATE_VALUES = {s.value: label for s, label in STATE_LABELS.items()}
#: Labels of timeline entries: every state-machine action plus the platform's own steps.
EVENT_LABELS = {
    **{a.value: label for a, label in ACTION_LABELS.items()},
    "submit": "提交申请",
    "forwarded": "推送至主管部门",
    "correction_reminder": "补正提醒",
    **{a.value: label for a, label in RECT_ACTION_LABELS.items()},
}
#: 差评整改: the loop's states and steps as pages name them.
RECT_LABELS = {
    "states": {s.value: label for s, label in RECT_STATE_LABELS.items()},
    "steps": {a.value: label for a, label in RECT_ACTION_LABELS.items()},
}
SCORE_LABELS = {1: "非常不满意", 2: "不满意", 3: "基本满意", 4: "满意", 5: "非常满意"}
DEADLINE_LABELS = {"ok": "时限内", "approaching": "临近时限", "overdue": "已超时"}
APPLICANT_TYPE_LABELS = {Role.RESIDENT.value: "个人", Role.ENTERPRISE.value: "法人（企业）"}
LABELS = {
    "states": STATE_VALUES,
    "actions": {a.value: label for a, label in ACTION_LABELS.items()},
    "events": EVENT_LABELS,
    "modes": {m.value: label for m, label in MODE_LABELS.items()},
    "delivery": {d.value: label for d, label in DELIVERY_LABELS.items()},
    "deadline": DEADLINE_LABELS,
    "scores": SCORE_LABELS,
    "applicant_types": APPLICANT_TYPE_LABELS,
}


# --- helpers -----------------------------------------------------------------------


def require_role(actor: Account, roles: tuple[Role, ...], message: str) -> None:
    if actor.role not in {r.value for r in roles}:
        raise PermissionDenied(message)


def form_text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def form_texts(form: FormData, name: str) -> list[str]:
    return [v.strip() for v in form.getlist(name) if isinstance(v, str) and v.strip()]


#: Where a service's field errors go on an application form: `form_data.name` under the
#: input `name`, `materials.<code>` under the file input `material_<code>`.
INPUTS = {"form_data.": "", "materials.": "material_"}


def parse_case_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("办件不存在或无权查看", type="unknown-case") from None


def raw_form(form: FormData) -> dict[str, Any]:
    """Text fields of a form: one value per name, a list where a name repeats."""
    raw: dict[str, Any] = {}
    for key in form:
        values = [v for v in form.getlist(key) if isinstance(v, str)]
        if values:
            raw[key] = values if len(values) > 1 else values[0]
    return raw


def store_files(
    request: Request, session: Session, actor: Account, matter: Any, form: FormData
) -> list[uuid.UUID]:
    """Store every material file sent as `material_<code>`; returns the attachment ids."""
    settings = node_settings(request)
    ids = []
    for m in matter.materials:
        for upload in form.getlist(f"material_{m.code}"):
            if not isinstance(upload, UploadFile) or not upload.filename:
                continue
            data = upload.file.read(settings.max_upload_bytes + 1)
            att = store_upload(
                session,
                actor,
                material_code=m.code,
                filename=upload.filename,
                data=data,
                upload_dir=settings.upload_dir,
                max_bytes=settings.max_upload_bytes,
            )
            ids.append(att.id)
    return ids


def store_item_files(
    request: Request, session: Session, actor: Account, notice: Any, form: FormData
) -> list[uuid.UUID]:
    """Store the file sent for each item of a correction notice as `item_<code>`, under
    the item's code; returns the attachment ids."""
    if notice is None:
        return []
    settings = node_settings(request)
    ids = []
    for item in notice.items:
        for upload in form.getlist(f"item_{item['code']}"):
            if not isinstance(upload, UploadFile) or not upload.filename:
                continue
            data = upload.file.read(settings.max_upload_bytes + 1)
            try:
                att = store_upload(
                    session,
                    actor,
                    material_code=item["code"],
                    filename=upload.filename,
                    data=data,
                    upload_dir=settings.upload_dir,
                    max_bytes=settings.max_upload_bytes,
                )
            except DomainError as e:  # the error belongs beside the item's own input
                e.errors = [FieldError(f"item_{item['code']}", str(e.detail))]
                raise
            ids.append(att.id)
    return ids


def read_application(form: FormData, matter: Any, *, window: bool) -> service.Application:
    mode = form_text(form, "mode") or (Mode.PROXY.value if window else Mode.ONLINE.value)
    jurisdiction = form_text(form, "competent_jurisdiction")
    joint = [j for j in form_texts(form, "joint_jurisdictions") if j != jurisdiction]
    delivery = form_text(form, "delivery_method") or "electronic"
    return service.Application(
        matter_code=matter.code,
        competent_jurisdiction=jurisdiction,
        competent_city=form_text(form, "competent_city") or None,
        form_data=catalog.coerce_form(matter.form_schema, raw_form(form)),
        mode=mode,
        delivery_method=delivery,
        delivery_address=form_text(form, "delivery_address") or None,
        consent=form.get("consent") is not None,
        joint_jurisdictions=joint if mode == Mode.JOINT else [],
        phone=form_text(form, "phone") or None,
        evidence_consent=form_texts(form, "evidence_consent"),
        licences={m.code: form_text(form, f"licence_{m.code}") for m in matter.materials},
        # 免提交 at the window: what the clerk scanned or pasted from the applicant's licence.
        presented={
            m.code: form_text(form, f"presented_{m.code}")
            for m in matter.materials
            if window and m.licence_type
        },
    )


def entered_values(form: FormData) -> dict[str, Any]:
    """What the user typed, to put back into the re-rendered form."""
    values = raw_form(form)
    values["joint_jurisdictions"] = form_texts(form, "joint_jurisdictions")
    return values


def form_order(matter: Any, *, window: bool) -> list[str]:
    """The application form's inputs in the order the page shows them
    (cases/_application_fields.html, inside window_new.html at the window), so the error
    summary lists the problems top to bottom as the user meets them."""
    applicant = ["applicant_type", "applicant_name", "applicant_identifier", "identity_verified"]
    return [
        *(applicant if window else []),
        "competent_jurisdiction",
        "competent_city",
        "mode",
        "joint_jurisdictions",
        *matter.form_schema.get("properties", {}),
        "form",
        *(f"material_{m.code}" for m in matter.materials),
        "delivery_method",
        "delivery_address",
        "phone",
        "evidence_consent",
        "consent",
        *(["materials_checked"] if window else []),
    ]


def in_form_order(errors: dict[str, str], order: list[str]) -> dict[str, str]:
    """`errors` in the order of `order`; a name it does not know keeps its place after them."""
    rank = {name: i for i, name in enumerate(order)}
    return dict(sorted(errors.items(), key=lambda item: rank.get(item[0], len(rank))))


def application_context(
    session: Session,
    matter: Any,
    *,
    window: bool,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    modes = (
        [m for m in matter.modes if m != Mode.PROXY]
        if not window
        else [m for m in matter.modes if m in (Mode.PROXY, Mode.JOINT)]
    )
    return {
        "matter": matter,
        "jurisdictions": regions.list_jurisdictions(session),
        "cities": regions.list_cities(session),
        "modes": modes,
        "window": window,
        "values": values,
        # The error summary lists the problems as the form shows its inputs.
        "errors": in_form_order(errors or {}, form_order(matter, window=window)),
        "message": message,
        "labels": LABELS,
        # The error summary links to each input: the schema's fields render as f_<name>.
        "field_ids": {name: f"f_{name}" for name in matter.form_schema.get("properties", {})},
        # What other contexts add to the form: evidence_kinds (the consent checkboxes).
        **events.gather(session, events.ApplicationFormShown(matter.code)),
    }


def form_rows(matter: Any, form_data: dict[str, Any]) -> list[tuple[str, str]]:
    """The applicant's answers under the form's own titles, in the schema's order."""
    props: dict[str, Any] = (matter.form_schema or {}).get("properties", {}) if matter else {}
    rows = []
    for key in [*props, *(k for k in form_data if k not in props)]:
        if key not in form_data:
            continue
        value = form_data[key]
        if isinstance(value, bool):
            shown = "是" if value else "否"
        elif isinstance(value, list):
            shown = "、".join(str(v) for v in value)
        elif value is None:
            shown = ""
        else:
            shown = str(value)
        rows.append((str(props.get(key, {}).get("title") or key), shown))
    return rows


def open_matter(session: Session, code: str) -> Any:
    """A matter one can still apply for."""
    matter = catalog.get_matter(session, code)
    if not matter.active:
        raise NotFound(f"事项“{matter.name}”已停止办理", type="unknown-matter")
    return matter


def matter_or_none(session: Session, code: str) -> Any:
    try:
        return catalog.get_matter(session, code)
    except NotFound:
        return None


def detail_context(session: Session, actor: Account, case: Case) -> dict[str, Any]:
    matter = matter_or_none(session, case.matter_code)
    handles = access.sees_full_identifiers(actor, case)
    materials = {m.code: m.name for m in matter.materials} if matter else {}
    # Items a correction notice added beyond the matter's list are named there.
    for notice in case.corrections:
        for item in notice.items:
            materials.setdefault(item["code"], f"{item['name']}（补正）")
    form_data = access.visible_form_data(actor, case, matter.form_schema if matter else None)
    return {
        "case": case,
        "matter": matter,
        "form_rows": form_rows(matter, form_data),
        "identifier": case.applicant_identifier
        if handles
        else mask_id_number(case.applicant_identifier),
        "material_names": materials,
        "rating": service.rating_for(session, case),
        "rectification": service.rectification_of(session, case),
        "rect_steps": [e for e in case.events if e.action in RECT_ACTIONS],
        "rect_labels": RECT_LABELS,
        "rect_text_max": RECT_TEXT_MAX,
        "rect_reopens_max": RECT_REOPENS_MAX,
        "licence_uses": licences.uses_for_case(session, case.id),
        "clock": service.clock_of(session, case),
        # The matter's result is an e-licence: issued to the wallet when an approved case
        # is delivered (licences hears CaseDelivered).
        "result_licence": bool(matter and getattr(matter, "result_licence_type", None))
        and any(d.kind == "approval" for d in case.documents),
        "correction": service.open_correction(case),
        "labels": LABELS,
        "errors": {},
        "message": None,
    }


# --- applicant portal --------------------------------------------------------------
