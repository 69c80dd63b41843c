"""免提交 in a virtual-window session across two nodes (the fixtures of
tests/integration/exchange: A serves 上海 and 安徽, B 江苏 and 浙江): the resident shows
their ID card licence at B's counter, A (the competent node) verifies it in the session,
and the case B submits carries it as the material — no file, no stored licence on B —
to A's copy; both case pages say so. A failed verification, or a valid one verified
again as revoked, satisfies nothing; a forged copy from a peer is refused."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from integration.virtualwindow.sessions import hefei_officer, taken_on_a
from tongban.cases import replica
from tongban.cases.models import Case, PresentedLicence
from tongban.errors import ValidationFailed
from tongban.identity.models import Account
from tongban.licences import service as licences
from tongban.licences.models import Licence, LicenceUse
from tongban.virtualwindow import relay, service
from tongban.virtualwindow.models import WindowTicket

from builders import (
    SIMPLE_MATTER,
    id_number,
    make_clerk,
    make_licence,
    make_officer,
    make_resident,
    sign_in,
)


def _session_with(pair: Any, presentations: list[str]) -> tuple[Any, Any, Any]:
    """B's clerk starts a session for a 合肥 matter, A's officer takes it, the clerk
    relays each presentation and records the identity check, the officer confirms."""
    a, b = pair
    sid, clerk_id, officer_id = taken_on_a(a, b)
    with b.session() as s:
        clerk = s.get(Account, clerk_id)
        t = s.get(WindowTicket, sid)
        relay.relay(s, clerk, t, "form", {"values": {"proof_purpose": "异地贷款"}})
        for compact in presentations:
            relay.relay(s, clerk, t, "licence", {"presentation": compact})
        args = {
            "method": "e_licence",
            "applicant_name": "王芳",
            "applicant_identifier": id_number("340100"),
        }
        relay.relay(s, clerk, t, "record_identity", args)
        s.commit()
    with a.session() as s:
        service.officer_act(s, s.get(Account, officer_id), sid, "confirm_identity", {})
        s.commit()
    return sid, clerk_id, officer_id


def test_a_licence_verified_in_the_session_is_the_cases_material_on_both_nodes(
    pair: Any, tools: Any, hosts: Any
) -> None:
    a, b = pair
    with a.session() as s:
        lic = make_licence(s, make_resident(s, "340100"))
        s.commit()
        compact, issuer_name = lic.compact, lic.authority_name
    sid, clerk_id, officer_id = _session_with(pair, [compact])
    with b.session() as s:
        clerk = s.get(Account, clerk_id)
        clerk_name = clerk.username
        view = relay.submit(s, clerk, s.get(WindowTicket, sid))
        s.commit()
        number = view["case_number"]
        case = s.scalar(select(Case).where(Case.number == number))
        assert case is not None and not case.attachments  # no file: the licence stands in
        assert s.scalar(select(Licence)) is None  # B stores no licence …
        assert s.scalar(select(LicenceUse)) is None  # … and so no licence_use
        (p,) = case.presented_licences
        assert p.material_code == "id_card" and p.type_code == "resident_id_card"
        assert p.result == "valid" and p.type_name == "居民身份证"
        assert p.issuer == issuer_name  # the 发证机关 by name, as the licence disclosed it
        assert p.presentation_sha256 == hashlib.sha256(compact.encode()).hexdigest()
        assert p.verified_by == "安徽省合肥市节点"
        case_id = case.id
    tools.drain(a, b)
    with a.session() as s:
        copy = s.scalar(select(Case).where(Case.number == number))
        assert copy is not None
        (q,) = copy.presented_licences
        assert (q.material_code, q.licence_id, q.presentation_sha256) == (
            p.material_code,
            p.licence_id,
            p.presentation_sha256,
        )
        assert q.verified_at == p.verified_at and q.verified_by == p.verified_by
        officer = s.get(Account, officer_id)
        assert officer is not None
        officer_name = officer.username
        assert service.accept_case(s, officer, sid) == number
        s.commit()
    expected = f"免提交：{p.type_name}（{p.issuer}，已于 "
    # The case page on both nodes: the clerk's on B, the officer's on A.
    with TestClient(hosts.apps["node-b.test"].app) as client:
        sign_in(client, clerk_name)
        page = client.get(f"/window/cases/{case_id}")
        assert page.status_code == 200, page.text
        assert expected in page.text and "由 安徽省合肥市节点 核验）" in page.text
        assert "未上传材料" not in page.text
    with TestClient(hosts.apps["node-a.test"].app) as client:
        sign_in(client, officer_name)
        page = client.get(f"/workbench/cases/{case_id}")
        assert page.status_code == 200, page.text
        assert expected in page.text and "由 安徽省合肥市节点 核验）" in page.text


def test_a_failed_or_revoked_verification_is_no_material(pair: Any) -> None:
    """Only a licence verified valid in the session counts, and the latest verification of
    a licence decides: a forged one, or one revoked after it was verified, leaves the ID
    card missing and the submission is refused (nothing is kept on B)."""
    a, b = pair
    with a.session() as s:
        lic = make_licence(s, make_resident(s, "340100"))
        s.commit()
        compact, lic_id = lic.compact, lic.id
    forged = compact[:40] + ("A" if compact[40] != "A" else "B") + compact[41:]
    sid, clerk_id, _ = _session_with(pair, [forged])
    with b.session() as s:
        with pytest.raises(ValidationFailed) as refused:
            relay.submit(s, s.get(Account, clerk_id), s.get(WindowTicket, sid))
        s.rollback()
        assert s.scalar(select(Case).where(Case.clerk_id == clerk_id)) is None
    assert "materials.id_card" in {e["field"] for e in refused.value.errors}

    sid, clerk_id, _ = _session_with(pair, [compact])
    with a.session() as s:
        officer = make_officer(s, "340100-public_security")
        licences.change_status(s, officer, lic_id, "revoke", "证件挂失")
        s.commit()
    with b.session() as s:
        clerk = s.get(Account, clerk_id)
        t = s.get(WindowTicket, sid)
        view = relay.relay(s, clerk, t, "licence", {"presentation": compact})
        assert [x["valid"] for x in view["licences"]] == [True, False]
        s.commit()
        with pytest.raises(ValidationFailed) as refused:
            relay.submit(s, clerk, t)
        s.rollback()
    assert "materials.id_card" in {e["field"] for e in refused.value.errors}


def test_what_a_peer_claims_is_checked_like_what_a_session_gives(pair: Any) -> None:
    """A forwarded case's presented licences are a peer's claims: a material that is not
    the matter's, another licence type, a failed result or a bad digest refuse them."""
    a, _ = pair
    good = {
        "material_code": "id_card",
        "type_code": "resident_id_card",
        "type_name": "居民身份证",
        "licence_id": "340100-2026-000001",
        "issuer": "合肥市公安局",
        "verified_by": "安徽省合肥市节点",
        "verified_at": datetime.now(UTC).isoformat(),
        "presentation_sha256": "a" * 64,
        "result": "valid",
    }
    bad = [
        {"material_code": "not_a_material"},
        {"type_code": "business_licence"},
        {"result": "revoked"},
        {"presentation_sha256": "A" * 64},
        {"presentation_sha256": "a" * 63},
        {"issuer": ""},
        {"verified_at": "2999-01-01T00:00:00+00:00"},
    ]
    with a.session() as s:
        case = Case(matter_code=SIMPLE_MATTER)
        for change in bad:
            with pytest.raises(ValidationFailed) as refused:
                replica.import_presented(s, case, [{**good, **change}])
            assert refused.value.type == "licence-rejected", change
            assert not case.presented_licences
        with pytest.raises(ValidationFailed):  # one material, one licence
            replica.import_presented(s, case, [good, {**good, "licence_id": "x"}])
        replica.import_presented(s, case, [good])
        assert [type(p) for p in case.presented_licences] == [PresentedLicence]
        s.rollback()


