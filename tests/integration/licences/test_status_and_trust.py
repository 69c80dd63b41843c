"""Suspension, reinstatement and revocation (events, status-list bits, verification
answers), the signed trust list, issuer metadata, key rotation, and both signature
suites."""

from __future__ import annotations

import time

import pytest
from sqlalchemy.orm import Session

from tongban.crypto.signing import public_from_jwk
from tongban.errors import Conflict, NotFound, ValidationFailed
from tongban.keys import service as keys
from tongban.licences import service as licences
from tongban.licences import status as status_service
from tongban.licences import trust as trust_service
from tongban.licences.statuslist import INVALID, SUSPENDED, VALID, verify_status_list
from tongban.licences.trustlist import verify_trust_list

from builders import id_number, make_licence, make_officer, make_resident


def _bit(session: Session, lic) -> int:  # type: ignore[no-untyped-def]
    """The licence's entry in its published, signed status list."""
    token = licences.status_list_token(session, lic.jurisdiction_code, lic.status_list)
    trust = licences.local_trust(session)

    def key_for(h):  # type: ignore[no-untyped-def]
        return trust.key_for(h["iss"], h["kid"], h["iat"])

    lst = verify_status_list(token, key_for, now=int(time.time()), uri=lic.status_uri)
    return lst.status_list.get(lic.status_index)


def test_suspend_reinstate_revoke(session: Session) -> None:
    resident = make_resident(session)
    lic = make_licence(session, resident)
    officer = make_officer(session, "340100-public_security")
    assert _bit(session, lic) == VALID

    with pytest.raises(ValidationFailed):
        licences.change_status(session, officer, lic.id, "suspend", "  ")
    licences.change_status(session, officer, lic.id, "suspend", "涉嫌冒用，暂停核查")
    assert lic.status == "suspended" and _bit(session, lic) == SUSPENDED
    v = licences.verify_stored(session, lic)
    assert not v.valid and v.reason == "suspended" and v.reason_text == "已暂停"
    assert v.licence_id == lic.identifier

    licences.change_status(session, officer, lic.id, "reinstate", "核查无误")
    assert _bit(session, lic) == VALID and licences.verify_stored(session, lic).valid

    licences.change_status(session, officer, lic.id, "revoke", "已换领新证")
    assert _bit(session, lic) == INVALID
    v = licences.verify_stored(session, lic)
    assert (v.valid, v.reason, v.status) == (False, "revoked", "revoked")
    with pytest.raises(Conflict):  # revoked is final
        licences.change_status(session, officer, lic.id, "reinstate", "误操作")
    assert [(e.action, e.from_status, e.to_status, e.reason) for e in lic.events] == [
        ("issue", None, "valid", "直接签发"),
        ("suspend", "valid", "suspended", "涉嫌冒用，暂停核查"),
        ("reinstate", "suspended", "valid", "核查无误"),
        ("revoke", "valid", "revoked", "已换领新证"),
    ]
    assert all(e.actor_id == officer.id for e in lic.events[1:])
    # Every event is also a link of the node's audit chain.
    from sqlalchemy import select

    from tongban.audit.models import AuditEntry

    kinds = session.scalars(
        select(AuditEntry.kind).where(AuditEntry.subject == f"licence:{lic.id}")
    ).all()
    assert kinds == ["licence.event"] * 4


def test_other_jurisdiction_or_type_cannot_change_status(session: Session) -> None:
    lic = make_licence(session, make_resident(session))  # 安徽 public security
    for authority in ("320500-public_security", "340100-health"):
        with pytest.raises(NotFound):
            licences.change_status(session, make_officer(session, authority), lic.id, "revoke", "x")
    # another public-security authority of the same jurisdiction may act
    other = make_officer(session, "340200-public_security")
    licences.change_status(session, other, lic.id, "suspend", "协查")
    assert lic.status == "suspended"


def test_trust_list_is_signed_by_the_root_and_lists_every_issuer(session: Session) -> None:
    make_licence(session, make_resident(session))
    make_licence(session, make_resident(session, "320500"), authority="320500-public_security")
    token = licences.trust_list_token(session)
    roots = [public_from_jwk(j) for j in licences.root_keys(session)]
    trust = verify_trust_list(token, roots, now=int(time.time()))
    codes = {i.jurisdiction for i in trust.issuers}
    assert {"340000", "320000"} <= codes
    anhui = trust.issuer_of_jurisdiction("340000")
    assert anhui is not None and anhui.name == "安徽省" and anhui.iss.endswith("/issuers/340000")
    assert trust.exp - trust.iat == trust_service.TRUST_LIST_LIFETIME
    # a list signed by another key is refused
    from tongban.crypto.signing import generate
    from tongban.licences.rejection import LicenceRejected

    with pytest.raises(LicenceRejected):
        verify_trust_list(token, [generate().public()], now=int(time.time()))


