"""The clearing tally (issue 14): the clearing command reads per-period, per-city-pair
partial sums folded from the audit chain instead of scanning the month's settlements.
Exactness is the point: after any sequence of settlements, reversals (within and across
periods), carries and folds at arbitrary moments, the tally's aggregate and digest are
the direct GROUP BY's and polars' and DuckDB's over the claim rows themselves."""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

import duckdb
import polars as pl
import pytest
from sqlalchemy import delete, select, text
from sqlalchemy.orm import sessionmaker
from typer.testing import CliRunner

from tongban.cli import app
from tongban.identity.models import Account
from tongban.kernel.node import bind_settings
from tongban.medical import claim_lines, clearing, clearing_exchange, service, settlement
from tongban.medical import clearing_service as cs
from tongban.medical.models import ClearingTally, ClearingTallyMark, Institution, Settlement
from tongban.medical.service import ItemInput

from builders import make_filing, make_hospital_staff, make_institution, make_insured

OLD = "2020-03"  # a finished month: closing it sends later reversals to 2020-04
CT = [ItemInput("T0006", 1, 250_000), ItemInput("T0001", 1, 2_500)]


class World:
    def __init__(self, session, desks, people) -> None:
        self.session, self.desks, self.people = session, desks, people
        self.n = 0
        self.settled: list[tuple[object, Settlement]] = []

    def settle(self, rng: random.Random) -> Settlement:
        where = rng.choice(sorted(self.desks))
        home = rng.choice(sorted(self.people))
        staff = self.desks[where]
        self.n += 1
        v = service.register_visit(
            self.session, staff, id_number=self.people[home].id_number, visit_no=f"W{self.n}"
        )
        service.upload_items(self.session, staff, v.id, CT)
        s, _ = settlement.settle(self.session, staff, v.id, f"X{self.n}")
        assert settlement.sync_with_insured(self.session, s)
        self.settled.append((staff, s))
        return s

    def reverse(self, rng: random.Random) -> Settlement | None:
        open_ = [(st, s) for st, s in self.settled if s.status == "settled"]
        if not open_:
            return None
        staff, s = rng.choice(open_)
        settlement.reverse(self.session, staff, s.txn_id, reason="冲正")
        return s

    def carry(self, rng: random.Random, closed: set[str]) -> None:
        """Move one claim (or reversal) of an open period to the next open period, as
        carrying a statement's difference does."""
        candidates = [s for _, s in self.settled if s.period not in closed]
        if not candidates:
            return
        s = rng.choice(candidates)
        code = self.session.scalar(
            select(Institution.code).where(Institution.id == s.institution_id)
        )
        sign = -1 if s.status == "reversed" and s.reversal_period != s.period else 1
        period = s.reversal_period if sign < 0 else s.period
        if period in closed:
            return
        line = (s.insured_jurisdiction, s.treatment_jurisdiction, code, s.txn_id, sign)
        clearing_exchange.move_lines(self.session, period, [line])


def _periods(session) -> set[str]:
    out = set()
    for p, rp in session.execute(select(Settlement.period, Settlement.reversal_period)):
        out.add(p)
        if rp:
            out.add(rp)
    return out


def _sorted(agg: pl.DataFrame) -> pl.DataFrame:
    return agg.select(list(clearing.PAIR_SCHEMA)).sort(list(clearing.KEYS))


