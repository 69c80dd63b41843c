"""The federation trust list: signing, loading, key validity, rotation, tampering."""

from __future__ import annotations

import json

import pytest

from licence_kit import AH, DAY, JS, NOW, ZJ, Federation, enc
from tongban.crypto.signing import Alg, b64u_decode, generate
from tongban.licences.rejection import LicenceRejected, RejectReason
from tongban.licences.trustlist import (
    TrustedIssuer,
    TrustList,
    key_entry,
    sign_trust_list,
    verify_trust_list,
)


def _reason(token: str, roots, now: int = NOW) -> RejectReason:  # type: ignore[no-untyped-def]
    with pytest.raises(LicenceRejected) as info:
        verify_trust_list(token, roots, now=now)
    return info.value.reason


def test_layout(fed: Federation) -> None:
    head, body, _ = fed.trust_token.split(".")
    header, payload = json.loads(b64u_decode(head)), json.loads(b64u_decode(body))
    assert header == {"alg": fed.root.alg.value, "kid": fed.root.kid, "typ": "trustlist+jwt"}
    assert payload["iss"] == "federation"
    assert (payload["iat"], payload["exp"]) == (NOW - DAY, NOW + 7 * DAY)
    js = payload["issuers"][0]
    assert (js["iss"], js["jurisdiction"], js["name"]) == (JS, "320000", "江苏省")
    entry = js["keys"][0]
    assert entry["kid"] == fed.keys[JS].kid and entry["alg"] == fed.alg.value
    assert entry["nbf"] == NOW - 400 * DAY and "exp" not in entry and "d" not in entry


def test_lookups(fed: Federation) -> None:
    t = fed.trust
    assert (t.iat, t.exp) == (NOW - DAY, NOW + 7 * DAY)
    assert t.key_for(JS, fed.keys[JS].kid, NOW) == fed.keys[JS].public()
    assert t.key_for(ZJ, fed.keys[JS].kid, NOW) is None
    assert t.key_for("https://nowhere", fed.keys[JS].kid, NOW) is None
    assert t.issuer(ZJ).name == "浙江省"  # type: ignore[union-attr]
    assert t.issuer("https://nowhere") is None
    assert t.issuer_of_jurisdiction("340000").iss == AH  # type: ignore[union-attr]


def test_validity_window_is_half_open(fed: Federation) -> None:
    t, old = fed.trust, fed.ah_old.kid
    assert t.key_for(AH, old, NOW - 400 * DAY) is not None
    assert t.key_for(AH, old, NOW - 400 * DAY - 1) is None
    assert t.key_for(AH, old, NOW - 5 * DAY - 1) is not None
    assert t.key_for(AH, old, NOW - 5 * DAY) is None
    assert t.key_for(AH, fed.keys[AH].kid, NOW - 5 * DAY) is not None


def test_revoked_key_verifies_nothing() -> None:
    key, root = generate(), generate()
    issuers = [
        TrustedIssuer(JS, "320000", "江苏省", [key_entry(key.public(), nbf=0, revoked=True)])
    ]
    trust = verify_trust_list(
        sign_trust_list(issuers, root, iat=NOW, exp=NOW + 10), [root.public()], now=NOW
    )
    assert trust.key_for(JS, key.kid, 1) is None
    assert trust.trusted_key(JS, key.kid).revoked  # type: ignore[union-attr]


def test_json_cache_round_trip(fed: Federation) -> None:
    again = TrustList.from_json(fed.trust.to_json())
    assert (again.iat, again.exp) == (fed.trust.iat, fed.trust.exp)
    assert again.key_for(AH, fed.ah_old.kid, NOW - 30 * DAY) == fed.ah_old.public()
    assert again.key_for(AH, fed.ah_old.kid, NOW) is None
    assert [i.to_dict() for i in again.issuers] == [i.to_dict() for i in fed.trust.issuers]


def test_unknown_root(fed: Federation) -> None:
    assert _reason(fed.trust_token, [generate().public()]) is RejectReason.UNKNOWN_ISSUER
    assert _reason(fed.trust_token, []) is RejectReason.UNKNOWN_ISSUER


