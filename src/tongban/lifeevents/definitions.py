"""Life-event bundles as data (`data/bundles.json`): what a bundle combines and how, read and
checked here. Pure Python (plus `jsonschema`): no database, no web.

A bundle is

- its **merged form**: one flat JSON Schema whose fields are asked once;
- its **places**: where its steps are handled, each a city field of the form or a choice
  between city fields (a newborn is registered where the chosen parent is);
- its **steps**: each a catalogue matter handled at one place, waiting for the results of
  the steps in `after`, its matter form filled from the merged form (`form`: matter field
  -> a bundle field, a constant, a place's city name, or an earlier step's result), and
  materials that an earlier step's e-licence stands in for (`materials`); a step with
  `when` is handled only when that boolean field is ticked.

`checks.catalogue_problems` checks the bundles against the catalogue.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, SchemaError

from tongban.lifeevents.domain import Node, order

#: Annotation of a merged-form field that holds a city (GB/T 2260 code): rendered as a
#: choice of cities, checked against the regions.
CITY = "x-city"
#: Keywords a merged-form field may carry (those of a catalogue form, and `x-city`).
PROPERTY_KEYS = frozenset(
    {"type", "title", "description", "enum", "format", "pattern", "minLength", "maxLength",
     "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "const", "default",
     "x-personal-id", CITY}
)  # fmt: skip
TYPES = frozenset({"string", "integer", "number", "boolean"})
SLUG = re.compile(r"^[a-z][a-z0-9_]*$")
#: Handling modes a bundle may use: what an online submission allows.
MODES = frozenset({"online", "joint"})
SUBJECT_ROLES = {"个人": "resident", "法人": "enterprise"}


class BundlesInvalid(ValueError):
    """The bundle data has problems (developer-facing, one line each)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("bundle data is invalid:\n" + "\n".join(problems))
        self.problems = problems


# --- what fills a matter's form field ---------------------------------------------------


@dataclass(frozen=True)
class FromField:
    """The merged form's field `name`."""

    name: str


@dataclass(frozen=True)
class Const:
    """A fixed value (a 退休 transfer's reason)."""

    value: Any


@dataclass(frozen=True)
class CityName:
    """The name of the city a place resolves to (参保地 = the 落户地's city)."""

    place: str


@dataclass(frozen=True)
class ResultOf:
    """An earlier step's result: its e-licence's identifier when this node holds it, else
    its case number (the officer can check it: evidence `licence_status`)."""

    step: str


Source = FromField | Const | CityName | ResultOf


# --- the definitions -----------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    """Where steps are handled: the city in field `city`, or the city field that the
    value of `choose` names (`cities`: value -> city field)."""

    key: str
    title: str
    city: str | None = None
    choose: str | None = None
    cities: Mapping[str, str] = field(default_factory=dict)

    def city_field(self, values: Mapping[str, Any]) -> str | None:
        """The form field holding this place's city for these values (None when the
        choice is missing or unknown)."""
        if self.city is not None:
            return self.city
        return self.cities.get(str(values.get(self.choose or "", "")))

    def fields(self) -> list[str]:
        return [self.city] if self.city else list(self.cities.values())


@dataclass(frozen=True)
class StepDef:
    key: str
    title: str
    matter: str
    place: str
    after: tuple[str, ...]
    form: Mapping[str, Source]
    #: material code -> the step whose e-licence stands in for it.
    materials: Mapping[str, str]
    mode: str = "online"
    #: 多地联办: the place whose jurisdiction takes part (its provincial authority).
    joint: str | None = None
    #: A boolean field: the step is handled only when it is ticked.
    when: str | None = None

    @property
    def node(self) -> Node:
        return Node(self.key, self.after)

    def field_of(self, matter_field: str) -> str | None:
        """The merged-form field that fills `matter_field` of this step's matter, if any."""
        src = self.form.get(matter_field)
        return src.name if isinstance(src, FromField) else None


