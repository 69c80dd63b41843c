"""免申即享 rules and their evaluation. Pure Python: no database, no web.

A benefit is a versioned rule (`Rule`): conditions over named data (`DATA`), all of which
must hold. `evaluate(rule, facts, today)` decides a person's eligibility from the data
the platform holds about them (`facts`: each datum with its value and where it came
from) and returns an `Evaluation` whose trace a person can read and an officer can
replay: the rule and version, every datum used (source and value), every condition and
its outcome, in Chinese. `predicate(rule, columns)` is the same decision without the
trace, for counting over a whole population (an officer's preview, the benchmark), and
`where_clause(rule)` is the rule as SQL for the same count in a database.

The offer/grant and review lifecycles are state machines (kernel.lifecycle).
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum
from functools import lru_cache
from importlib import resources
from typing import Any

from tongban.errors import FieldError, ValidationFailed
from tongban.kernel.lifecycle import StateMachine

# --- the data rules may use ----------------------------------------------------------------


@dataclass(frozen=True)
class DatumKind:
    """A datum rules may name: its Chinese label, its type and unit."""

    label: str
    type: str  # int | str | bool | date | codes
    unit: str = ""


DATA: dict[str, DatumKind] = {
    "birth_date": DatumKind("出生日期", "date"),
    "age": DatumKind("年龄", "int", "周岁"),
    "sex": DatumKind("性别", "str"),
    "household_jurisdiction": DatumKind("户籍所在省（市）", "str"),
    "insured_status": DatumKind("生育保险参保状态", "str"),
    "months_paid": DatumKind("连续缴费月数", "int", "个月"),
    "latest_birth_date": DatumKind("子女出生日期", "date"),
    "days_since_birth": DatumKind("子女出生至今", "int", "天"),
    "children": DatumKind("子女人数", "int", "人"),
    "youngest_child_age": DatumKind("最小子女年龄", "int", "周岁"),
    "one_child_certificate": DatumKind("独生子女父母光荣证", "bool"),
    "disability_certified": DatumKind("残疾人证", "bool"),
    "disability_level": DatumKind("残疾等级", "int", "级"),
}

#: Data derived from other data (the trace names what it was derived from).
DERIVED = {
    "birth_date": "居民身份证号码",
    "sex": "居民身份证号码",
    "age": "birth_date",
    "days_since_birth": "latest_birth_date",
    "youngest_child_age": "latest_birth_date",
}

#: Province-level divisions (GB/T 2260), as a household's jurisdiction is shown.
PROVINCES = {
    "110000": "北京市", "120000": "天津市", "130000": "河北省", "140000": "山西省",
    "150000": "内蒙古自治区", "210000": "辽宁省", "220000": "吉林省", "230000": "黑龙江省",
    "310000": "上海市", "320000": "江苏省", "330000": "浙江省", "340000": "安徽省",
    "350000": "福建省", "360000": "江西省", "370000": "山东省", "410000": "河南省",
    "420000": "湖北省", "430000": "湖南省", "440000": "广东省", "450000": "广西壮族自治区",
    "460000": "海南省", "500000": "重庆市", "510000": "四川省", "520000": "贵州省",
    "530000": "云南省", "540000": "西藏自治区", "610000": "陕西省", "620000": "甘肃省",
    "630000": "青海省", "640000": "宁夏回族自治区", "650000": "新疆维吾尔自治区",
    "710000": "台湾省", "810000": "香港特别行政区", "820000": "澳门特别行政区",
}  # fmt: skip


@dataclass(frozen=True)
class Datum:
    """A value the platform holds about a person and where it came from."""

    value: Any
    source: str


Facts = Mapping[str, Datum]


def _date(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def _years(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def id_birth_date(identifier: str) -> date | None:
    """The birth date an 18-digit resident ID number carries (GB 11643), if valid."""
    if len(identifier) != 18 or not identifier[:17].isdigit():
        return None
    try:
        return date(int(identifier[6:10]), int(identifier[10:12]), int(identifier[12:14]))
    except ValueError:
        return None


def id_sex(identifier: str) -> str | None:
    """男/女 from the ID number's order code (odd: male)."""
    if len(identifier) != 18 or not identifier[16].isdigit():
        return None
    return "男" if int(identifier[16]) % 2 else "女"


