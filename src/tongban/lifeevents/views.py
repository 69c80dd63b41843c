"""Pages of life-event bundles: what bundles there are, the one merged form, and the
resident's page that follows a bundle step by step."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from tongban.catalog import service as catalog
from tongban.errors import DomainError, NotFound, PermissionDenied
from tongban.files import service as files
from tongban.identity.models import Account
from tongban.lifeevents import domain, service
from tongban.lifeevents.definitions import BundleDef
from tongban.lifeevents.domain import BundleState, StepState
from tongban.regions import service as regions
from tongban.web.deps import CsrfChecked, CurrentUser, FormDep, OptionalUser, SessionDep
from tongban.web.pages import form_failure, render

router = APIRouter(include_in_schema=False)

APPLICANT_ROLES = ("resident", "enterprise")
#: Where a service's field errors go on the form: `form_data.x` under input `x`,
#: `materials.<code>` under the file input `material_<code>`.
INPUTS = {"form_data.": "", "materials.": "material_"}
#: The badge class of each step state (the site's style sheet has ok / approaching / overdue).
STEP_BADGES = {
    StepState.WAITING.value: "",
    StepState.STARTED.value: "approaching",
    StepState.DONE.value: "ok",
    StepState.FAILED.value: "overdue",
    StepState.BLOCKED.value: "overdue",
    StepState.SKIPPED.value: "",
}
BUNDLE_BADGES = {
    BundleState.SUBMITTED.value: "",
    BundleState.IN_PROGRESS.value: "approaching",
    BundleState.BLOCKED.value: "overdue",
    BundleState.COMPLETED.value: "ok",
}
LABELS = {
    "bundle": {s.value: label for s, label in domain.STATE_LABELS.items()},
    "actions": {a.value: label for a, label in domain.ACTION_LABELS.items()},
    "step_badges": STEP_BADGES,
    "bundle_badges": BUNDLE_BADGES,
}


def _require_applicant(user: Account) -> None:
    if user.role not in APPLICANT_ROLES:
        raise PermissionDenied("“一件事”仅供个人或法人账户申请")


def _parse_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("“一件事”不存在或无权查看", type="unknown-bundle") from None


def _raw(form: FormData) -> dict[str, Any]:
    return {k: v for k in form if isinstance(v := form.get(k), str)}


def _values(defn: BundleDef, form: FormData) -> dict[str, Any]:
    """The merged form as posted, in its types; an unticked box is a 'no'."""
    raw = _raw(form)
    for name, prop in defn.properties.items():
        if prop.get("type") == "boolean" and name not in raw:
            raw[name] = "false"
    return catalog.coerce_form(defn.form, raw)


def _store_files(
    request: Request, session: Session, user: Account, codes: list[str], form: FormData
) -> list[uuid.UUID]:
    settings = request.app.state.node.settings
    ids = []
    for code in codes:
        upload = form.get(f"material_{code}")
        if not isinstance(upload, UploadFile) or not upload.filename:
            continue
        att = files.store_upload(
            session,
            user,
            material_code=code,
            filename=upload.filename,
            data=upload.file.read(settings.max_upload_bytes + 1),
            upload_dir=Path(settings.upload_dir),
            max_bytes=settings.max_upload_bytes,
        )
        ids.append(att.id)
    return ids


def _form_context(
    session: Session, user: Account, defn: BundleDef, values: dict[str, Any], errors: dict[str, str]
) -> dict[str, Any]:
    """What the merged form page shows: the fields (cities grouped by jurisdiction), the
    steps in their order with their places, and every material once, with how it is
    provided (an earlier step's e-licence, the applicant's own, or an upload)."""
    cities = regions.list_cities(session)
    jurisdictions = regions.list_jurisdictions(session)
    steps = [
        {
            "title": s.title,
            "matter": catalog.get_matter(session, s.matter).name,
            "place": defn.places[s.place].title,
            "after": [defn.step(a).title for a in s.after],
            "when": defn.properties[s.when]["title"] if s.when else None,
        }
        for s in defn.steps
    ]
    return {
        "defn": defn,
        "steps": steps,
        "materials": service.material_overview(session, user, defn),
        "cities": cities,
        "jurisdictions": jurisdictions,
        "values": values,
        "errors": errors,
    }


@router.get("/lifeevents")
def index(request: Request, session: SessionDep, user: OptionalUser) -> Response:
    mine = service.list_mine(session, user) if user and user.role in APPLICANT_ROLES else []
    return render(
        request,
        "lifeevents/index.html",
        user,
        bundles=service.definitions(),
        mine=mine,
        labels=LABELS,
    )


@router.get("/lifeevents/{code}/apply")
def apply_page(code: str, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    _require_applicant(user)
    defn = service.get_definition(code)
    values: dict[str, Any] = {"phone": user.phone or ""}
    ctx = _form_context(session, user, defn, values, {})
    return render(request, "lifeevents/apply.html", user, **ctx)


@router.post("/lifeevents/{code}/apply", dependencies=[CsrfChecked])
def apply(
    code: str, request: Request, session: SessionDep, user: CurrentUser, form: FormDep
) -> Response:
    _require_applicant(user)
    defn = service.get_definition(code)
    try:
        values = _values(defn, form)
        codes = [
            m.code for m in service.material_overview(session, user, defn) if m.source == "upload"
        ]
        ids = _store_files(request, session, user, codes, form)
        phone = form.get("phone")
        bundle = service.submit(
            session,
            user,
            service.BundleApplication(
                bundle_code=defn.code,
                form_data=values,
                attachment_ids=ids,
                phone=phone.strip() or None if isinstance(phone, str) else None,
                consent=form.get("consent") in ("1", "true", "on"),
            ),
        )
    except PermissionDenied:
        raise
    except DomainError as e:
        refused = form_failure(session, e, inputs=INPUTS)
        entered = _raw(form)
        ctx = _form_context(session, user, defn, entered, refused.errors)
        return render(
            request,
            "lifeevents/apply.html",
            user,
            status_code=refused.status_code,
            message=refused.message,
            **ctx,
        )
    return RedirectResponse(f"/my/lifeevents/{bundle.id}", status_code=303)


@router.get("/my/lifeevents/{bundle_id}")
def follow(bundle_id: str, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    _require_applicant(user)
    bundle = service.get_bundle(session, user, _parse_id(bundle_id))
    return render(
        request,
        "lifeevents/my_detail.html",
        user,
        bundle=bundle,
        steps=service.describe(session, bundle),
        labels=LABELS,
    )
