"""The dashboard's rules, plain Python: which indicators there are, what a cell of an
aggregate is keyed by, how cells merge (counts and sums add, histograms add bucket by
bucket, so p50/p90 combine across days and nodes exactly), and which cells are too
small to publish.

A *fact* is one event's contribution to one indicator: its cell key and the values it
adds. The refresh turns new events into facts and facts into cells; merging is
associative and commutative, so folding the events in any number of batches gives the
same cells as folding them all at once (the property the tests check)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import NamedTuple

#: Default small-cell threshold: a published cell counting fewer events is suppressed.
DEFAULT_THRESHOLD = 10

#: Handling times above this many working days share the last bucket.
HIST_CAP = 120


class Indicator(StrEnum):
    CASE_RECEIVED = "cases.received"
    CASE_DECIDED = "cases.decided"
    CASE_DELIVERED = "cases.delivered"
    CASE_REFUSED = "cases.refused"
    CASE_RATING = "cases.rating"
    TICKET_CLOSED = "tickets.closed"
    TICKET_REOPENED = "tickets.reopened"
    TICKET_SATISFACTION = "tickets.satisfaction"
    EVIDENCE = "evidence.access"
    SETTLEMENT = "medical.settlement"
    SETTLEMENT_REVERSED = "medical.reversed"
    LICENCE_VERIFIED = "licences.verification"
    CARD_USE = "card.use"
    RECT_OPENED = "rectification.opened"
    RECT_STEP = "rectification.steps"
    CLEARING = "medical.clearing"


@dataclass(frozen=True)
class IndicatorInfo:
    label: str
    #: What `n`, `total` and `extra` of its cells mean ("" when unused).
    total: str = ""
    extra: str = ""
    #: What its `category` dimension holds.
    category: str = ""
    #: Has a handling-time histogram (working days).
    timed: bool = False
    #: What the cell's from_city and to_city are, for column heads, chart texts and the
    #: open-data descriptions.
    pair_from: str = "收件城市"
    pair_to: str = "办理城市"


INDICATORS: dict[Indicator, IndicatorInfo] = {
    Indicator.CASE_RECEIVED: IndicatorInfo("收件量", category="办理方式"),
    Indicator.CASE_DECIDED: IndicatorInfo(
        "办结量", total="按时办结数", category="办理方式", timed=True
    ),
    Indicator.CASE_DELIVERED: IndicatorInfo("送达量（完成）", category="办理方式"),
    Indicator.CASE_REFUSED: IndicatorInfo("不予受理（中止）", category="办理方式"),
    Indicator.CASE_RATING: IndicatorInfo("好差评", category="评分"),
    Indicator.TICKET_CLOSED: IndicatorInfo(
        "工单结案", total="按时办结数", category="联办", pair_from="工单城市", pair_to="工单城市"
    ),
    Indicator.TICKET_REOPENED: IndicatorInfo(
        "工单重办", category="联办", pair_from="工单城市", pair_to="工单城市"
    ),
    Indicator.TICKET_SATISFACTION: IndicatorInfo(
        "工单满意度评价",
        total="满意数",
        category="评价",
        pair_from="工单城市",
        pair_to="工单城市",
    ),
    Indicator.EVIDENCE: IndicatorInfo("数据调取", category="结果"),
    Indicator.SETTLEMENT: IndicatorInfo(
        "门诊直接结算",
        total="医疗费用（分）",
        extra="统筹基金支付（分）",
        pair_from="参保城市",
        pair_to="就医城市",
    ),
    Indicator.SETTLEMENT_REVERSED: IndicatorInfo(
        "结算冲正", total="冲正金额（分）", pair_from="参保城市", pair_to="就医城市"
    ),
    Indicator.LICENCE_VERIFIED: IndicatorInfo("电子证照核验", category="核验结果"),
    Indicator.CARD_USE: IndicatorInfo(
        "社保卡用卡", category="结果", pair_from="（不区分）", pair_to="用卡城市"
    ),
    # 差评整改: the poor ratings that open an item, then one event per step of the loop;
    # the time from the rating to the applicant's 已解决 is the histogram of the
    # "resolved" cells.
    Indicator.RECT_OPENED: IndicatorInfo("差评整改立项", category="评分"),
    Indicator.RECT_STEP: IndicatorInfo("差评整改进展", category="整改环节", timed=True),
    # Closed clearing periods only (immutable): one cell per period (its first day) and
    # (insured city → treatment city); `n` counts the claims net of reversals.
    Indicator.CLEARING: IndicatorInfo(
        "跨地区清算（已关账）",
        total="应付金额（分）",
        extra="轧差后净应付（分）",
        pair_from="参保城市",
        pair_to="就医城市",
    ),
}

MODE_LABELS = {
    "online": "全程网办",
    "window": "异地窗口代收",
    "joint": "多地联办",
    "virtual": "虚拟窗口",
}

CATEGORY_LABELS = {
    **MODE_LABELS,
    "answered": "已提供",
    "refused": "已拒绝",
    "admitted": "已通过",
    "valid": "有效",
    "single": "单一部门",
    "satisfied": "满意",
    "unsatisfied": "不满意",
    "replied": "已答复",
    "resolved": "确认已解决",
    "reopened": "反馈未解决",
    "escalated": "转督查督办",
    "1": "1 非常不满意",
    "2": "2 不满意",
    "3": "3 基本满意",
    "4": "4 满意",
    "5": "5 非常满意",
}


@dataclass(frozen=True)
class Scope:
    """Whose records a node counts: the jurisdictions it serves ("*": every one, else a
    comma-separated list). A record naming no jurisdiction is always counted."""

    served: str = "*"

    def codes(self) -> frozenset[str] | None:
        """The served codes; None for every jurisdiction."""
        if self.served.strip() == "*":
            return None
        return frozenset(c.strip() for c in self.served.split(",") if c.strip())

    def __call__(self, jurisdiction: str | None) -> bool:
        codes = self.codes()
        return not jurisdiction or codes is None or jurisdiction in codes


class Key(NamedTuple):
    """A cell: one indicator on one day for one (from city → to city) pair, one
    jurisdiction, one category (mode, score, outcome …), one authority and one matter.
    An empty string is "not applicable". (A tuple: hashed and compared in C, which is
    most of what folding a million events does.)"""

    indicator: str
    day: date
    from_city: str = ""
    to_city: str = ""
    jurisdiction: str = ""
    category: str = ""
    authority: str = ""
    matter: str = ""


DIMENSIONS = (
    "indicator",
    "day",
    "from_city",
    "to_city",
    "jurisdiction",
    "category",
    "authority",
    "matter",
)


#: Levels of the monthly roll-ups: the key dimensions each keeps besides indicator and
#: month (the others are ""), smallest first. A page reads the smallest level holding
#: every dimension it groups or filters by: its headlines a few rows per month, its
#: city-pair matrix one per pair, its authority ranking one per authority. The
#: authority, matter and city-pair levels leave the category out (the pages group
#: those by indicator only: a third of the rows for the case indicators' three
#: modes). An authority's figures by mode have a level of their own, `c`: read from
#: the daily cells they took the authority's page over its aim (session 12, migration
#: 0056). A read needing dimensions no level keeps together (an authority with its
#: matters, a matter with a city pair …) reads the daily cells over its period: the
#: whole-key level `*` that served it until session 12 was nearly as large as the
#: cells themselves (one case ≈ one cell) and cost the refresh a third of its writes
#: (docs/dashboard.md, "Session 12: stored rows").
LEVELS: dict[str, tuple[str, ...]] = {
    "j": ("jurisdiction", "category"),
    "a": ("jurisdiction", "authority"),
    "m": ("jurisdiction", "matter"),
    "p": ("jurisdiction", "from_city", "to_city"),
    "c": ("jurisdiction", "authority", "category"),
}


#: Levels whose roll-ups keep no histogram (their sums only): no read of p50/p90 groups
#: or filters by their dimensions alone — the headlines group by category, the rankings
#: by authority or matter, never by city pair. The city-pair level's histogram rows
#: were a third of the roll-ups' (113,136 of 321,010 at the bench's 1 M events) and
#: were never read (session 13, migration 0057).
UNTIMED_LEVELS = frozenset({"p"})


def level_for(needed: Iterable[str], timed: bool = False) -> str | None:
    """The smallest roll-up level keeping every dimension in `needed` (with `timed`, only
    the levels keeping histograms: not UNTIMED_LEVELS); None when no level keeps them
    all (then the daily cells are read)."""
    want = set(needed)
    return next(
        (
            name
            for name, kept in LEVELS.items()
            if want <= set(kept) and not (timed and name in UNTIMED_LEVELS)
        ),
        None,
    )


@dataclass
class Value:
    """What a cell holds: the number of events, two sums, a histogram of handling
    times (working days → events), and the sum of its events' keys (cellkey.py)."""

    n: int = 0
    total: int = 0
    extra: int = 0
    hist: dict[int, int] | None = None
    ckey: int = 0

    def add(self, other: Value) -> None:
        self.n += other.n
        self.total += other.total
        self.extra += other.extra
        self.ckey += other.ckey
        if other.hist:
            self.hist = merge_hist(self.hist, other.hist)


