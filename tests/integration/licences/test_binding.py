"""Holder binding over the real app (SQLite and PostgreSQL): a device key registered by
the holder, licences re-issued with it in `cnf.jwk`, presentations bound with a KB-JWT
and verified by the API, the verify page and the offline verifier — and a copied
(unbound) presentation refused by a verifier that requires binding, with its reason."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.config import Settings
from tongban.crypto.signing import P256PrivateKey, generate
from tongban.kernel.node import Node
from tongban.licences import service
from tongban.licences.keybinding import ANY_VERIFIER, bind
from tongban.licences.models import HolderKey, Licence
from tongban.licences.sdjwt import parse_sd_jwt

from builders import make_licence, make_officer, make_resident, token_for

PROBLEM = "application/problem+json"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
NONCE = re.compile(r'data-nonce="([A-Z0-9]+)"')


@pytest.fixture
def settings_with(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Any:
    """Change some TONGBAN_LICENCE_* settings of this test's node (its app and sessions
    hold this very `settings`), for the rest of the test."""

    def use(**values: Any) -> None:
        for name, value in values.items():
            monkeypatch.setattr(settings, name, value)

    return use


def register(client: TestClient, headers: dict[str, str], device: Any) -> dict[str, Any]:
    r = client.post(
        "/api/v1/my/holder-keys",
        headers=headers,
        json={"jwk": device.public().jwk(), "label": "手机"},
    )
    assert r.status_code == 201, r.text
    return r.json()


def presentation(client: TestClient, headers: dict[str, str], lid: Any, *names: str) -> dict:
    r = client.post(
        f"/api/v1/my/licences/{lid}/presentations", headers=headers, json={"disclose": list(names)}
    )
    assert r.status_code == 201, r.text
    return r.json()


def verify(client: TestClient, text: str, **policy: Any) -> dict[str, Any]:
    r = client.post("/api/v1/licences/verify", json={"presentation": text, **policy})
    assert r.status_code == 200, r.text
    return r.json()


def test_registered_device_key_binds_the_holders_licences(
    client: TestClient, session: Session
) -> None:
    resident = make_resident(session)
    lic = make_licence(session, resident, "driving_licence")
    other = make_licence(session, make_resident(session), "driving_licence")
    assert lic.cnf_kid is None and "cnf" not in parse_sd_jwt(lic.compact).jws.payload
    rh = token_for(client, resident)
    device = P256PrivateKey.generate()

    out = register(client, rh, device)
    assert out["key"]["thumbprint"] == device.kid and out["key"]["alg"] == "ES256"
    assert "d" not in out["key"]["jwk"]
    assert out["rebound"] == [str(lic.id)]
    session.expire_all()
    lic = session.get(Licence, lic.id)
    assert lic is not None and lic.cnf_kid == device.kid
    payload = parse_sd_jwt(lic.compact).jws.payload
    assert payload["cnf"] == {"jwk": device.public().jwk()}
    assert payload["licence_id"] == lic.identifier  # the same licence, re-signed
    assert [e.action for e in lic.events] == ["issue", "bind"]
    assert lic.events[-1].to_status == "valid"
    other_row = session.get(Licence, other.id)
    assert other_row is not None and other_row.cnf_kid is None  # nobody else's licence
    mine = client.get("/api/v1/my/licences", headers=rh).json()
    assert mine[0]["cnf_kid"] == device.kid

    # registering the same key again changes nothing; a new licence is bound at issuance
    assert register(client, rh, device)["rebound"] == []
    later = make_licence(session, resident, "resident_id_card")
    assert later.cnf_kid == device.kid
    assert parse_sd_jwt(later.compact).jws.payload["cnf"]["jwk"]["kty"] == "EC"


def test_copied_presentation_is_refused_when_binding_is_required(
    client: TestClient, session: Session
) -> None:
    resident = make_resident(session)
    lic = make_licence(session, resident, "driving_licence")
    rh = token_for(client, resident)
    device = P256PrivateKey.generate()
    register(client, rh, device)
    p = presentation(client, rh, lic.id, "name", "licence_class")
    assert p["cnf_kid"] == device.kid and p["presentation"].endswith("~")
    copied = p["presentation"]  # what an onlooker photographs from the QR code

    v = verify(client, copied, require_binding=True, nonce="K7Q2M9XA")
    assert v["valid"] is False and v["reason"] == "key_binding_missing"
    assert v["reason_text"].startswith("未附持有人绑定证明")
    assert v["licence_id"] == lic.identifier and v["binding_required"] is True
    # where the deployment allows bearer presentation and the verifier does not insist
    v = verify(client, copied)
    assert v["valid"] is True and v["binding"] == "unbound"
    assert v["binding_text"] == "未核验持有人绑定（不记名出示）"

    # the holder's device binds it to the verifier's nonce: accepted, and said so
    now = int(time.time())
    bound = bind(copied, device, nonce="K7Q2M9XA", iat=now)
    v = verify(client, bound, require_binding=True, nonce="K7Q2M9XA")
    assert v["valid"] is True and v["binding"] == "holder_bound", v
    assert v["binding_text"] == "已核验持有人绑定"
    assert v["claims"]["licence_class"] and "address" not in v["claims"]

    # the same bound text replayed to a verifier showing another nonce
    v = verify(client, bound, require_binding=True, nonce="ZZZZ2222")
    assert v["valid"] is False and v["reason"] == "key_binding_nonce_mismatch"
    # a KB-JWT made by another device (a thief's own key) over the right nonce
    stolen = bind(copied, P256PrivateKey.generate(), nonce="K7Q2M9XA", iat=now)
    assert verify(client, stolen, require_binding=True, nonce="K7Q2M9XA")["reason"] == (
        "key_binding_bad_signature"
    )
    # made too long ago
    old = bind(copied, device, nonce="K7Q2M9XA", iat=now - 3600)
    assert verify(client, old, require_binding=True, nonce="K7Q2M9XA")["reason"] == (
        "key_binding_stale"
    )
    # moved onto a presentation that shows more than the holder signed for
    more = presentation(client, rh, lic.id, "name", "licence_class", "address")["presentation"]
    moved = more + bound.rsplit("~", 1)[1]
    assert verify(client, moved, require_binding=True, nonce="K7Q2M9XA")["reason"] == (
        "key_binding_sd_hash_mismatch"
    )
    # aimed at another verifier
    elsewhere = bind(copied, device, nonce="K7Q2M9XA", iat=now, aud="https://bank.example")
    assert verify(client, elsewhere, require_binding=True, nonce="K7Q2M9XA")["reason"] == (
        "key_binding_audience_mismatch"
    )
    assert verify(
        client, elsewhere, require_binding=True, nonce="K7Q2M9XA", audience="https://bank.example"
    )["valid"]


def test_time_window_mode_and_deployment_policy(
    client: TestClient, session: Session, settings_with: Any
) -> None:
    resident = make_resident(session)
    lic = make_licence(session, resident, "resident_id_card")
    unbound_lic = make_licence(session, make_resident(session), "resident_id_card")
    rh = token_for(client, resident)
    device = generate()  # an Ed25519 device key (Chromium offers it too)
    register(client, rh, device)
    text = presentation(client, rh, lic.id, "name")["presentation"]
    now = int(time.time())
    fresh = bind(text, device, nonce="wallet-made", iat=now - 100, aud=ANY_VERIFIER)
    assert verify(client, fresh, require_binding=True)["binding"] == "holder_bound"

    settings_with(licence_kb_window=60)
    assert verify(client, fresh, require_binding=True)["reason"] == "key_binding_stale"

    # a deployment that requires binding by default, and one that forbids bearer use
    settings_with(licence_require_binding=True)
    assert verify(client, text)["reason"] == "key_binding_missing"
    assert verify(client, text, require_binding=False)["valid"] is True
    settings_with(licence_allow_unbound=False)
    assert verify(client, text, require_binding=False)["reason"] == "key_binding_missing"
    bearer = service.verify_stored(session, unbound_lic)  # 免提交 reads its own table
    assert bearer.valid is True
    r = client.post("/api/v1/licences/verify", json={"presentation": unbound_lic.compact})
    assert r.json()["reason"] == "not_holder_bound"


def test_bad_device_keys_are_refused(client: TestClient, session: Session) -> None:
    resident = make_resident(session)
    rh = token_for(client, resident)
    device = P256PrivateKey.generate()
    bad = [
        {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"},
        {**device.public().jwk(), "d": "c2VjcmV0"},  # a private key must never be sent
        generate("SM2").public().jwk(),
        {"kty": "RSA", "n": "x", "e": "AQAB"},
    ]
    for jwk in bad:
        r = client.post("/api/v1/my/holder-keys", headers=rh, json={"jwk": jwk})
        assert r.status_code == 422, (jwk, r.text)
        assert r.headers["content-type"].startswith(PROBLEM)
    assert session.scalars(select(HolderKey)).all() == []
    # an officer has no wallet
    officer = make_officer(session, "340100-public_security")
    r = client.post(
        "/api/v1/my/holder-keys",
        headers=token_for(client, officer),
        json={"jwk": device.public().jwk()},
    )
    assert r.status_code == 403


def test_withdrawn_key_unbinds_and_cannot_come_back(client: TestClient, session: Session) -> None:
    resident = make_resident(session)
    lic = make_licence(session, resident, "driving_licence")
    rh = token_for(client, resident)
    first, second = P256PrivateKey.generate(), P256PrivateKey.generate()
    k1 = register(client, rh, first)["key"]
    k2 = register(client, rh, second)["key"]
    session.expire_all()
    assert session.get(Licence, lic.id).cnf_kid == second.kid  # type: ignore[union-attr]
    r = client.delete(f"/api/v1/my/holder-keys/{k2['id']}", headers=rh)
    assert r.status_code == 200 and r.json() == [str(lic.id)]
    session.expire_all()
    assert session.get(Licence, lic.id).cnf_kid == first.kid  # type: ignore[union-attr]
    client.delete(f"/api/v1/my/holder-keys/{k1['id']}", headers=rh)
    session.expire_all()
    row = session.get(Licence, lic.id)
    assert row is not None and row.cnf_kid is None
    assert "cnf" not in parse_sd_jwt(row.compact).jws.payload
    r = client.post("/api/v1/my/holder-keys", headers=rh, json={"jwk": second.public().jwk()})
    assert r.status_code == 422  # a withdrawn key is not registered again
    keys = client.get("/api/v1/my/holder-keys", headers=rh).json()
    assert [k["revoked_at"] is not None for k in keys] == [True, True]
    # someone else's key id is not found
    other = token_for(client, make_resident(session))
    assert client.delete(f"/api/v1/my/holder-keys/{k1['id']}", headers=other).status_code == 404


def test_bind_is_not_an_officer_status_action(client: TestClient, session: Session) -> None:
    resident = make_resident(session)
    lic = make_licence(session, resident, "resident_id_card")
    officer = make_officer(session, "340100-public_security")
    r = client.post(
        f"/api/v1/licences/{lic.id}/status",
        headers=token_for(client, officer),
        json={"action": "bind", "reason": "x"},
    )
    assert r.status_code == 422


# --- pages -------------------------------------------------------------------------------


def login(client: TestClient, account: Any) -> None:
    from builders import PASSWORD

    page = client.get("/login")
    r = client.post(
        "/login",
        data={"username": account.username, "password": PASSWORD, "csrf_token": _csrf(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


def _csrf(page: str) -> str:
    m = CSRF.search(page)
    assert m, "no CSRF token on the page"
    return m.group(1)


def test_verify_page_says_which_binding_was_checked(client: TestClient, session: Session) -> None:
    resident = make_resident(session)
    lic = make_licence(session, resident, "driving_licence")
    device = P256PrivateKey.generate()
    register(client, token_for(client, resident), device)
    session.expire_all()
    text = service.present(session, resident, lic.id, ["name"]).compact

    page = client.get("/licences/verify")
    assert page.status_code == 200
    nonce = NONCE.search(page.text)
    assert nonce, "the verify page shows its challenge"
    form = {"csrf_token": _csrf(page.text), "nonce": nonce.group(1), "binding_choice": "1"}

    # bearer presentation, binding not asked: valid, and the page says it was not checked
    r = client.post("/licences/verify", data={**form, "presentation": text})
    assert 'data-valid="true"' in r.text
    assert 'data-binding="unbound"' in r.text and "未核验持有人绑定（不记名出示）" in r.text
    assert "已核验持有人绑定" not in r.text.replace("未核验持有人绑定", "")

    # the same copied text where the verifier requires binding: refused with the reason
    r = client.post("/licences/verify", data={**form, "presentation": text, "require_binding": "1"})
    assert 'data-valid="false"' in r.text and 'data-reason="key_binding_missing"' in r.text
    assert "未附持有人绑定证明" in r.text

    # bound over the page's nonce: valid, and the page says the binding was verified
    bound = bind(text, device, nonce=nonce.group(1), iat=int(time.time()))
    r = client.post(
        "/licences/verify", data={**form, "presentation": bound, "require_binding": "1"}
    )
    assert 'data-valid="true"' in r.text and 'data-binding="holder_bound"' in r.text
    assert "已核验持有人绑定" in r.text and "不记名出示）" not in r.text
    fresh = NONCE.search(r.text)
    assert fresh and fresh.group(1) != nonce.group(1)  # a new challenge for the next one


def test_wallet_pages_offer_binding(client: TestClient, session: Session) -> None:
    resident = make_resident(session)
    lic = make_licence(session, resident, "driving_licence")
    login(client, resident)
    page = client.get("/my/licences/device")
    assert page.status_code == 200 and 'id="device-binding"' in page.text
    assert "/static/licences-holder.js" in page.text
    device = P256PrivateKey.generate()
    import json

    r = client.post(
        "/my/licences/device",
        data={
            "csrf_token": _csrf(page.text),
            "jwk": json.dumps(device.public().jwk()),
            "label": "x",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    page = client.get("/my/licences/device?done=registered")
    assert f'data-key-thumbprint="{device.kid}"' in page.text and "已绑定设备" in page.text
    r = client.post(
        "/my/licences/device",
        data={"csrf_token": _csrf(page.text), "jwk": "{not json", "label": "x"},
    )
    assert r.status_code == 422 and "设备公钥格式错误" in r.text

    present = client.get(f"/my/licences/{lic.id}/present")
    r = client.post(
        f"/my/licences/{lic.id}/present",
        data={"csrf_token": _csrf(present.text), "disclose": ["name"]},
    )
    assert 'id="holder-binding"' in r.text and f'data-cnf-kid="{device.kid}"' in r.text
    text = re.search(r'<textarea id="presentation-text"[^>]*>([^<]+)</textarea>', r.text)
    assert text
    bound = bind(text.group(1), device, nonce="K7Q2M9XA", iat=int(time.time()))
    r = client.post(
        f"/my/licences/{lic.id}/present/bound",
        data={"csrf_token": _csrf(r.text), "presentation": bound, "nonce": "K7Q2M9XA"},
    )
    assert r.status_code == 200 and 'data-bound="true"' in r.text and bound in r.text
    assert "<svg" in r.text  # the bound text as a QR code
    # someone else's licence text is not shown as this licence's presentation
    other = make_licence(session, make_resident(session), "driving_licence")
    r = client.post(
        f"/my/licences/{lic.id}/present/bound",
        data={"csrf_token": _csrf(r.text), "presentation": other.compact + "a.b.c"},
    )
    assert r.status_code == 422 and "出示内容与该证照不符" in r.text


def test_offline_verifier_checks_binding(
    client: TestClient, session: Session, kernel_node: Node, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from tongban.cli import app as cli
    from tongban.licences import offline
    from tongban.licences.keybinding import BindingPolicy

    resident = make_resident(session)
    lic = make_licence(session, resident, "driving_licence")
    device = P256PrivateKey.generate()
    register(client, token_for(client, resident), device)
    session.commit()
    cache = tmp_path / "cache"
    offline.sync("http://testserver", cache, client=client)
    loaded = offline.load(cache)
    session.expire_all()
    text = service.present(session, resident, lic.id, ["name"]).compact
    bound = bind(text, device, nonce="offline-wallet", iat=int(time.time()))

    window = BindingPolicy(required=True, nonce=None)  # no channel back: the time window
    v = offline.verify_offline(bound, loaded, binding=window)
    assert v.valid and v.binding == "holder_bound"
    v = offline.verify_offline(text, loaded, binding=window)
    assert not v.valid and v.reason == "key_binding_missing"
    old = bind(text, device, nonce="offline-wallet", iat=int(time.time()) - 3600)
    assert offline.verify_offline(old, loaded, binding=window).reason == "key_binding_stale"

    runner = CliRunner()
    (tmp_path / "bound.txt").write_text(bound)
    (tmp_path / "copied.txt").write_text(text)
    args = ["licence", "verify", "--cache", str(cache), "--require-binding"]
    r = runner.invoke(cli, [*args, str(tmp_path / "bound.txt")], obj=kernel_node)
    assert r.exit_code == 0, r.output
    assert "已核验持有人绑定" in r.output
    r = runner.invoke(cli, [*args, str(tmp_path / "copied.txt")], obj=kernel_node)
    assert r.exit_code == 1 and "key_binding_missing" in r.output
    r = runner.invoke(
        cli, [*args, "--nonce", "OTHER", str(tmp_path / "bound.txt")], obj=kernel_node
    )
    assert r.exit_code == 1 and "key_binding_nonce_mismatch" in r.output
    r = runner.invoke(
        cli,
        ["licence", "verify", "--cache", str(cache), str(tmp_path / "copied.txt")],
        obj=kernel_node,
    )
    assert r.exit_code == 0 and "未核验持有人绑定（不记名出示）" in r.output
    # The node's settings decide, not the process's: this node refuses an unbound one.
    strict = kernel_node.with_settings(
        kernel_node.settings.model_copy(update={"licence_allow_unbound": False})
    )
    r = runner.invoke(
        cli,
        ["licence", "verify", "--cache", str(cache), str(tmp_path / "copied.txt")],
        obj=strict,
    )
    assert r.exit_code == 1 and "key_binding_missing" in r.output
