"""Comparing the two sides of a clearing statement: figures (count, amount, digest of the
claim list and of its buckets), the buckets that differ, and the claims that cause a
difference."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tongban.medical.reconcile import (
    Figures,
    Kind,
    Line,
    bucket_of,
    differences,
    differing_buckets,
    figures,
)

LINES = [
    Line("H320500001", "T1", 1, 12_000),
    Line("H320500001", "T2", 1, 8_000),
    Line("H320509001", "T3", -1, 5_000),  # a reversal counted in this period
]


def test_figures_count_claims_minus_reversals_and_sum_the_signed_fund() -> None:
    f = figures(LINES)
    assert (f.claims, f.amount) == (1, 15_000)
    assert sum(b.lines for b in f.buckets.values()) == 3
    assert len(f.digest) == 64


def test_the_digest_does_not_depend_on_the_order_the_lines_are_read_in() -> None:
    assert figures(LINES).agrees(figures(list(reversed(LINES))))
    assert figures([]).agrees(Figures())


def test_a_changed_amount_a_missing_claim_or_a_sign_changes_the_digest() -> None:
    base = figures(LINES)
    for other in (
        [LINES[0], Line("H320500001", "T2", 1, 8_001), LINES[2]],
        LINES[:2],
        [LINES[0], LINES[1], Line("H320509001", "T3", 1, 5_000)],
    ):
        assert not base.agrees(figures(other))


def test_only_the_buckets_of_the_differing_claim_differ() -> None:
    changed = [LINES[0], Line("H320500001", "T2", 1, 8_001), LINES[2]]
    assert differing_buckets(figures(LINES), figures(changed)) == [bucket_of("H320500001", "T2")]
    assert differing_buckets(figures(LINES), figures(LINES)) == []


def test_differences_say_which_side_lacks_a_claim_or_which_amounts_differ() -> None:
    insured = [LINES[0], Line("H320500001", "T2", 1, 7_999)]
    treatment = [Line("H320500001", "T2", 1, 8_000), LINES[2]]
    got = differences(insured, treatment)
    assert [(d.txn_id, d.sign, d.kind, d.insured_fund, d.treatment_fund) for d in got] == [
        ("T1", 1, Kind.MISSING_AT_TREATMENT, 12_000, None),
        ("T2", 1, Kind.AMOUNT_MISMATCH, 7_999, 8_000),
        ("T3", -1, Kind.MISSING_AT_INSURED, None, 5_000),
    ]
    assert differences(LINES, list(reversed(LINES))) == []


lines = st.lists(
    st.builds(
        Line,
        st.sampled_from(["H1", "H2", "H3"]),
        st.from_regex(r"[A-Z0-9]{1,6}", fullmatch=True),
        st.sampled_from([1, -1]),
        st.integers(0, 10**7),
    ),
    max_size=30,
    unique_by=lambda x: (x.institution_code, x.txn_id, x.sign),
)


@given(lines, lines)
def test_figures_agree_exactly_when_there_is_no_difference(a: list[Line], b: list[Line]) -> None:
    assert figures(a).agrees(figures(b)) == (differences(a, b) == [])
    # The differing buckets hold every differing claim.
    buckets = set(differing_buckets(figures(a), figures(b)))
    assert all(bucket_of(d.institution_code, d.txn_id) in buckets for d in differences(a, b))
