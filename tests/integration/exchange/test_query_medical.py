"""Outpatient settlement across two nodes in one process, over the real signed queries: a
苏州 hospital (node B, serving 江苏 and 浙江) settles a 合肥 resident whose insurance
record, policy and accumulators live on node A (上海 and 安徽). The accumulators move on
A only, through a reservation confirmed after B's transaction; the same transaction id
moves nothing twice; A down or slow is a 503 in Chinese within the deadline and no
settlement; a forged answer is refused; a node may not ask for an institution of a
jurisdiction it does not serve; and a settlement interrupted between its steps is
resolved by the workers — confirmed when B's settlement exists, expired when it does
not — exactly once. SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from tongban.calendar.service import local_date
from tongban.db import utcnow
from tongban.errors import DomainError
from tongban.evidence.models import DataAccess
from tongban.exchange import query
from tongban.exchange.models import ExchangeQuery
from tongban.identity import service as identity
from tongban.identity.models import Account
from tongban.medical import insured, queries, service, settlement
from tongban.medical.domain import ItemClass
from tongban.medical.models import (
    Accumulator,
    InsuredPerson,
    Reservation,
    ReservationEvent,
    Settlement,
)
from tongban.medical.service import ItemInput

from builders import (
    csrf_of,
    make_filing,
    make_hospital_staff,
    make_institution,
    make_insured,
    medical_reference,
    sign_in,
)

UNAVAILABLE = "参保地系统暂不可用，请稍后结算或转为手工报销"
#: 苏州 三级 catalogue; 合肥 employee policy: deductible 1000.00, 75%, cap 4000.00.
ITEMS = [ItemInput("T0006", 1, 300_000)]  # CT, 乙 10%: beyond the deductible


class Tamper(httpx.BaseTransport):
    """Routes like `Hosts` and can slow an answer down."""

    def __init__(self, hosts: Any) -> None:
        self.hosts = hosts
        self.delay = 0.0
        self.alter: Any = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.delay:
            time.sleep(self.delay)
        r = self.hosts.handle_request(request)
        return self.alter(request, r) if self.alter else r


@pytest.fixture
def nodes(fed: dict[str, Any], hosts: Any) -> Iterator[Any]:
    """A (the insured node) and B (the hospital's), queries routed in-process; B's
    through a transport the test can slow down."""
    a, b = fed["node-a"], fed["node-b"]
    tamper = Tamper(hosts)
    plain, slow = httpx.Client(transport=hosts), httpx.Client(transport=tamper)
    query.install_client(a.id, plain)
    query.install_client(b.id, slow)
    yield a, b, tamper, hosts
    query.install_client(a.id, None)
    query.install_client(b.id, None)
    plain.close()
    slow.close()


@pytest.fixture
def world(nodes: Any) -> Any:
    """A 合肥 employee insured on A with a filing for 苏州 and 1000.00 in the personal
    account; a 苏州 三级 hospital with a counter account on B."""
    a, b, tamper, hosts = nodes
    started = utcnow()
    # The databases live for the module: earlier tests' pending work is put out of the
    # workers' way, so that what they count here is this test's.
    with a.session() as s:
        s.execute(
            update(Reservation).where(Reservation.state == "reserved").values(state="released")
        )
        s.commit()
    with b.session() as s:
        s.execute(update(Settlement).values(insured_ack="refused"))
        s.commit()
    with a.session() as s:
        medical_reference(s)  # the insured node's policies
        person = make_insured(s, "340100", balance=100_000)
        make_filing(s, person, "320500")
        s.commit()
        id_number = person.id_number
    with b.session() as s:
        inst = make_institution(s, "320500", level=3, district="320508")
        staff = make_hospital_staff(s, inst)
        token = identity.issue_token(s, staff)[0]
        s.commit()
    import types

    return types.SimpleNamespace(
        a=a,
        b=b,
        tamper=tamper,
        hosts=hosts,
        id_number=id_number,
        staff=staff.id,
        token=token,
        started=started,
    )


def _staff(s: Any, w: Any) -> Account:
    account = s.get(Account, w.staff)
    assert account is not None
    return account


def _visit(w: Any, no: str = "V1") -> Any:
    with w.b.session() as s:
        staff = _staff(s, w)
        v = service.register_visit(s, staff, id_number=w.id_number, visit_no=no)
        service.upload_items(s, staff, v.id, list(ITEMS))
        s.commit()
        return v.id


def _acc_a(w: Any) -> tuple[int, int, int]:
    with w.a.session() as s:
        person = s.scalar(select(InsuredPerson).where(InsuredPerson.id_number == w.id_number))
        assert person is not None
        row = s.get(Accumulator, (person.id, local_date(utcnow()).year))
        return (
            row.deductible_used if row else 0,
            row.fund_paid if row else 0,
            person.account_balance,
        )


def _reservations(w: Any) -> list[tuple[str, str]]:
    """This test's person's reservations on A (the databases live for the module)."""
    with w.a.session() as s:
        rows = s.scalars(
            select(Reservation)
            .join(InsuredPerson, InsuredPerson.id == Reservation.insured_id)
            .where(InsuredPerson.id_number == w.id_number)
            .order_by(Reservation.txn_id)
        )
        return [(r.txn_id, r.state) for r in rows]


def _events(w: Any, txn_id: str) -> list[str]:
    with w.a.session() as s:
        return list(
            s.scalars(
                select(ReservationEvent.action)
                .join(Reservation, Reservation.id == ReservationEvent.reservation_id)
                .where(Reservation.txn_id == txn_id)
                .order_by(ReservationEvent.seq)
            )
        )


def _settle(w: Any, visit_id: Any, txn_id: str, *, confirm: bool = True) -> Settlement:
    """As the counter does: settle, commit B's transaction, then confirm on A."""
    with w.b.session() as s:
        st, _ = settlement.settle(s, _staff(s, w), visit_id, txn_id)
        s.commit()
        if confirm:
            settlement.sync_with_insured(s, st)
            s.commit()
        return st


def _settlement_b(w: Any, txn_id: str) -> Settlement | None:
    with w.b.session() as s:
        return s.scalar(select(Settlement).where(Settlement.txn_id == txn_id))


def test_the_insured_node_owns_the_record_and_the_accumulators_move_there_only(world: Any) -> None:
    w = world
    with w.b.session() as s:
        e = service.eligibility(s, _staff(s, w), w.id_number)
        s.commit()
    assert (e.person.jurisdiction_code, e.person.city_code, e.person.scheme) == (
        "340000",
        "340100",
        "employee",
    )
    assert e.decision.allowed and e.filing is not None
    assert (e.policy.deductible, e.policy.fund_ratio_bp) == (100_000, 7_500)
    assert e.accumulators.account_balance == 100_000
    visit_id = _visit(w)
    with w.b.session() as s:
        pre = settlement.presettle(s, _staff(s, w), visit_id)
        s.commit()
    assert _acc_a(w) == (0, 0, 100_000)  # pre-settlement moves nothing

    st = _settle(w, visit_id, "T-1")
    # 300000 乙 10%: eligible 270000; deductible 100000; fund 75% × 170000 = 127500;
    # the account pays 100000 of the rest, cash 72500. The same split as pre-settlement.
    assert (st.total, st.deductible_part, st.fund, st.account, st.cash) == (
        300_000,
        100_000,
        127_500,
        100_000,
        72_500,
    )
    assert (pre.split.fund, pre.split.account) == (st.fund, st.account)
    assert _acc_a(w) == (100_000, 127_500, 0)
    assert _reservations(w) == [("T-1", "confirmed")]
    assert _events(w, "T-1") == ["reserve", "confirm"]
    stored = _settlement_b(w, "T-1")
    assert stored is not None and stored.insured_ack == "confirmed"
    assert stored.reservation_id is not None and stored.insured_jurisdiction == "340000"
    with w.b.session() as s:
        # The hospital's node holds no insurance record and no accumulators.
        assert s.scalar(select(func.count()).select_from(InsuredPerson)) == 0
        assert s.scalar(select(func.count()).select_from(Accumulator)) == 0
    # Every query on both nodes; the disclosures in the person's data-use log on A.
    mine = ExchangeQuery.at >= w.started
    with w.a.session() as s:
        answered = s.execute(
            select(ExchangeQuery.id, ExchangeQuery.type).where(
                mine, ExchangeQuery.role == "answered"
            )
        )
        answered_rows = sorted((str(r.id), r.type) for r in answered)
        log = s.scalars(select(DataAccess).where(DataAccess.subject_identifier == w.id_number))
        uses = [(d.kind, d.purpose, d.outcome, d.requester_jurisdiction) for d in log]
    with w.b.session() as s:
        asked = s.execute(
            select(ExchangeQuery.id, ExchangeQuery.type).where(mine, ExchangeQuery.role == "asked")
        )
        asked_rows = sorted((str(r.id), r.type) for r in asked)
    assert asked_rows == answered_rows  # the same queries, under the same ids
    answered_types = [t for _, t in answered_rows]
    assert answered_types.count("medical.eligibility") == 3  # lookup, registration, pre-settle
    assert {"medical.reserve", "medical.confirm"} <= set(answered_types)
    assert len(uses) == 4
    assert set(uses) == {("medical_insurance", "cross_region_settlement", "answered", "320000")}


def test_the_same_transaction_id_moves_nothing_twice(world: Any) -> None:
    w = world
    visit_id = _visit(w)
    first = _settle(w, visit_id, "T-2")
    after = _acc_a(w)
    again = _settle(w, visit_id, "T-2")
    assert again.id == first.id and _acc_a(w) == after
    # The reservation itself is idempotent too: asked again, it answers the same one.
    with w.b.session() as s:
        staff = _staff(s, w)
        inst = service.institution_of(s, staff)
        v = service.get_visit(s, staff, visit_id)
        ask = queries.ReserveAsk(
            txn_id="T-2",
            request_hash=service.visit_fingerprint(v),
            id_number=w.id_number,
            institution=queries.institution_ref(inst),
            lines=[queries.LineIn(amount=300_000, item_class=ItemClass.B, self_pay_first_bp=1_000)],
        )
        got = query.ask(s, queries.RESERVE, source="320000", target="340000", payload=ask)
        s.commit()
    assert got.reservation_id == first.reservation_id and got.state == "confirmed"
    assert _acc_a(w) == after and _events(w, "T-2") == ["reserve", "confirm"]


def test_insured_node_down_is_a_clear_503_and_no_settlement(world: Any) -> None:
    w = world
    visit_id = _visit(w)
    w.hosts.down.add(w.a.host)
    with w.b.session() as s:
        with pytest.raises(DomainError) as e:
            settlement.settle(s, _staff(s, w), visit_id, "T-3")
        s.rollback()
    assert (e.value.status, e.value.type) == (503, "insured-node-unavailable")
    assert e.value.detail == "参保地系统暂不可用，请稍后结算或转为手工报销"
    assert _settlement_b(w, "T-3") is None
    # Over the API: the counter system gets the same problem+json.
    client = TestClient(w.hosts.apps[w.b.host].app, raise_server_exceptions=False)
    r = client.post(
        "/api/v1/medical/settlements",
        json={"visit_id": str(visit_id), "txn_id": "T-3"},
        headers={"Authorization": f"Bearer {w.token}"},
    )
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["detail"] == "参保地系统暂不可用，请稍后结算或转为手工报销"
    w.hosts.down.discard(w.a.host)
    assert _reservations(w) == [] and _acc_a(w) == (0, 0, 100_000)
    # The unanswered queries are recorded on B although its transactions rolled back.
    with w.b.session() as s:
        outcomes = set(
            s.scalars(
                select(ExchangeQuery.outcome).where(
                    ExchangeQuery.at >= w.started, ExchangeQuery.type == "medical.reserve"
                )
            )
        )
    assert outcomes == {"unavailable"}


def test_a_slow_insured_node_answers_within_the_deadline_and_the_late_reservation_expires(
    world: Any,
) -> None:
    w = world
    visit_id = _visit(w)
    before, w.b.settings.query_timeout_ms = w.b.settings.query_timeout_ms, 300
    w.tamper.delay = 3.0
    asked_from = utcnow()
    try:
        with w.b.session() as s:
            with pytest.raises(DomainError) as e:
                settlement.settle(s, _staff(s, w), visit_id, "T-4")
            s.rollback()
    finally:
        w.b.settings.query_timeout_ms = before
        w.tamper.delay = 0.0
    assert e.value.status == 503
    # B stopped waiting at its deadline, not when the slow answer came (3 s): the query's
    # own record says how long it waited. (Not the whole settle's wall time: on a loaded
    # machine the rest of the settle alone once took seconds.)
    with w.b.session() as s:
        asked = s.execute(
            select(ExchangeQuery.outcome, ExchangeQuery.reason, ExchangeQuery.duration_ms).where(
                ExchangeQuery.at >= asked_from, ExchangeQuery.type == "medical.reserve"
            )
        ).all()
    assert [(o, r) for o, r, _ in asked] == [("unavailable", "timeout")]
    assert asked[0][2] < 3000
    assert _settlement_b(w, "T-4") is None
    # The slow request still reached A: its reservation counts (the safe side) …
    deadline = time.monotonic() + 10
    while _reservations(w) != [("T-4", "reserved")] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _reservations(w) == [("T-4", "reserved")]
    assert _acc_a(w) != (0, 0, 100_000)
    # … until it is overdue and B says it holds no settlement for it: expired, once.
    later = utcnow() + insured.RESERVATION_TTL + timedelta(seconds=1)
    assert insured.resolve_overdue(w.a.factory, w.a.settings, later) == 1
    assert insured.resolve_overdue(w.a.factory, w.a.settings, later) == 0
    assert _reservations(w) == [("T-4", "expired")]
    assert _events(w, "T-4") == ["reserve", "expire"]
    assert _acc_a(w) == (0, 0, 100_000)


def test_a_forged_answer_settles_nothing(world: Any) -> None:
    w = world
    visit_id = _visit(w)

    def forge(request: httpx.Request, r: httpx.Response) -> httpx.Response:
        body = r.content.replace(b'"fund":127500', b'"fund":999999')
        return httpx.Response(r.status_code, headers=dict(r.headers), content=body)

    w.tamper.alter = forge
    try:
        with w.b.session() as s:
            with pytest.raises(DomainError) as e:
                settlement.settle(s, _staff(s, w), visit_id, "T-5")
            s.rollback()
    finally:
        w.tamper.alter = None
    assert e.value.status == 503
    assert _settlement_b(w, "T-5") is None


def test_a_node_may_not_ask_for_an_institution_of_a_jurisdiction_it_does_not_serve(
    world: Any,
) -> None:
    w = world
    ref = queries.InstitutionRef(
        code="H310000999", name="冒名医院", jurisdiction="310000", city="310000", level=3
    )
    ask = queries.EligibilityAsk(id_number=w.id_number, institution=ref)
    with w.b.session() as s:
        # Claiming to ask as 上海: refused by the signature check (B does not serve it) …
        with pytest.raises(query.QueryRefused) as e:
            query.ask(s, queries.ELIGIBILITY, source="310000", target="340000", payload=ask)
        assert (e.value.type, e.value.status) == ("exchange/sender-not-serving-source", 403)
        # … asking as 江苏 for a 上海 institution: refused by the query's authoriser.
        with pytest.raises(query.QueryRefused) as e:
            query.ask(s, queries.ELIGIBILITY, source="320000", target="340000", payload=ask)
        assert (e.value.type, e.value.status) == ("exchange/not-allowed", 403)
        assert "310000" in e.value.detail
        s.commit()
    with w.a.session() as s:
        # Nothing disclosed, nothing in the person's log.
        log = select(func.count()).where(DataAccess.subject_identifier == w.id_number)
        assert s.scalar(log) == 0


def test_only_the_institutions_node_may_confirm_its_reservation(world: Any) -> None:
    w = world
    visit_id = _visit(w)
    _settle(w, visit_id, "T-6", confirm=False)
    # B serves 苏州's hospital, but claims the reservation was made for one of 上海.
    ref = queries.TxnRef(
        institution_code=_inst_code(w),
        institution_jurisdiction="310000",
        txn_id="T-6",
    )
    with w.b.session() as s:
        with pytest.raises(query.QueryRefused) as e:
            query.ask(s, queries.CONFIRM, source="320000", target="340000", payload=ref)
        s.commit()
    assert e.value.type == "exchange/not-allowed"
    assert _reservations(w) == [("T-6", "reserved")]


def _inst_code(w: Any) -> str:
    with w.b.session() as s:
        return service.institution_of(s, _staff(s, w)).code


def test_an_interrupted_settlement_is_confirmed_by_the_worker_exactly_once(world: Any) -> None:
    w = world
    visit_id = _visit(w)
    # Killed after B's commit, before the confirmation left.
    _settle(w, visit_id, "T-7", confirm=False)
    assert _reservations(w) == [("T-7", "reserved")]
    # A's worker, once the reservation is overdue, asks B: the settlement exists.
    later = utcnow() + insured.RESERVATION_TTL + timedelta(seconds=1)
    assert insured.resolve_overdue(w.a.factory, w.a.settings, later) == 1
    assert _reservations(w) == [("T-7", "confirmed")]
    # B's worker still owes the confirmation: sent, answered idempotently, then quiet.
    assert settlement.sync_owed(w.b.factory, w.b.settings) == 1
    assert settlement.sync_owed(w.b.factory, w.b.settings) == 0
    assert insured.resolve_overdue(w.a.factory, w.a.settings, later) == 0
    assert _events(w, "T-7") == ["reserve", "confirm"]
    stored = _settlement_b(w, "T-7")
    assert stored is not None and stored.insured_ack == "confirmed"
    assert _acc_a(w) == (100_000, 127_500, 0)


def test_the_hospitals_worker_confirms_what_the_counter_could_not(world: Any) -> None:
    w = world
    visit_id = _visit(w)
    with w.b.session() as s:
        st, _ = settlement.settle(s, _staff(s, w), visit_id, "T-8")
        s.commit()
        w.hosts.down.add(w.a.host)  # A goes down between B's commit and the confirmation
        assert settlement.sync_with_insured(s, st) is False
        s.commit()
    assert settlement.sync_owed(w.b.factory, w.b.settings) == 0  # still down
    w.hosts.down.discard(w.a.host)
    assert settlement.sync_owed(w.b.factory, w.b.settings) == 1
    assert _reservations(w) == [("T-8", "confirmed")]
    assert _events(w, "T-8") == ["reserve", "confirm"]


def test_an_abandoned_reservation_expires_exactly_once(world: Any) -> None:
    w = world
    visit_id = _visit(w)
    # Killed after the reservation, before B's settlement committed: B rolls back.
    with w.b.session() as s:
        settlement.settle(s, _staff(s, w), visit_id, "T-9")
        s.rollback()
    assert _settlement_b(w, "T-9") is None
    assert _reservations(w) == [("T-9", "reserved")]
    assert _acc_a(w) == (100_000, 127_500, 0)  # counts while reserved: never used twice
    now_ = utcnow()
    assert insured.resolve_overdue(w.a.factory, w.a.settings, now_) == 0  # not overdue yet
    w.hosts.down.add(w.b.host)
    later = now_ + insured.RESERVATION_TTL + timedelta(seconds=1)
    assert insured.resolve_overdue(w.a.factory, w.a.settings, later) == 0  # B silent: kept
    assert _reservations(w) == [("T-9", "reserved")]
    w.hosts.down.discard(w.b.host)
    assert insured.resolve_overdue(w.a.factory, w.a.settings, later) == 1
    assert insured.resolve_overdue(w.a.factory, w.a.settings, later) == 0
    assert _reservations(w) == [("T-9", "expired")]
    assert _events(w, "T-9") == ["reserve", "expire"]
    assert _acc_a(w) == (0, 0, 100_000)
    # The visit is still open at B: it settles again under a new transaction id.
    _settle(w, visit_id, "T-9B")
    assert _acc_a(w) == (100_000, 127_500, 0)


def test_a_reversal_travels_to_the_insured_node_and_is_retried(world: Any) -> None:
    w = world
    visit_id = _visit(w)
    _settle(w, visit_id, "T-10")
    w.hosts.down.add(w.a.host)
    with w.b.session() as s:
        r = settlement.reverse(s, _staff(s, w), "T-10", reason="收费错误")
        s.commit()
        assert settlement.sync_with_insured(s, r) is False
        s.commit()
    # Reversed at B; on A the amounts keep counting until it has the reversal.
    assert _acc_a(w) == (100_000, 127_500, 0)
    w.hosts.down.discard(w.a.host)
    assert settlement.sync_owed(w.b.factory, w.b.settings) == 1
    assert settlement.sync_owed(w.b.factory, w.b.settings) == 0
    assert _reservations(w) == [("T-10", "reversed")]
    assert _events(w, "T-10") == ["reserve", "confirm", "reverse"]
    assert _acc_a(w) == (0, 0, 100_000)


def test_the_counter_pages_say_so_when_the_insured_node_is_down(world: Any) -> None:
    w = world
    visit_id = _visit(w)
    with w.b.session() as s:
        username = _staff(s, w).username
    page = TestClient(w.hosts.apps[w.b.host].app, raise_server_exceptions=False)
    sign_in(page, username)
    w.hosts.down.add(w.a.host)
    try:
        counter = page.get("/medical/counter")
        r = page.post(
            "/medical/counter",
            data={"csrf_token": csrf_of(counter.text), "id_number": w.id_number},
        )
        assert r.status_code == 503
        assert UNAVAILABLE in r.text and 'role="alert"' in r.text
        visit = page.get(f"/medical/counter/visits/{visit_id}")
        r = page.post(
            f"/medical/counter/visits/{visit_id}/settle",
            data={"csrf_token": csrf_of(visit.text), "txn_id": "T-11"},
        )
        assert r.status_code == 503 and UNAVAILABLE in r.text
    finally:
        w.hosts.down.discard(w.a.host)
    assert _settlement_b(w, "T-11") is None
