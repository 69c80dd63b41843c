"""SD-JWT issuance, presentation and disclosure processing (RFC 9901)."""

from __future__ import annotations

import hashlib
import json

import pytest

from licence_kit import DISCLOSABLE, JS, driving_claims, enc, forge_jwt
from tongban.crypto.signing import b64u, b64u_decode, generate, sm3
from tongban.licences.rejection import LicenceRejected, RejectReason
from tongban.licences.sdjwt import (
    _decode_disclosure,
    disclosed_claims,
    issue_sd_jwt,
    make_disclosure,
    parse_sd_jwt,
    present,
)

KEY = generate()


def test_rfc9901_disclosure_digest_vector() -> None:
    # RFC 9901 example: the disclosure of family_name "Möbius" and its SHA-256 digest
    encoded = "WyJfMjZiYzRMVC1hYzZxMktJNmNCVzVlcyIsICJmYW1pbHlfbmFtZSIsICJNw7ZiaXVzIl0"
    d = _decode_disclosure(encoded, "sha-256")
    assert (d.salt, d.name, d.value) == ("_26bc4LT-ac6q2KI6cBW5es", "family_name", "Möbius")
    assert d.digest == "X9yH0Ajrdm1Oij4tWso9UzzKJvPoDxwmuEcO3XAdRC0"


def test_issue_layout() -> None:
    claims = driving_claims(JS)
    compact = issue_sd_jwt(claims, DISCLOSABLE, KEY, decoys=3)
    assert compact.endswith("~")
    jwt, *disclosures, last = compact.split("~")
    assert last == ""
    header = json.loads(b64u_decode(jwt.split(".")[0]))
    payload = json.loads(b64u_decode(jwt.split(".")[1]))
    assert header == {"alg": "EdDSA", "kid": KEY.kid, "typ": "dc+sd-jwt"}
    assert payload["_sd_alg"] == "sha-256"
    assert payload["_sd"] == sorted(payload["_sd"])
    assert len(payload["_sd"]) == len(DISCLOSABLE) + 3
    assert not set(DISCLOSABLE) & set(payload)
    assert {k: v for k, v in claims.items() if k not in DISCLOSABLE} == {
        k: v for k, v in payload.items() if not k.startswith("_sd")
    }
    seen = {}
    for encoded in disclosures:
        salt, name, value = json.loads(b64u_decode(encoded))
        assert len(b64u_decode(salt)) == 16  # 128-bit salt
        assert value == claims[name]
        digest = b64u(hashlib.sha256(encoded.encode("ascii")).digest())
        assert digest in payload["_sd"]
        seen[name] = value
    assert set(seen) == set(DISCLOSABLE)


def test_salts_differ_between_issuances() -> None:
    a = parse_sd_jwt(issue_sd_jwt({"iss": JS, "x": 1}, ["x"], KEY)).disclosures[0]
    b = parse_sd_jwt(issue_sd_jwt({"iss": JS, "x": 1}, ["x"], KEY)).disclosures[0]
    assert a.salt != b.salt and a.digest != b.digest


def test_registered_claims_cannot_be_disclosable() -> None:
    for name in ("iss", "exp", "nbf", "vct", "status", "cnf", "_sd"):
        with pytest.raises(ValueError):
            issue_sd_jwt({name: "x"}, [name], KEY)


def test_present_keeps_only_named_disclosures() -> None:
    compact = issue_sd_jwt(driving_claims(JS), DISCLOSABLE, KEY)
    shown = present(compact, ["name", "licence_class", "iss", "nonexistent"])
    assert shown.split("~")[0] == compact.split("~")[0]
    assert shown.endswith("~")
    parsed = parse_sd_jwt(shown)
    assert sorted(d.name for d in parsed.disclosures) == ["licence_class", "name"]
    claims = disclosed_claims(parsed)
    assert claims["name"] == "王芳" and "id_number" not in claims and "_sd" not in claims
    assert present(shown, ["name"]).count("~") == 2


