"""Cell keys: the noise of every published count (the cell key method of statistical
offices such as the ONS and the ABS).

A suppressed cell can be recovered by subtracting published figures whenever the same
events are published through overlapping tables (a total and its breakdown, a month and
its days, a city pair in the heat map and in the daily series). So no count is published
exactly:

- every event the dashboard counts gets a key in [0, 2³²) computed under a secret of the
  node (`secret`): from its chain entry's position for the events read from the audit
  chain (`chain_key`, in SQL, in the refresh's own statements), from the row's identity
  for the rest (`Keys.event`);
- a cell's key is the sum of its events' keys (`ckey`, a column of the cells and
  roll-ups added exactly like `n`, and carried in the aggregates the nodes publish to
  each other); read modulo 2³² it is as random as one event's key, and the same for the
  same events however they were added up;
- every published count n > 0 becomes n + d, d in −2…+2 chosen from a fixed table by
  (n, the key) (`noise`), never below 1 (a change that would make it so goes upwards);
  the sums published beside a count are scaled by the same (n + d) / n; shares and
  handling-time quantiles are computed from the exact sums (a share is not recovered
  by subtraction).

The same events get the same noise in every page, export and open-data answer, so
subtracting published figures gives a sum of noises, not a count, and asking again gives
the same answer (averaging gains nothing). Nobody without the secret can compute the
keys: they never leave the node but as sums in the aggregates its peers receive (which
carry the exact counts too: nodes are trusted with those).

`chain_key` is two affine steps modulo two different primes under secret multipliers:
computed by the database for a million events at the cost of a few integer operations
each, not a cryptographic function; its secret parameters and its outputs are never
published, and the noise only needs keys no reader can predict.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, literal_column, select
from sqlalchemy import cast as sa_cast
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from tongban.dashboard.models import DashSecret

#: Keys and cell keys are read modulo this.
MODULUS = 2**32
#: The two primes of `chain_key` (the largest below 2³², and the next).
P1, P2 = 4_294_967_291, 4_294_967_279
#: The multipliers are below this: (a value < 2³²) × (a multiplier) + (< 2³²) stays
#: within a signed 64-bit integer on both databases (SQLite turns an overflow into a
#: float; PostgreSQL raises).
_MULTIPLIER_BELOW = 2**30
_NAME = "cell_key"

#: The noise's distribution: d with its probability (in 1/20ths), d in −2…+2.
NOISE = ((-2, 1), (-1, 4), (0, 10), (1, 4), (2, 1))
_STEPS = sum(w for _, w in NOISE)
#: The largest change of a published count.
NOISE_MAX = max(abs(d) for d, _ in NOISE)


@dataclass(frozen=True)
class Keys:
    """What a node's secret gives: the parameters of `chain_key` and the HMAC key of
    `event_key`."""

    mac: bytes
    a: int
    b: int
    c: int
    d: int

    @classmethod
    def of(cls, raw: bytes) -> Keys:
        def part(label: bytes) -> int:
            return int.from_bytes(hmac.new(raw, label, hashlib.sha256).digest()[:8], "big")

        return cls(
            mac=hmac.new(raw, b"event", hashlib.sha256).digest(),
            a=part(b"a") % (_MULTIPLIER_BELOW - 1) + 1,
            b=part(b"b") % P1,
            c=part(b"c") % (_MULTIPLIER_BELOW - 1) + 1,
            d=part(b"d") % P2,
        )

    def chain(self, seq: int) -> int:
        """`chain_key` in Python (what the SQL computes)."""
        return (((seq % MODULUS) * self.a + self.b) % P1 * self.c + self.d) % P2

    def event(self, identity: str) -> int:
        """The key of an event not read from the chain, from what identifies it once
        (a row's table and id; a clearing run's digest and city pair)."""
        digest = hmac.new(self.mac, identity.encode(), hashlib.sha256).digest()
        return int.from_bytes(digest[:4], "big")


def secret(session: Session) -> Keys:
    """This node's keys: from its secret, made at random the first time it is needed
    (an insert that ignores a conflict, then read: two refreshes at once agree)."""
    value = session.scalar(select(DashSecret.value).where(DashSecret.name == _NAME))
    if value is None:
        make = (
            postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        )
        stmt = make(DashSecret).values(name=_NAME, value=secrets.token_hex(32))
        session.execute(stmt.on_conflict_do_nothing(index_elements=["name"]))
        value = session.scalar(select(DashSecret.value).where(DashSecret.name == _NAME))
    assert value is not None
    return Keys.of(bytes.fromhex(value))


def chain_key(keys: Keys, seq: Any, pg: bool) -> ColumnElement[Any]:
    """The key of a chain entry's event in SQL, from its position `seq` (what
    `Keys.chain` computes). The parameters are written into the statement as integers
    (they are the node's, never a request's)."""

    def k(v: int) -> Any:
        return literal_column(str(int(v)), BigInteger)

    s = sa_cast(seq, BigInteger) if pg else seq
    x = ((s % k(MODULUS)) * k(keys.a) + k(keys.b)) % k(P1)
    key: ColumnElement[Any] = (x * k(keys.c) + k(keys.d)) % k(P2)
    return key


def noise(n: int, ckey: int) -> int:
    """The change d of a published count `n` whose events' keys sum to `ckey`: from a
    fixed table by (n, ckey mod 2³²), never making a count below 1 (−d instead); 0 for
    n ≤ 0."""
    if n <= 0:
        return 0
    digest = hashlib.blake2b(f"{n}:{ckey % MODULUS}".encode(), digest_size=4).digest()
    r = int.from_bytes(digest, "big") * _STEPS // MODULUS
    for d, w in NOISE:
        if r < w:
            # A change that would leave less than 1 is taken upwards instead: small counts
            # are changed as often as large ones (not pinned to 1).
            return d if n + d >= 1 else -d
        r -= w
    return 0  # unreachable: r < _STEPS


def scaled(value: int, n: int, published: int) -> int:
    """A sum published beside a count `n` published as `published`: scaled by the same
    ratio, rounded half away from zero (exact when the count was not changed)."""
    if n <= 0 or published == n:
        return value
    q, r = divmod(abs(value) * published * 2 + n, 2 * n)
    return q if value >= 0 else -q
