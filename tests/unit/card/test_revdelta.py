"""Revocation deltas (revdelta.py): a delta turns the list it was made from into the new
signed list exactly — whatever was added and whatever expired out — and verifies with the
issuer's key only then; any other base, a cut, a flipped byte, or garbage is Malformed (or
fails the signature), never another exception."""

from __future__ import annotations

import secrets
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tongban.card import codec, revdelta
from tongban.card.codec import IssuerAlg
from tongban.card.verifier import kid8
from tongban.crypto.signing import Alg, generate

KEY = generate(Alg.EDDSA)


def _signed(refs: set[bytes], iat: int, seq: int) -> codec.RevocationList:
    unsigned = codec.RevocationList(
        IssuerAlg.ED25519, "320000", kid8(KEY.kid), iat, iat + 86400, seq, tuple(sorted(refs))
    )
    return replace(unsigned, signature=KEY.sign(unsigned.signing_input()))


def _verifies(lst: codec.RevocationList) -> bool:
    return KEY.public().verify(lst.signing_input(), lst.signature)


refs_st = st.sets(st.binary(min_size=8, max_size=8), max_size=40)


@settings(max_examples=60, deadline=None)
@given(old=refs_st, added=refs_st, keep=st.integers(min_value=0, max_value=40))
def test_a_delta_rebuilds_the_new_list_exactly(
    old: set[bytes], added: set[bytes], keep: int
) -> None:
    base = _signed(old, 1_767_225_600, 3)
    new = _signed(set(sorted(old)[:keep]) | added, 1_767_229_200, 4)
    data = revdelta.make_delta(base, new).to_bytes()
    delta = revdelta.decode_delta(data)
    rebuilt = delta.apply(base)
    assert rebuilt == new and rebuilt.to_bytes() == new.to_bytes() and _verifies(rebuilt)


def test_a_delta_applies_only_to_its_base() -> None:
    base = _signed({secrets.token_bytes(8) for _ in range(20)}, 1_767_225_600, 3)
    new = _signed(set(base.refs[5:]) | {b"\x00" * 8}, 1_767_229_200, 4)
    delta = revdelta.decode_delta(revdelta.make_delta(base, new).to_bytes())
    others = [
        replace(base, seq=2),
        replace(base, iat=base.iat - 1),
        replace(base, refs=base.refs[1:]),
        replace(base, jurisdiction="310000"),
    ]
    for other in others:
        with pytest.raises(codec.Malformed):
            delta.apply(other)


def test_the_rice_sections_are_compact() -> None:
    values = sorted(int.from_bytes(secrets.token_bytes(8), "big") for _ in range(6000))
    data = revdelta.rice_encode(values, revdelta.VALUE_SPACE)
    assert revdelta.rice_decode(data, 0, revdelta.VALUE_SPACE) == (values, len(data))
    assert len(data) < 6.8 * len(values)  # vs 8 bytes each in the full list


def _sample() -> bytes:
    base = _signed({secrets.token_bytes(8) for _ in range(30)}, 1_767_225_600, 3)
    new = _signed(set(base.refs[4:]) | {secrets.token_bytes(8) for _ in range(6)}, 1_767_229_200, 4)
    return revdelta.make_delta(base, new).to_bytes()


def test_every_cut_is_malformed() -> None:
    data = _sample()
    for n in range(len(data)):
        with pytest.raises(codec.Malformed):
            revdelta.decode_delta(data[:n])
    with pytest.raises(codec.Malformed):
        revdelta.decode_delta(data + b"\x00")


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_mutated_delta_is_malformed_or_fails_its_signature(data: st.DataObject) -> None:
    base = _signed({bytes([i]) * 8 for i in range(1, 31)}, 1_767_225_600, 3)
    new = _signed(set(base.refs[4:]) | {bytes([200 + i]) * 8 for i in range(6)}, 1_767_229_200, 4)
    wire = bytearray(revdelta.make_delta(base, new).to_bytes())
    at = data.draw(st.integers(min_value=0, max_value=len(wire) - 1))
    wire[at] ^= data.draw(st.integers(min_value=1, max_value=255))
    try:
        rebuilt = revdelta.decode_delta(bytes(wire)).apply(base)
    except codec.Malformed:
        return
    assert not _verifies(rebuilt) or rebuilt == new


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_is_malformed(junk: bytes) -> None:
    with pytest.raises(codec.Malformed):
        revdelta.decode_delta(b"TBRD\x01" + junk)