def derive(identifier: str, held: Facts, today: date) -> dict[str, Datum]:
    """The facts a rule sees: what is held, plus what follows from it and from the ID
    number (birth date, sex, age, days since a child's birth, the youngest child's age)."""
    out = dict(held)
    source_id = "居民身份证号码（实名认证）"
    born = id_birth_date(identifier)
    if born is not None and "birth_date" not in out:
        out["birth_date"] = Datum(born.isoformat(), source_id)
    sex = id_sex(identifier)
    if sex is not None and "sex" not in out:
        out["sex"] = Datum(sex, source_id)
    b = _date(out["birth_date"].value) if "birth_date" in out else None
    if b is not None:
        out["age"] = Datum(_years(b, today), f"由出生日期推算（{out['birth_date'].source}）")
    child = _date(out["latest_birth_date"].value) if "latest_birth_date" in out else None
    if child is not None:
        src = f"由子女出生日期推算（{out['latest_birth_date'].source}）"
        out["days_since_birth"] = Datum((today - child).days, src)
        out["youngest_child_age"] = Datum(_years(child, today), src)
    return out


def shown(key: str, value: Any) -> str:
    """A value as a person reads it."""
    kind = DATA.get(key)
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list):
        return "、".join(shown(key, v) for v in value)
    if key == "household_jurisdiction" and isinstance(value, str):
        return PROVINCES.get(value, value)
    if kind is not None and kind.unit and isinstance(value, int):
        return f"{value}{kind.unit}"
    return str(value)


# --- rules -------------------------------------------------------------------------------


class Mode(StrEnum):
    OFFER = "offer"  # the resident accepts with one action
    GRANT = "grant"  # given at once (the resident is told)


class Per(StrEnum):
    PERSON = "person"  # one entitlement per person
    BIRTH = "birth"  # one per child born


class TriggerKind(StrEnum):
    BIRTH = "birth"
    BIRTHDAY = "birthday"
    CERTIFICATE = "certificate"
    MOVE = "move"
    RULE_CHANGE = "rule_change"


TRIGGER_LABELS = {
    TriggerKind.BIRTH: "子女出生登记",
    TriggerKind.BIRTHDAY: "生日（年龄变化）",
    TriggerKind.CERTIFICATE: "残疾人证签发",
    TriggerKind.MOVE: "户口迁入",
    TriggerKind.RULE_CHANGE: "规则新版本启用",
}

OPS: dict[str, tuple[str, Callable[[Any, Any], bool]]] = {
    "ge": ("≥", operator.ge),
    "gt": (">", operator.gt),
    "le": ("≤", operator.le),
    "lt": ("<", operator.lt),
    "eq": ("为", operator.eq),
    "in": ("属于", lambda v, allowed: v in allowed),
    "is_true": ("为", lambda v, _x: v is True),
}


@dataclass(frozen=True)
class Condition:
    datum: str
    op: str
    value: Any
    text: str

    @property
    def title(self) -> str:
        """The condition as a person reads it, its value filled in."""
        return self.text.replace("{value}", shown(self.datum, self.value))

    def expected(self) -> str:
        sign = OPS[self.op][0]
        if self.op == "is_true":
            return "是"
        return f"{sign}{shown(self.datum, self.value)}"


@dataclass(frozen=True)
class Rule:
    id: str
    version: int
    name: str
    benefit: str
    authority: str
    mode: Mode
    per: Per
    triggers: frozenset[TriggerKind]
    conditions: tuple[Condition, ...]
    #: Authority types whose officers may change the rule and decide its reviews.
    owners: frozenset[str] = frozenset()

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "version": self.version,
            "name": self.name,
            "benefit": self.benefit,
            "authority": self.authority,
            "mode": self.mode.value,
            "per": self.per.value,
            "triggers": sorted(t.value for t in self.triggers),
            "owners": sorted(self.owners),
            "conditions": [
                {"datum": c.datum, "op": c.op, "value": c.value, "text": c.text}
                for c in self.conditions
            ],
        }

    @property
    def label(self) -> str:
        return f"{self.name}（规则 {self.id} 第{self.version}版）"


class BadRule(ValueError):
    """A rule definition that cannot be used (the message says where)."""