def test_plain_only_token() -> None:
    compact = issue_sd_jwt({"iss": JS, "a": 1}, [], KEY)
    assert compact.endswith(".") is False and compact.count("~") == 1
    parsed = parse_sd_jwt(compact)
    assert "_sd" not in parsed.jws.payload and disclosed_claims(parsed) == {"iss": JS, "a": 1}


def test_sm3_digests() -> None:
    compact = issue_sd_jwt({"iss": JS, "name": "王芳"}, ["name"], KEY, sd_alg="sm3")
    parsed = parse_sd_jwt(compact)
    assert parsed.jws.payload["_sd_alg"] == "sm3"
    d = parsed.disclosures[0]
    assert d.digest == b64u(sm3(d.encoded.encode()))
    assert disclosed_claims(parsed)["name"] == "王芳"


def _signed(payload: dict, *disclosures: str) -> str:
    jwt = forge_jwt({"alg": "EdDSA", "kid": KEY.kid, "typ": "dc+sd-jwt"}, payload, KEY)
    return jwt + "~" + "".join(d + "~" for d in disclosures)


def _reason(compact: str) -> RejectReason:
    with pytest.raises(LicenceRejected) as info:
        disclosed_claims(parse_sd_jwt(compact))
    return info.value.reason


def test_unknown_sd_alg_is_malformed() -> None:
    d = make_disclosure("a", 1)
    assert (
        _reason(_signed({"_sd": [d.digest], "_sd_alg": "md5"}, d.encoded)) is RejectReason.MALFORMED
    )


def test_default_sd_alg_is_sha256() -> None:
    d = make_disclosure("a", 1)
    assert disclosed_claims(parse_sd_jwt(_signed({"_sd": [d.digest]}, d.encoded))) == {"a": 1}


@pytest.mark.parametrize(
    "disclosure",
    [
        enc(["salt"]),
        enc(["salt", "a", 1, 2]),
        enc([1, 2]),
        enc({"salt": "s"}),
        enc([1, "a", 1]),
        enc(["salt", 2, 1]),
        "!!!",
        b64u(b"\xff"),
    ],
)
def test_undecodable_disclosures_are_malformed(disclosure: str) -> None:
    assert _reason(_signed({"_sd": []}, disclosure)) is RejectReason.MALFORMED


def test_bad_sd_is_malformed() -> None:
    d = make_disclosure("a", 1)
    for payload in ({"_sd": "abc"}, {"_sd": [1]}, {"n": {"_sd": {}}}, {"l": [{"...": 5}]}):
        assert _reason(_signed(payload, d.encoded)) is RejectReason.MALFORMED


def test_duplicate_digest_in_sd_is_malformed() -> None:
    d = make_disclosure("a", 1)
    assert _reason(_signed({"_sd": [d.digest, d.digest]}, d.encoded)) is RejectReason.MALFORMED
    nested = {"_sd": [d.digest], "n": {"_sd": [d.digest]}}
    assert _reason(_signed(nested, d.encoded)) is RejectReason.MALFORMED


def _element(value: object) -> tuple[str, str]:
    encoded = enc([b64u(b"0123456789abcdef"), value])
    return encoded, b64u(hashlib.sha256(encoded.encode()).digest())


def test_nested_and_array_disclosures_follow_rfc9901() -> None:
    street = make_disclosure("street", "中山北路1号")
    city = make_disclosure("city", "苏州")
    address = make_disclosure("address", {"_sd": [street.digest], "country": "CN"})
    e1, h1 = _element("C1")
    e2, h2 = _element("A2")
    payload = {
        "_sd": [address.digest, city.digest, "decoy-digest"],
        "classes": [{"...": h1}, {"...": h2}, "D"],
        "meta": {"_sd": ["another-decoy"], "v": 1},
    }
    everything = _signed(payload, address.encoded, street.encoded, city.encoded, e1, e2)
    assert disclosed_claims(parse_sd_jwt(everything)) == {
        "address": {"street": "中山北路1号", "country": "CN"},
        "city": "苏州",
        "classes": ["C1", "A2", "D"],
        "meta": {"v": 1},
    }
    some = _signed(payload, address.encoded, e2)
    assert disclosed_claims(parse_sd_jwt(some)) == {
        "address": {"country": "CN"},
        "classes": ["A2", "D"],
        "meta": {"v": 1},
    }
    # a nested disclosure whose parent was not disclosed matches nothing
    assert _reason(_signed(payload, street.encoded)) is RejectReason.TAMPERED_DISCLOSURE


