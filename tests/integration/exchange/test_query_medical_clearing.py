"""Clearing with each side on its own node: two nodes in one process over the real signed
queries. A 苏州 hospital (node B, serving 江苏 and 浙江) settles claims of a 合肥 resident
insured on node A (上海 and 安徽): B holds the treatment side of the statement between
江苏 and 安徽, A the insured side. Each node clears the period from its own claims and
compares them with the other's figures (count, amount, digest) over the exchange: a
claim whose confirmation has not reached A is a dispute on both nodes, listing it; the
workers resolve it; the agencies' answers travel to the other side; an agency carries a
difference into the next period on both nodes; the other node down leaves the statement
unreconciled (not confirmable). Of the two nodes A (the smaller node id) compares: it
asks B for its figures and lines and sends B the result; B compares its own fresh
figures with those A sent last. The jurisdictions' net positions over both nodes sum to
zero once the two sides agree. SQLite and PostgreSQL."""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from tongban.calendar.service import local_date
from tongban.cli import app as cli_app
from tongban.contexts import build_node
from tongban.db import utcnow
from tongban.errors import Conflict
from tongban.exchange import query
from tongban.medical import clearing_exchange as cx
from tongban.medical import clearing_service as cs
from tongban.medical import domain, service, settlement, tasks
from tongban.medical.models import ClearingNet, ClearingStatement, Settlement
from tongban.medical.reconcile import Figures, Holder
from tongban.medical.service import ItemInput

from builders import (
    make_filing,
    make_hospital_staff,
    make_institution,
    make_insured,
    make_medical_officer,
    medical_reference,
)

ITEMS = [ItemInput("T0006", 1, 300_000)]
PAIR = ("320000", "340000")  # 江苏 (B's) ⇄ 安徽 (A's)


@pytest.fixture
def world(fed: dict[str, Any], hosts: Any) -> Iterator[Any]:
    a, b = fed["node-a"], fed["node-b"]
    client = httpx.Client(transport=hosts)
    query.install_client(a.id, client)
    query.install_client(b.id, client)
    with a.session() as s:
        medical_reference(s)
        person = make_insured(s, "340100", balance=100_000)
        make_filing(s, person, "320500")
        ah = make_medical_officer(s, "340000")
        s.commit()
        id_number, ah_id = person.id_number, ah.id
    with b.session() as s:
        inst = make_institution(s, "320500", level=3, district="320508")
        staff = make_hospital_staff(s, inst)
        js = make_medical_officer(s, "320000")
        s.commit()
        staff_id, js_id = staff.id, js.id
    yield types.SimpleNamespace(
        a=a, b=b, hosts=hosts, id_number=id_number, staff=staff_id, ah=ah_id, js=js_id
    )
    query.install_client(a.id, None)
    query.install_client(b.id, None)
    client.close()


def _settle(w: Any, txn: str, *, confirm: bool) -> Settlement:
    from tongban.identity.models import Account

    with w.b.session() as s:
        staff = s.get(Account, w.staff)
        v = service.register_visit(s, staff, id_number=w.id_number, visit_no=f"V{txn}")
        service.upload_items(s, staff, v.id, list(ITEMS))
        st, _ = settlement.settle(s, staff, v.id, txn)
        s.commit()
        if confirm:
            assert settlement.sync_with_insured(s, st)
            s.commit()
        return st


def _clear(node: Any, period: str) -> None:
    with node.session() as s:
        cs.clear_period(s, period)
        s.commit()


def _statement(node: Any, period: str) -> Any:
    with node.session() as s:
        st = s.scalar(
            select(ClearingStatement)
            .join(cs.ClearingRun, cs.ClearingRun.id == ClearingStatement.run_id)
            .where(
                cs.ClearingRun.period == period,
                ClearingStatement.side_a == PAIR[0],
                ClearingStatement.side_b == PAIR[1],
            )
        )
        assert st is not None, f"no statement {PAIR} on {node.id}"
        return types.SimpleNamespace(
            id=st.id,
            reconciliation=st.reconciliation,
            a_status=st.a_status,
            b_status=st.b_status,
            b_owes_a=st.b_owes_a,
            claims_b_to_a=st.claims_b_to_a,
            open=[(d.txn_id, d.kind) for d in st.open_differences],
            differences={d.txn_id: (d.status, d.carried_to) for d in st.differences},
            sides={(x.debtor, x.holder): (x.claims, x.amount, x.node) for x in st.sides},
        )


