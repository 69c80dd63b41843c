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