def _assert_exact(session) -> None:
    """For every period: tally = direct GROUP BY = polars = DuckDB over the claim rows."""
    for period in sorted(_periods(session)):
        tally = cs.load_aggregate(session, period)
        scan = cs.load_aggregate(session, period, rescan=True)
        assert _sorted(tally).equals(_sorted(scan)), period
        rows = [
            tuple(r)
            for q in claim_lines.clearing_queries(session, period)
            for r in session.execute(q)
        ]
        frame = pl.DataFrame(rows, schema=clearing.SCHEMA, orient="row")
        digest = clearing.finish(tally).digest
        assert digest == clearing.finish(scan).digest == clearing.compute(frame).digest
        con = duckdb.connect()
        con.execute(
            "CREATE TABLE c (insured_j INT, treatment_j INT, insured_city INT,"
            " treatment_city INT, fund BIGINT, sign INT)"
        )
        if rows:
            con.executemany("INSERT INTO c VALUES (?, ?, ?, ?, ?, ?)", rows)
        duck = con.execute(
            "SELECT insured_j, treatment_j, insured_city, treatment_city,"
            " count(*) FILTER (WHERE sign > 0), count(*) FILTER (WHERE sign < 0), sum(fund)"
            " FROM c GROUP BY ALL"
        ).fetchall()
        agg = pl.DataFrame(duck, schema=clearing.PAIR_SCHEMA, orient="row")
        assert clearing.finish(agg).digest == digest


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_folds_in_arbitrary_batches_equal_the_direct_computation(session, desks_people, seed):
    """Settlements, reversals in their own period and (after the old period closes) in
    the next one, carries, and folds at random moments: at every check the tally equals
    the direct GROUP BY, polars and DuckDB over the claim rows, to the fen and digest."""
    rng = random.Random(seed)
    w = World(session, *desks_people)
    # Claims of a finished month, put there before the tally exists (its first fold
    # builds it from the rows).
    for _ in range(4):
        s = w.settle(rng)
        s.period = OLD
    session.flush()
    closed: set[str] = set()
    for step in range(14):
        op = rng.choice(["settle", "settle", "reverse", "carry", "fold", "check"])
        if step == 5:
            cs.close_period(session, OLD, by="测试")
            closed.add(OLD)
        if op == "settle":
            w.settle(rng)
        elif op == "reverse":
            w.reverse(rng)
        elif op == "carry":
            w.carry(rng, closed)
        elif op == "fold":
            cs.fold_tally(session)
        else:
            _assert_exact(session)
    _assert_exact(session)
    assert session.scalar(select(ClearingTally.period).limit(1)) is not None


def test_a_reversal_and_a_carry_after_a_fold_are_counted(session, desks_people):
    rng = random.Random(7)
    w = World(session, *desks_people)
    olds = [w.settle(rng) for _ in range(3)]
    for s in olds:
        s.period = OLD
    session.flush()
    now = w.settle(rng).period
    first = cs.clear_period(session, OLD)  # folds: the tally is built here
    assert first.claim_count == 3
    # Reversed in its own (open) period after the fold: the claim drops out.
    staff = next(st for st, s in w.settled if s is olds[0])
    settlement.reverse(session, staff, olds[0].txn_id, reason="重复收费")
    assert cs.clear_period(session, OLD).claim_count == 2
    # Closed, then reversed: counted with the opposite sign in the next open period.
    cs.close_period(session, OLD, by="测试")
    staff = next(st for st, s in w.settled if s is olds[1])
    settlement.reverse(session, staff, olds[1].txn_id, reason="重复收费")
    nxt = cs.clear_period(session, olds[1].reversal_period)
    assert (nxt.claim_count, nxt.reversal_count) == (0, 1)
    assert nxt.total_fund == -olds[1].fund
    # A carry after a fold moves the claim out of its period.
    before = cs.clear_period(session, now).claim_count
    assert before == 1
    w.carry(random.Random(0), {OLD})
    assert cs.clear_period(session, now).claim_count == 0
    _assert_exact(session)


def test_rescan_and_rebuild_agree_with_the_fold(session, desks_people):
    rng = random.Random(11)
    w = World(session, *desks_people)
    for _ in range(3):
        w.settle(rng)
    period = w.settled[0][1].period
    folded = cs.clear_period(session, period).digest
    w.reverse(rng)
    w.settle(rng)
    assert cs.fold_tally(session).entries > 0
    tally = cs.clear_period(session, period).digest
    rescanned = cs.clear_period(session, period, rescan=True).digest
    assert tally == rescanned != folded
    assert cs.rebuild_tally(session).rebuilt
    assert cs.clear_period(session, period).digest == tally
    assert cs.fold_tally(session).entries == 0  # nothing new: nothing read