def test_disclosure_kinds_cannot_swap_places() -> None:
    claim = make_disclosure("x", 1)
    element, digest = _element(1)
    as_element = _signed({"l": [{"...": claim.digest}]}, claim.encoded)
    assert _reason(as_element) is RejectReason.TAMPERED_DISCLOSURE
    assert _reason(_signed({"_sd": [digest]}, element)) is RejectReason.TAMPERED_DISCLOSURE


def test_registered_claim_disclosed_at_top_level_is_refused() -> None:
    d = make_disclosure("exp", 1)
    parsed = parse_sd_jwt(_signed({"_sd": [d.digest]}, d.encoded))
    assert disclosed_claims(parsed) == {"exp": 1}
    with pytest.raises(LicenceRejected) as info:
        disclosed_claims(parsed, forbidden=frozenset({"exp"}))
    assert info.value.reason is RejectReason.MALFORMED
    nested = make_disclosure("exp", 1)
    parent = make_disclosure("p", {"_sd": [nested.digest]})
    parsed = parse_sd_jwt(_signed({"_sd": [parent.digest]}, parent.encoded, nested.encoded))
    assert disclosed_claims(parsed, forbidden=frozenset({"exp"})) == {"p": {"exp": 1}}


def test_unlisted_array_element_disclosure_is_tampered() -> None:
    element, _ = _element("x")
    assert _reason(_signed({"_sd": []}, element)) is RejectReason.TAMPERED_DISCLOSURE


@pytest.mark.parametrize("name", ["_sd", "...", "plain"])
def test_clashing_names_are_tampered(name: str) -> None:
    d = make_disclosure(name, 1)
    assert (
        _reason(_signed({"plain": 0, "_sd": [d.digest]}, d.encoded))
        is RejectReason.TAMPERED_DISCLOSURE
    )


def test_two_disclosures_of_one_name_are_tampered() -> None:
    a, b = make_disclosure("a", 1), make_disclosure("a", 2)
    compact = _signed({"_sd": sorted([a.digest, b.digest])}, a.encoded, b.encoded)
    assert _reason(compact) is RejectReason.TAMPERED_DISCLOSURE


def test_unlisted_and_repeated_disclosures_are_tampered() -> None:
    a, b = make_disclosure("a", 1), make_disclosure("b", 2)
    assert (
        _reason(_signed({"_sd": [a.digest]}, a.encoded, b.encoded))
        is RejectReason.TAMPERED_DISCLOSURE
    )
    assert (
        _reason(_signed({"_sd": [a.digest]}, a.encoded, a.encoded))
        is RejectReason.TAMPERED_DISCLOSURE
    )


@pytest.mark.parametrize("compact", ["", "a.b.c", "a.b.c~~", "a.b.c~x~~", "a.b.c~kb.jwt.x"])
def test_split_errors(compact: str) -> None:
    with pytest.raises(LicenceRejected) as info:
        parse_sd_jwt(compact)
    assert info.value.reason is RejectReason.MALFORMED


def test_present_refuses_garbage() -> None:
    with pytest.raises(LicenceRejected):
        present("not an sd-jwt", ["a"])
    with pytest.raises(LicenceRejected):
        present(issue_sd_jwt({"a": 1}, ["a"], KEY) + "!!!~", ["a"])
