"""Every role is refused what it must not see or do (enforced in the services, so the
pages, the API, the CLI and the jobs share it). A case nobody may see is 'not found'."""

from __future__ import annotations

import pytest

from tongban.cases import service
from tongban.errors import NotFound, PermissionDenied

from builders import (
    SIMPLE_FORM,
    SIMPLE_MATTER,
    make_admin,
    make_case,
    make_clerk,
    make_enterprise,
    make_officer,
    make_resident,
    make_supervisor,
    token_for,
    upload,
)

# who -> (may see, may act as officer, may rate as applicant)
MATRIX = {
    "owner": (True, False, True),
    "other_resident": (False, False, False),
    "enterprise": (False, False, False),
    "officer_competent": (True, True, False),
    "officer_same_type_other_city": (False, False, False),
    "officer_other_type_same_city": (False, False, False),
    "clerk_receiving_city": (False, False, False),  # an online case is no window's business
    "supervisor_competent": (True, False, False),
    "supervisor_other": (False, False, False),
    "admin": (False, False, False),
}


@pytest.fixture
def world(session):
    owner = make_resident(session, city="340100")
    people = {
        "owner": owner,
        "other_resident": make_resident(session, city="340100"),
        "enterprise": make_enterprise(session),
        "officer_competent": make_officer(session, "320500-housing_fund"),
        "officer_same_type_other_city": make_officer(session, "320100-housing_fund"),
        "officer_other_type_same_city": make_officer(session, "320500-public_security"),
        "clerk_receiving_city": make_clerk(session, "340100"),
        "supervisor_competent": make_supervisor(session, "320000"),
        "supervisor_other": make_supervisor(session, "340000"),
        "admin": make_admin(session),
    }
    case = make_case(session, owner)
    return people, case


@pytest.mark.parametrize("who", list(MATRIX))
def test_visibility(session, world, who):
    people, case = world
    may_see, _, _ = MATRIX[who]
    actor = people[who]
    if may_see:
        assert service.get_case(session, actor, case.id).id == case.id
    else:
        with pytest.raises(NotFound):
            service.get_case(session, actor, case.id)
        try:
            listed = service.list_cases(session, actor)
        except PermissionDenied:
            listed = []
        assert case.id not in {c.id for c in listed}


@pytest.mark.parametrize("who", list(MATRIX))
def test_officer_actions(session, world, who):
    people, case = world
    _, may_act, _ = MATRIX[who]
    if may_act:
        assert service.act(session, people[who], case.id, "accept").state == "accepted"
    else:
        with pytest.raises((NotFound, PermissionDenied)):
            service.act(session, people[who], case.id, "accept")
        assert case.state == "submitted"


@pytest.mark.parametrize("who", list(MATRIX))
def test_applicant_actions(session, world, who):
    people, case = world
    officer = people["officer_competent"]
    service.act(session, officer, case.id, "request_correction", "请补正")
    _, _, may_rate = MATRIX[who]
    if may_rate:
        assert service.resubmit(session, people[who], case.id).state == "submitted"
    else:
        with pytest.raises((NotFound, PermissionDenied)):
            service.resubmit(session, people[who], case.id)
        assert case.state == "correction_requested"


@pytest.mark.parametrize(
    "who", ["officer_competent", "clerk_receiving_city", "supervisor_competent", "admin"]
)
def test_staff_cannot_apply_online(session, world, who):
    people, _ = world
    actor = people[who]
    att = upload(session, actor)
    app = service.Application(
        matter_code=SIMPLE_MATTER,
        competent_jurisdiction="320000",
        competent_city="320500",
        form_data=dict(SIMPLE_FORM),
        consent=True,
        attachment_ids=[att.id],
    )
    with pytest.raises(PermissionDenied):
        service.submit_online(session, actor, app)


@pytest.mark.parametrize("who", ["owner", "officer_competent", "supervisor_competent", "admin"])
def test_only_clerks_receive_at_a_window(session, world, who):
    people, _ = world
    applicant = service.WindowApplicant(
        name="王芳",
        identifier=people["owner"].id_number or "",
        identity_verified=True,
        materials_checked=True,
    )
    app = service.Application(
        matter_code="YRD-GA-0002",
        competent_jurisdiction="320000",
        competent_city="320500",
        consent=True,
    )
    with pytest.raises(PermissionDenied):
        service.submit_at_window(session, people[who], applicant, app)


def test_api_enforces_the_same_rules(session, world, client):
    people, case = world
    stranger = token_for(client, people["other_resident"])
    r = client.get(f"/api/v1/cases/{case.id}", headers=stranger)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    r = client.post(f"/api/v1/cases/{case.id}/actions", json={"action": "accept"}, headers=stranger)
    assert r.status_code == 404
    officer = token_for(client, people["officer_competent"])
    r = client.post(f"/api/v1/cases/{case.id}/actions", json={"action": "accept"}, headers=officer)
    assert r.status_code == 200 and r.json()["state"] == "accepted"
    owner = token_for(client, people["owner"])
    r = client.get(f"/api/v1/cases/{case.number}", headers=owner)
    assert r.status_code == 200 and r.json()["available_actions"] == []
    # The owner sees their own identifier masked only where others look; officers see it whole.
    r = client.get(
        f"/api/v1/cases/{case.id}", headers=people_token(client, people["supervisor_competent"])
    )
    assert "*" in r.json()["applicant_identifier_masked"]
    r = client.get("/api/v1/cases", headers={})
    assert r.status_code == 401


def people_token(client, account):
    return token_for(client, account)
