"""免申即享 rules without a database: the trace (rule and version, each datum with its
source and value, each condition's outcome, in Chinese), derived data, a new version's
values, the fast predicate and the SQL condition agreeing with the traced evaluation,
and the offer/review state machines (nothing stops without an officer and a reason)."""

from __future__ import annotations

import random
from datetime import date

import pytest
from stdnum.cn import ric

from tongban.benefits import domain
from tongban.benefits.domain import Datum, OfferAction, OfferState, ReviewAction, ReviewState
from tongban.errors import ValidationFailed
from tongban.kernel.lifecycle import IllegalTransition

TODAY = date(2026, 11, 29)


def ident(birth: str, order: str = "002") -> str:
    body = "340102" + birth + order
    return body + ric.calc_check_digit(body + "0")


def rule(rule_id: str) -> domain.Rule:
    return next(r for r in domain.initial_rules() if r.id == rule_id)


def test_five_rules_each_versioned_with_known_data() -> None:
    rules = {r.id: r for r in domain.initial_rules()}
    assert {r.name for r in rules.values()} == {
        "生育津贴",
        "高龄津贴",
        "独生子女父母奖励",
        "残疾人两项补贴",
        "老年人公交优待",
    }
    assert all(r.version == 1 for r in rules.values())
    assert rules["senior_transit"].mode is domain.Mode.GRANT
    assert rules["maternity_allowance"].per is domain.Per.BIRTH


def test_maternity_trace_names_rule_data_sources_and_outcomes() -> None:
    mother = ident("19930512", "002")  # even order digit: female
    held = {
        "latest_birth_date": Datum("2026-11-20", "出生医学证明（上海市卫生健康委员会签发）"),
        "insured_status": Datum("正常参保", "社会保险缴费记录（江苏省社保中心）"),
        "months_paid": Datum(30, "社会保险缴费记录（江苏省社保中心）"),
    }
    ev = domain.evaluate(rule("maternity_allowance"), domain.derive(mother, held, TODAY), TODAY)
    assert ev.eligible
    assert ev.entitlement == "birth:2026-11-20"
    t = ev.trace("子女出生登记")
    assert (t["rule"], t["version"], t["name"]) == ("maternity_allowance", 1, "生育津贴")
    assert "第1版" in t["conclusion"] and "可确认领取" in t["conclusion"]
    data = {d["key"]: d for d in t["data"]}
    assert data["months_paid"]["value"] == "30个月"
    assert data["months_paid"]["source"] == "社会保险缴费记录（江苏省社保中心）"
    assert data["sex"]["value"] == "女" and "居民身份证号码" in data["sex"]["source"]
    # the derived datum and what it was derived from are both shown
    assert data["days_since_birth"]["value"] == "9天"
    assert data["latest_birth_date"]["source"].startswith("出生医学证明")
    lines = [c["line"] for c in t["conditions"]]
    assert lines[3] == (
        "连续缴费满12个月：连续缴费月数为30个月（要求≥12个月；"
        "来源：社会保险缴费记录（江苏省社保中心））→ 满足"
    )
    assert all(c["outcome"] == "met" for c in t["conditions"])


def test_a_failed_and_a_missing_condition_say_so() -> None:
    father = ident("19900101", "001")  # odd: male
    held = {"latest_birth_date": Datum("2026-11-20", "出生医学证明")}
    ev = domain.evaluate(rule("maternity_allowance"), domain.derive(father, held, TODAY), TODAY)
    assert not ev.eligible
    outcomes = [c["outcome"] for c in ev.trace()["conditions"]]
    assert outcomes == ["not_met", "met", "missing", "missing"]
    t = ev.trace()
    assert "不符合“生育津贴”" in t["conclusion"] and "本人为生育妇女" in t["conclusion"]
    assert t["conditions"][2]["line"].endswith("未掌握“生育保险参保状态”→ 缺少数据")
    # data not held is not listed as used
    assert "insured_status" not in ev.fields


def test_age_from_id_number_on_the_birthday() -> None:
    person = ident("19461129")
    facts = domain.derive(person, {}, TODAY)
    assert facts["age"].value == 80
    assert domain.derive(person, {}, date(2026, 11, 28))["age"].value == 79
    facts = {**facts, "household_jurisdiction": Datum("320000", "户籍")}
    ev = domain.evaluate(rule("longevity_allowance"), facts, TODAY)
    assert ev.eligible and ev.rule.mode is domain.Mode.GRANT
    assert "已直接发放" in ev.trace()["conclusion"]
    assert {d["value"] for d in ev.trace()["data"]} >= {"80周岁", "江苏省"}


