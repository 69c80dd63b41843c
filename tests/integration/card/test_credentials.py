"""Device credentials and revocation lists on the card's node (SQLite and PostgreSQL):
the reference device enrols through the API and its codes are admitted by a gate that
trusts this node's issuing keys; a new device supersedes the old one; a lost card's
credentials enter the signed revocation list a gate downloads; the code page and its
scripts are served from this node."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tongban.card import codec, service
from tongban.card.device import Device, DeviceError
from tongban.card.models import CardCredential
from tongban.card.trust import issuer_keys
from tongban.card.verifier import Refusal, Verifier, index_keys
from tongban.licences import service as licences

from builders import csrf_of, make_resident, sign_in, token_for


def _holder(session: Session, city: str = "320100") -> tuple[Any, Any]:
    holder = make_resident(session, city)
    card = service.issue(session, service.holder_of(holder))
    session.commit()
    return holder, card


def _gate(session: Session, revoked: dict[str, frozenset[bytes]] | None = None) -> Verifier:
    keys = index_keys(issuer_keys(licences.local_trust(session)))
    return Verifier(keys, revoked or {"320000": frozenset()}, synced_at=int(time.time()))


def test_the_reference_device_enrols_over_the_api_and_its_codes_are_admitted(
    client: TestClient, session: Session
) -> None:
    holder, card = _holder(session)
    device = Device.generate("ES256")
    body = device.enrol(
        "http://testserver", token=token_for(client, holder)["Authorization"][7:], client=client
    )
    assert body["card_number"] == card.number and body["city_name"] == "南京市"
    assert body["holder_name"].startswith(holder.display_name[0]) and "*" in body["holder_name"]
    assert body["qr_prefix"] == "TBC1:" and body["refresh_seconds"] == 30
    cred = device.credential_info()
    assert (cred.jurisdiction, cred.city) == ("320000", "320100")
    assert cred.exp - cred.iat == 24 * 3600 and cred.transport and cred.generation == 3
    now = int(time.time())
    verdict = _gate(session).check(device.qr_text(now), now)
    assert verdict.admitted, verdict
    # Stored: the reference, the device's thumbprint, no private key anywhere.
    session.expire_all()
    row = session.query(CardCredential).filter_by(card_id=card.id).one()
    assert row.ref == cred.ref.hex() and row.device_alg == "ES256"
    assert "d" not in row.device_jwk
    assert [e.action for e in card.events][-1] == "enrol_device"


def test_renewal_with_the_same_key_records_no_new_device_and_revokes_nothing(
    session: Session,
) -> None:
    holder, card = _holder(session)
    device = Device.generate("EdDSA")
    first = service.enrol(session, holder, device.public_jwk())
    second = service.enrol(session, holder, device.public_jwk())
    assert first.credential.ref != second.credential.ref  # fresh pseudonym per credential
    assert [e.action for e in card.events].count("enrol_device") == 1
    assert service.revoked_refs(session, "320000", first.row.issued_at) == []


def test_a_new_device_supersedes_the_old_one(session: Session) -> None:
    holder, card = _holder(session)
    old, new = Device.generate(), Device.generate()
    old.credential = service.enrol(session, holder, old.public_jwk()).data
    new.credential = service.enrol(session, holder, new.public_jwk()).data
    revoked = service.revocation_list(session, "320000")
    assert old.credential_info().ref in revoked.refs
    assert new.credential_info().ref not in revoked.refs
    gate = _gate(session, {"320000": frozenset(revoked.refs)})
    now = int(time.time())
    assert gate.check(old.qr_text(now), now).reason is Refusal.REVOKED
    assert gate.check(new.qr_text(now), now).admitted


def test_a_lost_card_revokes_its_credentials_and_found_brings_them_back(
    session: Session,
) -> None:
    holder, card = _holder(session)
    device = Device.generate()
    issued = service.enrol(session, holder, device.public_jwk())
    seq = service.revocation_list(session, "320000").seq
    service.act(session, holder, card.id, "report_lost")
    lost = service.revocation_list(session, "320000")
    assert issued.credential.ref in lost.refs and lost.seq == seq + 1
    service.act(session, holder, card.id, "found")
    found = service.revocation_list(session, "320000")
    assert issued.credential.ref not in found.refs and found.seq == seq + 2


def test_no_credential_for_a_card_that_is_not_normal(client: TestClient, session: Session) -> None:
    holder, card = _holder(session)
    service.act(session, holder, card.id, "report_lost")
    session.commit()
    device = Device.generate()
    try:
        device.enrol(
            "http://testserver", token=token_for(client, holder)["Authorization"][7:], client=client
        )
    except DeviceError as e:
        assert "挂失" in str(e)
    else:
        raise AssertionError("a lost card got a credential")
    r = client.post(
        "/api/v1/me/card/credential",
        json={"jwk": device.public_jwk()},
        headers=token_for(client, holder),
    )
    assert r.status_code == 409 and r.json()["type"].endswith("card-not-usable")


def test_a_bad_device_key_is_a_422_naming_jwk(client: TestClient, session: Session) -> None:
    holder, _ = _holder(session)
    auth = token_for(client, holder)
    device = Device.generate()
    leaked = {**device.public_jwk(), "d": "c2VjcmV0"}
    for jwk in (leaked, {"kty": "RSA", "n": "x", "e": "AQAB"}, {"kty": "EC", "crv": "P-256"}):
        r = client.post("/api/v1/me/card/credential", json={"jwk": jwk}, headers=auth)
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == "jwk"
    r = client.post("/api/v1/me/card/credential", json={"jwk": "x"}, headers=auth)
    assert r.status_code == 422


def test_gates_download_the_signed_revocation_lists(client: TestClient, session: Session) -> None:
    holder, card = _holder(session)
    device = Device.generate()
    issued = service.enrol(session, holder, device.public_jwk())
    service.act(session, holder, card.id, "report_lost")
    session.commit()
    refs = client.get("/api/v1/card/revocations").json()
    mine = next(r for r in refs if r["jurisdiction"] == "320000")
    assert mine["own"] is True and mine["seq"] >= 1
    r = client.get("/api/v1/card/revocations/320000")
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    lst = codec.decode_revocations(r.content)
    assert issued.credential.ref in lst.refs
    keys = index_keys(issuer_keys(licences.local_trust(session)))
    key = keys[("320000", lst.kid8)]
    assert key.public.verify(lst.signing_input(), lst.signature)
    assert client.get("/api/v1/card/revocations/999999").status_code == 404
    assert client.get("/api/v1/card/revocations/x").status_code == 404


def test_the_code_page_and_its_scripts_are_served_here(
    client: TestClient, session: Session
) -> None:
    holder, card = _holder(session)
    sign_in(client, holder)
    page = client.get("/my/card/code")
    assert page.status_code == 200
    assert 'id="card-code"' in page.text and f'data-account="{holder.id}"' in page.text
    assert csrf_of(page.text)
    assert '<script src="/static/vendor/qrcode-generator/qrcode.js"' in page.text
    assert "cdn" not in page.text.lower()
    js = client.get("/card/assets/card-code.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert "tongban/card/code/1" in js.text and "generateKey" in js.text
    sw = client.get("/my/card/sw.js")
    assert sw.status_code == 200 and "caches" in sw.text
    vendor = client.get("/static/vendor/qrcode-generator/qrcode.js")
    assert vendor.status_code == 200 and "Kazuhiko Arase" in vendor.text
    assert client.get("/card/assets/..%2Fmodels.py").status_code == 404
    assert client.get("/card/assets/sw.js").status_code == 404
    # A lost card: the page says so and loads no script.
    service.act(session, holder, card.id, "report_lost")
    session.commit()
    page = client.get("/my/card/code")
    assert "挂失" in page.text and "card-code.js" not in page.text


def test_tongban_card_code_prints_what_a_gate_admits(session: Session, tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from tongban.card.cli import app as card_cli

    holder, _ = _holder(session)
    device = Device.generate("EdDSA")
    device.credential = service.enrol(session, holder, device.public_jwk()).data
    path = tmp_path / "device.json"
    device.save(path)
    assert (path.stat().st_mode & 0o777) == 0o600
    now = int(time.time())
    r = CliRunner().invoke(card_cli, ["code", "--device", str(path), "--at", str(now)])
    assert r.exit_code == 0, r.output
    text = r.output.strip()
    assert text.startswith("TBC1:") and len(text) == 305
    assert _gate(session).check(text, now).admitted
    # Past the credential's validity the device refuses to make codes.
    r = CliRunner().invoke(card_cli, ["code", "--device", str(path), "--at", str(now + 90000)])
    assert r.exit_code == 1 and "过期" in r.output
    r = CliRunner().invoke(card_cli, ["code", "--device", str(tmp_path / "none.json")])
    assert r.exit_code == 1 and "无法读取设备文件" in r.output
    # Enrolling against a node that is not there says so.
    r = CliRunner().invoke(
        card_cli,
        [
            "enrol",
            "--url",
            "http://127.0.0.1:9",
            "--username",
            "x",
            "--password",
            "y",
            "--device",
            str(tmp_path / "new.json"),
        ],
    )
    assert r.exit_code == 1 and "无法连接" in r.output
