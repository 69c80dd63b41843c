"""docs/card-format.md's test vectors are what the code makes and accepts: vector 1 is
rebuilt byte for byte from its seeds and fields (Ed25519 is deterministic), vector 2 (SM2
issuer, P-256 device) decodes to its fields and verifies with its keys; both are admitted
by a gate that trusts the issuer at the code's time."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tongban.card import codec, revdelta
from tongban.card.codec import Credential, DeviceAlg, IssuerAlg
from tongban.card.device import Device
from tongban.card.domain import AgeBand, CardStatus
from tongban.card.verifier import IssuerKey, Verifier, index_keys, kid8
from tongban.crypto.signing import Alg, PrivateKey, public_from_jwk

DOC = Path(__file__).resolve().parents[3] / "docs" / "card-format.md"


def _vectors() -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for block in re.findall(r"```text\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S):
        fields: dict[str, str] = {}
        name = None
        for line in block.splitlines():
            m = re.match(r"^([a-z_]+): ?(.*)$", line)
            if m:
                name = m.group(1)
                fields[name] = m.group(2)
            elif name is not None:
                fields[name] += line
        out[fields["vector"].split()[0]] = fields
    return out


def _int(v: dict[str, str], name: str) -> int:
    return int(v[name].split()[0])


def _credential_fields(v: dict[str, str]) -> dict[str, object]:
    return {
        "jurisdiction": v["jurisdiction"],
        "city": v["city"],
        "ref": bytes.fromhex(v["reference"]),
        "age_band": AgeBand(_int(v, "age_band")),
        "concessions": _int(v, "concessions"),
        "status": CardStatus.NORMAL if _int(v, "status") == 0 else CardStatus.LOST,
        "transport": v["transport"] == "yes",
        "generation": _int(v, "generation"),
        "iat": _int(v, "issued_at"),
        "exp": _int(v, "expires_at"),
    }


def _qr(v: dict[str, str]) -> str:
    return v["qr_text"].replace("␠", " ")


def test_vector_1_is_rebuilt_byte_for_byte() -> None:
    v = _vectors()["1"]
    issuer = PrivateKey(
        Alg.EDDSA, Ed25519PrivateKey.from_private_bytes(bytes.fromhex(v["issuer_seed"]))
    )
    assert issuer.kid == v["issuer_kid"] and issuer.public().jwk()["x"] == v["issuer_public_x"]
    device = Device(
        DeviceAlg.ED25519, Ed25519PrivateKey.from_private_bytes(bytes.fromhex(v["device_seed"]))
    )
    assert device.public_jwk()["x"] == v["device_public_x"]
    unsigned = Credential(
        issuer_alg=IssuerAlg.ED25519,
        device_alg=DeviceAlg.ED25519,
        kid8=kid8(issuer.kid),
        device_key=device.public_raw(),
        **_credential_fields(v),  # type: ignore[arg-type]
    )
    cred = replace(unsigned, signature=issuer.sign(unsigned.signing_input())).to_bytes()
    assert cred.hex() == v["credential_hex"]
    assert len(cred) == 132
    device.credential = cred
    code = device.code(_int(v, "code_time"))
    assert code.hex() == v["code_hex"] and len(code) == 200
    assert codec.to_qr_text(code) == _qr(v) and len(_qr(v)) == 305
    assert codec.from_qr_text(_qr(v)) == code
    # The revocation list.
    lst = codec.RevocationList(
        IssuerAlg.ED25519,
        v["jurisdiction"],
        kid8(issuer.kid),
        _int(v, "issued_at"),
        _int(v, "expires_at"),
        _int(v, "revocations_seq"),
        tuple(bytes.fromhex(r) for r in v["revocations_refs"].split()),
    )
    signed = replace(lst, signature=issuer.sign(lst.signing_input()))
    assert signed.to_bytes().hex() == v["revocations_hex"]
    # The delta onto it (vector 1d): made byte for byte, and applied it gives the new list.
    d = _vectors()["1d"]
    assert revdelta.digest(signed.refs).hex() == d["base_digest"]
    new = codec.RevocationList(
        IssuerAlg.ED25519,
        v["jurisdiction"],
        kid8(issuer.kid),
        _int(d, "new_issued_at"),
        _int(d, "new_expires_at"),
        _int(d, "new_seq"),
        tuple(bytes.fromhex(r) for r in d["new_refs"].split()),
    )
    new = replace(new, signature=issuer.sign(new.signing_input()))
    delta = revdelta.make_delta(signed, new)
    assert [r.hex() for r in delta.added] == d["added"].split()
    assert [str(p) for p in delta.removed] == d["removed_positions"].split()
    assert delta.to_bytes().hex() == d["delta_hex"]
    rebuilt = revdelta.decode_delta(bytes.fromhex(d["delta_hex"])).apply(signed)
    assert rebuilt.to_bytes() == new.to_bytes()
    assert issuer.public().verify(rebuilt.signing_input(), rebuilt.signature)


def _gate(public: object, v: dict[str, str]) -> Verifier:
    key = IssuerKey(v["jurisdiction"], v["issuer_kid"], public, 0, None)  # type: ignore[arg-type]
    return Verifier(
        index_keys([key]), {v["jurisdiction"]: frozenset()}, synced_at=_int(v, "code_time")
    )


def test_vector_2_decodes_and_verifies() -> None:
    v = _vectors()["2"]
    issuer = public_from_jwk(
        {"kty": "EC", "crv": "SM2", "x": v["issuer_public_x"], "y": v["issuer_public_y"]}
    )
    assert issuer.kid == v["issuer_kid"]
    code = codec.decode_code(bytes.fromhex(v["code_hex"]))
    assert len(bytes.fromhex(v["code_hex"])) == 201
    cred = code.credential
    assert (cred.issuer_alg, cred.device_alg) == (IssuerAlg.SM2, DeviceAlg.P256)
    for name, value in _credential_fields(v).items():
        assert getattr(cred, name) == value, name
    assert code.time == _int(v, "code_time")
    assert issuer.verify(cred.signing_input(), cred.signature)
    assert codec.to_qr_text(code.to_bytes()) == _qr(v)
    from tongban.card.devicekeys import DeviceVerifier, to_jwk

    assert to_jwk(DeviceAlg.P256, cred.device_key) == {
        "kty": "EC",
        "crv": "P-256",
        "x": v["device_public_x"],
        "y": v["device_public_y"],
    }
    assert DeviceVerifier(DeviceAlg.P256, cred.device_key).verify(
        code.signing_input(), code.signature
    )


def test_both_vectors_are_admitted_by_a_gate_that_trusts_their_issuer() -> None:
    vectors = _vectors()
    v1 = vectors["1"]
    issuer1 = PrivateKey(
        Alg.EDDSA, Ed25519PrivateKey.from_private_bytes(bytes.fromhex(v1["issuer_seed"]))
    )
    verdict = _gate(issuer1.public(), v1).check(_qr(v1), _int(v1, "code_time") + 5)
    assert verdict.admitted, verdict
    v2 = vectors["2"]
    issuer2 = public_from_jwk(
        {"kty": "EC", "crv": "SM2", "x": v2["issuer_public_x"], "y": v2["issuer_public_y"]}
    )
    verdict = _gate(issuer2, v2).check(_qr(v2), _int(v2, "code_time") + 5)
    assert verdict.admitted, verdict