class Fact(NamedTuple):
    key: Key
    n: int = 1
    total: int = 0
    extra: int = 0
    #: Handling time in working days (None: not timed).
    days: int | None = None
    #: The event's key (cellkey.py; the sum of the events' keys for a fact of `n` > 1).
    ckey: int = 0


def merge_hist(a: Mapping[int, int] | None, b: Mapping[int, int] | None) -> dict[int, int]:
    out = dict(a or {})
    for k, v in (b or {}).items():
        out[k] = out.get(k, 0) + v
    return out


def fold(facts: Iterable[Fact], into: dict[Key, Value] | None = None) -> dict[Key, Value]:
    """Add `facts` into the cells `into` (a new dict when None)."""
    cells: dict[Key, Value] = {} if into is None else into
    for f in facts:
        v = cells.get(f.key)
        if v is None:
            v = cells[f.key] = Value()
        v.n += f.n
        v.total += f.total
        v.extra += f.extra
        v.ckey += f.ckey
        if f.days is not None:
            b = min(max(f.days, 0), HIST_CAP)
            if v.hist is None:
                v.hist = {}
            v.hist[b] = v.hist.get(b, 0) + 1
    return cells


def quantile(hist: Mapping[int, int] | None, q: float) -> int | None:
    """The q-quantile (nearest rank) of a histogram of whole working days; None if empty.
    Exact for whole days, and the same whichever way the histogram was merged."""
    if not hist:
        return None
    count = sum(hist.values())
    if count <= 0:
        return None
    rank = max(1, -(-int(q * count * 1000) // 1000))  # ceil(q·n) without float drift
    seen = 0
    for b in sorted(hist):
        seen += hist[b]
        if seen >= rank:
            return b
    return max(hist)


def hist_to_json(hist: Mapping[int, int] | None) -> dict[str, int] | None:
    return None if not hist else {str(k): int(v) for k, v in sorted(hist.items())}


def hist_from_json(data: Mapping[str, int] | None) -> dict[int, int] | None:
    return None if not data else {int(k): int(v) for k, v in data.items()}


def suppressed(n: int, threshold: int) -> bool:
    """Whether a published cell counting `n` events must be withheld (0 < n < threshold:
    an empty cell reveals nothing and is shown as 0)."""
    return 0 < n < threshold


def share(part: int, whole: int) -> float | None:
    return None if whole <= 0 else round(part / whole, 4)
