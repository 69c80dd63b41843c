"""The category taxonomy of work orders (data/categories.json). Pure Python.

Each category names the authority type responsible for it and the urgency levels it
admits; each urgency level has a default deadline rule. Deadlines are configurable per
jurisdiction or per city (`deadline_overrides`), optionally for one category only: the
most specific override wins (city + category, city, jurisdiction + category,
jurisdiction), then the level's default.

A category whose authority type a deployment's reference data lacks falls back to
`fallback_authority_type` (the city's government service centre, which runs 12345 and
hands the work order on): see docs/tickets.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from tongban.tickets.deadlines import DeadlineRule


@dataclass(frozen=True)
class Urgency:
    code: str
    name: str
    description: str
    deadline: DeadlineRule


@dataclass(frozen=True)
class Category:
    code: str
    group: str
    name: str
    authority_type: str
    urgencies: tuple[str, ...]
    description: str = ""


@dataclass(frozen=True)
class Override:
    area: str  # jurisdiction or city GB/T 2260 code
    urgency: str
    deadline: DeadlineRule
    category: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Taxonomy:
    urgencies: dict[str, Urgency]
    categories: dict[str, Category]
    fallback_authority_type: str
    overrides: tuple[Override, ...] = ()

    def category(self, code: str) -> Category | None:
        return self.categories.get(code)

    def groups(self) -> dict[str, list[Category]]:
        out: dict[str, list[Category]] = {}
        for c in self.categories.values():
            out.setdefault(c.group, []).append(c)
        return out

    def deadline_rule(
        self, category: str, urgency: str, jurisdiction_code: str, city_code: str | None
    ) -> DeadlineRule:
        """The rule for `urgency` of `category` in this place (most specific first)."""

        def rank(o: Override) -> int | None:
            if o.urgency != urgency or (o.category not in (None, category)):
                return None
            specific = 1 if o.category else 0
            if city_code and o.area == city_code:
                return 4 + specific
            if o.area == jurisdiction_code:
                return 2 + specific
            return None

        ranked = [(r, o) for o in self.overrides if (r := rank(o)) is not None]
        if ranked:
            return max(ranked, key=lambda t: t[0])[1].deadline
        return self.urgencies[urgency].deadline


def parse(raw: dict[str, Any]) -> Taxonomy:
    """A taxonomy from its JSON form; raises ValueError when it is inconsistent."""
    urgencies = {
        code: Urgency(code, u["name"], u.get("description", ""), DeadlineRule.parse(u["deadline"]))
        for code, u in raw["urgencies"].items()
    }
    categories: dict[str, Category] = {}
    for c in raw["categories"]:
        unknown = [u for u in c["urgencies"] if u not in urgencies]
        if unknown:
            raise ValueError(f"category {c['code']}: unknown urgencies {unknown}")
        if c["code"] in categories:
            raise ValueError(f"category {c['code']} defined twice")
        categories[c["code"]] = Category(
            c["code"],
            c["group"],
            c["name"],
            c["authority_type"],
            tuple(c["urgencies"]),
            c.get("description", ""),
        )
    overrides = []
    for o in raw.get("deadline_overrides", []):
        if o["urgency"] not in urgencies:
            raise ValueError(f"override for unknown urgency {o['urgency']}")
        if o.get("category") and o["category"] not in categories:
            raise ValueError(f"override for unknown category {o['category']}")
        overrides.append(
            Override(
                str(o["area"]),
                o["urgency"],
                DeadlineRule.parse(o["deadline"]),
                o.get("category"),
                o.get("note", ""),
            )
        )
    return Taxonomy(urgencies, categories, raw["fallback_authority_type"], tuple(overrides))


def load(path: Path | None = None) -> Taxonomy:
    """The taxonomy shipped in data/categories.json, or the operator's own file."""
    if path is None:
        text = (resources.files("tongban.tickets") / "data" / "categories.json").read_text("utf-8")
    else:
        text = path.read_text("utf-8")
    return parse(json.loads(text))


@lru_cache(maxsize=4)
def cached(path: str | None = None) -> Taxonomy:
    return load(Path(path) if path else None)
