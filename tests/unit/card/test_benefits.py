"""Same-city benefits as data: the shipped rules decide for every holder at every demo
venue, the city's own rules come before the general ones, the first match wins, and rules
data that could leave a holder without a decision is refused when loaded."""

from __future__ import annotations

import itertools

import pytest

from tongban.card import benefits
from tongban.card.benefits import BadRules, load_rules
from tongban.card.domain import AgeBand, Concession
from tongban.card.verifier import HolderFacts


def holder(band: AgeBand, concessions: int = 0, jurisdiction: str = "320000") -> HolderFacts:
    return HolderFacts(jurisdiction, "320100", band, concessions, True, 3, "00" * 8)


def test_every_holder_gets_a_decision_at_every_demo_venue() -> None:
    book = benefits.rule_book()
    assert len({v.city[:2] for v in benefits.venues().values()}) == 4  # every jurisdiction
    for venue, band, concessions in itertools.product(
        benefits.venues().values(), AgeBand, (0, 1, 2, 4, 8, 15)
    ):
        decision = book.decide(venue.city, venue.kind, holder(band, concessions))
        assert decision.rule in book.ids() and decision.why


def test_each_jurisdiction_has_transit_and_several_venues() -> None:
    kinds: dict[str, set[str]] = {}
    for v in benefits.venues().values():
        kinds.setdefault(v.city[:2], set()).add(v.kind)
    for jurisdiction, present in kinds.items():
        assert "transit" in present, jurisdiction
        assert len(present - {"transit"}) >= 1, jurisdiction
    assert {"museum", "library", "scenic"} <= set().union(*kinds.values())


@pytest.mark.parametrize(
    ("city", "kind", "band", "concessions", "rule", "benefit"),
    [
        ("330100", "transit", AgeBand.AGE_65_69, 0, "hangzhou.transit.65-free", "免费乘车"),
        ("320100", "transit", AgeBand.AGE_65_69, 0, "transit.65-half", "半价乘车"),
        ("320100", "transit", AgeBand.AGE_18_59, 1, "transit.disabled-free", "免费乘车"),
        ("320100", "transit", AgeBand.AGE_18_59, 0, "transit.full", "全价乘车"),
        ("310000", "transit", AgeBand.AGE_70_PLUS, 0, "shanghai.transit.70-free", "免费乘车"),
        ("340100", "scenic", AgeBand.AGE_60_64, 0, "scenic.60-half", "门票半价"),
        ("340100", "scenic", AgeBand.AGE_18_59, 8, "scenic.donor-free", "免票入园"),
        ("340100", "scenic", AgeBand.UNKNOWN, 0, "scenic.full", "全价购票入园"),
        ("330100", "museum", AgeBand.AGE_70_PLUS, 0, "hangzhou.museum.60-priority", None),
        ("320100", "museum", AgeBand.AGE_70_PLUS, 0, "museum.free", "免费参观"),
    ],
)
def test_the_first_matching_rule_decides(
    city: str, kind: str, band: AgeBand, concessions: int, rule: str, benefit: str | None
) -> None:
    decision = benefits.rule_book().decide(city, kind, holder(band, concessions))
    assert decision.eligible and decision.rule == rule
    if benefit is not None:
        assert decision.benefit == benefit


def test_a_senior_lane_refuses_others_as_not_eligible() -> None:
    book = benefits.rule_book()
    refused = book.decide("330100", "senior_lane", holder(AgeBand.AGE_18_59))
    assert not refused.eligible and "敬老通道仅限" in refused.why
    assert book.decide("330100", "senior_lane", holder(AgeBand.AGE_18_59, 1)).eligible
    assert not book.decide("330100", "senior_lane", holder(AgeBand.UNKNOWN)).eligible


def _data(**extra: object) -> dict[str, object]:
    general = {
        kind: [{"id": f"{kind}.all", "eligible": True, "benefit": "x", "why": "y"}]
        for kind in benefits.KINDS
    }
    return {"rules": {"*": general, **extra}}


def test_origins_and_transport_narrow_a_rule() -> None:
    book = load_rules(
        _data(
            **{
                "320100": {
                    "transit": [
                        {
                            "id": "local-only",
                            "eligible": True,
                            "benefit": "本地",
                            "why": "仅限江苏",
                            "origins": ["320000"],
                            "needs_transport": True,
                        }
                    ]
                }
            }
        )
    )
    assert book.decide("320100", "transit", holder(AgeBand.AGE_18_59)).rule == "local-only"
    other = holder(AgeBand.AGE_18_59, jurisdiction="330000")
    assert book.decide("320100", "transit", other).rule == "transit.all"


@pytest.mark.parametrize(
    "broken",
    [
        {"rules": {}},
        {"rules": {"*": {"transit": []}}},
        _data(**{"320100": {"zoo": []}}),
        _data(**{"320100": {"transit": [{"id": "transit.all", "eligible": True, "why": "dup"}]}}),
        _data(
            **{
                "320100": {
                    "transit": [{"id": "x", "eligible": True, "why": "", "min_age_band": "OLD"}]
                }
            }
        ),
        _data(
            **{"320100": {"transit": [{"id": "x", "eligible": True, "why": "", "colour": "red"}]}}
        ),
    ],
)
def test_rules_that_could_leave_a_holder_undecided_are_refused(broken: dict[str, object]) -> None:
    with pytest.raises(BadRules):
        load_rules(broken)


def test_the_last_general_rule_must_be_unconditional() -> None:
    data = _data()
    data["rules"]["*"]["museum"] = [  # type: ignore[index]
        {"id": "m", "eligible": True, "why": "", "min_age_band": "AGE_60_64"}
    ]
    with pytest.raises(BadRules, match="no condition"):
        load_rules(data)


def test_concession_names_in_the_data_are_the_domains() -> None:
    book = load_rules(
        _data(
            **{
                "310000": {
                    "museum": [
                        {"id": "vet", "eligible": True, "why": "", "concessions_any": ["VETERAN"]}
                    ]
                }
            }
        )
    )
    assert (
        book.decide("310000", "museum", holder(AgeBand.AGE_18_59, int(Concession.VETERAN))).rule
        == "vet"
    )
    assert book.decide("310000", "museum", holder(AgeBand.AGE_18_59)).rule == "museum.all"


def test_a_concession_is_an_admission_for_who_the_holder_is() -> None:
    """The operators' figures count these: rules with a condition on the holder."""
    concessions = {r.id for r in benefits.rule_book().all_rules() if r.is_concession}
    assert {
        "transit.70-free",
        "transit.65-half",
        "transit.disabled-free",
        "transit.child-free",
        "scenic.donor-free",
        "hangzhou.museum.60-priority",
    } <= concessions
    # What anyone with a code gets, and a refusal, are not concessions.
    assert not {"museum.free", "transit.full", "scenic.full", "library.borrow"} & concessions
    assert "senior_lane.others" not in concessions
