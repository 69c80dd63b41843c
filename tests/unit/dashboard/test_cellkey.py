"""Cell keys and the noise of published counts (dashboard.cellkey), without a database."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from tongban.dashboard import cellkey
from tongban.dashboard.cellkey import MODULUS, NOISE, NOISE_MAX, Keys, noise, scaled


@given(n=st.integers(-5, 10**9), ckey=st.integers(0, 2**70))
def test_noise_is_bounded_never_makes_a_count_below_one_and_leaves_zero(n: int, ckey: int) -> None:
    d = noise(n, ckey)
    if n <= 0:
        assert d == 0
    else:
        assert -NOISE_MAX <= d <= NOISE_MAX
        assert n + d >= 1


@given(n=st.integers(1, 10**6), ckey=st.integers(0, 2**40))
def test_noise_depends_on_the_key_only_modulo_two_to_the_32(n: int, ckey: int) -> None:
    # A cell's key is read modulo 2³²: a sum kept whole and one reduced on the way
    # (a peer's copy holds the published, reduced keys) get the same noise.
    assert noise(n, ckey) == noise(n, ckey % MODULUS) == noise(n, ckey + 7 * MODULUS)


def test_noise_follows_its_table_over_many_keys() -> None:
    """Over 20,000 (count, key) pairs the changes come in NOISE's proportions (each within
    1.5 points of its share), so about half of all counts are changed."""
    keys = Keys.of(b"\x01" * 32)
    seen = Counter(noise(100 + i % 50, keys.event(str(i))) for i in range(20_000))
    total = sum(seen.values())
    weights = sum(w for _, w in NOISE)
    for d, w in NOISE:
        assert abs(seen[d] / total - w / weights) < 0.015, (d, seen)


def test_small_counts_are_changed_as_often_as_large_ones_but_stay_positive() -> None:
    keys = Keys.of(b"\x02" * 32)
    for n in (1, 2, 3):
        got = Counter(n + noise(n, keys.event(f"{n}:{i}")) for i in range(2_000))
        assert min(got) >= 1
        assert got[n] < 0.7 * 2_000  # not left as it is
        assert max(got) == n + NOISE_MAX


def test_scaled_sums_follow_the_published_count() -> None:
    assert scaled(1000, 10, 10) == 1000  # count unchanged: exact
    assert scaled(1000, 10, 12) == 1200
    assert scaled(1005, 10, 9) == 905  # 904.5 rounded away from zero
    assert scaled(-1005, 10, 9) == -905
    assert scaled(7, 0, 0) == 7
    assert scaled(333, 3, 1) == 111


def test_keys_come_from_the_secret_and_differ_between_secrets() -> None:
    a, b = Keys.of(b"a" * 32), Keys.of(b"b" * 32)
    assert Keys.of(b"a" * 32) == a
    assert a.chain(42) != b.chain(42) and a.event("licence_use:1") != b.event("licence_use:1")
    assert 1 <= a.a < 2**30 and 1 <= a.c < 2**30 and 0 <= a.b < cellkey.P1 and 0 <= a.d < cellkey.P2


@given(seq=st.integers(0, 2**63 - 1))
def test_chain_keys_are_within_32_bits(seq: int) -> None:
    k = Keys.of(b"k" * 32)
    assert 0 <= k.chain(seq) < MODULUS
    # The largest intermediate value the SQL computes stays within a signed 64-bit integer.
    assert (MODULUS - 1) * k.a + k.b < 2**63 and (cellkey.P1 - 1) * k.c + k.d < 2**63


def test_consecutive_positions_get_keys_spread_over_the_range() -> None:
    """A chain's events are numbered 1, 2, 3…: their keys spread evenly over the 16
    sixteenths of [0, 2³²) (each within 20 % of 1/16 over 32,000 positions), and the
    sums of a few of them (a small cell's key) do too."""
    k = Keys.of(b"s" * 32)
    keys = [k.chain(s) for s in range(1, 32_001)]
    ones = Counter(x * 16 // MODULUS for x in keys)
    threes = Counter(sum(keys[i : i + 3]) % MODULUS * 16 // MODULUS for i in range(0, 30_000, 3))
    for counts, total in ((ones, 32_000), (threes, 10_000)):
        assert len(counts) == 16
        assert all(abs(c - total / 16) < 0.2 * total / 16 for c in counts.values()), counts