@dataclass(frozen=True)
class BundleDef:
    code: str
    name: str
    description: str
    subjects: tuple[str, ...]
    form: Mapping[str, Any]
    places: Mapping[str, Place]
    steps: tuple[StepDef, ...]

    @property
    def nodes(self) -> list[Node]:
        return [s.node for s in self.steps]

    def step(self, key: str) -> StepDef:
        return next(s for s in self.steps if s.key == key)

    @property
    def properties(self) -> Mapping[str, Any]:
        props: Mapping[str, Any] = self.form.get("properties", {})
        return props

    def city_fields(self) -> list[str]:
        return [n for n, p in self.properties.items() if p.get(CITY)]

    def roles(self) -> set[str]:
        """Account roles that may submit the bundle (resident, enterprise)."""
        return {SUBJECT_ROLES[s] for s in self.subjects if s in SUBJECT_ROLES}


# --- reading ------------------------------------------------------------------------------


def data_path() -> Path:
    return Path(str(resources.files("tongban.lifeevents") / "data" / "bundles.json"))


def read_bundles(path: Path | None = None) -> tuple[BundleDef, ...]:
    """The bundles of a data file (the shipped one by default); BundlesInvalid if the file
    is not well formed (its fit with the catalogue is `catalogue_problems`)."""
    with (path or data_path()).open(encoding="utf-8") as f:
        return parse(json.load(f))


def _source(value: Any) -> Source | None:
    if isinstance(value, str):
        return FromField(value)
    if isinstance(value, dict) and len(value) == 1:
        ((kind, arg),) = value.items()
        if kind == "value":
            return Const(arg)
        if kind == "city_name" and isinstance(arg, str):
            return CityName(arg)
        if kind == "result" and isinstance(arg, str):
            return ResultOf(arg)
    return None


def _form_problems(where: str, form: Any) -> list[str]:
    if not isinstance(form, dict) or form.get("type") != "object":
        return [f"{where}: form must be a JSON Schema object"]
    try:
        Draft202012Validator.check_schema(form)
    except SchemaError as e:
        return [f"{where}: form is not a valid draft 2020-12 schema: {e.message}"]
    props = form.get("properties")
    if not isinstance(props, dict) or not props:
        return [f"{where}: form needs properties"]
    problems = []
    for name in form.get("required", []):
        if name not in props:
            problems.append(f"{where}: required field {name!r} is not a property")
    for name, prop in props.items():
        at = f"{where}: field {name!r}"
        if not SLUG.match(name):
            problems.append(f"{at}: name must be a lower-case identifier")
        if not isinstance(prop, dict) or prop.get("type") not in TYPES:
            problems.append(f"{at}: must be an object of type {sorted(TYPES)}")
            continue
        if not isinstance(prop.get("title"), str) or not prop["title"]:
            problems.append(f"{at}: needs a title")
        unknown = set(prop) - PROPERTY_KEYS
        if unknown:
            problems.append(f"{at}: unsupported keywords {sorted(unknown)}")
        if prop.get(CITY) and prop.get("type") != "string":
            problems.append(f"{at}: {CITY} must be on a string field")
    return problems


def _parse_step(where: str, raw: Any, problems: list[str]) -> StepDef | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: a step must be an object")
        return None
    keys = {"key", "title", "matter", "place", "after", "form", "materials"}
    optional = {"mode", "joint", "when"}
    if not keys <= set(raw) or set(raw) - keys - optional:
        problems.append(f"{where}: keys must be {sorted(keys)} and optionally {sorted(optional)}")
        return None
    form: dict[str, Source] = {}
    for name, value in (raw["form"] or {}).items():
        src = _source(value)
        if src is None:
            problems.append(f"{where}: form field {name!r} has an unknown source {value!r}")
        else:
            form[name] = src
    materials: dict[str, str] = {}
    for code, value in (raw["materials"] or {}).items():
        src = _source(value)
        if not isinstance(src, ResultOf):
            problems.append(f"{where}: material {code!r} must be {{'result': <step>}}")
        else:
            materials[code] = src.step
    return StepDef(
        key=str(raw["key"]),
        title=str(raw["title"]),
        matter=str(raw["matter"]),
        place=str(raw["place"]),
        after=tuple(str(a) for a in raw["after"] or ()),
        form=form,
        materials=materials,
        mode=str(raw.get("mode", "online")),
        joint=raw.get("joint"),
        when=raw.get("when"),
    )