def _check_value(key: str, op: str, value: Any, where: str) -> Any:
    kind = DATA[key].type
    if op == "in":
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise BadRule(f"{where}: “属于”的取值须为代码列表")
        if key == "household_jurisdiction" and not all(v in PROVINCES for v in value):
            raise BadRule(f"{where}: 请填写省级行政区划代码（6位数字，如 310000）")
        return value
    if op == "is_true":
        return True
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadRule(f"{where}: {DATA[key].label}的取值须为整数")
        if value < 0 or value > 10_000:
            raise BadRule(f"{where}: {DATA[key].label}的取值超出范围")
        return value
    if not isinstance(value, str) or not value:
        raise BadRule(f"{where}: {DATA[key].label}的取值须为文字")
    return value


def parse_rule(raw: Mapping[str, Any]) -> Rule:
    """A rule from its JSON definition; raises BadRule naming what is wrong."""
    rid = raw.get("id")
    where = f"规则 {rid}"
    if not isinstance(rid, str) or not rid:
        raise BadRule("规则缺少编号")
    try:
        version = int(raw["version"])
        mode = Mode(raw["mode"])
        per = Per(raw.get("per", "person"))
        triggers = frozenset(TriggerKind(t) for t in raw.get("triggers", ()))
        conds_raw = raw["conditions"]
        name, benefit = str(raw["name"]), str(raw.get("benefit", raw["name"]))
    except (KeyError, ValueError, TypeError) as e:
        raise BadRule(f"{where}: 定义不完整或取值无效（{e}）") from e
    if not isinstance(conds_raw, list) or not conds_raw:
        raise BadRule(f"{where}: 至少需要一个条件")
    conditions = []
    for i, c in enumerate(conds_raw, 1):
        at = f"{where} 条件{i}"
        if not isinstance(c, dict) or c.get("datum") not in DATA or c.get("op") not in OPS:
            raise BadRule(f"{at}: 数据项或比较方式未知")
        value = _check_value(c["datum"], c["op"], c.get("value"), at)
        conditions.append(Condition(c["datum"], c["op"], value, str(c.get("text") or "")))
    return Rule(
        id=rid,
        version=version,
        name=name,
        benefit=benefit,
        authority=str(raw.get("authority", "")),
        mode=mode,
        per=per,
        triggers=triggers,
        conditions=tuple(conditions),
        owners=frozenset(str(o) for o in raw.get("owners", ())),
    )


@lru_cache(maxsize=1)
def initial_rules() -> tuple[Rule, ...]:
    """Version 1 of every rule, from data/rules.json."""
    raw = json.loads(
        resources.files("tongban.benefits").joinpath("data/rules.json").read_text("utf-8")
    )
    return tuple(parse_rule(r) for r in raw["rules"])


def with_values(rule: Rule, values: Mapping[int, str], version: int) -> Rule:
    """A new version of `rule` with some conditions' values changed (an officer's form:
    condition index -> the value as typed); raises ValidationFailed naming the input."""
    conditions = list(rule.conditions)
    errors: list[FieldError] = []
    for i, text in values.items():
        if not 0 <= i < len(conditions):
            errors.append(FieldError(f"c{i}", "条件不存在"))
            continue
        c = conditions[i]
        text = text.strip()
        value: Any
        if c.op == "is_true":
            continue
        if c.op == "in":
            value = [v.strip() for v in text.replace("，", ",").split(",") if v.strip()]
        elif DATA[c.datum].type == "int":
            try:
                value = int(text)
            except ValueError:
                errors.append(FieldError(f"c{i}", "请填写整数"))
                continue
        else:
            value = text
        try:
            value = _check_value(c.datum, c.op, value, f"条件{i + 1}")
        except BadRule as e:
            errors.append(FieldError(f"c{i}", str(e).split(": ", 1)[-1]))
            continue
        conditions[i] = replace(c, value=value)
    if errors:
        raise ValidationFailed("规则取值有误", errors=errors)
    return replace(rule, version=version, conditions=tuple(conditions))


# --- evaluation ----------------------------------------------------------------------------


class Outcome(StrEnum):
    MET = "met"
    NOT_MET = "not_met"
    MISSING = "missing"


OUTCOME_LABELS = {Outcome.MET: "满足", Outcome.NOT_MET: "不满足", Outcome.MISSING: "缺少数据"}


