"""Signing in through an OpenID Connect provider (issue 10 item 3), against a real OP
(pyop over HTTPS in its own process, see conftest.py): the whole redirect flow over HTTP
raises the account's level; a tampered or foreign-signed ID token, a wrong nonce, a
wrong state and an ID token for another client are refused."""

from __future__ import annotations

import base64
import json
import ssl
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.identity import oidc
from tongban.identity import service as identity
from tongban.identity.models import Account, ExternalIdentity

from builders import PASSWORD, make_licence, make_resident, token_for

CALLBACK = "/login/oidc/zjzwfw/callback"


def _browser(op) -> httpx.Client:  # type: ignore[no-untyped-def]
    return httpx.Client(verify=ssl.create_default_context(cafile=op.ca_file), timeout=10)


def _authenticate_at_op(op, auth_url: str, username: str) -> str:  # type: ignore[no-untyped-def]
    """The person signs in at the provider; returns where it sends the browser back."""
    password = op.users[username][0]
    with _browser(op) as browser:
        form = browser.get(auth_url)
        assert form.status_code == 200, form.text
        back = browser.post(
            op.issuer + "/authorize",
            data={"q": urlsplit(auth_url).query, "username": username, "password": password},
        )
    assert back.status_code == 302, back.text
    return back.headers["location"]


def _start(client: TestClient) -> str:
    r = client.get("/login/oidc/zjzwfw", follow_redirects=False)
    assert r.status_code == 303, r.text
    return r.headers["location"]


def _login_via_op(client: TestClient, op, username: str):  # type: ignore[no-untyped-def]
    back = _authenticate_at_op(op, _start(client), username)
    assert back.startswith("http://testserver" + CALLBACK)
    return client.get(back, follow_redirects=False)


def _token_for_client(op, client_id: str, secret: str, redirect: str, username: str, nonce: str):  # type: ignore[no-untyped-def]
    """A genuine ID token of the provider for `client_id`, obtained over the protocol."""
    import hashlib
    import secrets
    from urllib.parse import urlencode

    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect,
            "scope": "openid profile",
            "state": "s",
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "claims": json.dumps({"id_token": {"id_number": {"essential": True}}}),
        }
    )
    back = _authenticate_at_op(op, f"{op.issuer}/authorize?{query}", username)
    code = parse_qs(urlsplit(back).query)["code"][0]
    with _browser(op) as http:
        r = http.post(
            op.issuer + "/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect,
                "code_verifier": verifier,
            },
            auth=(client_id, secret),
        )
    assert r.status_code == 200, r.text
    return r.json()["id_token"]


def _b64(obj: dict) -> str:  # type: ignore[type-arg]
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def _unb64(part: str) -> dict:  # type: ignore[type-arg]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # type: ignore[no-any-return]


# --- the whole flow over HTTP ----------------------------------------------------------------


def test_oidc_login_creates_a_proven_account_that_sees_its_licences(
    oidc_settings, oidc_op, client: TestClient, session: Session
) -> None:
    _, ident, sub = oidc_op.users["person0"]
    r = _login_via_op(client, oidc_op, "person0")
    assert r.status_code == 303, r.text
    account = session.scalar(select(Account).where(Account.id_number == ident))
    assert account is not None and account.assurance_level == "oidc_verified"
    assert account.display_name == "核验用户0"
    link = session.scalar(select(ExternalIdentity).where(ExternalIdentity.account_id == account.id))
    assert link is not None and (link.issuer, link.subject) == (oidc_op.issuer, sub)
    [event] = identity.account_events(session, account)
    assert (event.action, event.to_level) == ("created", "oidc_verified")
    assert event.evidence == {"provider": "zjzwfw", "issuer": oidc_op.issuer, "sub": sub}
    # Signed in, and the licences bound to the proven number are shown.
    lic = make_licence(session, account, "driving_licence")
    page = client.get("/my/licences")
    assert page.status_code == 200 and "机动车驾驶证" in page.text and lic.id


