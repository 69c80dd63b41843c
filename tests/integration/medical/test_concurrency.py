"""Two settlements for the same insured person at the same moment, from two threads
with their own connections and real commits: their reservations on the insured side
must not both use the same remaining deductible (the person's row is locked FOR UPDATE
on PostgreSQL; SQLite serialises writers). Everything created here is deleted at the
end."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from tongban.calendar.service import local_date
from tongban.db import utcnow
from tongban.evidence.models import DataAccess
from tongban.exchange.models import ExchangeQuery
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

from builders import make_filing, make_hospital_staff, make_institution, make_insured


def _cleanup(factory: sessionmaker[Session], person_id, inst_id, account_id, id_number) -> None:
    with factory() as s:
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
        s.execute(delete(HospitalStaff).where(HospitalStaff.account_id == account_id))
        s.execute(delete(Institution).where(Institution.id == inst_id))
        s.execute(delete(ApiToken).where(ApiToken.account_id == account_id))
        s.execute(delete(Account).where(Account.id == account_id))
        s.execute(delete(PolicyRule))
        s.execute(delete(CatalogueItem))
        s.commit()


def test_concurrent_settlements_share_the_deductible_correctly(engine, settings):
    factory = bind_settings(sessionmaker(bind=engine, expire_on_commit=False), settings)
    with factory() as s:
        inst = make_institution(s, "310000", level=3)
        staff = make_hospital_staff(s, inst)
        # 合肥 employee, 三级: deductible 1000.00, 75%, cap 4000.00.
        person = make_insured(s, "340100", balance=100_000)
        make_filing(s, person, "310000")
        visits = []
        for n in range(2):
            v = service.register_visit(s, staff, id_number=person.id_number, visit_no=f"C{n}")
            # 800.00 of 甲 each: together more than the 1000.00 deductible.
            service.upload_items(s, staff, v.id, [ItemInput("T0002", 1, 80_000)])
            visits.append(v.id)
        s.commit()
        ids = (person.id, inst.id, staff.id, person.id_number)
    try:
        barrier = threading.Barrier(2)

        def settle(n: int):
            barrier.wait(timeout=30)  # before any statement: SQLite's BEGIN IMMEDIATE waits
            with factory() as s:
                actor = s.get(Account, ids[2])
                st, _ = settlement.settle(s, actor, visits[n], f"CT-{n}")
                s.commit()
                return st.deductible_part, st.fund, st.account

        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(settle, range(2)))
        parts = sorted(r[0] for r in results)
        assert parts == [20_000, 80_000]  # not 80000 twice
        with factory() as s:
            acc = s.get(Accumulator, (ids[0], local_date(utcnow()).year))
            person_row = s.get(InsuredPerson, ids[0])
            assert acc is not None and person_row is not None
            assert acc.deductible_used == 100_000
            assert acc.fund_paid == sum(r[1] for r in results) == 45_000  # 75% × 60000
            assert person_row.account_balance == 100_000 - sum(r[2] for r in results)
            assert person_row.account_balance >= 0
    finally:
        _cleanup(factory, *ids)