def _parse_bundle(i: int, raw: Any, problems: list[str]) -> BundleDef | None:
    if not isinstance(raw, dict):
        problems.append(f"bundle #{i + 1}: must be an object")
        return None
    code = str(raw.get("code", f"#{i + 1}"))
    where = f"bundle {code}"
    needed = {"code", "name", "description", "subjects", "form", "places", "steps"}
    if set(raw) != needed:
        problems.append(f"{where}: keys must be exactly {sorted(needed)}")
        return None
    if not SLUG.match(code):
        problems.append(f"{where}: code must be a lower-case identifier")
    subjects = tuple(raw["subjects"] or ())
    if not subjects or not set(subjects) <= set(SUBJECT_ROLES):
        problems.append(f"{where}: subjects must be a non-empty subset of {list(SUBJECT_ROLES)}")
    problems += _form_problems(where, raw["form"])
    props = raw["form"].get("properties", {}) if isinstance(raw["form"], dict) else {}
    places: dict[str, Place] = {}
    for key, p in (raw["places"] or {}).items():
        at = f"{where}: place {key!r}"
        if not isinstance(p, dict) or ("city" in p) == ("choose" in p):
            problems.append(f"{at}: give either 'city' or 'choose' with 'cities'")
            continue
        place = Place(
            key, str(p.get("title", key)), p.get("city"), p.get("choose"), p.get("cities") or {}
        )
        for f in place.fields():
            if not (props.get(f) or {}).get(CITY):
                problems.append(f"{at}: {f!r} is not a {CITY} field of the form")
        if place.choose is not None:
            choices = (props.get(place.choose) or {}).get("enum")
            if sorted(choices or []) != sorted(place.cities):
                problems.append(
                    f"{at}: the values of {place.choose!r} must be {sorted(place.cities)}"
                )
        places[key] = place
    steps = [
        _parse_step(f"{where}: step #{j + 1}", s, problems)
        for j, s in enumerate(raw["steps"] or ())
    ]
    defs = tuple(s for s in steps if s is not None)
    if not defs:
        problems.append(f"{where}: needs steps")
    seen: set[str] = set()
    for s in defs:
        at = f"{where}: step {s.key!r}"
        if not SLUG.match(s.key) or s.key in seen:
            problems.append(f"{at}: key must be a unique lower-case identifier")
        seen.add(s.key)
        if s.place not in places:
            problems.append(f"{at}: unknown place {s.place!r}")
        if s.mode not in MODES:
            problems.append(f"{at}: mode must be one of {sorted(MODES)}")
        if (s.mode == "joint") != (s.joint is not None) or (s.joint and s.joint not in places):
            problems.append(f"{at}: a joint step names the place taking part ('joint'), no other")
        if s.when is not None and (props.get(s.when) or {}).get("type") != "boolean":
            problems.append(f"{at}: 'when' must name a boolean field")
    if defs and all(s.when for s in defs):
        problems.append(f"{where}: at least one step must always be handled")
    try:
        order([s.node for s in defs])
    except ValueError as e:
        problems.append(f"{where}: {e}")
    return BundleDef(
        code, str(raw["name"]), str(raw["description"]), subjects, raw["form"], places, defs
    )


