"""Compact JWS: signing sets alg/kid, parsing refuses anything malformed."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from licence_kit import enc
from tongban.crypto.signing import Alg, b64u, generate
from tongban.crypto.signing import b64u_decode as signing_b64u_decode
from tongban.licences.jws import b64u_decode, parse_compact, sign_compact
from tongban.licences.rejection import LicenceRejected, RejectReason


@pytest.mark.parametrize("alg", [Alg.EDDSA, Alg.SM2])
def test_round_trip(alg: Alg) -> None:
    key = generate(alg)
    token = sign_compact({"typ": "x", "alg": "none", "kid": "forged"}, {"名称": "营业执照"}, key)
    parsed = parse_compact(token)
    assert parsed.header == {"alg": alg.value, "kid": key.kid, "typ": "x"}
    assert parsed.payload == {"名称": "营业执照"}
    assert parsed.signing_input == token.rsplit(".", 1)[0].encode()
    assert parsed.verify_with(key.public())
    assert not parsed.verify_with(generate(alg).public())
    # compact separators and raw UTF-8, not \\u escapes
    assert b64u_decode(token.split(".")[1]) == '{"名称":"营业执照"}'.encode()


def test_verify_with_refuses_key_of_other_alg() -> None:
    key = generate(Alg.EDDSA)
    parsed = parse_compact(sign_compact({}, {"a": 1}, key))
    forged = type(parsed)(
        {**parsed.header, "alg": "SM2"}, parsed.payload, parsed.signing_input, parsed.signature
    )
    assert not forged.verify_with(key.public())


def _token(header: object, payload: object = None, sig: str = "c2ln") -> str:
    head = header if isinstance(header, str) else enc(header)
    body = (
        payload if isinstance(payload, str) else enc(payload if payload is not None else {"a": 1})
    )
    return f"{head}.{body}.{sig}"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a",
        "a.b",
        "a.b.c.d",
        _token({"alg": "EdDSA"}) + ".",
        _token({"alg": "none"}),
        _token({"alg": "none"}, sig=""),
        _token({"alg": "HS256"}),
        _token({"alg": "eddsa"}),
        _token({"alg": ["EdDSA"]}),
        _token({"typ": "JWT"}),
        _token({"alg": "EdDSA", "crit": ["exp"]}),
        _token({"alg": "EdDSA", "kid": 7}),
        _token({"alg": "EdDSA"}, sig=""),
        _token({"alg": "EdDSA"}, sig="c2ln="),
        _token({"alg": "EdDSA"}, sig="c2l+"),
        _token(["alg", "EdDSA"]),
        _token("bm90IGpzb24"),
        _token(b64u(b"\xff\xfe")),
        _token(b64u(b'{"alg":"EdDSA","alg":"none"}')),
        _token({"alg": "EdDSA"}, b64u(b'{"a":1,"a":2}')),
        _token({"alg": "EdDSA"}, b64u(b'{"a":NaN}')),
        _token({"alg": "EdDSA"}, [1, 2]),
        _token({"alg": "EdDSA"}, "e30="),
        _token({"alg": "EdDSA"}, b64u(b"[" * 100000)),
    ],
)
def test_malformed(token: str) -> None:
    with pytest.raises(LicenceRejected) as info:
        parse_compact(token)
    assert info.value.reason is RejectReason.MALFORMED


def test_not_a_string() -> None:
    with pytest.raises(LicenceRejected):
        parse_compact(b"a.b.c")  # type: ignore[arg-type]


def test_empty_payload_object_is_fine() -> None:
    key = generate()
    assert parse_compact(sign_compact({}, {}, key)).payload == {}
    assert json.loads(b64u_decode(sign_compact({}, {}, key).split(".")[0]))["alg"] == "EdDSA"


@settings(deadline=None)  # a loaded shared machine must not fail a correct test
@given(st.text(alphabet="ABCDEFabcdef0123456789-_+/=. !\n中", max_size=12) | st.binary().map(b64u))
def test_fast_b64u_decode_matches_signing(text: str) -> None:
    try:
        expected: bytes | None = signing_b64u_decode(text)
    except ValueError:
        expected = None
    try:
        got: bytes | None = b64u_decode(text)
    except ValueError:
        got = None
    assert got == expected
