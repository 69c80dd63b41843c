"""The bundles this node offers (data/bundles.json) as the other modules read them, what
they need of the catalogue, and the applicant's e-licences a bundle may use (免提交)."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy.orm import Session

from tongban.catalog import service as catalog
from tongban.errors import (
    FieldError,
    NotFound,
    PermissionDenied,
)
from tongban.identity.models import Account
from tongban.licences import service as licences
from tongban.lifeevents.checks import catalogue_problems
from tongban.lifeevents.definitions import (
    BundleDef,
    MaterialInfo,
    MatterInfo,
    read_bundles,
)

# --- the definitions ------------------------------------------------------------------------


@cache
def definitions() -> tuple[BundleDef, ...]:
    """The bundles shipped in data/bundles.json (read once per process)."""
    return read_bundles()


def get_definition(code: str) -> BundleDef:
    for b in definitions():
        if b.code == code:
            return b
    raise NotFound(
        f"“一件事”{code} 不存在", type="unknown-bundle", errors=[FieldError("bundle", "不存在")]
    )


def matter_info(session: Session, code: str) -> MatterInfo:
    """What bundles need of catalogue matter `code`."""
    m = catalog.get_matter(session, code)
    return MatterInfo(
        code=m.code,
        name=m.name,
        subjects=tuple(m.subjects),
        modes=tuple(m.modes),
        form_schema=m.form_schema,
        materials=tuple(
            MaterialInfo(x.code, x.name, x.required, x.licence_type) for x in m.materials
        ),
        result_licence_type=m.result_licence_type,
        active=m.active,
    )


def check_definitions(session: Session, bundles: tuple[BundleDef, ...] | None = None) -> list[str]:
    """What does not fit between the bundles and this node's catalogue (empty when fine)."""
    chosen = bundles if bundles is not None else definitions()
    codes = {s.matter for b in chosen for s in b.steps}
    infos = {}
    for code in codes:
        try:
            infos[code] = matter_info(session, code)
        except NotFound:
            continue
    return catalogue_problems(chosen, infos)


def licences_held(session: Session, applicant: Account) -> dict[str, Any]:
    """The applicant's usable e-licences by type, newest first (none for an account whose
    identity is not proven: licences are bound to a proven ID number)."""
    try:
        held = licences.list_mine(session, applicant, usable=True)
    except PermissionDenied:
        return {}
    out: dict[str, Any] = {}
    for lic in held:
        out.setdefault(lic.type_code, lic)
    return out