def _nets(node: Any, period: str) -> dict[str, int]:
    with node.session() as s:
        run = cs.get_run(s, period)
        return {
            n.jurisdiction_code: n.net
            for n in s.scalars(select(ClearingNet).where(ClearingNet.run_id == run.id))
        }


def _actor(node: Any, account_id: Any) -> Any:
    from tongban.identity.models import Account

    s = node.session()
    return s, s.get(Account, account_id)


def test_each_side_clears_on_its_own_node_and_the_two_are_reconciled(world: Any) -> None:
    w = world
    period = domain.period_of(local_date(utcnow()))
    one = _settle(w, "C1", confirm=True)
    two = _settle(w, "C2", confirm=False)  # the confirmation never left B

    # Each node clears from its own claims and asks the other for its figures.
    _clear(w.b, period)
    _clear(w.a, period)
    on_b, on_a = _statement(w.b, period), _statement(w.a, period)
    for st in (on_a, on_b):
        assert st.reconciliation == "differs"
        assert st.open == [("C2", "missing_at_insured")]
    # B's statement is its own settlements; A's its own reservations.
    assert (on_b.b_owes_a, on_b.claims_b_to_a) == (one.fund + two.fund, 2)
    assert (on_a.b_owes_a, on_a.claims_b_to_a) == (one.fund, 1)
    assert on_b.sides[("340000", "treatment")] == (2, one.fund + two.fund, None)
    assert on_b.sides[("340000", "insured")] == (1, one.fund, "node-a")
    assert on_a.sides[("340000", "treatment")] == (2, one.fund + two.fund, "node-b")
    # The dispute is on the command line too.
    out = CliRunner().invoke(
        cli_app,
        ["medical", "clear", "--period", period],
        obj=build_node(w.b.settings, w.b.factory),
        env={"COLUMNS": "200"},
    )
    assert out.exit_code == 0, out.stderr
    assert "differs" in out.stdout and "C2" in out.stdout and "missing_at_insured" in out.stdout
    s, officer = _actor(w.b, w.js)
    with s, pytest.raises(Conflict) as e:
        cs.confirm_statement(s, officer, on_b.id)
    assert e.value.type == "statement-not-reconciled"

    # B's worker sends the owed confirmation (with its period); each node's job clears the
    # unreconciled period again: the difference is resolved on both.
    assert settlement.sync_owed(w.b.factory, w.b.settings) == 1
    assert tasks.reconcile_open_periods(w.b.factory, w.b.settings) == [period]
    assert tasks.reconcile_open_periods(w.a.factory, w.a.settings) == [period]
    on_b, on_a = _statement(w.b, period), _statement(w.a, period)
    for st in (on_a, on_b):
        assert (st.reconciliation, st.open, st.differences["C2"][0]) == ("agreed", [], "resolved")
        assert (st.b_owes_a, st.claims_b_to_a) == (one.fund + two.fund, 2)
    # The net positions each node keeps are its own jurisdictions'; together they net out.
    nets_a, nets_b = _nets(w.a, period), _nets(w.b, period)
    assert set(nets_a) <= {"310000", "340000"} and set(nets_b) <= {"320000", "330000"}
    assert nets_a["340000"] == -(one.fund + two.fund) and nets_b["320000"] == one.fund + two.fund
    assert sum(nets_a.values()) + sum(nets_b.values()) == 0

    # Each agency answers on its own node; the other node keeps the answer.
    s, officer = _actor(w.a, w.ah)
    with s:
        cs.confirm_statement(s, officer, on_a.id)
        s.commit()
    assert _statement(w.b, period).b_status == "confirmed"  # 安徽's answer, kept on B
    s, officer = _actor(w.b, w.js)
    with s:
        cs.confirm_statement(s, officer, on_b.id)
        s.commit()
    assert (_statement(w.a, period).a_status, _statement(w.a, period).b_status) == (
        "confirmed",
        "confirmed",
    )

    # A claim left unconfirmed again; 安徽's agency carries it into the next period: B
    # moves its settlement there, and both statements of this period agree.
    three = _settle(w, "C3", confirm=False)
    _clear(w.b, period)
    _clear(w.a, period)
    on_a = _statement(w.a, period)
    assert on_a.open == [("C3", "missing_at_insured")]
    s, officer = _actor(w.a, w.ah)
    with s:
        cs.carry_statement(s, officer, on_a.id)
        s.commit()
    nxt = domain.next_period(period)
    with w.b.session() as s:
        assert s.get(Settlement, three.id).period == nxt
    on_a = _statement(w.a, period)
    assert on_a.reconciliation == "agreed" and on_a.differences["C3"] == ("carried", nxt)
    assert _statement(w.b, period).differences["C3"] == ("carried", nxt)  # marked on B too
    assert tasks.reconcile_open_periods(w.b.factory, w.b.settings) == [period]
    assert _statement(w.b, period).reconciliation == "agreed"
    # In the next period it is counted on B and compared again; its confirmation (in
    # B's period for it) makes the two sides agree there too.
    _clear(w.b, nxt)
    assert _statement(w.b, nxt).reconciliation == "pending"  # A has not compared yet
    _clear(w.a, nxt)
    assert _statement(w.b, nxt).open == [("C3", "missing_at_insured")]
    assert _statement(w.a, nxt).open == [("C3", "missing_at_insured")]
    assert settlement.sync_owed(w.b.factory, w.b.settings) == 1
    _clear(w.b, nxt)
    _clear(w.a, nxt)
    assert _statement(w.b, nxt).reconciliation == _statement(w.a, nxt).reconciliation == "agreed"
    assert sum(_nets(w.a, nxt).values()) + sum(_nets(w.b, nxt).values()) == 0