def test_on_one_node_the_presented_licence_is_the_material_too(
    app: Any, client: TestClient, factory: Any
) -> None:
    """One node serving every jurisdiction (the session's queries answered in-process):
    the licence verified in the session is the case's material, shown on the case page."""
    with factory() as s:
        lic = make_licence(s, make_resident(s, "340100"))
        clerk, officer = make_clerk(s, "310000"), hefei_officer(s)
        s.commit()
        compact, clerk_id, officer_id, clerk_name = (
            lic.compact,
            clerk.id,
            officer.id,
            clerk.username,
        )
    with factory() as s:
        ticket = relay.start(s, s.get(Account, clerk_id), SIMPLE_MATTER, "340100")
        s.commit()
        sid = ticket.session_id
    with factory() as s:
        service.take(s, s.get(Account, officer_id), sid)
        s.commit()
    with factory() as s:
        clerk, t = s.get(Account, clerk_id), s.get(WindowTicket, sid)
        relay.relay(s, clerk, t, "form", {"values": {"proof_purpose": "异地贷款"}})
        relay.relay(s, clerk, t, "licence", {"presentation": compact})
        args = {
            "method": "e_licence",
            "applicant_name": "王芳",
            "applicant_identifier": id_number("340100"),
        }
        relay.relay(s, clerk, t, "record_identity", args)
        s.commit()
    with factory() as s:
        service.officer_act(s, s.get(Account, officer_id), sid, "confirm_identity", {})
        s.commit()
    with factory() as s:
        view = relay.submit(s, s.get(Account, clerk_id), s.get(WindowTicket, sid))
        s.commit()
        case = s.scalar(select(Case).where(Case.number == view["case_number"]))
        assert case is not None and not case.attachments
        (p,) = case.presented_licences
        assert p.material_code == "id_card" and p.result == "valid"
        case_id, type_name, issuer = case.id, p.type_name, p.issuer
        # On one node the licence is stored here, but no licence_use is made: the record
        # is the session's verification, not a new one.
        assert s.scalar(select(LicenceUse).where(LicenceUse.case_id == case_id)) is None
    sign_in(client, clerk_name)
    page = client.get(f"/window/cases/{case_id}")
    assert page.status_code == 200, page.text
    assert f"免提交：{type_name}（{issuer}，已于 " in page.text
    assert "由 安徽省合肥市节点 核验）" in page.text