def parse(data: Any) -> tuple[BundleDef, ...]:
    """The bundles of a parsed data file; BundlesInvalid listing every structural problem."""
    problems: list[str] = []
    raw = data.get("bundles") if isinstance(data, dict) else None
    if not isinstance(raw, list) or not raw:
        raise BundlesInvalid(["the data must be an object with a non-empty list 'bundles'"])
    bundles = [_parse_bundle(i, b, problems) for i, b in enumerate(raw)]
    codes = [b.code for b in bundles if b is not None]
    if len(set(codes)) != len(codes):
        problems.append("bundle codes must be unique")
    if problems:
        raise BundlesInvalid(problems)
    return tuple(b for b in bundles if b is not None)


# --- the catalogue's side -----------------------------------------------------------------


@dataclass(frozen=True)
class MaterialInfo:
    code: str
    name: str
    required: bool
    licence_type: str | None


@dataclass(frozen=True)
class MatterInfo:
    """What the bundles need to know of a catalogue matter."""

    code: str
    name: str
    subjects: tuple[str, ...]
    modes: tuple[str, ...]
    form_schema: Mapping[str, Any]
    materials: tuple[MaterialInfo, ...]
    result_licence_type: str | None = None
    active: bool = True


# --- one submission ----------------------------------------------------------------------


def included(bundle: BundleDef, values: Mapping[str, Any]) -> list[StepDef]:
    """The steps this submission asks for (a step with `when` only when it is ticked)."""
    return [s for s in bundle.steps if s.when is None or values.get(s.when) is True]


def step_form(
    step: StepDef,
    values: Mapping[str, Any],
    city_names: Mapping[str, str],
    results: Mapping[str, str],
) -> dict[str, Any]:
    """The step's matter form filled from the merged form's `values`, the places' city
    names and the earlier steps' `results` (a source with no value leaves the field out)."""
    out: dict[str, Any] = {}
    for name, src in step.form.items():
        value: Any = None
        if isinstance(src, FromField):
            value = values.get(src.name)
        elif isinstance(src, Const):
            value = src.value
        elif isinstance(src, CityName):
            value = city_names.get(src.place)
        elif isinstance(src, ResultOf):
            value = results.get(src.step)
        if value is not None and value != "":
            out[name] = value
    return out


class MaterialSource(StrEnum):
    RESULT = "result"  # an earlier step's e-licence (免提交)
    WALLET = "wallet"  # one of the applicant's own e-licences (免提交)
    UPLOAD = "upload"  # a file uploaded once with the bundle
    NONE = "none"  # nothing: the step cannot start if the material is required


@dataclass(frozen=True)
class Planned:
    material: MaterialInfo
    source: MaterialSource
    #: RESULT: the step whose e-licence stands in for the material.
    step: str | None = None

    @property
    def required_missing(self) -> bool:
        return self.material.required and self.source is MaterialSource.NONE


def material_plan(
    step: StepDef,
    matter: MatterInfo,
    wallet: set[str],
    uploads: set[str],
    results: Mapping[str, bool] | None = None,
) -> list[Planned]:
    """How each material of the step's matter is provided: an earlier step's e-licence
    (at submission, `results` is None: it will come; when the step starts, `results` says
    whether each earlier step's licence is held here), else one of the applicant's
    licences of its type (`wallet`: the types held), else an upload (`uploads`: the
    material codes uploaded with the bundle), else nothing."""
    out = []
    for m in matter.materials:
        linked = step.materials.get(m.code)
        if linked is not None:
            here = results is None or results.get(linked, False)
            source = MaterialSource.RESULT if here else MaterialSource.NONE
            out.append(Planned(m, source, linked))
        elif m.licence_type and m.licence_type in wallet:
            out.append(Planned(m, MaterialSource.WALLET))
        elif m.code in uploads:
            out.append(Planned(m, MaterialSource.UPLOAD))
        else:
            out.append(Planned(m, MaterialSource.NONE))
    return out


def missing(plan: Sequence[Planned]) -> list[MaterialInfo]:
    """Required materials the plan provides nothing for."""
    return [p.material for p in plan if p.required_missing]
