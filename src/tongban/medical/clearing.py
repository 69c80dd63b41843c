"""Inter-regional clearing (跨地区清算) computed over columns, not rows.

For every settled, unreversed claim of a period, the insured side owes the treatment
side the fund's share; a reversal that lands in the period (its claim's period was
already closed) counts with the opposite sign. Input: one row per claim or reversal
with integer columns

    insured_j, treatment_j, insured_city, treatment_city  (GB/T 2260 codes as integers)
    fund  (fen; negative for a reversal)
    sign  (+1 claim, −1 reversal)

One polars group-by over the city pairs does the heavy work; everything else
(jurisdiction matrix, net positions, statements) is derived from that small result.
No database and no web here: the command, the worker job and the benchmark share it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import polars as pl

SCHEMA = {
    "insured_j": pl.Int32,
    "treatment_j": pl.Int32,
    "insured_city": pl.Int32,
    "treatment_city": pl.Int32,
    "fund": pl.Int64,
    "sign": pl.Int8,
}


#: The city-pair codes, and the pair aggregate's columns (`aggregate`, `combine`).
KEYS = ("insured_j", "treatment_j", "insured_city", "treatment_city")
PAIR_SCHEMA = {
    "insured_j": pl.Int32,
    "treatment_j": pl.Int32,
    "insured_city": pl.Int32,
    "treatment_city": pl.Int32,
    "claims": pl.Int64,
    "reversals": pl.Int64,
    "amount": pl.Int64,
}


@dataclass(frozen=True)
class Gross:
    debtor: str  # insured side
    creditor: str  # treatment side
    claims: int  # claims minus reversals
    amount: int  # fen


@dataclass(frozen=True)
class Net:
    jurisdiction: str
    receivable: int
    payable: int

    @property
    def net(self) -> int:
        return self.receivable - self.payable


@dataclass(frozen=True)
class Pair:
    """The statement between jurisdictions a < b."""

    a: str
    b: str
    a_owes_b: int
    b_owes_a: int
    claims_a_to_b: int
    claims_b_to_a: int


@dataclass
class Result:
    claim_count: int = 0
    reversal_count: int = 0
    total_fund: int = 0
    cross_fund: int = 0
    jurisdictions: list[Gross] = field(default_factory=list)
    cities: list[Gross] = field(default_factory=list)
    nets: list[Net] = field(default_factory=list)
    pairs: list[Pair] = field(default_factory=list)

    @property
    def digest(self) -> str:
        """SHA-256 of the whole result in a canonical order: equal runs, equal digests."""
        body = {
            "totals": [self.claim_count, self.reversal_count, self.total_fund, self.cross_fund],
            "j": [[g.debtor, g.creditor, g.claims, g.amount] for g in self.jurisdictions],
            "c": [[g.debtor, g.creditor, g.claims, g.amount] for g in self.cities],
        }
        return hashlib.sha256(json.dumps(body, separators=(",", ":")).encode()).hexdigest()


def empty_frame() -> pl.DataFrame:
    return pl.DataFrame(schema=SCHEMA)


def aggregate(claims: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """The one pass over the claims: per (insured city, treatment city) pair, the claim
    and reversal counts and the fund sum. Frames may be given in batches and the
    partial aggregates combined with `combine`."""
    return (
        claims.lazy()
        .group_by("insured_j", "treatment_j", "insured_city", "treatment_city")
        .agg(
            claims=(pl.col("sign") > 0).sum().cast(pl.Int64),
            reversals=(pl.col("sign") < 0).sum().cast(pl.Int64),
            amount=pl.col("fund").sum(),
        )
        .collect()
    )


def combine(partials: list[pl.DataFrame]) -> pl.DataFrame:
    """Combine partial aggregates (of batches) into one."""
    if not partials:
        return aggregate(empty_frame())
    return (
        pl.concat(partials)
        .group_by("insured_j", "treatment_j", "insured_city", "treatment_city")
        .agg(pl.col("claims").sum(), pl.col("reversals").sum(), pl.col("amount").sum())
    )


def _code(v: int) -> str:
    return f"{v:06d}"


def _gross(agg: pl.DataFrame, debtor: str, creditor: str) -> list[Gross]:
    rows = (
        agg.filter(pl.col(debtor) != pl.col(creditor))
        .group_by(debtor, creditor)
        .agg(
            n=(pl.col("claims") - pl.col("reversals")).sum(),
            amount=pl.col("amount").sum(),
        )
        .sort(debtor, creditor)
    )
    return [
        Gross(_code(d), _code(c), int(n), int(a))
        for d, c, n, a in rows.select(debtor, creditor, "n", "amount").iter_rows()
    ]


def finish(agg: pl.DataFrame) -> Result:
    """From the pair aggregate to the matrices, net positions and statements."""
    res = Result(
        claim_count=int(agg["claims"].sum() or 0),
        reversal_count=int(agg["reversals"].sum() or 0),
        total_fund=int(agg["amount"].sum() or 0),
    )
    res.jurisdictions = _gross(agg, "insured_j", "treatment_j")
    res.cities = _gross(agg, "insured_city", "treatment_city")
    res.cross_fund = sum(g.amount for g in res.jurisdictions)
    recv: dict[str, int] = {}
    pay: dict[str, int] = {}
    for g in res.jurisdictions:
        pay[g.debtor] = pay.get(g.debtor, 0) + g.amount
        recv[g.creditor] = recv.get(g.creditor, 0) + g.amount
    res.nets = [Net(j, recv.get(j, 0), pay.get(j, 0)) for j in sorted(set(recv) | set(pay))]
    if sum(n.net for n in res.nets) != 0:  # an invariant, not an input check
        raise AssertionError("net positions do not sum to zero")
    by = {(g.debtor, g.creditor): g for g in res.jurisdictions}
    for a, b in sorted({tuple(sorted((g.debtor, g.creditor))) for g in res.jurisdictions}):
        ab, ba = by.get((a, b)), by.get((b, a))
        res.pairs.append(
            Pair(
                a,
                b,
                a_owes_b=ab.amount if ab else 0,
                b_owes_a=ba.amount if ba else 0,
                claims_a_to_b=ab.claims if ab else 0,
                claims_b_to_a=ba.claims if ba else 0,
            )
        )
    return res


def compute(claims: pl.DataFrame | pl.LazyFrame) -> Result:
    """Clear one period's claims (one frame)."""
    return finish(aggregate(claims))
