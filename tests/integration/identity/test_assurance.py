"""Identity assurance (issue 10 item 3): a self-registered account claiming somebody's ID
number sees and uses nothing bound to it, on pages and API, until a window clerk has seen
the ID card; every level change is an account event and an audit-chain entry."""

from __future__ import annotations

import json
from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.audit.models import AuditEntry
from tongban.cases import service as cases
from tongban.errors import PermissionDenied, ValidationFailed
from tongban.identity import service as identity
from tongban.identity.domain import AssuranceLevel, meets
from tongban.identity.models import Account, AccountEvent
from tongban.medical import service as medical

from builders import (
    PASSWORD,
    csrf_of,
    id_number,
    make_clerk,
    make_licence,
    make_officer,
    make_resident,
    medical_reference,
    sign_in,
    token_for,
    window_application,
)

PROBLEM = "application/problem+json"


def _register(client: TestClient, ident: str, username: str = "claimant") -> Account:
    r = client.post(
        "/api/v1/accounts",
        json={
            "username": username,
            "password": PASSWORD,
            "role": "resident",
            "display_name": "冒名者",
            "id_number": ident,
            "city_code": "340100",
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["assurance_level"] == "self_declared"
    return r.json()  # type: ignore[no-any-return]


def _refused(r) -> None:  # type: ignore[no-untyped-def]
    assert r.status_code == 403, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["type"].endswith("assurance-required")
    assert "窗口核验身份" in body["detail"] and "统一身份认证平台" in body["detail"]


def test_levels_rank_as_documented() -> None:
    assert not meets("self_declared", AssuranceLevel.WINDOW_VERIFIED)
    assert meets("window_verified", AssuranceLevel.WINDOW_VERIFIED)
    assert meets("oidc_verified", AssuranceLevel.WINDOW_VERIFIED)
    assert not meets(None, AssuranceLevel.SELF_DECLARED)  # staff: no level


def test_impostor_sees_nothing_bound_to_the_id_number_until_a_window_check(
    client: TestClient, session: Session
) -> None:
    victim = id_number("340100")
    data = _register(client, victim)
    account = session.get(Account, __import__("uuid").UUID(data["id"]))
    assert account is not None
    # The victim's licence (issued from a register to the ID number) and medical record.
    lic = make_licence(session, account, "driving_licence")
    medical_reference(session)
    medical.create_insured(
        session, id_number=victim, name="受害人", city_code="340100", scheme="employee"
    )
    h = token_for(client, account)

    # API: licences, one licence, a presentation, the data-use log, a medical filing.
    _refused(client.get("/api/v1/my/licences", headers=h))
    _refused(client.get(f"/api/v1/licences/{lic.id}", headers=h))
    _refused(
        client.post(
            f"/api/v1/my/licences/{lic.id}/presentations",
            json={"disclose": ["name"]},
            headers=h,
        )
    )
    _refused(client.get("/api/v1/my/data-use", headers=h))
    filing = {"type": "temporary", "valid_from": date.today().isoformat(), "target_city": "310000"}
    _refused(client.post("/api/v1/medical/filings", json=filing, headers=h))

    # Pages say the same, in Chinese.
    sign_in(client, account.username)
    for path in ("/my/licences", f"/my/licences/{lic.id}", "/my/data-use"):
        page = client.get(path)
        assert page.status_code == 403, path
        assert "须先核验本人身份" in page.text and lic.identifier not in page.text
    page = client.get("/my/identity")
    assert page.status_code == 200 and "未核验" in page.text
    client.cookies.clear()  # the API calls below use bearer tokens only

    # A window clerk sees the ID card (the same number) and records it.
    clerk = make_clerk(session, "310000")
    ch = token_for(client, clerk)
    r = client.post(
        "/api/v1/identity/window-checks/search", json={"identifier": victim}, headers=ch
    )
    assert r.status_code == 200 and [a["username"] for a in r.json()] == ["claimant"]
    r = client.post(
        "/api/v1/identity/window-checks",
        json={"account_id": data["id"], "identifier": victim, "method": "id_card_reader"},
        headers=ch,
    )
    assert r.status_code == 200, r.text
    assert r.json()["assurance_level"] == "window_verified" and r.json()["proven"] is True

    # Now the same requests answer (a new token: the level change revoked the old ones).
    h = token_for(client, account)
    r = client.get("/api/v1/my/licences", headers=h)
    assert r.status_code == 200 and [x["id"] for x in r.json()] == [str(lic.id)]
    r = client.post(
        f"/api/v1/my/licences/{lic.id}/presentations", json={"disclose": ["name"]}, headers=h
    )
    assert r.status_code == 201
    assert client.get("/api/v1/my/data-use", headers=h).status_code == 200
    assert client.post("/api/v1/medical/filings", json=filing, headers=h).status_code == 201


def test_a_level_change_is_an_event_and_joins_the_audit_chain(
    client: TestClient, session: Session
) -> None:
    resident = make_resident(session, assurance_level="self_declared")
    clerk = make_clerk(session, "320500")
    old_token = token_for(client, resident)
    before = session.scalar(select(AuditEntry.seq).order_by(AuditEntry.seq.desc()).limit(1)) or 0

    identity.verify_at_window(
        session,
        clerk,
        resident.id,
        identifier=resident.id_number or "",
        method="document_check",
        note="本人持身份证到场",
    )
    session.flush()

    events = identity.account_events(session, resident)
    assert [(e.action, e.from_level, e.to_level) for e in events] == [
        ("created", None, "self_declared"),
        ("window_check", "self_declared", "window_verified"),
    ]
    check = events[-1]
    assert check.actor_id == clerk.id and check.actor_name == clerk.display_name
    assert check.evidence == {
        "method": "document_check",
        "clerk_id": str(clerk.id),
        "clerk_city": "320500",
    }
    assert "证件核验" in check.reason and check.at is not None
    entries = session.scalars(
        select(AuditEntry).where(AuditEntry.seq > before, AuditEntry.kind == "account.event")
    ).all()
    assert [e.subject for e in entries] == [f"account:{resident.id}"]
    assert entries[0].actor == f"account:{clerk.id}"
    assert json.loads(entries[0].body)["to_level"] == "window_verified"
    # The level change ended what was signed in before it.
    r = client.get("/api/v1/me", headers=old_token)
    assert r.status_code == 401

    # The same check again changes nothing and records nothing.
    identity.verify_at_window(
        session, clerk, resident.id, identifier=resident.id_number or "", method="id_card_reader"
    )
    assert len(identity.account_events(session, resident)) == 2


def test_the_window_check_needs_a_clerk_and_the_same_number(session: Session) -> None:
    resident = make_resident(session, assurance_level="self_declared")
    clerk = make_clerk(session)
    officer = make_officer(session, "340100-public_security")
    other = id_number("340100")
    try:
        identity.verify_at_window(
            session, clerk, resident.id, identifier=other, method="id_card_reader"
        )
        raise AssertionError("a different card was accepted")
    except ValidationFailed as e:
        assert e.type == "identifier-mismatch"
    try:
        identity.verify_at_window(
            session,
            officer,
            resident.id,
            identifier=resident.id_number or "",
            method="id_card_reader",
        )
        raise AssertionError("an officer verified an identity")
    except PermissionDenied:
        pass
    session.refresh(resident)
    assert resident.assurance_level == "self_declared"
    assert session.scalars(
        select(AccountEvent.action).where(AccountEvent.account_id == resident.id)
    ).all() == ["created"]


def test_window_page_raises_the_level(client: TestClient, session: Session) -> None:
    resident = make_resident(session, assurance_level="self_declared")
    clerk = make_clerk(session, "310000")
    sign_in(client, clerk.username)
    page = client.get("/window/identity")
    assert page.status_code == 200 and "窗口身份核验" in page.text
    found = client.post(
        "/window/identity",
        data={"identifier": resident.id_number, "csrf_token": csrf_of(page.text)},
    )
    assert found.status_code == 200 and resident.username in found.text
    done = client.post(
        "/window/identity/verify",
        data={
            "account_id": str(resident.id),
            "identifier": resident.id_number,
            "method": "id_card_reader",
            "seen": "1",
            "csrf_token": csrf_of(found.text),
        },
    )
    assert done.status_code == 200 and "已核验" in done.text, done.text
    session.refresh(resident)
    assert resident.assurance_level == "window_verified"
    # A resident cannot use the clerk's page.
    client.cookies.clear()
    sign_in(client, resident.username)
    assert client.get("/window/identity").status_code == 403


def test_unverified_applicant_may_apply_and_the_case_says_so(session: Session) -> None:
    """The rule for matters: every matter accepts an online application from any level;
    the case records whether the applicant's identity was proven, and a case received at
    a window for a number is not handed to a self-declared account holding it."""
    from builders import make_case

    unproven = make_resident(session, assurance_level="self_declared")
    proven = make_resident(session)
    a = make_case(session, unproven)
    b = make_case(session, proven)
    assert a.identity_verified is False and b.identity_verified is True
    assert cases.can_see(unproven, a)


def test_a_case_received_at_a_window_goes_only_to_a_proven_account(session: Session) -> None:
    """The clerk saw the applicant's card; a self-declared account that claims the same
    number must not receive (and see) the case, a proven one does."""
    claimant = make_resident(session, "320500", assurance_level="self_declared")
    clerk = make_clerk(session, "310000")

    def receive() -> object:
        applicant, app = window_application(session, clerk, claimant.id_number or "")
        return cases.submit_at_window(session, clerk, applicant, app)

    first = receive()
    assert first.applicant_id is None  # type: ignore[attr-defined]
    assert first not in cases.list_cases(session, claimant)
    identity.verify_at_window(
        session, clerk, claimant.id, identifier=claimant.id_number or "", method="id_card_reader"
    )
    second = receive()
    assert second.applicant_id == claimant.id  # type: ignore[attr-defined]
    assert second in cases.list_cases(session, claimant)


def test_an_enterprise_is_checked_by_its_credit_code(client: TestClient, session: Session) -> None:
    from builders import make_enterprise

    firm = make_enterprise(session, assurance_level="self_declared")
    lic = make_licence(session, firm, "business_licence", authority="320500-market_regulation")
    clerk = make_clerk(session, "320500")
    h = token_for(client, firm)
    _refused(client.get("/api/v1/my/licences", headers=h))
    ch = token_for(client, clerk)
    r = client.post(
        "/api/v1/identity/window-checks/search",
        json={"identifier": firm.credit_code},
        headers=ch,
    )
    assert [a["account_id"] for a in r.json()] == [str(firm.id)]
    r = client.post(
        "/api/v1/identity/window-checks",
        json={
            "account_id": str(firm.id),
            "identifier": firm.credit_code,
            "method": "document_check",
        },
        headers=ch,
    )
    assert r.status_code == 200 and r.json()["assurance_level"] == "window_verified"
    r = client.get("/api/v1/my/licences", headers=token_for(client, firm))
    assert r.status_code == 200 and [x["id"] for x in r.json()] == [str(lic.id)]
