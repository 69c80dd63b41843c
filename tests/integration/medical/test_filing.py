"""Filing (备案) on the insured node: a resident files on their own node's page and API; a
treatment counter files for a patient, with their consent, through the insured node's
query — the filing is made and kept there, recorded in the audit chain and in the
person's data-use log, and the counter learns of it through eligibility. SQLite and
PostgreSQL (one node serving every jurisdiction: the same queries, in-process)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tongban.audit.models import AuditEntry
from tongban.calendar.service import local_date
from tongban.db import utcnow
from tongban.errors import Conflict, NotFound, ValidationFailed
from tongban.evidence.models import DataAccess
from tongban.medical import domain, service
from tongban.medical.models import Filing

from builders import (
    csrf_of,
    make_hospital_staff,
    make_institution,
    make_insured,
    make_resident,
    sign_in,
    token_for,
)


def _today() -> date:
    return local_date(utcnow())


@pytest.fixture
def resident(session: Any) -> Any:
    """A proven 合肥 resident insured (on this node) in 合肥's employee scheme."""
    account = make_resident(session, "340100")
    service.create_insured(
        session,
        id_number=account.id_number,
        name=account.display_name,
        city_code="340100",
        scheme="employee",
    )
    return account


def test_a_resident_files_on_their_own_page_and_api(
    client: TestClient, session: Any, resident: Any
) -> None:
    sign_in(client, resident)
    page = client.get("/medical/filings")
    assert page.status_code == 200 and "尚无备案" in page.text
    assert 'href="/medical/filings"' in client.get("/").text  # in the resident's menu
    r = client.post(
        "/medical/filings",
        data={
            "csrf_token": csrf_of(page.text),
            "type": "work",
            "target_city": "320500",
            "valid_from": _today().isoformat(),
            "valid_to": "",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    page = client.get("/medical/filings")
    assert "常驻异地工作" in page.text and "苏州市" in page.text and "本人申请" in page.text
    # A refused form says why, next to the input.
    bad = client.post(
        "/medical/filings",
        data={
            "csrf_token": csrf_of(page.text),
            "type": "temporary",
            "target_city": "320500",
            "valid_from": "2026-05-02",
            "valid_to": "2026-05-01",
        },
    )
    assert bad.status_code == 422 and "有效期止不能早于有效期起" in bad.text
    # The API lists the same filings, on the same node.
    api = TestClient(client.app)
    h = token_for(api, resident)
    listed = api.get("/api/v1/medical/filings", headers=h).json()
    assert [(f["type"], f["target_city"], f["channel"]) for f in listed] == [
        ("work", "320500", "self")
    ]


def test_a_resident_insured_on_another_node_is_told_to_file_there(
    client: TestClient, session: Any
) -> None:
    account = make_resident(session, "340100")  # no insurance record on this node
    sign_in(client, account)
    page = client.get("/medical/filings")
    assert page.status_code == 404 and "须在参保地办理" in page.text
    with pytest.raises(NotFound):
        service.my_filings(session, account)


def test_a_counter_files_for_a_patient_with_consent_on_the_insured_node(
    client: TestClient, session: Any
) -> None:
    staff = make_hospital_staff(session, make_institution(session, "320500", level=3))
    person = make_insured(session, "340100", balance=10_000)
    before = service.eligibility(session, staff, person.id_number)
    assert before.decision.required and not before.decision.allowed

    with pytest.raises(ValidationFailed) as e:  # no consent, no filing
        service.file_at_counter(session, staff, person.id_number, consent=False)
    assert e.value.type == "consent-required" and e.value.errors[0].field == "consent"
    with pytest.raises(ValidationFailed) as e:  # longer than a counter may file for
        service.file_at_counter(
            session, staff, person.id_number, consent=True, valid_to=_today() + timedelta(days=400)
        )
    assert e.value.errors[0].field == "valid_to"

    got = service.file_at_counter(session, staff, person.id_number, consent=True)
    assert (got.type, got.target_city, got.channel) == ("temporary", "320500", "counter")
    assert got.valid_from == _today()
    assert got.valid_to == _today() + timedelta(days=domain.COUNTER_FILING_DAYS)
    f = session.get(Filing, got.id)
    assert f.insured_id == person.id and f.consent_at is not None
    assert f.filed_by is not None and staff.display_name in f.filed_by
    # The treatment side learns of it through eligibility.
    after = service.eligibility(session, staff, person.id_number)
    assert after.decision.allowed and after.filing is not None and after.filing.id == got.id
    # Asked again: the same filing, not a second one.
    again = service.file_at_counter(session, staff, person.id_number, consent=True)
    assert again.id == got.id
    count = select(func.count()).select_from(Filing).where(Filing.insured_id == person.id)
    assert session.scalar(count) == 1
    # In the audit chain, and in the person's data-use log (who filed, for what).
    session.flush()
    assert (
        session.scalar(
            select(func.count()).where(
                AuditEntry.kind == "medical.filing", AuditEntry.subject == f"filing:{got.id}"
            )
        )
        == 1
    )
    logged = session.scalars(
        select(DataAccess.purpose).where(DataAccess.subject_identifier == person.id_number)
    ).all()
    assert "cross_region_filing" in logged


def test_no_filing_is_made_where_none_is_needed(session: Any) -> None:
    staff = make_hospital_staff(session, make_institution(session, "340100", level=3))
    person = make_insured(session, "340100")  # treated in the insured city itself
    with pytest.raises(Conflict) as e:
        service.file_at_counter(session, staff, person.id_number, consent=True)
    assert e.value.type == "filing-not-needed"


def test_the_counter_page_and_api_file_with_consent(client: TestClient, session: Any) -> None:
    staff = make_hospital_staff(session, make_institution(session, "310000", level=3))
    person = make_insured(session, "340100")
    other = make_insured(session, "340100")
    sign_in(client, staff)
    form = client.get("/medical/counter")
    page = client.post(
        "/medical/counter", data={"csrf_token": csrf_of(form.text), "id_number": person.id_number}
    )
    assert "不可直接结算" in page.text and "代办备案" in page.text
    # The consent box left unticked: refused, nothing filed.
    r = client.post(
        "/medical/counter/filings",
        data={"csrf_token": csrf_of(page.text), "id_number": person.id_number},
    )
    assert r.status_code == 422 and "须经参保人本人同意" in r.text
    r = client.post(
        "/medical/counter/filings",
        data={
            "csrf_token": csrf_of(page.text),
            "id_number": person.id_number,
            "insured_city": "340100",
            "consent": "yes",
            "valid_to": (_today() + timedelta(days=30)).isoformat(),
        },
    )
    assert r.status_code == 200, r.text
    assert "已在参保地办理临时外出就医备案" in r.text and "可直接结算" in r.text
    assert "代办" in r.text and "登记就诊" in r.text

    api = TestClient(client.app)
    h = token_for(api, staff)
    r = api.post(
        "/api/v1/medical/counter/filings",
        headers=h,
        json={"id_number": other.id_number, "consent": False},
    )
    assert r.status_code == 422 and r.json()["type"].endswith("consent-required")
    r = api.post(
        "/api/v1/medical/counter/filings",
        headers=h,
        json={"id_number": other.id_number, "consent": True},
    )
    assert r.status_code == 201, r.text
    assert (r.json()["channel"], r.json()["target_city"]) == ("counter", "310000")
    e = api.post("/api/v1/medical/eligibility", headers=h, json={"id_number": other.id_number})
    assert e.json()["may_settle"] and e.json()["filing"]["channel"] == "counter"
