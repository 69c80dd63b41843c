"""Use cases of the matter catalogue. Every function takes the caller's session and never
commits: the request or the job owns the transaction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from tongban.catalog.domain import (
    MODE_LABELS,
    CatalogueInvalid,
    coerce_form,
    form_errors,
    personal_fields,
    read_catalogue,
    validate_catalogue,
)
from tongban.catalog.models import Matter, MatterImplementation, MatterMaterial
from tongban.errors import NotFound, ValidationFailed
from tongban.kernel.cache import Cache
from tongban.regions import service as regions

# Re-exported so other contexts (the apply page) reach the catalogue through this module.
__all__ = [
    "MODE_LABELS",
    "CatalogueInvalid",
    "coerce_form",
    "MatterRef",
    "get_matter",
    "matter_ref",
    "implementations",
    "list_matters",
    "load_catalogue",
    "personal_fields",
    "time_limit_for",
    "validate_form",
]

_MATTER_FIELDS = (
    "name", "subjects", "category", "authority_type", "authority_level", "modes",
    "time_limit_days", "description", "legal_basis", "result_licence_type",
    "joint_authority_types", "form_schema",
)  # fmt: skip
_MATERIAL_FIELDS = ("name", "required", "licence_type", "description")


def _sync_materials(matter: Matter, items: list[dict[str, Any]]) -> None:
    # Update by code rather than replace, so material rows keep their ids.
    existing = {m.code: m for m in matter.materials}
    wanted: list[MatterMaterial] = []
    for seq, item in enumerate(items, start=1):
        material = existing.pop(item["code"], None) or MatterMaterial(code=item["code"])
        material.seq = seq
        for field in _MATERIAL_FIELDS:
            setattr(material, field, item[field])
        wanted.append(material)
    matter.materials = wanted  # dropped ones are deleted (delete-orphan)


def _matter_state(matter: Matter) -> dict[str, Any]:
    state = {field: getattr(matter, field) for field in _MATTER_FIELDS}
    state["active"] = matter.active
    state["materials"] = [
        {"code": m.code, **{f: getattr(m, f) for f in _MATERIAL_FIELDS}}
        for m in sorted(matter.materials, key=lambda m: m.seq)
    ]
    return state


#: Fields whose value a change entry pins by digest rather than copies (long texts).
_DIGESTED = ("form_schema", "description", "legal_basis", "materials")


def _record_catalogue_change(
    session: Session, before: dict[str, dict[str, Any]], matters: dict[str, Matter], actor: str
) -> None:
    """One audit-chain entry per load that changed the catalogue (matters are public):
    which matters were added, which fields of which changed (before/after; long values
    as digests) and which were deactivated. Nothing when the load changed nothing, nor
    for the first load into an empty catalogue (installing is not changing)."""
    from tongban.audit import service as audit

    if not before:
        return

    def shown(field: str, value: Any) -> Any:
        return {"digest": audit.digest(value, session)} if field in _DIGESTED else value

    added: list[str] = []
    changed: dict[str, dict[str, Any]] = {}
    for code, matter in sorted(matters.items()):
        now = _matter_state(matter)
        old = before.get(code)
        if old is None:
            added.append(code)
            continue
        diff = {
            f: {"before": shown(f, old[f]), "after": shown(f, now[f])}
            for f in now
            if old[f] != now[f]
        }
        if diff:
            changed[code] = diff
    if not added and not changed:
        return
    audit.record_change(
        session,
        "catalogue.loaded",
        "catalogue:matters",
        actor,
        before=None,
        after=None,
        added=added,
        changed=changed,
    )


def load_catalogue(session: Session, path: Path | None = None, *, actor: str = "system") -> int:
    """Load (idempotently) the catalogue file — the shipped `data/matters.json` by default —
    into matters and their materials, and give every jurisdiction present an implementation
    of every matter, with the matter's time limit.

    Matters no longer in the file are deactivated, not deleted (cases refer to them); an
    implementation a jurisdiction already has is left as it is (its time limit and whether
    it is enabled are the jurisdiction's own). Raises CatalogueInvalid if the file has
    problems. Returns the number of matters in the file. A load that changes matters is
    an entry of the audit chain ("change", catalogue.loaded: added, changed fields with
    before/after, deactivated as `active` false)."""
    items = read_catalogue(path)
    problems = validate_catalogue(items)
    if problems:
        raise CatalogueInvalid(problems)

    existing = {
        m.code: m for m in session.scalars(select(Matter).options(selectinload(Matter.materials)))
    }
    before = {code: _matter_state(m) for code, m in existing.items()}
    for item in items:
        matter = existing.get(item["code"])
        if matter is None:
            matter = Matter(code=item["code"])
            session.add(matter)
            existing[matter.code] = matter
        for field in _MATTER_FIELDS:
            setattr(matter, field, item[field])
        matter.active = True
        _sync_materials(matter, item["materials"])
    in_file = {item["code"] for item in items}
    for code, matter in existing.items():
        if code not in in_file:
            matter.active = False
    session.flush()
    _record_catalogue_change(session, before, existing, actor)

    have = {
        (row[0], row[1])
        for row in session.execute(
            select(MatterImplementation.matter_code, MatterImplementation.jurisdiction_code)
        )
    }
    for jurisdiction in regions.list_jurisdictions(session):
        for item in items:
            if (item["code"], jurisdiction.code) not in have:
                session.add(
                    MatterImplementation(
                        matter_code=item["code"],
                        jurisdiction_code=jurisdiction.code,
                        time_limit_days=item["time_limit_days"],
                        enabled=True,
                    )
                )
    session.flush()
    return len(items)


def list_matters(
    session: Session,
    q: str | None = None,
    authority_type: str | None = None,
    mode: str | None = None,
    subject: str | None = None,
) -> list[Matter]:
    """Active matters in code order; `q` searches name, code and category; the other
    arguments filter exactly (a mode or subject the matter allows)."""
    stmt = select(Matter).where(Matter.active.is_(True)).order_by(Matter.code)
    if q and q.strip():
        term = q.strip()
        stmt = stmt.where(
            or_(
                Matter.name.icontains(term, autoescape=True),
                Matter.code.icontains(term, autoescape=True),
                Matter.category.icontains(term, autoescape=True),
            )
        )
    if authority_type:
        stmt = stmt.where(Matter.authority_type == authority_type)
    matters = list(session.scalars(stmt))
    # Modes and subjects are JSON lists; the catalogue is small (hundreds of rows), so
    # filtering here is portable across SQLite and PostgreSQL at no real cost.
    if mode:
        matters = [m for m in matters if mode in m.modes]
    if subject:
        matters = [m for m in matters if subject in m.subjects]
    return matters


@dataclass(frozen=True)
class MaterialRef:
    code: str
    name: str
    required: bool
    licence_type: str | None


@dataclass(frozen=True)
class MatterRef:
    """A matter as a plain value (what a submission reads of it), cached per process."""

    code: str
    name: str
    subjects: tuple[str, ...]
    authority_type: str
    authority_level: str
    modes: tuple[str, ...]
    time_limit_days: int
    form_schema: Mapping[str, Any]
    joint_authority_types: tuple[str, ...]
    active: bool
    materials: tuple[MaterialRef, ...]


#: Cached per process; dropped when the catalogue changes (tongban.kernel.cache).
_MATTERS: Cache[MatterRef | None] = Cache(
    "catalog.matter", tables={"matter", "matter_material"}, ttl=300
)
_IMPLEMENTATIONS: Cache[tuple[bool, int] | None] = Cache(
    "catalog.implementation", tables={"matter_implementation"}, ttl=300
)


def _matter_ref(m: Matter | None) -> MatterRef | None:
    if m is None:
        return None
    return MatterRef(
        code=m.code,
        name=m.name,
        subjects=tuple(m.subjects),
        authority_type=m.authority_type,
        authority_level=m.authority_level,
        modes=tuple(m.modes),
        time_limit_days=m.time_limit_days,
        form_schema=m.form_schema,
        joint_authority_types=tuple(m.joint_authority_types or ()),
        active=m.active,
        materials=tuple(
            MaterialRef(x.code, x.name, x.required, x.licence_type) for x in m.materials
        ),
    )


def matter_ref(session: Session, code: str) -> MatterRef:
    """`get_matter` as a plain value, from this process's cache; NotFound
    ("unknown-matter") if there is none."""

    def load() -> MatterRef | None:
        m = session.scalar(
            select(Matter).where(Matter.code == code).options(selectinload(Matter.materials))
        )
        return _matter_ref(m)

    ref = _MATTERS.get(session, code, load)
    if ref is None:
        raise NotFound(f"事项编码 {code} 不存在", type="unknown-matter")
    return ref


def get_matter(session: Session, code: str) -> Matter:
    """The matter with `code` (inactive ones too: old cases still show them); NotFound
    ("unknown-matter") if there is none."""
    matter = session.get(Matter, code)
    if matter is None:
        raise NotFound(f"事项编码 {code} 不存在", type="unknown-matter")
    return matter


def implementations(session: Session, matter_code: str) -> list[MatterImplementation]:
    """Each jurisdiction's implementation of the matter, by jurisdiction code."""
    return list(
        session.scalars(
            select(MatterImplementation)
            .where(MatterImplementation.matter_code == matter_code)
            .order_by(MatterImplementation.jurisdiction_code)
        )
    )


def time_limit_for(session: Session, matter: Matter | MatterRef, jurisdiction_code: str) -> int:
    """The time limit, in working days, of `matter` in the jurisdiction: its own
    implementation's if it has one, else the standard one. ValidationFailed
    ("matter-not-implemented") if the jurisdiction has switched the matter off."""

    def load() -> tuple[bool, int] | None:
        impl = session.scalar(
            select(MatterImplementation).where(
                MatterImplementation.matter_code == matter.code,
                MatterImplementation.jurisdiction_code == jurisdiction_code,
            )
        )
        return None if impl is None else (impl.enabled, impl.time_limit_days)

    impl = _IMPLEMENTATIONS.get(session, (matter.code, jurisdiction_code), load)
    if impl is None:
        return matter.time_limit_days
    enabled, days = impl
    if not enabled:
        raise ValidationFailed(
            f"所选辖区暂未开通“{matter.name}”事项",
            type="matter-not-implemented",
            errors=[
                {
                    "field": "competent_jurisdiction",
                    "message": "该辖区暂未开通此事项，请选择其他辖区",
                }
            ],
        )
    return days


def form_schema_of(session: Session, code: str) -> dict[str, Any] | None:
    """The form schema of matter `code` (inactive ones too); None for an unknown code.
    From this process's cache: do not change it."""
    matter = _MATTERS.get(session, code, lambda: _matter_ref(session.get(Matter, code)))
    return dict(matter.form_schema) if matter is not None else None


def validate_form(matter: Matter | MatterRef, data: dict[str, Any]) -> dict[str, Any]:
    """`data` if it is a valid application form of the matter; otherwise ValidationFailed
    ("form-invalid") with one error per field, named "form_data.<field>"."""
    # Only the fields the matter defines are stored: an API client cannot smuggle others in.
    problems = form_errors({**matter.form_schema, "additionalProperties": False}, data)
    if problems:
        raise ValidationFailed(
            "申请表填写有误",
            type="form-invalid",
            errors=[
                {"field": f"form_data.{p['field']}", "message": p["message"]} for p in problems
            ],
        )
    return data


def enabled_codes(session: Session, jurisdiction_code: str) -> set[str]:
    """The codes of the matters the jurisdiction has opened (an enabled implementation)."""
    return set(
        session.scalars(
            select(MatterImplementation.matter_code).where(
                MatterImplementation.jurisdiction_code == jurisdiction_code,
                MatterImplementation.enabled.is_(True),
            )
        )
    )


def popular_matters(session: Session) -> list[Matter]:
    """The home page's 常办事项: the guide data's list, active ones only, in its order."""
    from tongban.catalog.guide import popular_codes

    codes = popular_codes()
    found = {
        m.code: m
        for m in session.scalars(
            select(Matter).where(Matter.code.in_(codes), Matter.active.is_(True))
        )
    }
    return [found[c] for c in codes if c in found]
