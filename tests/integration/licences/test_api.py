"""The licences API over the real app: types, issuance (direct, bulk), status changes,
the holder's licences and presentations, verification answers, the trust list, status
lists and issuer metadata."""

from __future__ import annotations

import time

from sqlalchemy import func, select

from tongban.crypto.signing import public_from_jwk
from tongban.licences.models import Licence
from tongban.licences.sdjwt import parse_sd_jwt
from tongban.licences.statuslist import SUSPENDED, VALID, verify_status_list
from tongban.licences.trustlist import verify_trust_list

from builders import LICENCE_CLAIMS, make_licence, make_officer, make_resident, token_for

PROBLEM = "application/problem+json"


def _id_card_body(holder, **claims):  # type: ignore[no-untyped-def]
    body = {
        "type_code": "resident_id_card",
        "holder_identifier": holder.id_number,
        "holder_name": holder.display_name,
        "claims": {
            "name": holder.display_name,
            "id_number": holder.id_number,
            **LICENCE_CLAIMS["resident_id_card"],
            **claims,
        },
    }
    return body


def test_licence_types(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/api/v1/licence-types")
    assert r.status_code == 200
    types = {t["code"]: t for t in r.json()}
    dl = types["driving_licence"]
    assert dl["name"] == "机动车驾驶证" and dl["authority_type"] == "public_security"
    assert {f["name"]: f["personal"] for f in dl["fields"]}["address"] is True
    assert types["business_licence"]["validity_years"] is None


def test_issue_present_and_verify_over_the_api(client, session) -> None:  # type: ignore[no-untyped-def]
    resident = make_resident(session)
    officer = make_officer(session, "340100-public_security")
    oh, rh = token_for(client, officer), token_for(client, resident)
    r = client.post("/api/v1/licences", headers=oh, json=_id_card_body(resident))
    assert r.status_code == 201, r.text
    lic = r.json()
    assert lic["identifier"].startswith("1.2.156.3005.2.") and lic["status"] == "valid"

    mine = client.get("/api/v1/my/licences", headers=rh).json()
    assert [x["id"] for x in mine] == [lic["id"]]
    r = client.post(
        f"/api/v1/my/licences/{lic['id']}/presentations",
        headers=rh,
        json={"disclose": ["name"]},
    )
    assert r.status_code == 201, r.text
    presentation = r.json()["presentation"]
    assert {d.name for d in parse_sd_jwt(presentation).disclosures} == {"name"}

    v = client.post("/api/v1/licences/verify", json={"presentation": presentation}).json()
    assert v["valid"] is True and v["reason"] is None
    assert v["claims"]["name"] == resident.display_name
    assert "address" not in v["claims"] and "id_number" not in v["claims"]  # withheld
    assert v["licence_id"] == lic["identifier"] and v["jurisdiction"] == "340000"
    assert v["type"] == "resident_id_card" and v["status"] == "valid"

    # a personal claim that is not the type's field is refused
    r = client.post(
        f"/api/v1/my/licences/{lic['id']}/presentations", headers=rh, json={"disclose": ["x"]}
    )
    assert r.status_code == 422


def test_verify_answers_with_the_reason(client, session) -> None:  # type: ignore[no-untyped-def]
    resident = make_resident(session)
    lic = make_licence(session, resident)
    officer = make_officer(session, "340100-public_security")
    oh = token_for(client, officer)

    def verify(text):  # type: ignore[no-untyped-def]
        r = client.post("/api/v1/licences/verify", json={"presentation": text})
        assert r.status_code == 200, r.text
        return r.json()

    assert verify(lic.compact)["valid"] is True
    # tampered: a disclosure replaced by one of another value
    from tongban.licences.sdjwt import make_disclosure

    jwt, *discs = lic.compact.split("~")
    forged = make_disclosure("name", "冒名者").encoded
    tampered = "~".join([jwt, forged, *discs[1:]])
    out = verify(tampered)
    assert (out["valid"], out["reason"], out["reason_text"]) == (
        False,
        "tampered_disclosure",
        "披露内容被篡改",
    )
    # bad signature: payload changed
    head, payload, sig = jwt.split(".")
    bad = ".".join([head, payload, sig[:-4] + ("AAAA" if sig[-4:] != "AAAA" else "BBBB")])
    assert verify(bad + "~")["reason"] == "bad_signature"
    # garbage
    for junk in ("", "hello", "a.b.c~", "~~~"):
        out = verify(junk)
        assert out["valid"] is False and out["reason"] == "malformed"
    # not a string: 422 problem
    r = client.post("/api/v1/licences/verify", json={"presentation": 42})
    assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM)
    # suspended, then revoked
    r = client.post(
        f"/api/v1/licences/{lic.id}/status",
        headers=oh,
        json={"action": "suspend", "reason": "核查"},
    )
    assert r.status_code == 200 and r.json()["status"] == "suspended"
    assert verify(lic.compact)["reason"] == "suspended"
    r = client.post(
        f"/api/v1/licences/{lic.id}/status", headers=oh, json={"action": "revoke", "reason": ""}
    )
    assert r.status_code == 422  # reason required
    client.post(
        f"/api/v1/licences/{lic.id}/status", headers=oh, json={"action": "revoke", "reason": "注销"}
    )
    out = verify(lic.compact)
    assert (out["reason"], out["status"], out["licence_id"]) == (
        "revoked",
        "revoked",
        lic.identifier,
    )
    r = client.post(
        f"/api/v1/licences/{lic.id}/status", headers=oh, json={"action": "reinstate", "reason": "x"}
    )
    assert r.status_code == 409