def test_new_version_changes_values_and_validates_inputs() -> None:
    r = rule("senior_transit")
    v2 = domain.with_values(r, {0: "70"}, 2)
    assert v2.version == 2 and v2.conditions[0].value == 70 and r.conditions[0].value == 65
    assert (r.conditions[0].title, v2.conditions[0].title) == ("年满65周岁", "年满70周岁")
    with pytest.raises(ValidationFailed) as e:
        domain.with_values(r, {0: "七十"}, 2)
    assert e.value.errors[0].field == "c0"
    with pytest.raises(ValidationFailed):
        domain.with_values(r, {5: "1"}, 2)
    longevity = rule("longevity_allowance")
    assert domain.with_values(longevity, {1: "310000，320000"}, 2).conditions[1].value == [
        "310000",
        "320000",
    ]
    with pytest.raises(ValidationFailed) as e:
        domain.with_values(longevity, {1: "上海"}, 2)
    assert e.value.errors[0].field == "c1" and "行政区划代码" in e.value.errors[0].message
    assert domain.parse_rule(v2.as_json()) == v2


def test_bad_definitions_are_refused() -> None:
    raw = rule("senior_transit").as_json()
    with pytest.raises(domain.BadRule):
        domain.parse_rule({**raw, "conditions": [{"datum": "salary", "op": "ge", "value": 1}]})
    with pytest.raises(domain.BadRule):
        domain.parse_rule({**raw, "conditions": [{"datum": "age", "op": "ge", "value": "65"}]})
    with pytest.raises(domain.BadRule):
        domain.parse_rule({**raw, "conditions": []})


COLUMNS = [
    "age",
    "sex",
    "household_jurisdiction",
    "insured_status",
    "months_paid",
    "days_since_birth",
    "children",
    "youngest_child_age",
    "one_child_certificate",
    "disability_certified",
    "disability_level",
]


def _random_row(rng: random.Random) -> list[object]:
    def maybe(v: object) -> object:
        return None if rng.random() < 0.1 else v

    return [
        maybe(rng.randint(0, 100)),
        maybe(rng.choice(["男", "女"])),
        maybe(rng.choice(["310000", "320000", "330000", "340000", "110000"])),
        maybe(rng.choice(["正常参保", "暂停参保", "终止参保"])),
        maybe(rng.randint(0, 40)),
        maybe(rng.randint(0, 800)),
        maybe(rng.randint(0, 3)),
        maybe(rng.randint(0, 30)),
        maybe(rng.random() < 0.3),
        maybe(rng.random() < 0.2),
        maybe(rng.randint(1, 4)),
    ]


@pytest.mark.parametrize("rule_id", [r.id for r in domain.initial_rules()])
def test_predicate_and_sql_agree_with_the_traced_evaluation(rule_id: str) -> None:
    duckdb = pytest.importorskip("duckdb")
    r = rule(rule_id)
    rng = random.Random(17)
    rows = [_random_row(rng) for _ in range(2000)]
    decide = domain.predicate(r, COLUMNS)
    traced = [
        domain.evaluate(
            r, {k: Datum(v, "t") for k, v in zip(COLUMNS, row, strict=True) if v is not None}, TODAY
        ).eligible
        for row in rows
    ]
    assert [decide(row) for row in rows] == traced
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE p (i INTEGER, age INTEGER, sex VARCHAR, household_jurisdiction VARCHAR,"
        " insured_status VARCHAR, months_paid INTEGER, days_since_birth INTEGER,"
        " children INTEGER, youngest_child_age INTEGER, one_child_certificate BOOLEAN,"
        " disability_certified BOOLEAN, disability_level INTEGER)"
    )
    con.executemany(
        "INSERT INTO p VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [[i, *row] for i, row in enumerate(rows)],
    )
    hits = {i for (i,) in con.execute(f"SELECT i FROM p WHERE {domain.where_clause(r)}").fetchall()}
    assert hits == {i for i, ok in enumerate(traced) if ok}
    assert 0 < len(hits) < len(rows) or rule_id == "maternity_allowance"


def test_change_classification() -> None:
    assert domain.change(False, True) is domain.Change.GAIN
    assert domain.change(True, False) is domain.Change.LOSE
    assert domain.change(True, True) is domain.Change.KEEP
    assert domain.change(False, False) is domain.Change.NONE


def test_offers_stop_only_by_an_officer_with_a_reason() -> None:
    m = domain.OFFER_MACHINE
    assert m.next_state(OfferState.OFFERED, OfferAction.ACCEPT, "resident") is OfferState.ACCEPTED
    with pytest.raises(IllegalTransition):
        m.next_state(OfferState.GRANTED, OfferAction.ACCEPT, "resident")
    with pytest.raises(IllegalTransition):
        m.next_state(OfferState.ACCEPTED, OfferAction.STOP, "resident", domain.DecisionFacts("x"))
    with pytest.raises(ValidationFailed):
        m.next_state(OfferState.ACCEPTED, OfferAction.STOP, "officer", domain.DecisionFacts(" "))
    assert (
        m.next_state(OfferState.GRANTED, OfferAction.STOP, "officer", domain.DecisionFacts("迁出"))
        is OfferState.STOPPED
    )
    r = domain.REVIEW_MACHINE
    with pytest.raises(ValidationFailed):
        r.next_state(ReviewState.OPEN, ReviewAction.KEEP, "officer", domain.DecisionFacts(""))
    with pytest.raises(IllegalTransition):
        r.next_state(ReviewState.KEPT, ReviewAction.STOP, "officer", domain.DecisionFacts("x"))