@dataclass(frozen=True)
class Step:
    condition: Condition
    outcome: Outcome
    datum: Datum | None


@dataclass(frozen=True)
class Evaluation:
    rule: Rule
    eligible: bool
    steps: tuple[Step, ...]
    used: tuple[tuple[str, Datum], ...]
    today: date
    entitlement: str = "person"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def fields(self) -> list[str]:
        """Keys of the personal data the evaluation read."""
        return [k for k, _ in self.used]

    def trace(self, trigger: str = "") -> dict[str, Any]:
        """The trace as stored and shown: plain JSON, Chinese sentences."""
        rule = self.rule
        data = [
            {
                "key": k,
                "label": DATA[k].label,
                "value": shown(k, d.value),
                "source": d.source,
            }
            for k, d in self.used
        ]
        conditions = []
        for s in self.steps:
            c = s.condition
            label = DATA[c.datum].label
            if s.datum is None:
                line = f"{c.title}：未掌握“{label}”→ {OUTCOME_LABELS[s.outcome]}"
            else:
                line = (
                    f"{c.title}：{label}为{shown(c.datum, s.datum.value)}"
                    f"（要求{c.expected()}；来源：{s.datum.source}）→ {OUTCOME_LABELS[s.outcome]}"
                )
            conditions.append(
                {
                    "text": c.title,
                    "datum": c.datum,
                    "expected": c.expected(),
                    "value": None if s.datum is None else shown(c.datum, s.datum.value),
                    "outcome": s.outcome.value,
                    "line": line,
                }
            )
        if self.eligible:
            how = "可确认领取" if rule.mode is Mode.OFFER else "已直接发放"
            conclusion = (
                f"符合“{rule.name}”的全部条件（规则 {rule.id} 第{rule.version}版），{how}。"
            )
        else:
            failed = [s.condition.title for s in self.steps if s.outcome is not Outcome.MET]
            conclusion = (
                f"不符合“{rule.name}”（规则 {rule.id} 第{rule.version}版）："
                + "；".join(failed)
                + "。"
            )
        return {
            "rule": rule.id,
            "version": rule.version,
            "name": rule.name,
            "benefit": rule.benefit,
            "authority": rule.authority,
            "eligible": self.eligible,
            "as_of": self.today.isoformat(),
            "trigger": trigger,
            "data": data,
            "conditions": conditions,
            "conclusion": conclusion,
        }


def _holds(c: Condition, value: Any) -> bool:
    try:
        return bool(OPS[c.op][1](value, c.value))
    except TypeError:
        return False


def evaluate(rule: Rule, facts: Facts, today: date) -> Evaluation:
    """Whether the person the (derived) `facts` describe is eligible under `rule` on
    `today`, with every condition's outcome and the data it read. Every condition is
    evaluated (the trace shows all of them); a missing datum fails its condition."""
    steps: list[Step] = []
    used: dict[str, Datum] = {}
    for c in rule.conditions:
        d = facts.get(c.datum)
        if d is None or d.value is None:
            steps.append(Step(c, Outcome.MISSING, None))
            continue
        used[c.datum] = d
        # A derived datum reads its source too (age reads the birth date).
        origin = DERIVED.get(c.datum)
        if origin in DATA and origin in facts:
            used.setdefault(origin, facts[origin])
        steps.append(Step(c, Outcome.MET if _holds(c, d.value) else Outcome.NOT_MET, d))
    eligible = all(s.outcome is Outcome.MET for s in steps)
    return Evaluation(
        rule,
        eligible,
        tuple(steps),
        tuple(sorted(used.items())),
        today,
        entitlement=entitlement(rule, facts),
    )


def entitlement(rule: Rule, facts: Facts) -> str:
    """What one offer is for: the person, or one child's birth."""
    if rule.per is Per.BIRTH:
        child = facts.get("latest_birth_date")
        return f"birth:{child.value}" if child is not None else "birth:"
    return "person"


def predicate(rule: Rule, columns: Sequence[str]) -> Callable[[Sequence[Any]], bool]:
    """The rule's decision over a row of derived values (in `columns` order), without a
    trace: what a preview or a benchmark counts with. None fails its condition."""
    checks = [(columns.index(c.datum), OPS[c.op][1], c.value) for c in rule.conditions]

    def decide(row: Sequence[Any]) -> bool:
        for i, op, expected in checks:
            v = row[i]
            if v is None or not op(v, expected):
                return False
        return True

    return decide


