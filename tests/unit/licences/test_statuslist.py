"""Token Status List: bit layout, ZLIB encoding, the signed token."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tongban.crypto.signing import Alg, b64u, generate
from tongban.licences.jws import parse_compact
from tongban.licences.rejection import LicenceRejected, RejectReason
from tongban.licences.statuslist import (
    INVALID,
    MAX_BYTES,
    SUSPENDED,
    VALID,
    LocalStatuses,
    StatusList,
    sign_status_list,
    verify_status_list,
)

NOW = 1_750_000_000
URI = "https://js.tongban.example/licences/status/1"


def test_constants() -> None:
    assert (VALID, INVALID, SUSPENDED) == (0, 1, 2)


def test_spec_example_one_bit() -> None:
    # draft-ietf-oauth-status-list §4.1: 16 one-bit statuses -> [0xB9, 0xA3]
    statuses = [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1]
    lst = StatusList(1, 16)
    for i, s in enumerate(statuses):
        lst.set(i, s)
    assert lst.to_bytes() == bytes([0xB9, 0xA3])
    assert lst.encode() == "eNrbuRgAAhcBXQ"
    decoded = StatusList.decode("eNrbuRgAAhcBXQ", 1)
    assert [decoded.get(i) for i in range(16)] == statuses


def test_spec_example_two_bits() -> None:
    statuses = [1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3]
    decoded = StatusList.decode("eNo76fITAAPfAgc", 2)
    assert decoded.to_bytes() == bytes([0xC9, 0x44, 0xF9])
    assert [decoded.get(i) for i in range(12)] == statuses


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
@settings(deadline=None)  # a loaded shared machine must not fail a correct test
@given(data=st.data())
def test_round_trip(bits: int, data: st.DataObject) -> None:
    values = data.draw(st.lists(st.integers(0, (1 << bits) - 1), max_size=300))
    lst = StatusList(bits, len(values))
    for i, v in enumerate(values):
        lst.set(i, v)
    back = StatusList.decode(lst.encode(), bits)
    assert back.size >= len(values) and back.size == len(lst.to_bytes()) * 8 // bits
    assert [back.get(i) for i in range(len(values))] == values
    assert all(back.get(i) == 0 for i in range(len(values), back.size))


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
@settings(deadline=None)  # a loaded shared machine must not fail a correct test
@given(idx=st.integers(0, 99), value=st.integers(0, 255), other=st.integers(0, 99))
def test_set_touches_only_its_entry(bits: int, idx: int, value: int, other: int) -> None:
    lst = StatusList(bits, 100)
    value &= (1 << bits) - 1
    lst.set(other, (1 << bits) - 1)
    lst.set(idx, value)
    assert lst.get(idx) == value
    if other != idx:
        assert lst.get(other) == (1 << bits) - 1


def test_bounds() -> None:
    lst = StatusList(1, 10)
    assert lst.size == 10 and len(lst.to_bytes()) == 2
    for bad in (-1, 10, True, "1"):
        with pytest.raises(IndexError):
            lst.get(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        lst.set(0, 2)
    with pytest.raises(ValueError):
        StatusList(3, 8)


@pytest.mark.parametrize(
    ("lst", "bits"),
    [
        ("eNrbuRgAAhcBXQ", 3),
        ("eNrbuRgAAhcBXQ=", 1),
        ("not+base64", 1),
        (b64u(b"plain bytes"), 1),
        (b64u(zlib.compress(b"\x00" * 64)[:-3]), 1),  # truncated
        (b64u(zlib.compress(b"\x00" * 64) + b"junk"), 1),  # trailing data
        (b64u(zlib.compress(b"\x00" * (MAX_BYTES + 1))), 1),  # zlib bomb
    ],
)
def test_decode_refuses(lst: str, bits: int) -> None:
    with pytest.raises(LicenceRejected) as info:
        StatusList.decode(lst, bits)
    assert info.value.reason is RejectReason.MALFORMED


@pytest.mark.parametrize("alg", [Alg.EDDSA, Alg.SM2])
def test_token_round_trip(alg: Alg) -> None:
    key = generate(alg)
    lst = StatusList(2, 100)
    lst.set(3, SUSPENDED)
    token = sign_status_list(lst.encode(), 2, URI, key, iat=NOW, exp=NOW + 600, ttl=300, iss="js")
    jws = parse_compact(token)
    assert jws.header["typ"] == "statuslist+jwt"
    assert jws.payload == {
        "sub": URI,
        "iat": NOW,
        "exp": NOW + 600,
        "ttl": 300,
        "iss": "js",
        "status_list": {"bits": 2, "lst": lst.encode()},
    }
    seen = []

    def key_for(h: dict) -> object:
        seen.append(h)
        return key.public()

    tok = verify_status_list(token, key_for, now=NOW + 10, uri=URI)  # type: ignore[arg-type]
    assert (tok.uri, tok.iat, tok.exp, tok.ttl, tok.iss, tok.kid) == (
        URI,
        NOW,
        NOW + 600,
        300,
        "js",
        key.kid,
    )
    assert tok.status_list.get(3) == SUSPENDED and tok.status_list.get(4) == VALID
    assert seen[0]["kid"] == key.kid and seen[0]["iss"] == "js" and seen[0]["iat"] == NOW
    src = LocalStatuses()
    src.add(tok)
    assert src.status_of(URI, 3) == SUSPENDED


def _reason(token: str, key_for, **kw) -> RejectReason:  # type: ignore[no-untyped-def]
    with pytest.raises(LicenceRejected) as info:
        verify_status_list(token, key_for, **{"now": NOW, **kw})
    return info.value.reason


def test_token_rejections() -> None:
    key, other = generate(), generate()
    good = sign_status_list(StatusList(1, 8).encode(), 1, URI, key, iat=NOW, exp=NOW + 600, ttl=300)
    trusted = lambda h: key.public() if h["kid"] == key.kid else None  # noqa: E731
    assert _reason(good, lambda h: None) is RejectReason.UNKNOWN_ISSUER
    assert _reason(good, lambda h: other.public()) is RejectReason.BAD_SIGNATURE
    assert _reason(good, trusted, now=NOW + 600) is RejectReason.EXPIRED
    assert _reason(good, trusted, now=NOW - 3600) is RejectReason.NOT_YET_VALID
    assert _reason(good, trusted, uri=URI + "x") is RejectReason.MALFORMED
    assert _reason(good + "x", trusted) is RejectReason.MALFORMED
    from tongban.licences.jws import sign_compact

    wrong_typ = sign_compact({"typ": "JWT"}, {"sub": URI, "iat": NOW}, key)
    assert _reason(wrong_typ, trusted) is RejectReason.MALFORMED
    for payload in (
        {"iat": NOW, "status_list": {"bits": 1, "lst": "eNrbuRgAAhcBXQ"}},
        {"sub": URI, "status_list": {"bits": 1, "lst": "eNrbuRgAAhcBXQ"}},
        {"sub": URI, "iat": NOW},
        {"sub": URI, "iat": NOW, "ttl": -1, "status_list": {"bits": 1, "lst": "eNrbuRgAAhcBXQ"}},
        {"sub": URI, "iat": NOW, "exp": "x", "status_list": {"bits": 1, "lst": "eNrbuRgAAhcBXQ"}},
        {"sub": URI, "iat": NOW, "status_list": {"bits": 5, "lst": "eNrbuRgAAhcBXQ"}},
        {"sub": URI, "iat": NOW, "status_list": {"bits": 1, "lst": "###"}},
    ):
        assert (
            _reason(sign_compact({"typ": "statuslist+jwt"}, payload, key), trusted)
            is RejectReason.MALFORMED
        )


def test_local_statuses_unavailable() -> None:
    src = LocalStatuses({URI: StatusList(1, 8)})
    assert src.status_of(URI, 7) == VALID
    for uri, idx in ((URI, 8), ("other", 0)):
        with pytest.raises(LicenceRejected) as info:
            src.status_of(uri, idx)
        assert info.value.reason is RejectReason.STATUS_UNAVAILABLE
