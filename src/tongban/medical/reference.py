"""Reference data of the medical context: the policies of insured cities and the
catalogues of treatment jurisdictions, read from `medical/data/*.csv`.

A row with an empty jurisdiction (and city) is the federation default; a row for a
jurisdiction overrides it for all the jurisdiction's cities; a row for a city overrides
that. Nothing here names a region: the rows are data."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from tongban.medical.domain import ItemClass, ItemKind, Policy, Scheme


@dataclass(frozen=True)
class PolicyRow:
    jurisdiction: str | None
    city: str | None
    scheme: Scheme
    level: int
    policy: Policy


@dataclass(frozen=True)
class ItemRow:
    jurisdiction: str | None
    code: str
    name: str
    kind: ItemKind
    item_class: ItemClass
    self_pay_first_bp: int
    #: 参考单价 in fen (the jurisdiction's price list), None where the file has none.
    price_fen: int | None = None


#: The largest reference price a catalogue row may carry (fen: 10 million yuan).
MAX_PRICE_FEN = 1_000_000_000


def _price(value: str | None, code: str) -> int | None:
    """A catalogue row's reference price in fen: empty → None; anything but a whole
    number of fen in 0..MAX_PRICE_FEN refused (the file is reference data, not trusted)."""
    value = (value or "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) > MAX_PRICE_FEN:
        raise ValueError(f"catalogue item {code}: price_fen {value!r} is not 0..{MAX_PRICE_FEN}")
    return int(value)


def _open(name: str, data_dir: Path | None) -> list[dict[str, str]]:
    if data_dir is not None:
        text = (data_dir / name).read_text(encoding="utf-8")
    else:
        text = (resources.files("tongban.medical") / "data" / name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def read_policies(data_dir: Path | None = None) -> list[PolicyRow]:
    out = []
    for r in _open("policies.csv", data_dir):
        out.append(
            PolicyRow(
                jurisdiction=r["jurisdiction"] or None,
                city=r["city"] or None,
                scheme=Scheme(r["scheme"]),
                level=int(r["level"]),
                policy=Policy(
                    deductible=int(r["deductible"]),
                    fund_ratio_bp=int(r["fund_ratio_bp"]),
                    annual_cap=int(r["annual_cap"]),
                ),
            )
        )
    return out


def read_catalogue(data_dir: Path | None = None) -> list[ItemRow]:
    out = []
    for r in _open("catalogue.csv", data_dir):
        out.append(
            ItemRow(
                jurisdiction=r["jurisdiction"] or None,
                code=r["code"],
                name=r["name"],
                kind=ItemKind(r["kind"]),
                item_class=ItemClass(r["class"]),
                self_pay_first_bp=int(r["self_pay_first_bp"]),
                price_fen=_price(r.get("price_fen"), r["code"]),
            )
        )
    return out


def resolve_policies(
    rows: list[PolicyRow], cities: dict[str, str]
) -> dict[tuple[str, Scheme, int], Policy]:
    """Every (city, scheme, level) → its policy, the most specific row winning.
    `cities` maps city code → jurisdiction code."""
    out: dict[tuple[str, Scheme, int], Policy] = {}
    for city, jur in cities.items():
        for specificity in (0, 1, 2):
            for r in rows:
                spec = 2 if r.city else 1 if r.jurisdiction else 0
                if spec != specificity:
                    continue
                if (r.city and r.city != city) or (r.jurisdiction and r.jurisdiction != jur):
                    continue
                out[(city, r.scheme, r.level)] = r.policy
    return out


def resolve_catalogue(
    rows: list[ItemRow], jurisdictions: list[str]
) -> dict[tuple[str, str], ItemRow]:
    """Every (jurisdiction, code) → its item, a jurisdiction's own row overriding the
    default one."""
    out: dict[tuple[str, str], ItemRow] = {}
    for jur in jurisdictions:
        for r in rows:
            if r.jurisdiction is None:
                out.setdefault((jur, r.code), r)
        for r in rows:
            if r.jurisdiction == jur:
                out[(jur, r.code)] = r
    return out
