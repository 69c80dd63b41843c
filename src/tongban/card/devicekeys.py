"""Device keys of the dynamic code: a holder's device signs every code with a key it made
and keeps (the browser: WebCrypto ECDSA P-256, non-extractable, in IndexedDB; Chromium
also offers Ed25519). A credential carries the public half in raw form — a compressed
P-256 point (33 bytes) or an Ed25519 key (32 bytes) — and a gate verifies with it
directly. The node never sees a private key.

Reading a public JWK (enrolment) goes through tongban.crypto.signing's holder-key rules:
EC P-256 or OKP Ed25519, no private member."""

from __future__ import annotations

from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from tongban.card.codec import DeviceAlg
from tongban.crypto.signing import (
    KeyError_,
    P256PublicKey,
    b64u,
    b64u_decode,
    holder_key_from_jwk,
)


class BadDeviceKey(ValueError):
    """A device key that cannot be used (wrong type, private member, not on the curve)."""


def from_jwk(jwk: Any) -> tuple[DeviceAlg, bytes, str, dict[str, str]]:
    """(suite, raw public key as a credential carries it, RFC 7638 thumbprint, public JWK)
    of a device's public JWK; BadDeviceKey for anything but a P-256 or Ed25519 public key."""
    try:
        key = holder_key_from_jwk(jwk)
    except KeyError_ as e:
        raise BadDeviceKey(str(e)) from e
    public = key.jwk()
    public = {k: public[k] for k in ("kty", "crv", "x", "y") if k in public}
    if isinstance(key, P256PublicKey):
        x, y = b64u_decode(public["x"]), b64u_decode(public["y"])
        return DeviceAlg.P256, bytes([2 | (y[-1] & 1)]) + x, key.kid, public
    return DeviceAlg.ED25519, b64u_decode(public["x"]), key.kid, public


def to_jwk(alg: DeviceAlg, raw: bytes) -> dict[str, str]:
    """The public JWK of a raw device key (a compressed P-256 point, an Ed25519 key)."""
    if alg is DeviceAlg.ED25519:
        return {"kty": "OKP", "crv": "Ed25519", "x": b64u(raw)}
    nums = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw).public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": b64u(nums.x.to_bytes(32, "big")),
        "y": b64u(nums.y.to_bytes(32, "big")),
    }


class DeviceVerifier:
    """Verifies a device's signatures (64 bytes: r || s for P-256, as WebCrypto makes
    them; the RFC 8032 signature for Ed25519)."""

    __slots__ = ("alg", "_key")

    def __init__(self, alg: DeviceAlg, raw: bytes) -> None:
        self.alg = alg
        try:
            if alg is DeviceAlg.P256:
                self._key: Any = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
            else:
                self._key = Ed25519PublicKey.from_public_bytes(raw)
        except ValueError as e:  # not on the curve, wrong length
            raise BadDeviceKey(str(e)) from e

    def verify(self, data: bytes, signature: bytes) -> bool:
        if len(signature) != 64:
            return False
        try:
            if self.alg is DeviceAlg.ED25519:
                self._key.verify(signature, data)
                return True
            r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            if not r or not s:
                return False
            self._key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True


def raw_public(private: Any) -> tuple[DeviceAlg, bytes]:
    """The suite and raw public key of a device's private key (the reference device):
    tongban.crypto.signing's P256PrivateKey or an Ed25519 PrivateKey."""
    jwk = private.public().jwk()
    alg, raw, _kid, _jwk = from_jwk({k: v for k, v in jwk.items() if k not in ("kid", "alg")})
    return alg, raw


__all__ = ["BadDeviceKey", "DeviceVerifier", "from_jwk", "raw_public", "to_jwk"]