def test_authorisation(client, session) -> None:  # type: ignore[no-untyped-def]
    owner, other = make_resident(session), make_resident(session)
    lic = make_licence(session, owner)
    oh = token_for(client, other)
    assert client.get(f"/api/v1/licences/{lic.id}", headers=oh).status_code == 404
    r = client.post(f"/api/v1/my/licences/{lic.id}/presentations", headers=oh, json={})
    assert r.status_code == 404
    assert client.get("/api/v1/my/licences", headers=oh).json() == []
    elsewhere = token_for(client, make_officer(session, "320500-public_security"))
    assert client.get(f"/api/v1/licences/{lic.id}", headers=elsewhere).status_code == 404
    r = client.post(
        f"/api/v1/licences/{lic.id}/status",
        headers=elsewhere,
        json={"action": "revoke", "reason": "x"},
    )
    session.refresh(lic)
    assert r.status_code == 404 and lic.status == "valid"
    # a resident cannot issue
    r = client.post("/api/v1/licences", headers=oh, json=_id_card_body(other))
    assert r.status_code == 403
    assert (
        client.get(f"/api/v1/licences/{lic.id}", headers=token_for(client, owner)).status_code
        == 200
    )


def test_bulk_is_all_or_nothing(client, session) -> None:  # type: ignore[no-untyped-def]
    officer = make_officer(session, "340100-public_security")
    oh = token_for(client, officer)
    holders = [make_resident(session) for _ in range(3)]
    rows = [_id_card_body(h) for h in holders]
    count = session.scalar(select(func.count()).select_from(Licence))
    bad = [rows[0], {**rows[1], "holder_identifier": "123"}, rows[2]]
    r = client.post("/api/v1/licences/bulk", headers=oh, json=bad)
    assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM)
    fields = [e["field"] for e in r.json()["errors"]]
    assert fields == ["rows.1.holder_identifier"]
    assert session.scalar(select(func.count()).select_from(Licence)) == count
    r = client.post("/api/v1/licences/bulk", headers=oh, json=rows)
    assert r.status_code == 201, r.text
    assert len(r.json()) == 3
    assert session.scalar(select(func.count()).select_from(Licence)) == count + 3


def test_trust_list_status_list_and_issuer_metadata(client, session) -> None:  # type: ignore[no-untyped-def]
    lic = make_licence(session, make_resident(session))
    r = client.get("/api/v1/trust-list")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/jwt")
    roots = client.get("/api/v1/trust-list/root").json()["keys"]
    trust = verify_trust_list(r.text, [public_from_jwk(k) for k in roots], now=int(time.time()))
    assert trust.issuer_of_jurisdiction("340000") is not None

    r = client.get(f"/api/v1/status-lists/340000/{lic.status_list}")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/statuslist+jwt")

    def key_for(h):  # type: ignore[no-untyped-def]
        return trust.key_for(h["iss"], h["kid"], h["iat"])

    lst = verify_status_list(r.text, key_for, now=int(time.time()), uri=lic.status_uri)
    assert lst.status_list.get(lic.status_index) == VALID
    assert lst.status_list.bits == 2 and len(lst.status_list) == 2**17
    officer = make_officer(session, "340100-public_security")
    client.post(
        f"/api/v1/licences/{lic.id}/status",
        headers=token_for(client, officer),
        json={"action": "suspend", "reason": "核查"},
    )
    r = client.get(f"/api/v1/status-lists/340000/{lic.status_list}")
    lst = verify_status_list(r.text, key_for, now=int(time.time()), uri=lic.status_uri)
    assert lst.status_list.get(lic.status_index) == SUSPENDED
    refs = client.get("/api/v1/status-lists").json()
    assert {"jurisdiction": "340000", "list": lic.status_list, "uri": lic.status_uri} in refs
    assert client.get("/api/v1/status-lists/340000/9999").status_code == 404

    meta = client.get("/.well-known/jwt-vc-issuer/issuers/340000")
    assert meta.status_code == 200
    body = meta.json()
    assert body["issuer"].endswith("/issuers/340000")
    assert lic.kid in [k["kid"] for k in body["jwks"]["keys"]]
    assert client.get("/.well-known/jwt-vc-issuer/issuers/999999").status_code == 404


def test_officer_search_takes_the_holder_in_the_body(client, session) -> None:  # type: ignore[no-untyped-def]
    officer = make_officer(session, "340100-public_security")
    holder, other = make_resident(session), make_resident(session)
    mine = make_licence(session, holder=holder)
    make_licence(session, holder=other)
    session.commit()
    auth = token_for(client, officer)
    r = client.post("/api/v1/licences/search", json={"q": holder.id_number}, headers=auth)
    assert r.status_code == 200
    assert [x["identifier"] for x in r.json()] == [mine.identifier]
    unfiltered = client.get(f"/api/v1/licences?q={holder.id_number}", headers=auth)
    assert len(unfiltered.json()) >= 2  # q in the URL is not read
    bad = client.post("/api/v1/licences/search", json={"q": "x" * 61}, headers=auth)
    assert bad.status_code == 422
