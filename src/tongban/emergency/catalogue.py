"""The coded catalogue of emergency supplies (data/items.json). Pure Python.

Every stock lot, upload row, request line and shipment box names an item by its code;
a code not in the catalogue is refused where it enters (a form, an upload, a message
from another node). The catalogue is data: another federation replaces the file."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

#: What an item code looks like (also what the exchange's `Code` accepts).
CODE_PATTERN = r"^[A-Z][A-Z0-9-]{1,39}$"


@dataclass(frozen=True)
class Item:
    code: str
    name: str
    unit: str
    category: str
    #: Batches carry an expiry date (test kits, masks, water …).
    perishable: bool
    #: The default reserve quota (储备定额) of one city.
    min_city: int
    #: Days before expiry at which a batch raises an alert (perishable items).
    warn_days: int

    @property
    def label(self) -> str:
        return f"{self.name}（{self.unit}）"


@dataclass(frozen=True)
class Catalogue:
    categories: dict[str, str]
    items: dict[str, Item]

    def get(self, code: str) -> Item | None:
        return self.items.get(code)

    def in_category(self, category: str) -> list[Item]:
        return [i for i in self.items.values() if i.category == category]


def _item(raw: dict[str, Any], categories: dict[str, str]) -> Item:
    code = str(raw["code"])
    if not re.match(CODE_PATTERN, code):
        raise ValueError(f"item code {code!r} does not match {CODE_PATTERN}")
    if raw["category"] not in categories:
        raise ValueError(f"item {code}: unknown category {raw['category']!r}")
    item = Item(
        code=code,
        name=str(raw["name"]),
        unit=str(raw["unit"]),
        category=str(raw["category"]),
        perishable=bool(raw["perishable"]),
        min_city=int(raw["min_city"]),
        warn_days=int(raw.get("warn_days", 0)),
    )
    if item.min_city < 0 or item.warn_days < 0:
        raise ValueError(f"item {code}: negative quota or warning days")
    return item


def parse(data: dict[str, Any]) -> Catalogue:
    """A catalogue from its JSON form; raises ValueError on a malformed entry or a
    duplicate code."""
    categories = {str(k): str(v) for k, v in data["categories"].items()}
    items: dict[str, Item] = {}
    for raw in data["items"]:
        item = _item(raw, categories)
        if item.code in items:
            raise ValueError(f"item code {item.code} listed twice")
        items[item.code] = item
    return Catalogue(categories, items)


def load(path: Path | None = None) -> Catalogue:
    """The catalogue in `path`, or the packaged data/items.json."""
    if path is None:
        text = (resources.files("tongban.emergency") / "data" / "items.json").read_text("utf-8")
    else:
        text = path.read_text("utf-8")
    return parse(json.loads(text))


@lru_cache(maxsize=1)
def catalogue() -> Catalogue:
    """The packaged catalogue, read once per process."""
    return load()
