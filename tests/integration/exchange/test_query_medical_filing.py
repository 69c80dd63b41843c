"""Filing (备案) across nodes, two nodes in one process over the real signed queries: at a
苏州 counter (node B) a 合肥 patient insured on node A, without a filing for 苏州, agrees
that the hospital files for them. The filing is made on A (`medical.file`), with who
filed and when the patient consented, in the patient's data-use log there; B keeps no
copy and learns of it through the eligibility query, so the visit can be registered.
With A down the counter gets the 503 in Chinese and nothing is filed. SQLite and
PostgreSQL."""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tongban.errors import DomainError
from tongban.evidence.models import DataAccess
from tongban.exchange import query
from tongban.exchange.models import ExchangeQuery
from tongban.identity.models import Account
from tongban.medical import service
from tongban.medical.models import Filing, InsuredPerson

from builders import make_hospital_staff, make_institution, make_insured, medical_reference

UNAVAILABLE = "参保地系统暂不可用，请稍后结算或转为手工报销"


@pytest.fixture
def world(fed: dict[str, Any], hosts: Any) -> Iterator[Any]:
    a, b = fed["node-a"], fed["node-b"]
    client = httpx.Client(transport=hosts)
    query.install_client(a.id, client)
    query.install_client(b.id, client)
    with a.session() as s:
        medical_reference(s)
        person = make_insured(s, "340100", balance=10_000)  # no filing
        s.commit()
        id_number = person.id_number
    with b.session() as s:
        staff = make_hospital_staff(s, make_institution(s, "320500", level=3))
        s.commit()
        staff_id = staff.id
    yield types.SimpleNamespace(a=a, b=b, hosts=hosts, id_number=id_number, staff=staff_id)
    query.install_client(a.id, None)
    query.install_client(b.id, None)
    client.close()


def _filings_on_a(w: Any) -> list[tuple[str, str | None, str, str | None]]:
    with w.a.session() as s:
        rows = s.scalars(
            select(Filing)
            .join(InsuredPerson, InsuredPerson.id == Filing.insured_id)
            .where(InsuredPerson.id_number == w.id_number)
        )
        return [(f.type, f.target_city, f.channel, f.filed_by) for f in rows]


def test_a_counter_of_another_node_files_on_the_insured_node(world: Any) -> None:
    w = world
    with w.b.session() as s:
        staff = s.get(Account, w.staff)
        assert not service.eligibility(s, staff, w.id_number).decision.allowed
        got = service.file_at_counter(s, staff, w.id_number, consent=True)
        s.commit()
        elig = service.eligibility(s, staff, w.id_number)
        visit = service.register_visit(s, staff, id_number=w.id_number, visit_no="F1")
        s.commit()
        assert visit.id is not None
        inst_name = service.institution_of(s, staff).name
    # Made and kept on A, saying who filed; B holds no filing at all.
    assert _filings_on_a(w) == [
        ("temporary", "320500", "counter", f"{inst_name}（{staff.display_name}）")
    ]
    with w.b.session() as s:
        assert s.scalar(select(func.count()).select_from(Filing)) == 0
    # B learns of it through the eligibility query.
    assert elig.decision.allowed and elig.filing is not None and elig.filing.id == got.id
    assert elig.filing.channel == "counter"
    # The query on both nodes under one id; the filing in the patient's log on A.
    with w.b.session() as s:
        asked = set(s.scalars(select(ExchangeQuery.id).where(ExchangeQuery.type == "medical.file")))
    with w.a.session() as s:
        answered = set(
            s.scalars(select(ExchangeQuery.id).where(ExchangeQuery.type == "medical.file"))
        )
        log = s.scalars(
            select(DataAccess).where(
                DataAccess.subject_identifier == w.id_number,
                DataAccess.purpose == "cross_region_filing",
            )
        ).all()
    assert asked and asked == answered
    assert [(d.requester_jurisdiction, d.outcome) for d in log] == [("320000", "answered")]


def test_with_the_insured_node_down_nothing_is_filed(world: Any) -> None:
    w = world
    w.hosts.down.add(w.a.host)
    try:
        with w.b.session() as s:
            with pytest.raises(DomainError) as e:
                service.file_at_counter(s, s.get(Account, w.staff), w.id_number, consent=True)
            s.rollback()
    finally:
        w.hosts.down.discard(w.a.host)
    assert (e.value.status, e.value.detail) == (503, UNAVAILABLE)
    assert _filings_on_a(w) == []
