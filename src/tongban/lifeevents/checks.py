"""Whether the bundles fit the catalogue: every required field of every matter filled,
types and choices compatible, results taken only from earlier steps (and never into a
required field from a step that may be left out), a material's licence type being what
the earlier step's matter produces, every merged-form field used. Pure Python (plus
`jsonschema`): no database, no web."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from jsonschema import Draft202012Validator

from tongban.lifeevents.definitions import (
    BundleDef,
    CityName,
    Const,
    FromField,
    MatterInfo,
    ResultOf,
    StepDef,
)


def before(bundle: BundleDef, key: str) -> set[str]:
    """Every step `key` waits for, directly or through others."""
    found: set[str] = set()
    todo = list(bundle.step(key).after)
    while todo:
        k = todo.pop()
        if k not in found:
            found.add(k)
            todo += bundle.step(k).after
    return found


def _compatible(bundle_prop: Mapping[str, Any], matter_prop: Mapping[str, Any]) -> str | None:
    if bundle_prop.get("type") != matter_prop.get("type"):
        return f"type {bundle_prop.get('type')!r} is not {matter_prop.get('type')!r}"
    if "enum" in matter_prop:
        extra = set(map(str, bundle_prop.get("enum") or [None])) - set(
            map(str, matter_prop["enum"])
        )
        if extra:
            return f"choices {sorted(extra)} are not among the matter's"
    if matter_prop.get("format") and bundle_prop.get("format") != matter_prop.get("format"):
        return f"format must be {matter_prop['format']!r}"
    return None


def _step_problems(bundle: BundleDef, s: StepDef, matter: MatterInfo) -> list[str]:
    at = f"bundle {bundle.code}: step {s.key!r} ({s.matter})"
    problems = []
    if not matter.active:
        problems.append(f"{at}: the matter is not active")
    if not set(bundle.subjects) <= set(matter.subjects):
        problems.append(f"{at}: the matter is not for {list(bundle.subjects)}")
    if s.mode not in matter.modes:
        problems.append(f"{at}: the matter does not allow mode {s.mode!r}")
    mprops = matter.form_schema.get("properties", {})
    earlier = before(bundle, s.key)
    for name in matter.form_schema.get("required", []):
        if name not in s.form:
            problems.append(f"{at}: required matter field {name!r} is not filled")
    for name, src in s.form.items():
        where = f"{at}: field {name!r}"
        mprop = mprops.get(name)
        if mprop is None:
            problems.append(f"{where}: the matter has no such field")
            continue
        if isinstance(src, FromField):
            bprop = bundle.properties.get(src.name)
            if bprop is None:
                problems.append(f"{where}: the merged form has no field {src.name!r}")
            elif (why := _compatible(bprop, mprop)) is not None:
                problems.append(f"{where}: {src.name!r} does not fit: {why}")
        elif isinstance(src, Const):
            errors = list(Draft202012Validator(mprop).iter_errors(src.value))
            if errors:
                problems.append(f"{where}: constant {src.value!r} does not fit the matter")
        elif isinstance(src, CityName):
            if src.place not in bundle.places or mprop.get("type") != "string":
                problems.append(f"{where}: city_name needs a known place and a text field")
        elif isinstance(src, ResultOf):
            if src.step not in earlier:
                problems.append(f"{where}: result of {src.step!r}, which is not an earlier step")
            elif mprop.get("type") != "string":
                problems.append(f"{where}: a result fills a text field only")
            elif name in matter.form_schema.get("required", []) and _skippable(bundle, src.step):
                problems.append(f"{where}: required, but step {src.step!r} may not be handled")
    return problems


def _skippable(bundle: BundleDef, key: str) -> bool:
    return bundle.step(key).when is not None


def catalogue_problems(
    bundles: Sequence[BundleDef], matters: Mapping[str, MatterInfo]
) -> list[str]:
    """What does not fit between the bundles and the catalogue (empty when they fit)."""
    problems: list[str] = []
    for b in bundles:
        used: set[str] = {p for place in b.places.values() for p in place.fields()}
        used |= {place.choose for place in b.places.values() if place.choose}
        for s in b.steps:
            matter = matters.get(s.matter)
            if matter is None:
                problems.append(f"bundle {b.code}: step {s.key!r}: unknown matter {s.matter}")
                continue
            problems += _step_problems(b, s, matter)
            used |= {src.name for src in s.form.values() if isinstance(src, FromField)}
            used |= {s.when} if s.when else set()
            materials = {m.code: m for m in matter.materials}
            for code, step in s.materials.items():
                at = f"bundle {b.code}: step {s.key!r}: material {code!r}"
                m = materials.get(code)
                if m is None:
                    problems.append(f"{at}: the matter has no such material")
                    continue
                if step not in before(b, s.key):
                    problems.append(f"{at}: {step!r} is not an earlier step")
                    continue
                produced = matters[b.step(step).matter].result_licence_type
                if not m.licence_type or m.licence_type != produced:
                    problems.append(f"{at}: {step!r} produces {produced!r}, not {m.licence_type!r}")
        unused = sorted(set(b.properties) - used)
        if unused:
            problems.append(f"bundle {b.code}: merged-form fields used by no step: {unused}")
    return problems