def test_the_other_node_down_leaves_the_statement_unreconciled(world: Any) -> None:
    w = world
    period = domain.period_of(local_date(utcnow()))
    _settle(w, "D1", confirm=True)
    _clear(w.b, period)
    w.hosts.down.add(w.b.host)
    try:
        _clear(w.a, period)  # A compares: it asks B, which does not answer
        st = _statement(w.a, period)
        assert st.reconciliation == "unreachable"
        s, officer = _actor(w.a, w.ah)
        with s, pytest.raises(Conflict) as e:
            cs.confirm_statement(s, officer, st.id)
        assert "对方节点暂不可用" in e.value.detail
    finally:
        w.hosts.down.discard(w.b.host)
    _clear(w.a, period)
    assert _statement(w.a, period).reconciliation == "agreed"
    assert _statement(w.b, period).reconciliation == "agreed"


def test_only_the_other_side_of_a_statement_may_ask_for_it(world: Any) -> None:
    w = world
    period = domain.period_of(local_date(utcnow()))
    agency = cx.AgencyAnswer(status="pending")

    def held(asker: str, other: str) -> list[Any]:
        return [
            cx.figures_out(asker, other, Holder.INSURED, Figures()),
            cx.figures_out(other, asker, Holder.TREATMENT, Figures()),
        ]

    with w.b.session() as s:
        # B asks as 上海 (which it does not serve): refused by the signature check.
        ask = cx.StatementAsk(
            period=period,
            side_a="310000",
            side_b="340000",
            asker="310000",
            agency=agency,
            figures=held("310000", "340000"),
        )
        with pytest.raises(query.QueryRefused) as e:
            query.ask(s, cx.STATEMENT, source="310000", target="340000", payload=ask)
        assert e.value.type == "exchange/sender-not-serving-source"
        # B asks, as 江苏, for a statement between 上海 and 安徽: refused by the authoriser.
        ask = cx.StatementAsk(
            period=period,
            side_a="310000",
            side_b="340000",
            asker="320000",
            agency=agency,
            figures=held("320000", "340000"),
        )
        with pytest.raises(query.QueryRefused) as e:
            query.ask(s, cx.STATEMENT, source="320000", target="340000", payload=ask)
        assert e.value.type == "exchange/not-allowed"
        # As 江苏, reporting figures it does not hold (安徽's insured side): refused.
        ask = cx.StatementAsk(
            period=period,
            side_a="320000",
            side_b="340000",
            asker="320000",
            agency=agency,
            figures=held("340000", "320000"),
        )
        with pytest.raises(query.QueryRefused) as e:
            query.ask(s, cx.STATEMENT, source="320000", target="340000", payload=ask)
        assert e.value.type == "exchange/bad-payload"
        # The claims 安徽's insured made in 上海 are not listed for 江苏.
        claims = cx.ClaimsAsk(
            period=period, debtor="340000", creditor="310000", holder=Holder.INSURED, buckets=[0]
        )
        with pytest.raises(query.QueryRefused) as e:
            query.ask(s, cx.CLAIMS, source="320000", target="340000", payload=claims)
        assert e.value.type == "exchange/not-allowed"
        s.commit()
