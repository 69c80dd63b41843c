"""The category taxonomy and per-jurisdiction deadlines."""

from __future__ import annotations

import pytest

from tongban.regions.domain import AuthorityType
from tongban.tickets import categories
from tongban.tickets.deadlines import DeadlineRule


def test_the_shipped_taxonomy_covers_the_issue_groups():
    t = categories.load()
    groups = set(t.groups())
    assert {"市容环境", "道路设施", "噪声", "污染", "违章搭建", "公共服务"} <= groups
    assert t.urgencies["urgent"].deadline == DeadlineRule("same_day")
    assert t.urgencies["enquiry"].deadline == DeadlineRule("days", 3)
    assert t.urgencies["complaint"].deadline == DeadlineRule("days", 13)


def test_every_category_routes_to_a_known_or_fallback_authority_type():
    t = categories.load()
    known = {a.value for a in AuthorityType}
    assert t.fallback_authority_type in known
    for c in t.categories.values():
        assert c.urgencies, c.code


def test_overrides_most_specific_wins():
    t = categories.load()
    # 浙江: complaints in 10 working days (jurisdiction override)
    assert t.deadline_rule("road_damage", "complaint", "330000", "330400") == DeadlineRule(
        "days", 10
    )
    # 江苏: the default
    assert t.deadline_rule("road_damage", "complaint", "320000", "320500") == DeadlineRule(
        "days", 13
    )
    # 上海: missing manhole covers, 2 working hours (category override)
    assert t.deadline_rule("manhole", "urgent", "310000", "310000") == DeadlineRule("hours", 2)
    assert t.deadline_rule("road_damage", "urgent", "310000", "310000") == DeadlineRule("same_day")


def test_a_city_override_beats_its_jurisdiction():
    raw = {
        "urgencies": {"complaint": {"name": "投诉", "deadline": {"unit": "days", "amount": 13}}},
        "fallback_authority_type": "government_service",
        "categories": [
            {
                "code": "x",
                "group": "g",
                "name": "n",
                "authority_type": "transport",
                "urgencies": ["complaint"],
            }
        ],
        "deadline_overrides": [
            {"area": "320000", "urgency": "complaint", "deadline": {"unit": "days", "amount": 10}},
            {"area": "320500", "urgency": "complaint", "deadline": {"unit": "days", "amount": 5}},
        ],
    }
    t = categories.parse(raw)
    assert t.deadline_rule("x", "complaint", "320000", "320500") == DeadlineRule("days", 5)
    assert t.deadline_rule("x", "complaint", "320000", "320100") == DeadlineRule("days", 10)


def test_inconsistent_taxonomies_are_refused():
    raw = {
        "urgencies": {},
        "fallback_authority_type": "government_service",
        "categories": [
            {"code": "x", "group": "g", "name": "n", "authority_type": "t", "urgencies": ["urgent"]}
        ],
    }
    with pytest.raises(ValueError, match="unknown urgencies"):
        categories.parse(raw)
