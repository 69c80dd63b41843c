"""Personal identifiers inside an application form (fields declared `x-personal-id` in
the matter's schema) are masked by the same rule as the applicant's own ID number: the
applicant and the handling officer see them whole, a window clerk and a supervisor see
them masked — in the API and on the pages (issue 10 item 10)."""

from __future__ import annotations

import re

import pytest

from tongban.cases import service
from tongban.catalog import domain as catalog_domain
from tongban.catalog import service as catalog

from builders import (
    PASSWORD,
    make_clerk,
    make_officer,
    make_resident,
    make_supervisor,
    token_for,
    upload,
)

SUBJECT = "340102199003071232"
MASKED = "3401**********1232"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def window_case(session):  # type: ignore[no-untyped-def]
    """A 户籍类证明 application received at a Shanghai window for Suzhou."""
    clerk = make_clerk(session, "310000")
    resident = make_resident(session, city="340100")
    app = service.Application(
        matter_code="YRD-GA-0002",
        competent_jurisdiction="320000",
        competent_city="320500",
        form_data={
            "proof_type": "户籍信息证明",
            "subject_name": "王小明",
            "subject_id_number": SUBJECT,
            "purpose": "办理入学",
        },
        consent=True,
        attachment_ids=[upload(session, clerk, "id_card").id],
    )
    applicant = service.WindowApplicant(
        name="王芳", identifier=resident.id_number or "", identity_verified=True,
        materials_checked=True,
    )  # fmt: skip
    case = service.submit_at_window(session, clerk, applicant, app)
    from sqlalchemy import select

    from tongban.exchange.models import OutboxMessage
    from tongban.exchange.service import apply_locally
    from tongban.kernel import replication

    replication.send_now(session)  # the hand-over is written at commit: now
    for msg in session.scalars(select(OutboxMessage).where(OutboxMessage.status == "pending")):
        apply_locally(session, msg)
        msg.status = "delivered"
    session.flush()
    people = {
        "clerk": clerk,
        "applicant": resident,
        "supervisor": make_supervisor(session, "320000"),
        "officer": make_officer(session, "320500-public_security"),
    }
    return case, people


def test_the_catalogue_declares_id_number_fields() -> None:
    schemas = {m["code"]: m["form_schema"] for m in catalog_domain.read_catalogue()}
    assert "subject_id_number" in catalog_domain.personal_fields(schemas["YRD-GA-0002"])
    assert "partner_id_number" in catalog_domain.personal_fields(schemas["YRD-MZ-0001"])
    # Every field whose pattern is an ID number is declared.
    for code, schema in schemas.items():
        for name, prop in schema["properties"].items():
            if prop.get("pattern") == "^[1-9]\\d{16}[\\dXx]$":
                assert name in catalog_domain.personal_fields(schema), (code, name)


def test_a_declaration_on_a_non_string_field_is_refused() -> None:
    schema = {m["code"]: m for m in catalog_domain.read_catalogue()}["YRD-GA-0002"]
    bad = {**schema["form_schema"]}
    bad["properties"] = {**bad["properties"], "purpose": {"type": "integer", "title": "x",
                                                          "x-personal-id": True}}  # fmt: skip
    problems = catalog_domain._form_schema_problems("m", bad)
    assert any("x-personal-id" in p for p in problems)


@pytest.mark.parametrize(
    "who,masked", [("clerk", True), ("supervisor", True), ("officer", False), ("applicant", False)]
)
def test_form_data_is_masked_in_the_api(client, session, window_case, who, masked) -> None:  # type: ignore[no-untyped-def]
    case, people = window_case
    r = client.get(f"/api/v1/cases/{case.id}", headers=token_for(client, people[who]))
    assert r.status_code == 200, r.text
    body = r.json()
    shown = body["form_data"]["subject_id_number"]
    assert shown == (MASKED if masked else SUBJECT)
    assert (SUBJECT in r.text) is not masked
    assert body["form_data"]["subject_name"] == "王小明"  # other fields untouched
    # The stored form is not changed by showing it.
    assert catalog.form_schema_of(session, "YRD-GA-0002") is not None
    session.refresh(case)
    assert case.form_data["subject_id_number"] == SUBJECT


def _login(client, account) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/login")
    r = client.post(
        "/login",
        data={
            "username": account.username,
            "password": PASSWORD,
            "csrf_token": CSRF.search(page.text).group(1),
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


@pytest.mark.parametrize(
    "who,url,masked",
    [
        ("clerk", "/window/cases/{id}", True),
        ("supervisor", "/workbench/cases/{id}", True),
        ("officer", "/workbench/cases/{id}", False),
    ],
)
def test_form_data_is_masked_on_the_pages(client, window_case, who, url, masked) -> None:  # type: ignore[no-untyped-def]
    case, people = window_case
    _login(client, people[who])
    r = client.get(url.format(id=case.id))
    assert r.status_code == 200, r.text
    assert "证明对象身份证号码" in r.text
    assert (SUBJECT in r.text) is not masked
    assert (MASKED in r.text) is masked