def _cleanup_settlements():
    """test_concurrency's clean-up of a person, an institution and what settling made."""
    path = Path(__file__).with_name("test_concurrency.py")
    spec = importlib.util.spec_from_file_location("_medical_concurrency_cleanup", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._cleanup


def test_a_settlement_committing_after_a_fold_is_folded_by_the_next(engine, settings, db_url):
    """Real commits (PostgreSQL): a settlement written before a fold and committed after
    it is not in that fold (not committed), and the next fold counts it: the chain
    position of an entry is given after its commit, never behind a watermark already
    read."""
    if not db_url.startswith("postgresql"):
        pytest.skip("needs concurrent writers: SQLite serialises them")
    factory = bind_settings(sessionmaker(bind=engine, expire_on_commit=False), settings)
    with factory() as s:
        inst = make_institution(s, "310000", level=3)
        staff = make_hospital_staff(s, inst)
        person = make_insured(s, "340100", balance=100_000)
        make_filing(s, person, "310000")
        v = service.register_visit(s, staff, id_number=person.id_number, visit_no="LATE")
        service.upload_items(s, staff, v.id, CT)
        s.commit()
        ids = (person.id, inst.id, staff.id, person.id_number)
    try:
        with factory() as s:
            cs.fold_tally(s)
            s.commit()
        writer = factory()
        st, _ = settlement.settle(writer, writer.get(Account, ids[2]), v.id, "LATE-1")
        writer.flush()
        with factory() as s:  # the fold runs while the settlement is not committed
            cs.fold_tally(s)
            s.commit()
        writer.commit()
        period = st.period
        writer.close()
        with factory() as s:
            assert cs.fold_tally(s).entries >= 1
            tally = cs.load_aggregate(s, period)
            scan = cs.load_aggregate(s, period, rescan=True)
            assert _sorted(tally).equals(_sorted(scan))
            pair = tally.filter(
                (pl.col("insured_city") == 340100) & (pl.col("treatment_city") == 310000)
            )
            assert pair["claims"].sum() >= 1
            s.commit()
    finally:
        with factory() as s:
            s.execute(delete(ClearingTally))
            s.execute(delete(ClearingTallyMark))
            s.commit()
        _cleanup_settlements()(factory, *ids)


def test_the_commands_fold_rebuild_and_rescan(session, kernel_node, desks_people):
    """`tongban medical tally [--rebuild]` and `tongban medical clear --rescan` as an
    operator runs them; the figures are the tally's either way."""
    rng = random.Random(5)
    w = World(session, *desks_people)
    w.settle(rng)
    period = w.settled[0][1].period
    session.commit()

    def cli(*args: str) -> str:
        result = CliRunner().invoke(app, ["medical", *args], obj=kernel_node)
        assert result.exit_code == 0, result.output
        return result.stdout

    assert "rebuilt" in cli("tally")  # the first fold builds it
    w.settle(rng)
    session.commit()
    out = cli("tally")
    assert "folded" in out and "(0 entries" not in out  # the new settlement's entries
    assert "rebuilt" in cli("tally", "--rebuild")
    assert "(0 entries read)" in cli("tally")  # nothing new since the rebuild

    def digest(out: str) -> str:
        return out.rsplit("digest ", 1)[1].split()[0]

    folded = digest(cli("clear", "--period", period))
    assert len(folded) == 64 and digest(cli("clear", "--period", period, "--rescan")) == folded


def test_entries_chained_before_the_cities_were_in_their_body_are_folded_from_the_rows(
    session, desks_people, monkeypatch
):
    """A settlement's line comes from its chain entry's body (period, jurisdictions,
    cities, fund); entries chained before the cities were in the body are joined to
    their rows instead. A chain holding both kinds folds to the direct computation."""
    rng = random.Random(11)
    w = World(session, *desks_people)
    w.settle(rng)
    cs.fold_tally(session)  # the tally exists: what follows is folded from the chain
    legacy = tuple(
        f for f in Settlement.__audit_fields__ if f not in ("insured_city", "treatment_city")
    )
    with monkeypatch.context() as m:
        m.setattr(Settlement, "__audit_fields__", legacy)
        for _ in range(3):
            w.settle(rng)
    for _ in range(3):
        w.settle(rng)
    w.reverse(rng)
    session.flush()
    ours = {f"settlement:{s.id}" for _, s in w.settled}
    bodies = [
        json.loads(b)
        for (subject, b) in session.execute(
            text("SELECT subject, body FROM audit_entry WHERE kind = 'medical.settlement'")
        )
        if subject in ours
    ]
    assert sum("insured_city" in b for b in bodies) == 4
    assert sum("insured_city" not in b for b in bodies) == 3
    cs.fold_tally(session)
    _assert_exact(session)


def test_the_fold_groups_by_hashing_and_leaves_the_planner_settings_as_found(session, desks_people):
    """PostgreSQL: the fold statement is planned with sorting off (a hash aggregate; the
    planner otherwise sorted its lines on five text keys), only for that statement: the
    setting is back as it was afterwards, whatever it was, and the tally still equals
    the direct computation."""
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("a PostgreSQL planner setting")
    rng = random.Random(11)
    w = World(session, *desks_people)
    cs.fold_tally(session)  # builds the tally: what follows is a tail fold
    for value in ("on", "off"):
        session.execute(text("SELECT set_config('enable_sort', :v, true)"), {"v": value})
        for _ in range(3):
            w.settle(rng)
        session.flush()
        folded = cs.fold_tally(session)
        assert folded.entries >= 3 and not folded.rebuilt
        assert session.scalar(text("SELECT current_setting('enable_sort')")) == value
        _assert_exact(session)
    session.execute(text("SELECT set_config('enable_sort', 'on', true)"))
