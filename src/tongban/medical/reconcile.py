"""Reconciling a clearing statement between two agencies, each holding its side of the
claims on its own node (pure; no database, no web).

For one direction of a statement — the claims of the debtor's insured treated at the
creditor's institutions in a period — the treatment side holds them as settlements and
the insured side as confirmed reservations. Both reduce them to the same *lines*: the
claim's key (the institution's code and the hospital's transaction id), +1 for the
claim or −1 for its reversal counted in this period, and the fund's share in fen.

The two sides compare *figures*: the count and the amount, a SHA-256 digest of the
sorted lines, and the same digest for each of 256 buckets (by the first byte of the
key's SHA-256), so that two nodes that disagree exchange the lines of the buckets that
differ only, not the month's claims. Lines that differ are the differences: a claim one
side holds and the other does not, or holds with another amount.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

BUCKETS = 256


class Holder(StrEnum):
    """Which side holds a direction's claims."""

    INSURED = "insured"  # the debtor: its reservations
    TREATMENT = "treatment"  # the creditor: its settlements


class Reconciliation(StrEnum):
    PENDING = "pending"  # not compared yet
    AGREED = "agreed"
    DIFFERS = "differs"
    UNREACHABLE = "unreachable"  # the other side's node did not answer


class Kind(StrEnum):
    MISSING_AT_INSURED = "missing_at_insured"
    MISSING_AT_TREATMENT = "missing_at_treatment"
    AMOUNT_MISMATCH = "amount_mismatch"


KIND_LABELS = {
    Kind.MISSING_AT_INSURED: "参保地无此结算",
    Kind.MISSING_AT_TREATMENT: "就医地无此结算",
    Kind.AMOUNT_MISMATCH: "金额不一致",
}
RECONCILIATION_LABELS = {
    Reconciliation.PENDING: "尚未核对",
    Reconciliation.AGREED: "双方一致",
    Reconciliation.DIFFERS: "存在差异",
    Reconciliation.UNREACHABLE: "对方节点暂不可用",
}
DIFFERENCE_STATUS_LABELS = {"open": "待处理", "resolved": "已解决", "carried": "已结转下期"}

Key = tuple[str, str]  # (institution code, transaction id)


@dataclass(frozen=True, order=True)
class Line:
    """One claim (sign +1) or reversal (−1) of a period, as one side holds it."""

    institution_code: str
    txn_id: str
    sign: int
    fund: int  # the claim's fund share, fen (positive)

    @property
    def key(self) -> Key:
        return (self.institution_code, self.txn_id)

    @property
    def amount(self) -> int:
        return self.sign * self.fund

    def text(self) -> str:
        return f"{self.institution_code}|{self.txn_id}|{self.sign}|{self.fund}"


def bucket_of(institution_code: str, txn_id: str) -> int:
    """The bucket of a claim key: the first byte of its SHA-256 (the same on every node)."""
    return hashlib.sha256(f"{institution_code}|{txn_id}".encode()).digest()[0]


def _digest(texts: Iterable[str]) -> str:
    h = hashlib.sha256()
    for t in sorted(texts):
        h.update(t.encode())
        h.update(b"\n")
    return h.hexdigest()


@dataclass(frozen=True)
class Bucket:
    lines: int
    digest: str


@dataclass(frozen=True)
class Figures:
    """What one side holds for one direction: claims minus reversals, the amount (fen),
    the digest of all its lines and of each non-empty bucket."""

    claims: int = 0
    amount: int = 0
    digest: str = field(default_factory=lambda: _digest(()))
    buckets: Mapping[int, Bucket] = field(default_factory=dict)

    def agrees(self, other: Figures) -> bool:
        return (self.claims, self.amount, self.digest) == (other.claims, other.amount, other.digest)


def figures(lines: Iterable[Line]) -> Figures:
    """The figures of one side's lines."""
    by: dict[int, list[str]] = {}
    claims = amount = 0
    for line in lines:
        claims += line.sign
        amount += line.amount
        by.setdefault(bucket_of(line.institution_code, line.txn_id), []).append(line.text())
    buckets = {b: Bucket(len(texts), _digest(texts)) for b, texts in by.items()}
    overall = _digest(f"{b:03d}:{buckets[b].digest}" for b in buckets)
    return Figures(claims, amount, overall, buckets)


def differing_buckets(a: Figures, b: Figures) -> list[int]:
    """The buckets whose lines differ between two sides' figures."""
    return sorted(
        k for k in set(a.buckets) | set(b.buckets) if a.buckets.get(k) != b.buckets.get(k)
    )


@dataclass(frozen=True)
class Difference:
    """A line the insured side and the treatment side of a direction disagree on."""

    institution_code: str
    txn_id: str
    sign: int
    kind: Kind
    insured_fund: int | None
    treatment_fund: int | None

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.institution_code, self.txn_id, self.sign)


def differences(insured: Iterable[Line], treatment: Iterable[Line]) -> list[Difference]:
    """The lines on which the two sides of one direction disagree, sorted by key."""
    ins = {(x.institution_code, x.txn_id, x.sign): x.fund for x in insured}
    trt = {(x.institution_code, x.txn_id, x.sign): x.fund for x in treatment}
    out = []
    for key in sorted(set(ins) | set(trt)):
        i, t = ins.get(key), trt.get(key)
        if i == t:
            continue
        kind = (
            Kind.MISSING_AT_INSURED
            if i is None
            else Kind.MISSING_AT_TREATMENT
            if t is None
            else Kind.AMOUNT_MISMATCH
        )
        out.append(Difference(key[0], key[1], key[2], kind, i, t))
    return out
