"""Cell keys (dashboard.cellkey) on both databases: every event counted gets its key in
the refresh's own statements, a cell's key is the sum of its events' keys, and every
published figure carries the noise its (count, key) chooses — the same in every table,
export and open-data answer — so that subtracting published figures does not give a
small cell back."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import BigInteger, delete, literal, select

from integration.dashboard.kit import PLAN, build_cases
from tongban.audit.models import AuditEntry
from tongban.dashboard import cellkey, cells, federation, service
from tongban.dashboard.cellkey import Keys, noise
from tongban.dashboard.domain import Fact, Indicator, Key, Value, fold
from tongban.dashboard.models import DashSecret

ALL = service.owns_for("*")
MONTH = (date(2026, 3, 1), date(2026, 3, 31))
PAIRS = (("310000", "320500"), ("320500", "330100"), ("330100", "310000"), ("340100", "320500"))
MODES = ("online", "window", "joint", "virtual")


def _set_secret(session: Any, raw: bytes) -> Keys:
    session.execute(delete(DashSecret))
    session.add(DashSecret(name="cell_key", value=raw.hex()))
    session.flush()
    return cellkey.secret(session)


def test_the_databases_chain_key_equals_the_one_computed_in_python(session: Any) -> None:
    keys = cellkey.secret(session)
    assert cellkey.secret(session) == keys  # made once, then read
    pg = session.get_bind().dialect.name == "postgresql"
    for seq in (1, 2, 3, 12_345, 2**31, 2**32 - 1, 2**32, 2**40 + 17, 2**62 + 5, 2**63 - 1):
        got = session.scalar(select(cellkey.chain_key(keys, literal(seq, BigInteger), pg)))
        assert got == keys.chain(seq), seq


def test_a_refresh_gives_each_chain_event_the_key_of_its_entry(session: Any) -> None:
    """The cells of cases received hold, between them, the keys of the chain's `submit`
    entries, and those of cases decided the keys of its `approve` entries: each event's
    key from its own entry's position, added once."""
    build_cases(session, PLAN)
    keys = cellkey.secret(session)
    service.refresh(session, ALL, settle=timedelta(0))
    e = AuditEntry
    for action, ind in (("submit", Indicator.CASE_RECEIVED), ("approve", Indicator.CASE_DECIDED)):
        seqs = session.scalars(select(e.seq).where(e.kind == "case.event", e.action == action))
        want = sorted(keys.chain(s) for s in seqs)
        got = [v for k, v in service.local_cells(session).items() if k.indicator == ind]
        assert sum(v.n for v in got) == len(want) > 0
        assert sum(v.ckey for v in got) == sum(want)
        # A cell of one event holds exactly that event's key.
        assert {v.ckey for v in got if v.n == 1} <= set(want)


def _month_of_cells(keys: Keys) -> dict[Key, Value]:
    """A month of cases received: every pair and mode on every day, with 0–3 events each
    (many small cells), each event's key from its own identity."""
    facts = []
    day, i = MONTH[0], 0
    while day <= MONTH[1]:
        for p, (fc, tc) in enumerate(PAIRS):
            for m, mode in enumerate(MODES):
                for _ in range((day.day + p + m) % 4):
                    i += 1
                    key = Key(Indicator.CASE_RECEIVED, day, fc, tc, "320000", mode, "", "")
                    facts.append(Fact(key, ckey=keys.event(f"test:{i}")))
        day += timedelta(days=1)
    return fold(facts)


def _exact(stored: dict[Key, Value], **where: Any) -> Value:
    """The stored cells matching `where` (a day range as `days`) added in Python."""
    days = where.pop("days", None)
    v = Value()
    for k, x in stored.items():
        if days and not days[0] <= k.day <= days[1]:
            continue
        if all(getattr(k, d) == want for d, want in where.items()):
            v.add(x)
    return v


def test_the_same_events_get_the_same_noise_in_every_table(session: Any) -> None:
    keys = _set_secret(session, b"\x07" * 32)
    cells.forget_origin(session, "")
    stored = _month_of_cells(keys)
    service.store(session, stored, origin="")
    ind = Indicator.CASE_RECEIVED
    month = service.Filters(start=MONTH[0], end=MONTH[1])
    changed = 0

    def published(v: Value) -> int:
        return v.n + noise(v.n, v.ckey)

    # The month's total: the headline, the trend by month, the sum by pair's total.
    whole = _exact(stored)
    head = service.total(session, month, ind, threshold=1)
    assert head.n == published(whole) and abs(head.n - whole.n) <= cellkey.NOISE_MAX
    (only,) = [fig for d, fig in service.trend(session, month, ind, "month", 1)]
    assert only.n == head.n
    # Each pair: in the heat map, filtered, and in the exports' table of it.
    matrix = service.matrix(session, month, ind, threshold=1)
    for fc, tc in PAIRS:
        exact = _exact(stored, from_city=fc, to_city=tc)
        f = service.Filters(start=MONTH[0], end=MONTH[1], from_city=fc, to_city=tc)
        assert matrix[(fc, tc)].n == service.total(session, f, ind, 1).n == published(exact)
        changed += matrix[(fc, tc)].n != exact.n
    # Each day, pair and mode: the open data's daily series and the same cell filtered.
    rows = service.daily_series(session, month, ind, threshold=1)
    assert len(rows) == sum(1 for v in stored.values() if v.n)
    for r in rows[::7]:
        d = date.fromisoformat(r["date"])
        f = service.Filters(
            start=d, end=d, from_city=r["from_city"], to_city=r["to_city"], category=r["category"]
        )
        exact = _exact(
            stored,
            days=(d, d),
            from_city=r["from_city"],
            to_city=r["to_city"],
            category=r["category"],
        )
        assert r["count"] == service.total(session, f, ind, 1).n == published(exact)
        changed += r["count"] != exact.n
    # A week in the trend by week is the same events as the week filtered.
    weeks = service.trend(session, month, ind, "week", 1)
    for start, fig in weeks[1:-1]:
        f = service.Filters(start=start, end=start + timedelta(days=6))
        assert (
            fig.n
            == service.total(session, f, ind, 1).n
            == published(_exact(stored, days=(start, start + timedelta(days=6))))
        )
    # Asked again in a new unit of work: the same answers.
    service.forget(session)
    assert service.total(session, month, ind, threshold=1).n == head.n
    assert changed > 0  # the figures are not the exact counts


