"""Pages of the matter catalogue: browse and search, and one matter's guide (办事指南)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tongban.catalog import guide as guides
from tongban.catalog import service
from tongban.catalog.domain import LEVEL_LABELS, MODE_DESCRIPTIONS, MODE_LABELS, SUBJECTS, Mode
from tongban.errors import NotFound
from tongban.regions import service as regions
from tongban.regions.domain import AUTHORITY_TYPE_LABELS, AuthorityType
from tongban.web.deps import OptionalUser, SessionDep
from tongban.web.pages import render

router = APIRouter(include_in_schema=False)

AUTHORITY_LABELS: dict[str, str] = {t.value: label for t, label in AUTHORITY_TYPE_LABELS.items()}


def _labels() -> dict[str, Any]:
    return {
        "mode_labels": MODE_LABELS,
        "mode_descriptions": MODE_DESCRIPTIONS,
        "authority_labels": AUTHORITY_LABELS,
        "level_labels": LEVEL_LABELS,
    }


def _choice(value: str | None, allowed: set[str]) -> str | None:
    # A filter a browser made up is ignored rather than an error page.
    return value if value in allowed else None


@router.get("/matters")
def browse(
    request: Request,
    session: SessionDep,
    user: OptionalUser,
    q: str | None = None,
    mode: str | None = None,
    authority_type: str | None = None,
    subject: str | None = None,
    city: str | None = None,
) -> Response:
    cities = regions.list_cities(session)
    city = _choice(city, {c.code for c in cities})
    mode = _choice(mode, {m.value for m in Mode})
    authority_type = _choice(authority_type, {t.value for t in AuthorityType})
    subject = _choice(subject, set(SUBJECTS))
    q = (q or "").strip()[:60]
    matters = service.list_matters(
        session, q=q or None, authority_type=authority_type, mode=mode, subject=subject
    )
    if city:
        # Only matters the city's jurisdiction has opened (a disabled one is not offered).
        jurisdiction = next(c.jurisdiction_code for c in cities if c.code == city)
        opened = service.enabled_codes(session, jurisdiction)
        matters = [m for m in matters if m.code in opened]
    names = {j.code: j.short_name for j in regions.list_jurisdictions(session)}
    city_options = [(c.code, f"{names.get(c.jurisdiction_code, '')} {c.name}") for c in cities]
    return render(
        request, "catalog/list.html", user,
        matters=matters, q=q, mode=mode or "", authority_type=authority_type or "",
        subject=subject or "", subjects=SUBJECTS, city=city or "", city_options=city_options,
        filtered=bool(q or mode or authority_type or subject or city),
        **_labels(),
    )  # fmt: skip


@router.get("/matters/{code}")
def guide(
    request: Request, session: SessionDep, user: OptionalUser, code: str, city: str | None = None
) -> Response:
    matter = service.get_matter(session, code)
    cities = regions.list_cities(session)
    chosen = next((c for c in cities if c.code == city), None)
    office = None
    if chosen is not None:
        try:
            office = regions.competent_authority(
                session,
                matter.authority_type,
                matter.authority_level,
                chosen.jurisdiction_code,
                chosen.code,
            ).name
        except NotFound:
            office = None
    names = {j.code: j.short_name for j in regions.list_jurisdictions(session)}
    full_names = {j.code: j.name for j in regions.list_jurisdictions(session)}
    impls = [
        {"jurisdiction": full_names.get(i.jurisdiction_code, i.jurisdiction_code),
         "enabled": i.enabled, "time_limit_days": i.time_limit_days}
        for i in service.implementations(session, matter.code)
    ]  # fmt: skip
    return render(
        request, "catalog/detail.html", user,
        matter=matter, implementations=impls,
        guide=guides.build(
            matter.code, matter.authority_type, list(matter.modes), matter.time_limit_days,
            office,
        ),
        city=chosen.code if chosen else "",
        city_options=[(c.code, f"{names.get(c.jurisdiction_code, '')} {c.name}") for c in cities],
        licence_free=[m for m in matter.materials if m.licence_type],
        **_labels(),
    )  # fmt: skip


def home_context(request: Request) -> dict[str, Any]:
    """``popular_matters()`` for the home page (常办事项), in the request's own session."""

    def popular_matters() -> list[Any]:
        session = getattr(request.state, "db_session", None)
        return service.popular_matters(session) if session is not None else []

    return {"popular_matters": popular_matters}