def test_rotation_keeps_old_licences_valid(session: Session) -> None:
    resident = make_resident(session)
    before = make_licence(session, resident)
    old_kid = before.kid
    trust_before = licences.trust_list_token(session)
    keys.rotate(session, "licence", "340000")
    after = make_licence(session, resident, "driving_licence")
    assert after.kid != old_kid
    assert licences.verify_stored(session, before).valid
    assert licences.verify_stored(session, after).valid
    # the trust list changed with the keys, and gives the old key its end
    token = licences.trust_list_token(session)
    assert token != trust_before
    roots = [public_from_jwk(j) for j in licences.root_keys(session)]
    trust = verify_trust_list(token, roots, now=int(time.time()))
    entry = trust.trusted_key(before.status_uri and f"{_iss(before)}", old_kid)
    assert entry is not None and entry.exp is not None
    # issuer metadata publishes both keys
    meta = licences.issuer_metadata(session, "340000")
    kids = [k["kid"] for k in meta["jwks"]["keys"]]
    assert old_kid in kids and after.kid in kids
    assert meta["issuer"] == _iss(before)


def _iss(lic) -> str:  # type: ignore[no-untyped-def]
    from tongban.licences.sdjwt import parse_sd_jwt

    return str(parse_sd_jwt(lic.compact).jws.payload["iss"])


def test_withdrawn_key_before_issuance_does_not_verify(session: Session) -> None:
    lic = make_licence(session, make_resident(session))
    from datetime import timedelta

    keys.withdraw(session, lic.kid, at=lic.issued_at - timedelta(seconds=5))
    v = licences.verify_stored(session, lic)
    assert (v.valid, v.reason) == (False, "unknown_issuer")


@pytest.mark.parametrize("alg", ["EdDSA", "SM2"])
def test_both_signature_suites(session: Session, alg: str) -> None:
    keys.rotate(session, "licence", "310000", alg)
    # (an ID number of 黄浦区: stdnum's table has no 310002)
    resident = make_resident(session, "310000", id_number=id_number("310100"))
    lic = make_licence(session, resident, authority="310000-public_security")
    assert lic.alg == alg
    from tongban.licences.sdjwt import parse_sd_jwt

    assert parse_sd_jwt(lic.compact).jws.header["alg"] == alg
    assert licences.verify_stored(session, lic).valid
    officer = make_officer(session, "310000-public_security")
    licences.change_status(session, officer, lic.id, "revoke", "测试")
    assert _bit(session, lic) == INVALID  # the status list is signed with the same suite
    assert licences.verify_stored(session, lic).reason == "revoked"


def test_status_list_cache_rebuilds_only_on_change(session: Session) -> None:
    lic = make_licence(session, make_resident(session))
    first = licences.status_list_token(session, "340000", lic.status_list)
    assert licences.status_list_token(session, "340000", lic.status_list) == first
    officer = make_officer(session, "340100-public_security")
    licences.change_status(session, officer, lic.id, "suspend", "核查")
    assert licences.status_list_token(session, "340000", lic.status_list) != first
    with pytest.raises(NotFound):
        licences.status_list_token(session, "340000", 999)
    assert status_service.STATUS_LIST_TTL > 0


def test_fetched_lists_of_other_nodes_answer_for_their_licences(session: Session) -> None:
    """A list this node only fetched (own = false) answers from the stored signed token,
    not from local rows; a forged token is not imported."""
    from tongban.licences.models import StatusListToken
    from tongban.licences.rejection import LicenceRejected

    lic = make_licence(session, make_resident(session), authority="330100-public_security")
    token = licences.status_list_token(session, "330000", lic.status_list)  # all valid
    # Pretend another node publishes 浙江's list: this node holds only the fetched copy.
    row = session.get(StatusListToken, ("330000", lic.status_list))
    assert row is not None
    row.own = False
    with pytest.raises(LicenceRejected):
        status_service.import_list(
            session, "330000", lic.status_list, lic.status_uri, token[:-3] + "AAA"
        )
    status_service.import_list(session, "330000", lic.status_list, lic.status_uri, token)
    lic.status = "revoked"  # a local row that the fetched list does not say
    session.flush()
    assert licences.verify_stored(session, lic).valid  # the fetched list says valid
    row.own = True
    session.flush()
    assert licences.verify_stored(session, lic).reason == "revoked"