def test_root_among_several(fed: Federation) -> None:
    roots = [generate().public(), fed.root.public(), generate(Alg.SM2).public()]
    assert verify_trust_list(fed.trust_token, roots, now=NOW).issuer(JS) is not None


def test_tampered_list(fed: Federation) -> None:
    head, body, sig = fed.trust_token.split(".")
    payload = json.loads(b64u_decode(body))
    stranger = generate(fed.alg)
    payload["issuers"][0]["keys"].append(key_entry(stranger.public(), nbf=0))
    forged = ".".join([head, enc(payload), sig])
    assert _reason(forged, [fed.root.public()]) is RejectReason.BAD_SIGNATURE


def test_signed_by_an_issuer_key_instead_of_root(fed: Federation) -> None:
    token = sign_trust_list(fed.trust.issuers, fed.keys[JS], iat=NOW, exp=NOW + DAY)
    assert _reason(token, [fed.root.public()]) is RejectReason.UNKNOWN_ISSUER


def test_expiry_and_future(fed: Federation) -> None:
    assert _reason(fed.trust_token, [fed.root.public()], now=NOW + 7 * DAY) is RejectReason.EXPIRED
    assert (
        _reason(fed.trust_token, [fed.root.public()], now=NOW - 2 * DAY)
        is RejectReason.NOT_YET_VALID
    )


def _entry(**over):  # type: ignore[no-untyped-def]
    return {**key_entry(generate().public(), nbf=0), **over}


@pytest.mark.parametrize(
    "issuers",
    [
        "not a list",
        [1],
        [{"iss": JS, "jurisdiction": "320000", "name": "江苏省"}],
        [{"iss": JS, "jurisdiction": 320000, "name": "江苏省", "keys": []}],
        [{"iss": JS, "jurisdiction": "320000", "name": "江苏省", "keys": ["k"]}],
        [{"iss": JS, "jurisdiction": "320000", "name": "江苏省", "keys": [_entry(kid="other")]}],
        [{"iss": JS, "jurisdiction": "320000", "name": "江苏省", "keys": [_entry(alg="SM2")]}],
        [{"iss": JS, "jurisdiction": "320000", "name": "江苏省", "keys": [_entry(nbf="0")]}],
        [{"iss": JS, "jurisdiction": "320000", "name": "江苏省", "keys": [_entry(exp=1.5)]}],
        [{"iss": JS, "jurisdiction": "320000", "name": "江苏省", "keys": [_entry(x="AAAA")]}],
        [
            {
                "iss": JS,
                "jurisdiction": "320000",
                "name": "江苏省",
                "keys": [{"kty": "RSA", "n": "x", "e": "AQAB"}],
            }
        ],
        [{"iss": JS, "jurisdiction": "320000", "name": "江苏省", "keys": []}] * 2,
    ],
)
def test_malformed_content(issuers: object) -> None:
    from tongban.licences.jws import sign_compact

    root = generate()
    token = sign_compact(
        {"typ": "trustlist+jwt"},
        {"iss": "federation", "iat": NOW, "exp": NOW + 9, "issuers": issuers},
        root,
    )
    assert _reason(token, [root.public()]) is RejectReason.MALFORMED


def test_wrong_typ_or_iss() -> None:
    from tongban.licences.jws import sign_compact

    root = generate()
    for header, payload in (
        ({"typ": "JWT"}, {"iss": "federation", "iat": NOW, "exp": NOW + 9, "issuers": []}),
        ({"typ": "trustlist+jwt"}, {"iss": "someone", "iat": NOW, "exp": NOW + 9, "issuers": []}),
        ({"typ": "trustlist+jwt"}, {"iss": "federation", "iat": NOW, "issuers": []}),
    ):
        assert (
            _reason(sign_compact(header, payload, root), [root.public()]) is RejectReason.MALFORMED
        )


def test_sign_refuses_a_list_that_would_not_load() -> None:
    key = generate()
    dup = TrustedIssuer(JS, "320000", "江苏省", [key_entry(key.public(), nbf=0)])
    with pytest.raises(LicenceRejected):
        sign_trust_list([dup, dup], generate(), iat=NOW, exp=NOW + 1)
