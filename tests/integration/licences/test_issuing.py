"""Issuing e-licences: directly, in bulk (all or nothing), on case delivery; the identifier
and the SD-JWT claims of the stored licence; who may issue."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.cases import service as cases
from tongban.errors import NotFound, PermissionDenied, ValidationFailed
from tongban.identity.domain import validate_credit_code
from tongban.keys import service as keys
from tongban.licences import domain
from tongban.licences import service as licences
from tongban.licences.identifier import parse_identifier
from tongban.licences.models import Licence, LicenceEvent
from tongban.licences.sdjwt import disclosed_claims, parse_sd_jwt

from builders import (
    LICENCE_CLAIMS,
    make_licence,
    make_officer,
    make_resident,
)


def _id_card(holder, **extra):  # type: ignore[no-untyped-def]
    claims = {"name": holder.display_name, "id_number": holder.id_number}
    claims.update(LICENCE_CLAIMS["resident_id_card"])
    claims.update(extra)
    return licences.IssueRequest("resident_id_card", holder.id_number, holder.display_name, claims)


def test_types_cover_the_catalogue() -> None:
    import json
    from importlib import resources

    types = domain.licence_types()
    matters = json.loads(
        (resources.files("tongban.catalog") / "data" / "matters.json").read_text("utf-8")
    )
    named = {m.get("result_licence_type") for m in matters} | {
        mat.get("licence_type") for m in matters for mat in m.get("materials", [])
    }
    assert named - {None} <= set(types)
    for code in (
        "resident_id_card",
        "driving_licence",
        "vehicle_licence",
        "business_licence",
        "marriage_certificate",
        "birth_certificate",
        "social_security_card",
        "real_estate_certificate",
        "household_register",
    ):
        t = types[code]
        assert t.fields and t.vct and t.type_code and t.name


def test_officer_issues_directly(session: Session) -> None:
    resident = make_resident(session)
    officer = make_officer(session, "340100-public_security")
    lic = licences.issue(session, officer, _id_card(resident))

    # GB/T 36904 identifier: type, the authority's credit code, serial, version, check
    ident = parse_identifier(lic.identifier)
    assert lic.identifier.startswith("1.2.156.3005.2.11100000000013127D001.")
    assert ident.issuer_credit_code == lic.issuer_code
    validate_credit_code(lic.issuer_code)
    assert lic.holder_account_id == resident.id and lic.jurisdiction_code == "340000"
    # The stored SD-JWT VC: signed by 安徽's licence key, personal fields disclosable
    parsed = parse_sd_jwt(lic.compact)
    payload = parsed.jws.payload
    assert payload["iss"].endswith("/issuers/340000")
    assert payload["vct"] == "urn:tongban:vct:resident_id_card"
    assert payload["licence_id"] == lic.identifier
    assert payload["status"]["status_list"] == {"idx": lic.status_index, "uri": lic.status_uri}
    assert "name" not in payload and "address" not in payload  # only as digests
    assert {d.name for d in parsed.disclosures} == set(lic.claims)
    assert disclosed_claims(parsed)["address"] == LICENCE_CLAIMS["resident_id_card"]["address"]
    _key, row = keys.signing_key(session, "licence", "340000")
    assert parsed.jws.header["kid"] == lic.kid == row.kid
    # validity 20 years, an "issued" event
    assert lic.valid_until is not None and lic.valid_until.year == lic.issued_at.year + 20
    events = session.scalars(select(LicenceEvent).where(LicenceEvent.licence_id == lic.id)).all()
    assert [(e.action, e.to_status, e.actor_id) for e in events] == [("issue", "valid", officer.id)]
    assert licences.verify_stored(session, lic).valid


def test_serials_increase_and_indices_are_distinct(session: Session) -> None:
    officer = make_officer(session, "340100-public_security")
    lics = [licences.issue(session, officer, _id_card(make_resident(session))) for _ in range(3)]
    serials = [parse_identifier(lic.identifier).serial for lic in lics]
    assert [int(s) for s in serials] == sorted(int(s) for s in serials)
    assert len({int(s) for s in serials}) == 3
    assert len({(lic.status_list, lic.status_index) for lic in lics}) == 3


def test_only_officers_of_the_issuing_type_issue(session: Session) -> None:
    resident = make_resident(session)
    with pytest.raises(PermissionDenied):
        licences.issue(session, resident, _id_card(resident))
    health = make_officer(session, "340100-health")
    with pytest.raises(PermissionDenied):
        licences.issue(session, health, _id_card(resident))


def test_bad_claims_and_holder_are_refused(session: Session) -> None:
    officer = make_officer(session, "340100-public_security")
    resident = make_resident(session)
    with pytest.raises(ValidationFailed) as e:
        licences.issue(session, officer, _id_card(resident, address="", colour="red"))
    fields = {err["field"] for err in e.value.errors}
    assert {"claims.address", "claims.colour"} <= fields
    req = _id_card(resident)
    req.holder_identifier = "340102199003071234"  # bad check digit
    with pytest.raises(ValidationFailed) as e:
        licences.issue(session, officer, req)
    assert e.value.errors[0]["field"] == "holder_identifier"
    with pytest.raises(NotFound):
        licences.issue(session, officer, licences.IssueRequest("no_such", "x", "y"))


def test_bulk_issues_all_or_nothing(session: Session) -> None:
    officer = make_officer(session, "320500-public_security")
    holders = [make_resident(session, "320500") for _ in range(3)]
    before = session.scalar(select(Licence.id).limit(1))
    reqs = [_id_card(h) for h in holders]
    bad = _id_card(holders[1])
    bad.claims.pop("birth_date")
    bad_type = licences.IssueRequest("business_licence", holders[2].id_number, "x", {})
    with pytest.raises(ValidationFailed) as e:
        licences.bulk_issue(session, officer, [reqs[0], bad, bad_type])
    fields = [err["field"] for err in e.value.errors]
    assert "rows.1.claims.birth_date" in fields
    assert any(f.startswith("rows.2.") for f in fields)
    assert not any(f.startswith("rows.0.") for f in fields)
    assert e.value.type == "bulk-rejected"
    # nothing was issued for the good row
    assert (
        session.scalar(select(Licence).where(Licence.holder_identifier == holders[0].id_number))
        is None
    )
    del before
    issued = licences.bulk_issue(session, officer, reqs)
    assert [lic.holder_identifier for lic in issued] == [h.id_number for h in holders]
    assert all(lic.source == "bulk" and lic.jurisdiction_code == "320000" for lic in issued)


def _deliver(session: Session, case, approver) -> None:  # type: ignore[no-untyped-def]
    for action in ("accept", "start_review", "approve", "issue_result", "deliver"):
        cases.act(session, approver, case.id, action, "")


def driving_case(session: Session, resident, **kw):  # type: ignore[no-untyped-def]
    """A 驾驶证换领 application (result: driving_licence) to 苏州, forwarded."""
    from tongban.exchange.models import OutboxMessage
    from tongban.exchange.service import apply_locally
    from tongban.kernel import replication

    from builders import upload

    ids = kw.pop("attachment_ids", None)
    if ids is None:
        ids = [upload(session, resident, "id_card").id]
    ids.append(upload(session, resident, "photo").id)
    app = cases.Application(
        matter_code="YRD-GA-0004",
        competent_jurisdiction="320000",
        competent_city="320500",
        form_data={"apply_type": "有效期满换证", "vehicle_class": "C1", "issue_city": "合肥"},
        consent=True,
        attachment_ids=ids,
        **kw,
    )
    case = cases.submit_online(session, resident, app)
    replication.send_now(session)  # the hand-over is written at commit: now
    for msg in session.scalars(select(OutboxMessage).where(OutboxMessage.status == "pending")):
        apply_locally(session, msg)
        msg.status = "delivered"
    session.flush()
    return case


def test_delivered_case_issues_its_licence(session: Session) -> None:
    resident = make_resident(session, "340100")
    old = make_licence(session, resident, "driving_licence")  # issued by 合肥
    approver = make_officer(session, "320500-public_security")
    case = driving_case(session, resident)
    for action in ("accept", "start_review", "approve", "issue_result"):
        cases.act(session, approver, case.id, action, "")
    assert session.scalar(select(Licence).where(Licence.case_id == case.id)) is None
    cases.act(session, approver, case.id, "deliver", "")
    lic = session.scalar(select(Licence).where(Licence.case_id == case.id))
    assert lic is not None
    assert lic.type_code == "driving_licence" and lic.source == "case"
    assert lic.jurisdiction_code == "320000" and lic.authority_name == case.authority_name
    assert lic.holder_account_id == resident.id
    # personal details come from the earlier licence, the holder from the case
    assert lic.claims["licence_class"] == old.claims["licence_class"]
    assert lic.claims["id_number"] == resident.id_number
    assert licences.verify_stored(session, lic).valid
    assert lic.events[0].actor_name == "系统"


def test_denied_case_issues_nothing(session: Session) -> None:
    resident = make_resident(session, "340100")
    approver = make_officer(session, "320500-public_security")
    case = driving_case(session, resident)
    for action, comment in (("accept", ""), ("start_review", ""), ("deny", "材料不符")):
        cases.act(session, approver, case.id, action, comment)
    cases.act(session, approver, case.id, "issue_result", "")
    cases.act(session, approver, case.id, "deliver", "")
    assert session.scalar(select(Licence).where(Licence.case_id == case.id)) is None
