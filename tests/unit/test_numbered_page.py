"""A numbered page of a list computed in memory (kernel.paging.numbered)."""

from tongban.kernel import paging


def test_a_numbered_page_slices_and_clamps_to_the_nearest_page() -> None:
    rows = list(range(1, 121))
    p = paging.numbered(rows, 2, 50, "low=1")
    assert (p.rows[0], p.rows[-1], p.number, p.pages, p.total, p.first) == (51, 100, 2, 3, 120, 51)
    assert p.query == "low=1"
    assert paging.numbered(rows, 9, 50).rows == list(range(101, 121))  # past the end: the last
    assert paging.numbered(rows, 0, 50).number == 1
    empty = paging.numbered([], 3, 50)
    assert (empty.rows, empty.number, empty.pages, empty.first) == ([], 1, 1, 1)
