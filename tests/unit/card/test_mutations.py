"""Property-based hostile tests of the gate's verifier: no change to a genuine code — a bit
flipped, bytes replaced, cut or added, characters of its QR text swapped — is ever
admitted, every refusal is one of the defined reasons, and no input makes the verifier
raise. Both issuer suites and both device suites."""

from __future__ import annotations

from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st

from tongban.card import codec
from tongban.card.verifier import Refusal, Verifier
from unit.card.kit import NOW, enrolled, issuer, issuer_key, verifier

SUITES = [("EdDSA", "ES256"), ("SM2", "EdDSA"), ("EdDSA", "EdDSA"), ("SM2", "ES256")]


@cache
def _genuine(suite: int) -> tuple[bytes, Verifier]:
    issuer_alg, device_alg = SUITES[suite]
    key = issuer(issuer_alg)
    code = enrolled(key, device_alg).code(NOW)
    gate = verifier(issuer_key(key))
    assert gate.check(code, NOW, record=False).admitted
    return code, gate


def _refused(gate: Verifier, scanned: bytes | str) -> None:
    verdict = gate.check(scanned, NOW, record=False)
    assert not verdict.admitted, verdict
    assert verdict.reason in set(Refusal) and verdict.message.startswith("未通过：")


suite = st.integers(min_value=0, max_value=len(SUITES) - 1)


@settings(max_examples=300)
@given(suite=suite, data=st.data())
def test_a_flipped_bit_anywhere_is_refused(suite: int, data: st.DataObject) -> None:
    code, gate = _genuine(suite)
    position = data.draw(st.integers(min_value=0, max_value=len(code) * 8 - 1))
    mutated = bytearray(code)
    mutated[position // 8] ^= 1 << (position % 8)
    _refused(gate, bytes(mutated))


@settings(max_examples=300)
@given(suite=suite, data=st.data())
def test_replaced_bytes_are_refused(suite: int, data: st.DataObject) -> None:
    code, gate = _genuine(suite)
    start = data.draw(st.integers(min_value=0, max_value=len(code) - 1))
    patch = data.draw(st.binary(min_size=1, max_size=16))
    mutated = bytearray(code)
    mutated[start : start + len(patch)] = patch
    mutated = mutated[: len(code)] if len(mutated) > len(code) else mutated
    if bytes(mutated) == code:
        return
    _refused(gate, bytes(mutated))


@settings(max_examples=200)
@given(suite=suite, data=st.data())
def test_cut_or_lengthened_codes_are_malformed(suite: int, data: st.DataObject) -> None:
    code, gate = _genuine(suite)
    cut = data.draw(st.integers(min_value=0, max_value=len(code) - 1))
    extra = data.draw(st.binary(min_size=1, max_size=40))
    for mutated in (code[:cut], code + extra, extra + code):
        verdict = gate.check(mutated, NOW, record=False)
        assert verdict.reason is Refusal.MALFORMED, verdict


@settings(max_examples=300)
@given(suite=suite, data=st.data())
def test_a_changed_character_of_the_qr_text_is_refused(suite: int, data: st.DataObject) -> None:
    code, gate = _genuine(suite)
    text = codec.to_qr_text(code)
    i = data.draw(st.integers(min_value=0, max_value=len(text) - 1))
    char = data.draw(st.sampled_from(codec.B45 + "abc~\u4e2d"))
    mutated = text[:i] + char + text[i + 1 :]
    if mutated == text:
        return
    _refused(gate, mutated)


@settings(max_examples=300)
@given(garbage=st.one_of(st.text(max_size=600), st.binary(max_size=400)))
def test_garbage_never_raises_and_is_never_admitted(garbage: str | bytes) -> None:
    _code, gate = _genuine(0)
    _refused(gate, garbage)


@settings(max_examples=100)
@given(prefix=st.binary(min_size=2, max_size=2), body=st.binary(min_size=195, max_size=205))
def test_a_well_formed_looking_forgery_is_refused(prefix: bytes, body: bytes) -> None:
    # Right version byte and plausible suites: the fixed fields are read, the signatures fail.
    _code, gate = _genuine(0)
    _refused(gate, bytes([codec.VERSION]) + prefix[1:] + body)
