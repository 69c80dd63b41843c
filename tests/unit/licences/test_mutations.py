"""Property: no mutation of a valid licence is ever accepted with more or other claims.

Every mutation of a valid presentation is either rejected with LicenceRejected (never
another exception) or — only when it removed or reordered whole disclosures, which is
legitimate selective disclosure — accepted with the same issuer-signed JWT and claims
that are a subset of the original's."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from licence_kit import JS, NOW, SHOWN, driving_claims, federation_for, forge_jwt
from tongban.crypto.signing import Alg, b64u, b64u_decode
from tongban.licences.rejection import LicenceRejected
from tongban.licences.verify import VerifiedLicence, verify_licence

FEDS = {alg: federation_for(alg) for alg in (Alg.EDDSA, Alg.SM2)}
ORIGINAL = {alg: f.presentation() for alg, f in FEDS.items()}
OTHER = {alg: f.presentation(name="李雷", licence_class="A1") for alg, f in FEDS.items()}
CHARS = st.sampled_from(
    list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_~.=+/ \n\x00")
    + ["中", "é"]
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
PROFILE = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _verify(alg: Alg, compact: str) -> VerifiedLicence | None:
    fed = FEDS[alg]
    try:
        return verify_licence(compact, fed.trust, fed.statuses, now=NOW)
    except LicenceRejected:
        return None


def assert_safe(alg: Alg, mutated: str) -> None:
    """Rejected, or accepted only as a legitimate subset of the original."""
    original = ORIGINAL[alg]
    result = _verify(alg, mutated)
    if result is None:
        return
    base = _verify(alg, original)
    assert base is not None
    jwt, *rest = mutated.split("~")
    assert jwt == original.split("~")[0], "accepted with a different issuer-signed JWT"
    assert set(rest[:-1]) <= set(original.split("~")[1:-1]), "accepted a foreign disclosure"
    for name, value in result.claims.items():
        assert base.claims.get(name) == value and name in base.claims
    assert (result.issuer, result.kid, result.exp, result.status) == (
        base.issuer,
        base.kid,
        base.exp,
        base.status,
    )


ALGS = pytest.mark.parametrize("alg", [Alg.EDDSA, Alg.SM2], ids=["ed25519", "sm2"])


def test_originals_verify() -> None:
    for alg in FEDS:
        v = _verify(alg, ORIGINAL[alg])
        assert v is not None and set(SHOWN) <= set(v.claims)


@ALGS
@PROFILE
@given(data=st.data())
def test_substitution(alg: Alg, data: st.DataObject) -> None:
    s = ORIGINAL[alg]
    pos = data.draw(st.integers(0, len(s) - 1))
    ch = data.draw(CHARS.filter(lambda c: c != s[pos]))
    assert_safe(alg, s[:pos] + ch + s[pos + 1 :])


@ALGS
@PROFILE
@given(data=st.data())
def test_insertion(alg: Alg, data: st.DataObject) -> None:
    s = ORIGINAL[alg]
    pos = data.draw(st.integers(0, len(s)))
    text = data.draw(st.lists(CHARS, min_size=1, max_size=4).map("".join))
    assert_safe(alg, s[:pos] + text + s[pos:])


@ALGS
@PROFILE
@given(data=st.data())
def test_deletion(alg: Alg, data: st.DataObject) -> None:
    s = ORIGINAL[alg]
    start = data.draw(st.integers(0, len(s) - 1))
    length = data.draw(st.integers(1, max(1, len(s) - start)))
    assert_safe(alg, s[:start] + s[start + length :])


def _components(compact: str) -> tuple[list[str], list[str]]:
    jwt, *rest = compact.split("~")
    return jwt.split("."), rest[:-1]


def _assemble(parts: list[str], disclosures: list[str]) -> str:
    return ".".join(parts) + "~" + "".join(d + "~" for d in disclosures)


@ALGS
@PROFILE
@given(data=st.data())
def test_bit_flip_in_decoded_part(alg: Alg, data: st.DataObject) -> None:
    parts, disclosures = _components(ORIGINAL[alg])
    which = data.draw(st.integers(0, 2 + len(disclosures)))
    target = parts if which < 3 else disclosures
    i = which if which < 3 else which - 3
    raw = bytearray(b64u_decode(target[i]))
    bit = data.draw(st.integers(0, len(raw) * 8 - 1))
    raw[bit // 8] ^= 1 << (bit % 8)
    target[i] = b64u(bytes(raw))
    assert_safe(alg, _assemble(parts, disclosures))


def _differs(old: Any) -> Any:
    return JSON_VALUES.filter(lambda v: v != old or type(v) is not type(old))


@ALGS
@PROFILE
@given(data=st.data())
def test_changed_payload_claim(alg: Alg, data: st.DataObject) -> None:
    parts, disclosures = _components(ORIGINAL[alg])
    payload = json.loads(b64u_decode(parts[1]))
    name = data.draw(st.sampled_from(sorted(payload) + ["new_claim"]))
    payload[name] = data.draw(_differs(payload.get(name)))
    parts[1] = b64u(json.dumps(payload, ensure_ascii=False).encode())
    assert_safe(alg, _assemble(parts, disclosures))


@ALGS
@PROFILE
@given(data=st.data())
def test_changed_disclosure(alg: Alg, data: st.DataObject) -> None:
    parts, disclosures = _components(ORIGINAL[alg])
    i = data.draw(st.integers(0, len(disclosures) - 1))
    salt, name, value = json.loads(b64u_decode(disclosures[i]))
    field = data.draw(st.sampled_from(["salt", "name", "value"]))
    if field == "salt":
        salt = data.draw(st.text(min_size=1, max_size=24).filter(lambda s: s != salt))
    elif field == "name":
        name = data.draw(st.sampled_from(["iss", "exp", "vct", "name", "sex", "_sd", "...", "x"]))
    else:
        value = data.draw(_differs(value))
    disclosures[i] = b64u(json.dumps([salt, name, value], ensure_ascii=False).encode())
    assert_safe(alg, _assemble(parts, disclosures))


@ALGS
@PROFILE
@given(data=st.data())
def test_disclosure_list_edits(alg: Alg, data: st.DataObject) -> None:
    parts, disclosures = _components(ORIGINAL[alg])
    _, foreign = _components(OTHER[alg])
    pool = disclosures + foreign
    edited = data.draw(st.lists(st.sampled_from(pool), max_size=len(pool) + 2))
    result = _verify(alg, _assemble(parts, edited))
    legit = set(edited) <= set(disclosures) and len(set(edited)) == len(edited)
    assert (result is not None) == legit
    assert_safe(alg, _assemble(parts, edited))


@ALGS
@PROFILE
@given(data=st.data())
def test_parts_swapped_between_licences(alg: Alg, data: st.DataObject) -> None:
    parts, disclosures = _components(ORIGINAL[alg])
    other_parts, _ = _components(OTHER[alg])
    mask = data.draw(st.lists(st.booleans(), min_size=3, max_size=3).filter(lambda m: any(m)))
    mixed = [o if m else p for p, o, m in zip(parts, other_parts, mask, strict=True)]
    mutated = _assemble(mixed, disclosures)
    assert_safe(alg, mutated)
    if mask[1] or mask[2]:  # payloads and signatures differ between the two licences
        assert _verify(alg, mutated) is None


REGISTERED = ["iss", "iat", "nbf", "exp", "vct", "status", "_sd", "_sd_alg", "cnf", "licence_id"]


@PROFILE
@given(data=st.data())
def test_signed_odd_values_never_crash(data: st.DataObject) -> None:
    """Even a trusted key signing odd JSON gets a typed answer, never a crash."""
    fed = FEDS[Alg.EDDSA]
    payload = driving_claims(JS)
    for name in data.draw(st.lists(st.sampled_from(REGISTERED), min_size=1, max_size=3)):
        payload[name] = data.draw(JSON_VALUES)
    header = {"alg": "EdDSA", "kid": fed.keys[JS].kid, "typ": "dc+sd-jwt"}
    if data.draw(st.booleans()):
        header[data.draw(st.sampled_from(["typ", "kid", "alg", "x"]))] = data.draw(JSON_VALUES)
    compact = forge_jwt(header, payload, fed.keys[JS]) + "~"
    with contextlib.suppress(LicenceRejected):
        verify_licence(compact, fed.trust, fed.statuses, now=NOW)
