"""Same-city benefits (同城待遇) as data, and the demo venues: which rule applies to a
holder at a venue, decided from what the code says (age band, concessions, transport
function, home jurisdiction) and nothing else. Pure: no database.

`data/benefits.json` holds the rules per city ("*" for every city) and venue kind, in
order; the first rule that matches decides, the city's own rules before the general
ones. `data/venues.json` holds the demo venues (code, name, city, kind, operator)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib import resources
from typing import Any

from tongban.card.domain import AgeBand, Concession
from tongban.card.verifier import Decision, HolderFacts

KINDS = ("transit", "museum", "library", "scenic", "senior_lane")
KIND_LABELS = {
    "transit": "公共交通",
    "museum": "博物馆",
    "library": "图书馆",
    "scenic": "景区",
    "senior_lane": "敬老通道",
}


class BadRules(ValueError):
    """Rules or venues data that cannot be used (the message says where)."""


@dataclass(frozen=True)
class Rule:
    id: str
    eligible: bool
    benefit: str
    why: str
    min_age_band: AgeBand | None = None
    max_age_band: AgeBand | None = None
    concessions_any: int = 0
    needs_transport: bool = False
    origins: frozenset[str] | None = None

    def matches(self, holder: HolderFacts) -> bool:
        band = holder.age_band
        if self.min_age_band is not None and (band is AgeBand.UNKNOWN or band < self.min_age_band):
            return False
        if self.max_age_band is not None and (band is AgeBand.UNKNOWN or band > self.max_age_band):
            return False
        if self.concessions_any and not holder.concessions & self.concessions_any:
            return False
        if self.needs_transport and not holder.transport:
            return False
        return self.origins is None or holder.jurisdiction in self.origins

    def decision(self) -> Decision:
        return Decision(self.eligible, self.id, self.benefit, self.why)

    @property
    def is_concession(self) -> bool:
        """Whether admitting under this rule is a concession: it grants the holder
        something for who they are (age band, a concession category), not what anyone
        with a code gets (the operators' figures count these)."""
        return self.eligible and (
            self.min_age_band is not None
            or self.max_age_band is not None
            or bool(self.concessions_any)
        )


def _rule(raw: Any, where: str) -> Rule:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        raise BadRules(f"{where}: a rule needs an id")
    known = {
        "id",
        "eligible",
        "benefit",
        "why",
        "min_age_band",
        "max_age_band",
        "concessions_any",
        "needs_transport",
        "origins",
    }
    if set(raw) - known:
        raise BadRules(f"{where} {raw['id']}: unknown members {sorted(set(raw) - known)}")
    try:
        concessions = 0
        for name in raw.get("concessions_any", []):
            concessions |= int(Concession[name])
        origins = raw.get("origins")
        return Rule(
            id=raw["id"],
            eligible=bool(raw["eligible"]),
            benefit=str(raw.get("benefit", "")),
            why=str(raw["why"]),
            min_age_band=AgeBand[raw["min_age_band"]] if "min_age_band" in raw else None,
            max_age_band=AgeBand[raw["max_age_band"]] if "max_age_band" in raw else None,
            concessions_any=concessions,
            needs_transport=bool(raw.get("needs_transport", False)),
            origins=frozenset(origins) if origins is not None else None,
        )
    except (KeyError, TypeError) as e:
        raise BadRules(f"{where} {raw['id']}: {e}") from e


@dataclass(frozen=True)
class RuleBook:
    """Rules per city and kind."""

    by_city: Mapping[str, Mapping[str, Sequence[Rule]]]

    def rules_for(self, city: str, kind: str) -> list[Rule]:
        return [*self.by_city.get(city, {}).get(kind, ()), *self.by_city["*"][kind]]

    def decide(self, city: str, kind: str, holder: HolderFacts) -> Decision:
        for rule in self.rules_for(city, kind):
            if rule.matches(holder):
                return rule.decision()
        raise BadRules(f"no rule of {kind} matches")  # the '*' list ends unconditionally

    def ids(self) -> set[str]:
        return {r.id for r in self.all_rules()}

    def all_rules(self) -> list[Rule]:
        return [r for kinds in self.by_city.values() for rules in kinds.values() for r in rules]


def load_rules(data: Mapping[str, Any]) -> RuleBook:
    """A rule book from benefits.json's content; BadRules when it could leave a holder
    without a decision (a kind without a final unconditional rule in '*') or is odd."""
    rules = data.get("rules")
    if not isinstance(rules, dict) or "*" not in rules:
        raise BadRules("rules['*'] missing")
    by_city: dict[str, dict[str, list[Rule]]] = {}
    seen: set[str] = set()
    for city, kinds in rules.items():
        if not isinstance(kinds, dict):
            raise BadRules(f"{city}: not an object")
        for kind, items in kinds.items():
            if kind not in KINDS:
                raise BadRules(f"{city}: unknown kind {kind}")
            parsed = [_rule(r, f"{city}/{kind}") for r in items]
            for r in parsed:
                if r.id in seen:
                    raise BadRules(f"rule {r.id} defined twice")
                seen.add(r.id)
            by_city.setdefault(city, {})[kind] = parsed
    for kind in KINDS:
        general = by_city["*"].get(kind)
        if not general:
            raise BadRules(f"'*' has no rules for {kind}")
        last = general[-1]
        if (last.min_age_band, last.max_age_band, last.concessions_any, last.origins) != (
            None,
            None,
            0,
            None,
        ) or last.needs_transport:
            raise BadRules(f"the last '*' rule of {kind} must have no condition")
    return RuleBook(by_city)


@lru_cache(maxsize=1)
def rule_book() -> RuleBook:
    """The shipped rules (data/benefits.json)."""
    text = (resources.files("tongban.card") / "data" / "benefits.json").read_text("utf-8")
    return load_rules(json.loads(text))


@dataclass(frozen=True)
class Venue:
    code: str
    name: str
    city: str
    kind: str
    operator: str


@lru_cache(maxsize=1)
def venues() -> dict[str, Venue]:
    """The demo venues by code (data/venues.json)."""
    text = (resources.files("tongban.card") / "data" / "venues.json").read_text("utf-8")
    out = {}
    for v in json.loads(text)["venues"]:
        venue = Venue(v["code"], v["name"], v["city"], v["kind"], v["operator"])
        if venue.kind not in KINDS:
            raise BadRules(f"venue {venue.code}: unknown kind {venue.kind}")
        out[venue.code] = venue
    return out


def venue(code: str) -> Venue:
    found = venues().get(code)
    if found is None:
        raise BadRules(f"未知场所 {code}")
    return found


@dataclass(frozen=True)
class VenueRules:
    """The rules of one venue: what a gate there decides with (verifier.Rules)."""

    venue: Venue
    book: RuleBook

    @cached_property
    def _rules(self) -> list[Rule]:
        # A gate decides every code it admits: its venue's rules are looked up once.
        return self.book.rules_for(self.venue.city, self.venue.kind)

    def decide(self, holder: HolderFacts, at: int) -> Decision:
        for rule in self._rules:
            if rule.matches(holder):
                return rule.decision()
        raise BadRules(f"no rule of {self.venue.kind} matches")


def rules_at(code: str, book: RuleBook | None = None) -> VenueRules:
    return VenueRules(venue(code), book or rule_book())