def test_oidc_proves_a_self_declared_account_signed_in_to_it(
    oidc_settings, oidc_op, client: TestClient, session: Session
) -> None:
    _, ident, sub = oidc_op.users["person1"]
    resident = make_resident(session, id_number=ident, assurance_level="self_declared")
    other_token = token_for(client, resident)
    page = client.get("/login")
    import re

    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf and "浙里办" in page.text
    r = client.post(
        "/login",
        data={"username": resident.username, "password": PASSWORD, "csrf_token": csrf.group(1)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert client.get("/my/licences").status_code == 403

    r = _login_via_op(client, oidc_op, "person1")
    assert r.status_code == 303 and r.headers["location"] == "/my/identity"
    session.refresh(resident)
    assert resident.assurance_level == "oidc_verified"
    events = identity.account_events(session, resident)
    assert [(e.action, e.from_level, e.to_level) for e in events][-1] == (
        "oidc_login",
        "self_declared",
        "oidc_verified",
    )
    assert events[-1].evidence["sub"] == sub and events[-1].actor_id is None
    assert client.get("/my/licences").status_code == 200
    # The level change ended what was signed in before (here: an API token).
    client.cookies.clear()
    assert client.get("/api/v1/me", headers=other_token).status_code == 401


def test_the_proven_person_wins_over_a_self_declared_claim(
    oidc_settings, oidc_op, client: TestClient, session: Session
) -> None:
    """Somebody registered the number first; the person the provider proves gets a
    proven account of their own, the claim stays at the lowest level and sees nothing."""
    _, ident, _ = oidc_op.users["person2"]
    squatter = make_resident(session, id_number=ident, assurance_level="self_declared")
    r = _login_via_op(client, oidc_op, "person2")
    assert r.status_code == 303, r.text
    holders = session.scalars(
        select(Account).where(Account.id_number == ident).order_by(Account.created_at)
    ).all()
    assert [a.id for a in holders][0] == squatter.id and len(holders) == 2
    session.refresh(squatter)
    assert squatter.assurance_level == "self_declared"
    assert holders[1].assurance_level == "oidc_verified"
    client.cookies.clear()
    r = client.get("/api/v1/my/licences", headers=token_for(client, squatter))
    assert r.status_code == 403
    # A signed-in account with another number cannot be "proven" by this person.
    other = make_resident(session, assurance_level="self_declared")
    client.cookies.clear()
    page = client.get("/login")
    import re

    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf
    client.post(
        "/login",
        data={"username": other.username, "password": PASSWORD, "csrf_token": csrf.group(1)},
    )
    r = _login_via_op(client, oidc_op, "person2")
    assert r.status_code == 403 and "不一致" in r.text
    session.refresh(other)
    assert other.assurance_level == "self_declared"


def test_a_wrong_state_is_refused(
    oidc_settings, oidc_op, client: TestClient, session: Session
) -> None:
    back = _authenticate_at_op(oidc_op, _start(client), "person3")
    parts = urlsplit(back)
    q = parse_qs(parts.query)
    r = client.get(
        CALLBACK, params={"code": q["code"][0], "state": "attacker-state"}, follow_redirects=False
    )
    assert r.status_code == 401 and "state" in r.text
    # A callback that no login of this browser started (login CSRF) is refused too.
    fresh = TestClient(client.app)
    r = fresh.get(back, follow_redirects=False)
    assert r.status_code == 401
    assert (
        session.scalar(select(Account).where(Account.id_number == oidc_op.users["person3"][1]))
        is None
    )


def test_a_code_issued_to_another_login_is_refused(
    oidc_settings, oidc_op, client: TestClient
) -> None:
    """A code (and state) from a login the attacker started, delivered to the victim's
    browser: PKCE binds the code to the verifier of the login that asked for it."""
    with TestClient(client.app) as attacker:
        stolen = _authenticate_at_op(oidc_op, _start(attacker), "person3")
    _start(client)  # the victim's own login is pending, with its own state
    r = client.get(stolen, follow_redirects=False)
    assert r.status_code == 401


# --- the ID token checks, on genuine tokens of the provider -------------------------------------


def _cfg(op):  # type: ignore[no-untyped-def]
    return op.provider()


def test_verify_accepts_a_genuine_token_and_refuses_a_wrong_nonce(oidc_op) -> None:  # type: ignore[no-untyped-def]
    token = _token_for_client(
        oidc_op, "tongban", "tongban-secret", oidc_op.redirect, "person4", "n-1"
    )
    claims = oidc.verify_id_token(_cfg(oidc_op), token, nonce="n-1")
    assert claims["id_number"] == oidc_op.users["person4"][1]
    with pytest.raises(oidc.OidcFailed) as e:
        oidc.verify_id_token(_cfg(oidc_op), token, nonce="another-login")
    assert e.value.reason == "bad-nonce"
    # Expired: the same token an hour and more later.
    with pytest.raises(oidc.OidcFailed) as e:
        oidc.verify_id_token(_cfg(oidc_op), token, nonce="n-1", now=int(time.time()) + 7200)
    assert e.value.reason == "expired"
    # Another issuer configured under this provider's keys.
    with pytest.raises(oidc.OidcFailed) as e:
        cfg = _cfg(oidc_op)
        keys = oidc._key_set(cfg, oidc.metadata(cfg))
        oidc.verify_id_token(
            cfg.model_copy(update={"issuer": "https://evil.example"}), token, nonce="n-1", keys=keys
        )
    assert e.value.reason == "wrong-issuer"


def test_a_token_for_another_client_is_refused(oidc_op) -> None:  # type: ignore[no-untyped-def]
    token = _token_for_client(
        oidc_op, "other-rp", "other-secret", oidc_op.other_redirect, "person4", "n-2"
    )
    with pytest.raises(oidc.OidcFailed) as e:
        oidc.verify_id_token(_cfg(oidc_op), token, nonce="n-2")
    assert e.value.reason == "wrong-audience"


def test_tampered_and_foreign_signed_tokens_are_refused(oidc_op) -> None:  # type: ignore[no-untyped-def]
    token = _token_for_client(
        oidc_op, "tongban", "tongban-secret", oidc_op.redirect, "person5", "n-3"
    )
    header, payload, signature = token.split(".")
    claims = _unb64(payload)
    # Tampered: another ID number in the provider's signed token.
    forged = {**claims, "id_number": oidc_op.users["person0"][1]}
    tampered = f"{header}.{_b64(forged)}.{signature}"
    with pytest.raises(oidc.OidcFailed) as e:
        oidc.verify_id_token(_cfg(oidc_op), tampered, nonce="n-3")
    assert e.value.reason == "bad-signature"
    # Foreign-signed: well-formed, the provider's kid, signed by somebody else's key.
    foreign = RSAKey.generate_key(2048, parameters={"kid": _unb64(header)["kid"]})
    signed = jwt.encode({"alg": "RS256", "kid": _unb64(header)["kid"]}, forged, foreign)
    with pytest.raises(oidc.OidcFailed) as e:
        oidc.verify_id_token(_cfg(oidc_op), signed, nonce="n-3")
    assert e.value.reason == "bad-signature"
    # Unsigned ("alg": "none") and HMAC with the client secret are not accepted algorithms.
    none = f"{_b64({'alg': 'none'})}.{_b64(forged)}."
    with pytest.raises(oidc.OidcFailed):
        oidc.verify_id_token(_cfg(oidc_op), none, nonce="n-3")


def test_the_id_number_may_come_from_userinfo(
    settings, oidc_op, client: TestClient, session: Session
) -> None:
    """A provider without the claims parameter answers the number at its userinfo
    endpoint (for its own scope), for the ID token's subject."""
    settings.oidc_providers = [
        oidc_op.provider(scopes="openid profile idcard", claims_parameter=False)
    ]
    auth_url = _start(client)
    assert "claims=" not in auth_url and "idcard" in auth_url
    back = _authenticate_at_op(oidc_op, auth_url, "person4")
    r = client.get(back, follow_redirects=False)
    assert r.status_code == 303, r.text
    account = session.scalar(
        select(Account).where(Account.id_number == oidc_op.users["person4"][1])
    )
    assert account is not None and account.assurance_level == "oidc_verified"