def test_a_forwarded_case_whose_presented_licence_was_tampered_with_is_refused(
    pair: Any, tools: Any
) -> None:
    """Over the signed inbox: A submits a case for a 苏州 authority (B) whose ID card is a
    licence verified elsewhere; the message is altered before it leaves (a material the
    matter does not have; a failed result): B refuses it and keeps no copy. The untouched
    message makes B's copy, with the licence as its material."""
    from tongban.cases import service as cases
    from tongban.exchange.models import OutboxMessage

    from builders import SIMPLE_FORM

    a, b = pair
    record = {
        "material_code": "id_card",
        "type_code": "resident_id_card",
        "type_name": "居民身份证",
        "licence_id": "340100-2026-000001",
        "issuer": "合肥市公安局",
        "verified_by": "安徽省合肥市节点",
        "verified_at": datetime.now(UTC),
        "presentation_sha256": "b" * 64,
        "result": "valid",
    }
    numbers = []
    for change in ({"material_code": "not_a_material"}, {"result": "revoked"}, {}):
        with a.session() as s:
            resident = make_resident(s, "340100")
            case = cases.submit_online(
                s,
                resident,
                cases.Application(
                    matter_code=SIMPLE_MATTER,
                    competent_jurisdiction="320000",
                    competent_city="320500",
                    form_data=dict(SIMPLE_FORM),
                    consent=True,
                    verified=[cases.VerifiedLicence(**record)],
                ),
            )
            s.commit()
            number = case.number
            numbers.append(number)
            (msg,) = [
                m
                for m in s.scalars(
                    select(OutboxMessage).where(OutboxMessage.type == "case.forwarded")
                )
                if m.payload.get("number") == number
            ]
            (item,) = msg.payload["presented_licences"]
            msg.payload = {**msg.payload, "presented_licences": [{**item, **change}]}
            s.commit()
        tools.drain(a, b)
    tampered, tampered_too, good = numbers
    with a.session() as s:  # refused by B, with the reason: a dead letter on A
        errors = {
            m.payload["number"]: (m.status, m.last_error or "")
            for m in s.scalars(select(OutboxMessage).where(OutboxMessage.type == "case.forwarded"))
        }
    assert errors[tampered][0] == errors[tampered_too][0] == "dead"
    assert "422" in errors[tampered][1] and "不属于本事项" in errors[tampered][1]
    assert "422" in errors[tampered_too][1] and "result" in errors[tampered_too][1]
    assert errors[good][0] == "delivered"
    with b.session() as s:
        assert s.scalar(select(Case).where(Case.number == tampered)) is None
        assert s.scalar(select(Case).where(Case.number == tampered_too)) is None
        copy = s.scalar(select(Case).where(Case.number == good))
        assert copy is not None and not copy.attachments
        assert [(p.material_code, p.presentation_sha256) for p in copy.presented_licences] == [
            ("id_card", "b" * 64)
        ]
