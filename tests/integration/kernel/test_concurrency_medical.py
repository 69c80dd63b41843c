"""Two counters of one hospital act on one settlement at the same moment, from two
threads, each with its own HTTP client, database session and real commit: exactly one
succeeds, the other gets a 409 problem+json (never a 500), the accumulators move once,
and the settlement's history has no two events with one number. Everything created
here is deleted at the end."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from concurrency import one_wins, race
from tongban.calendar.service import local_date
from tongban.contexts import build_node
from tongban.db import utcnow
from tongban.evidence.models import DataAccess
from tongban.exchange.models import ExchangeQuery
from tongban.identity import service as identity
from tongban.identity.models import Account, ApiToken
from tongban.kernel.node import bind_settings
from tongban.medical import service, settlement
from tongban.medical.models import (
    Accumulator,
    CatalogueItem,
    FeeItem,
    Filing,
    HospitalStaff,
    Institution,
    InsuredPerson,
    PolicyRule,
    Reservation,
    ReservationEvent,
    Settlement,
    SettlementEvent,
    Visit,
)
from tongban.medical.service import ItemInput
from tongban.web.app import create_app

from builders import make_filing, make_hospital_staff, make_institution, make_insured


def _cleanup(
    factory: sessionmaker[Session], person_id: Any, inst_id: Any, staff: list[Any]
) -> None:
    with factory() as s:
        id_number = s.get(InsuredPerson, person_id).id_number  # type: ignore[union-attr]
        visits = select(Visit.id).where(Visit.id_number == id_number)
        settlements = select(Settlement.id).where(Settlement.id_number == id_number)
        reservations = select(Reservation.id).where(Reservation.insured_id == person_id)
        s.execute(delete(SettlementEvent).where(SettlementEvent.settlement_id.in_(settlements)))
        s.execute(delete(Settlement).where(Settlement.id_number == id_number))
        s.execute(delete(FeeItem).where(FeeItem.visit_id.in_(visits)))
        s.execute(delete(Visit).where(Visit.id_number == id_number))
        s.execute(delete(ReservationEvent).where(ReservationEvent.reservation_id.in_(reservations)))
        s.execute(delete(Reservation).where(Reservation.insured_id == person_id))
        s.execute(delete(DataAccess).where(DataAccess.subject_identifier == id_number))
        s.execute(delete(ExchangeQuery))
        s.execute(delete(Accumulator).where(Accumulator.insured_id == person_id))
        s.execute(delete(Filing).where(Filing.insured_id == person_id))
        s.execute(delete(InsuredPerson).where(InsuredPerson.id == person_id))
        s.execute(delete(HospitalStaff).where(HospitalStaff.account_id.in_(staff)))
        s.execute(delete(Institution).where(Institution.id == inst_id))
        s.execute(delete(ApiToken).where(ApiToken.account_id.in_(staff)))
        s.execute(delete(Account).where(Account.id.in_(staff)))
        s.execute(delete(PolicyRule))
        s.execute(delete(CatalogueItem))
        s.commit()


def _setup(factory: sessionmaker[Session], *, settled: bool) -> dict[str, Any]:
    """An insured person with one visit of 800.00 at a 上海 hospital with two counters;
    the visit settled once (txn CT-0) when `settled`."""
    with factory() as s:
        inst = make_institution(s, "310000", level=3)
        staff = [make_hospital_staff(s, inst) for _ in range(2)]
        person = make_insured(s, "340100", balance=100_000)
        make_filing(s, person, "310000")
        v = service.register_visit(s, staff[0], id_number=person.id_number, visit_no="C0")
        service.upload_items(s, staff[0], v.id, [ItemInput("T0002", 1, 80_000)])
        if settled:
            settlement.settle(s, staff[0], v.id, "CT-0")
        tokens = [identity.issue_token(s, a)[0] for a in staff]
        s.commit()
        return {
            "person": person.id,
            "inst": inst.id,
            "staff": [a.id for a in staff],
            "tokens": tokens,
            "visit": v.id,
        }


def _events(factory: sessionmaker[Session], person_id: uuid.UUID) -> list[tuple[int, str]]:
    with factory() as s:
        rows = s.execute(
            select(SettlementEvent.seq, SettlementEvent.action)
            .join(Settlement, Settlement.id == SettlementEvent.settlement_id)
            .join(InsuredPerson, InsuredPerson.id_number == Settlement.id_number)
            .where(InsuredPerson.id == person_id)
            .order_by(SettlementEvent.seq)
        ).all()
        return [(r[0], r[1]) for r in rows]


def test_two_counters_reverse_one_settlement_at_once(engine, settings):
    factory = bind_settings(sessionmaker(bind=engine, expire_on_commit=False), settings)
    ids = _setup(factory, settled=True)
    try:
        answers = race(
            create_app(build_node(settings, factory)),
            ids["tokens"],
            lambda c, h, n: c.post(
                "/api/v1/medical/settlements/CT-0/reverse",
                headers=h,
                json={"reversal_txn_id": f"R-{n}", "reason": "患者退费"},
            ),
        )
        won, _ = one_wins(answers, types=None)
        assert won["status"] == "reversed"
        with factory() as s:
            acc = s.get(Accumulator, (ids["person"], local_date(utcnow()).year))
            person = s.get(InsuredPerson, ids["person"])
            assert acc is not None and person is not None
            # Reversed exactly once: back to nothing used, the balance whole again.
            assert (acc.deductible_used, acc.fund_paid) == (0, 0)
            assert person.account_balance == 100_000
        assert _events(factory, ids["person"]) == [(1, "settle"), (2, "reverse")]
    finally:
        _cleanup(factory, ids["person"], ids["inst"], ids["staff"])


def test_two_counters_settle_one_visit_at_once(engine, settings):
    factory = bind_settings(sessionmaker(bind=engine, expire_on_commit=False), settings)
    ids = _setup(factory, settled=False)
    try:
        answers = race(
            create_app(build_node(settings, factory)),
            ids["tokens"],
            lambda c, h, n: c.post(
                "/api/v1/medical/settlements",
                headers=h,
                json={"visit_id": str(ids["visit"]), "txn_id": f"CT-{n}"},
            ),
        )
        won, _ = one_wins(answers, ok=201, types=None)
        assert won["status"] == "settled"
        with factory() as s:
            acc = s.get(Accumulator, (ids["person"], local_date(utcnow()).year))
            assert acc is not None and acc.deductible_used == 80_000  # moved once
        assert _events(factory, ids["person"]) == [(1, "settle")]
    finally:
        _cleanup(factory, ids["person"], ids["inst"], ids["staff"])