def test_subtracting_published_figures_does_not_give_a_small_cell_back(session: Any) -> None:
    """A pair's month with one event by virtual window (suppressed: under 10) beside
    larger modes. Without noise, the pair's total minus its published modes is that one
    event, always. With noise, over 40 node secrets, it is so in fewer than half."""
    ind = Indicator.CASE_RECEIVED
    fc, tc = PAIRS[0]
    f = service.Filters(start=MONTH[0], end=MONTH[1], from_city=fc, to_city=tc)
    counts = {"online": 37, "window": 23, "joint": 12, "virtual": 1}
    recovered = 0
    for trial in range(40):
        keys = _set_secret(session, bytes([trial + 1]) * 32)
        cells.forget_origin(session, "")
        facts = [
            Fact(
                Key(ind, MONTH[0] + timedelta(days=i % 28), fc, tc, "320000", mode, "", ""),
                ckey=keys.event(f"{trial}:{mode}:{i}"),
            )
            for mode, n in counts.items()
            for i in range(n)
        ]
        service.store(session, fold(facts), origin="")
        service.forget(session)
        total = service.total(session, f, ind, threshold=10)
        modes = service.grouped(session, f, [ind], ("category",), threshold=10)
        assert modes[("virtual",)].suppressed
        rest = sum(modes[(m,)].n or 0 for m in counts if m != "virtual")
        recovered += (total.n or 0) - rest == counts["virtual"]
    assert recovered < 20, recovered


def test_the_federation_view_adds_the_keys_of_every_origin(session: Any) -> None:
    """A figure over this node's cells and a peer's copy carries the noise of the two
    counts and the two keys added: the keys travel with the published cells."""
    ind = Indicator.CASE_RECEIVED
    key = Key(ind, MONTH[0], "310000", "320500", "320000", "online", "", "")
    for origin in ("", "320000"):
        cells.forget_origin(session, origin)
    service.store(session, {key: Value(40, ckey=1_234_567_890)}, origin="")
    service.store(session, {key: Value(25, ckey=3_987_654_321)}, origin="320000")
    f = service.Filters(start=MONTH[0], end=MONTH[1])
    both = service.total(session, f, ind, threshold=1)
    assert both.n == 65 + noise(65, 1_234_567_890 + 3_987_654_321)
    local = service.total(
        session, service.Filters(start=MONTH[0], end=MONTH[1], scope="local"), ind, 1
    )
    assert local.n == 40 + noise(40, 1_234_567_890)
    for origin in ("", "320000"):
        cells.forget_origin(session, origin)


def test_a_published_cells_key_is_reduced_and_a_peers_key_out_of_range_is_refused(
    session: Any,
) -> None:
    key = Key(Indicator.CASE_RECEIVED, MONTH[0], "310000", "320500", "320000", "online", "", "")
    cells.forget_origin(session, "")
    service.store(session, {key: Value(3, ckey=3 * 2**32 + 5)}, origin="")
    (row,) = federation._rows(cells.read(session, "", "320000").items())
    assert row["ckey"] == 5 and row["n"] == 3
    federation.CellRow.model_validate({**row, "day": MONTH[0]})
    for bad in (-1, 2**32, "x"):
        with pytest.raises(ValidationError):
            federation.CellRow.model_validate({**row, "day": MONTH[0], "ckey": bad})
    cells.forget_origin(session, "")


def test_shares_and_handling_times_are_computed_from_the_exact_sums(session: Any) -> None:
    ind = Indicator.CASE_DECIDED
    cells.forget_origin(session, "")
    keys = _set_secret(session, b"\x09" * 32)
    facts = [
        Fact(
            Key(ind, MONTH[0], "310000", "320500", "320000", "online", "", ""),
            total=int(i % 3 != 0),
            days=i % 9,
            ckey=keys.event(f"share:{i}"),
        )
        for i in range(57)
    ]
    service.store(session, fold(facts), origin="")
    stored = fold(facts)
    (exact,) = stored.values()
    fig = service.total(session, service.Filters(start=MONTH[0], end=MONTH[1]), ind, 1, timed=True)
    assert fig.n == 57 + noise(57, exact.ckey)
    assert fig.share() == round(38 / 57, 4)
    assert fig.total == cellkey.scaled(38, 57, fig.n)
    times = sorted(i % 9 for i in range(57))
    assert fig.p50 == times[28] and fig.p90 == times[51]
    cells.forget_origin(session, "")
