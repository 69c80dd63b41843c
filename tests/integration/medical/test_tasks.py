"""The worker job clears last month once it is over, and only once."""

from __future__ import annotations

from sqlalchemy import select

from tongban.calendar.service import local_date
from tongban.db import utcnow
from tongban.medical import clearing_service as cs
from tongban.medical import service, settlement, tasks
from tongban.medical.models import ClearingRun
from tongban.worker import periodic_jobs

from builders import make_filing, make_hospital_staff, make_institution, make_insured


def test_job_is_declared_for_the_worker():
    assert "medical.clear_previous_month" in {j.name for j in periodic_jobs()}


def test_previous_month_is_cleared_once(session, factory, settings):
    staff = make_hospital_staff(session, make_institution(session, "330100"))
    person = make_insured(session, "310000")
    make_filing(session, person, "330100")
    v = service.register_visit(session, staff, id_number=person.id_number, visit_no="V1")
    service.upload_items(session, staff, v.id, [service.ItemInput("T0007", 1, 500_000)])
    s, _ = settlement.settle(session, staff, v.id, "T1")
    last = cs.previous_period(local_date(utcnow()))
    s.period = last
    session.commit()
    assert tasks.clear_previous_month(factory, settings) == last
    session.expire_all()
    run = session.scalar(select(ClearingRun).where(ClearingRun.period == last))
    assert run is not None and run.claim_count == 1 and run.cross_fund == s.fund
    assert tasks.clear_previous_month(factory, settings) is None  # already cleared


def test_the_reservation_jobs_are_declared_for_the_worker():
    names = {j.name for j in periodic_jobs()}
    assert {"medical.sync_insured", "medical.resolve_reservations"} <= names


def _claim(session, staff, person, no):
    v = service.register_visit(session, staff, id_number=person.id_number, visit_no=no)
    return service.upload_items(session, staff, v.id, [service.ItemInput("T0007", 1, 500_000)])


def test_on_one_node_the_jobs_finish_interrupted_settlements_exactly_once(
    session, factory, settings
):
    """The same path as across nodes, answered in-process: a settlement whose
    confirmation never left is confirmed by the hospital side's job; a reservation whose
    settlement never committed expires by the insured side's job."""
    from datetime import timedelta

    from tongban.exchange import query
    from tongban.medical import insured, queries
    from tongban.medical.domain import ItemClass
    from tongban.medical.models import Reservation

    staff = make_hospital_staff(session, make_institution(session, "330100"))
    person = make_insured(session, "340100")
    make_filing(session, person, "330100")
    s, _ = settlement.settle(session, staff, _claim(session, staff, person, "V1").id, "T1")
    session.commit()  # the hospital's commit; the confirmation is never sent
    assert s.insured_ack == "reserved"
    assert tasks.settlement.sync_owed(factory, settings) == 1
    assert tasks.settlement.sync_owed(factory, settings) == 0
    session.expire_all()
    assert s.insured_ack == "confirmed"
    # A reservation whose settlement never came (reserved as the hospital side does,
    # then nothing written).
    v2 = _claim(session, staff, person, "V2")
    inst = service.institution_of(session, staff)
    ask = queries.ReserveAsk(
        txn_id="T2",
        request_hash=service.visit_fingerprint(v2),
        id_number=person.id_number,
        institution=queries.institution_ref(inst),
        lines=[queries.LineIn(amount=500_000, item_class=ItemClass.A)],
    )
    query.ask(session, queries.RESERVE, source="330000", target="340000", payload=ask)
    session.commit()
    later = utcnow() + insured.RESERVATION_TTL + timedelta(seconds=1)
    assert insured.resolve_overdue(factory, settings, later) == 1
    assert insured.resolve_overdue(factory, settings, later) == 0
    states = dict(session.execute(select(Reservation.txn_id, Reservation.state)).all())
    assert states == {"T1": "confirmed", "T2": "expired"}
