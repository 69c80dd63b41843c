"""The columnar clearing computation against a plain-Python reckoning of random claims."""

from __future__ import annotations

from collections import defaultdict

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from tongban.medical import clearing

CITIES = {310000: 310000, 320100: 320000, 320500: 320000, 330100: 330000, 340100: 340000}

claim_st = st.tuples(
    st.sampled_from(sorted(CITIES)),
    st.sampled_from(sorted(CITIES)),
    st.integers(0, 1_000_000),
    st.booleans(),
)


def frame(claims):
    return pl.DataFrame(
        {
            "insured_j": [CITIES[a] for a, _, _, _ in claims],
            "treatment_j": [CITIES[b] for _, b, _, _ in claims],
            "insured_city": [a for a, _, _, _ in claims],
            "treatment_city": [b for _, b, _, _ in claims],
            "fund": [-f if rev else f for _, _, f, rev in claims],
            "sign": [-1 if rev else 1 for _, _, _, rev in claims],
        },
        schema=clearing.SCHEMA,
    )


@settings(max_examples=150)
@given(st.lists(claim_st, max_size=60), st.integers(1, 7))
def test_matrix_nets_and_batches_match_a_plain_reckoning(claims, batch):
    res = clearing.compute(frame(claims))
    gross: dict[tuple[str, str], int] = defaultdict(int)
    for a, b, f, rev in claims:
        if CITIES[a] != CITIES[b]:
            gross[(f"{CITIES[a]:06d}", f"{CITIES[b]:06d}")] += -f if rev else f
    assert {(g.debtor, g.creditor): g.amount for g in res.jurisdictions} == dict(gross)
    assert sum(n.net for n in res.nets) == 0
    assert res.claim_count == sum(1 for c in claims if not c[3])
    assert res.reversal_count == sum(1 for c in claims if c[3])
    assert res.cross_fund == sum(gross.values())
    for p in res.pairs:
        assert p.a < p.b
        assert p.a_owes_b == gross.get((p.a, p.b), 0) and p.b_owes_a == gross.get((p.b, p.a), 0)
    # Aggregating in batches, in any order, gives the same result (and digest).
    f = frame(claims)
    parts = [clearing.aggregate(s) for s in f.iter_slices(batch)][::-1]
    assert clearing.finish(clearing.combine(parts)).digest == res.digest


def test_same_jurisdiction_counts_only_in_the_city_matrix():
    res = clearing.compute(frame([(320100, 320500, 1_000, False)]))
    assert res.jurisdictions == [] and res.nets == [] and res.pairs == []
    assert [(g.debtor, g.creditor, g.amount) for g in res.cities] == [("320100", "320500", 1_000)]
    assert res.total_fund == 1_000 and res.cross_fund == 0


def test_empty_period():
    res = clearing.compute(clearing.empty_frame())
    assert (res.claim_count, res.total_fund, res.jurisdictions) == (0, 0, [])
    assert clearing.finish(clearing.combine([])).digest == res.digest


#: Jurisdiction codes that are not a province's (NN0000): the figures follow the codes
#: the claims carry, whatever they are.
ODD = {310000: 310001, 320100: 320002, 320500: 320002, 330100: 330003, 340100: 340004}


@settings(max_examples=100)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(sorted(CITIES)),
            st.sampled_from(sorted(CITIES)),
            st.integers(0, 10**12),  # fen: sums far beyond 32 bits stay exact integers
            st.booleans(),
        ),
        max_size=60,
    ),
    st.booleans(),
)
def test_matrices_and_totals_are_the_plain_reckoning_to_the_fen(claims, odd):
    """The city and jurisdiction matrices, counts and totals are those of a plain loop,
    in integer fen (amounts far beyond 32 bits), whichever codes the jurisdictions have."""
    codes = ODD if odd else CITIES
    f = frame(claims).with_columns(
        insured_j=pl.col("insured_city").replace_strict(codes, return_dtype=pl.Int32),
        treatment_j=pl.col("treatment_city").replace_strict(codes, return_dtype=pl.Int32),
    )
    res = clearing.compute(f)
    cities: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    juris: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for a, b, fen, rev in claims:
        for table, x, y in ((cities, a, b), (juris, codes[a], codes[b])):
            if x != y:
                table[(f"{x:06d}", f"{y:06d}")][0] += -1 if rev else 1
                table[(f"{x:06d}", f"{y:06d}")][1] += -fen if rev else fen
    assert {(g.debtor, g.creditor): [g.claims, g.amount] for g in res.cities} == dict(cities)
    assert {(g.debtor, g.creditor): [g.claims, g.amount] for g in res.jurisdictions} == dict(juris)
    assert res.total_fund == sum(-fen if rev else fen for _, _, fen, rev in claims)
    assert (res.claim_count, res.reversal_count) == (
        sum(not rev for *_, rev in claims),
        sum(rev for *_, rev in claims),
    )
    assert all(isinstance(g.amount, int) for g in res.cities + res.jurisdictions)