def _sql_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def where_clause(rule: Rule) -> str:
    """The rule as a SQL condition over columns named like its data (the benchmark's
    reference query); NULL fails, as a missing datum does."""
    sql = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<", "eq": "="}
    parts = []
    for c in rule.conditions:
        if c.op == "in":
            parts.append(f"{c.datum} IN ({', '.join(_sql_literal(v) for v in c.value)})")
        elif c.op == "is_true":
            parts.append(f"{c.datum} IS TRUE")
        else:
            parts.append(f"{c.datum} {sql[c.op]} {_sql_literal(c.value)}")
    return " AND ".join(parts)


class Change(StrEnum):
    GAIN = "gain"
    LOSE = "lose"
    KEEP = "keep"
    NONE = "none"


def change(before: bool, after: bool) -> Change:
    """What a new rule version does to one person."""
    if after and not before:
        return Change.GAIN
    if before and not after:
        return Change.LOSE
    return Change.KEEP if after else Change.NONE


# --- lifecycles -----------------------------------------------------------------------------


class OfferState(StrEnum):
    OFFERED = "offered"
    ACCEPTED = "accepted"
    GRANTED = "granted"
    STOPPED = "stopped"


class OfferAction(StrEnum):
    OFFER = "offer"
    GRANT = "grant"
    ACCEPT = "accept"
    STOP = "stop"


class ReviewState(StrEnum):
    OPEN = "open"
    KEPT = "kept"
    STOPPED = "stopped"


class ReviewAction(StrEnum):
    OPEN = "open"
    KEEP = "keep"
    STOP = "stop"


RESIDENT = "resident"
OFFICER = "officer"


@dataclass(frozen=True)
class DecisionFacts:
    reason: str


def _reason(f: DecisionFacts) -> ValidationFailed | None:
    if f.reason.strip():
        return None
    return ValidationFailed("请说明理由", errors=[FieldError("reason", "请说明理由")])


OFFER_STATE_LABELS = {
    OfferState.OFFERED: "待确认",
    OfferState.ACCEPTED: "已确认领取",
    OfferState.GRANTED: "已直接发放",
    OfferState.STOPPED: "已停发",
}
OFFER_MACHINE = StateMachine(
    OfferState,
    OfferAction,
    {
        (OfferState.OFFERED, OfferAction.ACCEPT): (OfferState.ACCEPTED, {RESIDENT}),
        (OfferState.OFFERED, OfferAction.STOP): (OfferState.STOPPED, {OFFICER}),
        (OfferState.ACCEPTED, OfferAction.STOP): (OfferState.STOPPED, {OFFICER}),
        (OfferState.GRANTED, OfferAction.STOP): (OfferState.STOPPED, {OFFICER}),
    },
    guards={OfferAction.STOP: [_reason]},
    state_labels=OFFER_STATE_LABELS,
    action_labels={
        OfferAction.OFFER: "推送待遇",
        OfferAction.GRANT: "直接发放",
        OfferAction.ACCEPT: "确认领取",
        OfferAction.STOP: "停发",
    },
    noun="待遇",
)

REVIEW_STATE_LABELS = {
    ReviewState.OPEN: "待复核",
    ReviewState.KEPT: "继续发放",
    ReviewState.STOPPED: "停发",
}
REVIEW_MACHINE = StateMachine(
    ReviewState,
    ReviewAction,
    {
        (ReviewState.OPEN, ReviewAction.KEEP): (ReviewState.KEPT, {OFFICER}),
        (ReviewState.OPEN, ReviewAction.STOP): (ReviewState.STOPPED, {OFFICER}),
    },
    guards={ReviewAction.KEEP: [_reason], ReviewAction.STOP: [_reason]},
    state_labels=REVIEW_STATE_LABELS,
    action_labels={
        ReviewAction.OPEN: "发起复核",
        ReviewAction.KEEP: "继续发放",
        ReviewAction.STOP: "停发",
    },
    noun="复核",
)

#: States in which a person holds (or is being offered) the benefit.
LIVE = frozenset({OfferState.OFFERED, OfferState.ACCEPTED, OfferState.GRANTED})
