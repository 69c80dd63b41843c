"""One signing interface for every purpose (licences, node messages, audit checkpoints).

Two suites:

- ``EdDSA`` — Ed25519 (RFC 8032) through `cryptography` (OpenSSL). The default.
- ``SM2`` — SM2 signatures with the SM3 digest and the default user id
  ``1234567812345678`` (GB/T 32918.2, GB/T 32905), through `tongsuopy`, the Python
  binding of Tongsuo (the OpenSSL fork maintained by the 铜锁 project for the national
  algorithms). It is C-backed (about 1,500 verifications/s on one core here, against a
  few dozen for pure-Python implementations such as gmssl) and its signatures verify
  with gmssl's independent implementation (see tests/unit/crypto).

Signatures are raw bytes as JOSE wants them: 64 bytes for Ed25519, ``r || s`` (2 × 32
bytes, big-endian) for SM2. Public keys travel as JWKs: ``{"kty": "OKP", "crv":
"Ed25519", "x"}`` and ``{"kty": "EC", "crv": "SM2", "x", "y"}``; a key's id is its
RFC 7638 thumbprint.
"""

from __future__ import annotations

import base64
import hashlib
import json
from enum import StrEnum
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes as c_hashes
from cryptography.hazmat.primitives import serialization as c_ser
from cryptography.hazmat.primitives.asymmetric import ec as c_ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from tongsuopy.crypto import hashes as t_hashes
from tongsuopy.crypto import serialization as t_ser
from tongsuopy.crypto.asymciphers import ec as t_ec


class Alg(StrEnum):
    """JOSE `alg` names of the two suites."""

    EDDSA = "EdDSA"
    SM2 = "SM2"


class KeyError_(ValueError):
    """A key that cannot be read (bad PEM, bad JWK, unknown algorithm)."""


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str) -> bytes:
    """Strict base64url without padding; raises ValueError on anything else."""
    if not isinstance(text, str) or "=" in text:
        raise ValueError("not base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise ValueError("not base64url") from exc
    if b64u(raw) != text:  # rejects non-canonical encodings (stray bits, other alphabets)
        raise ValueError("not canonical base64url")
    return raw


def sm3(data: bytes) -> bytes:
    """The SM3 digest (GB/T 32905), 32 bytes."""
    h = t_hashes.Hash(t_hashes.SM3())
    h.update(data)
    return bytes(h.finalize())


def digest(name: str, data: bytes) -> bytes:
    """`sha-256` or `sm3`."""
    if name == "sha-256":
        return hashlib.sha256(data).digest()
    if name == "sm3":
        return sm3(data)
    raise ValueError(f"unknown digest {name}")


def _der_from_raw(signature: bytes) -> bytes | None:
    """A raw 64-byte r || s signature (JWS, SM2 as sent here) as the DER that the
    verifiers take; None when it cannot be a signature at all."""
    if len(signature) != 64:
        return None
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    if not r or not s:
        return None
    return encode_dss_signature(r, s)


def _int32(value: int) -> bytes:
    return value.to_bytes(32, "big")


class PublicKey:
    """A verification key; cheap to call repeatedly (the library object is kept)."""

    __slots__ = ("alg", "_key", "_jwk", "kid")

    def __init__(self, alg: Alg, key: Any) -> None:
        self.alg = alg
        self._key = key
        self._jwk = self._make_jwk()
        self.kid = thumbprint(self._jwk)

    def _make_jwk(self) -> dict[str, str]:
        if self.alg is Alg.EDDSA:
            raw = self._key.public_bytes(c_ser.Encoding.Raw, c_ser.PublicFormat.Raw)
            return {"kty": "OKP", "crv": "Ed25519", "x": b64u(raw)}
        nums = self._key.public_numbers()
        return {"kty": "EC", "crv": "SM2", "x": b64u(_int32(nums.x)), "y": b64u(_int32(nums.y))}

    def verify(self, data: bytes, signature: bytes) -> bool:
        """True when `signature` is this key's signature over `data`."""
        if self.alg is Alg.EDDSA:
            if len(signature) != 64:
                return False
            try:
                self._key.verify(signature, data)
            except InvalidSignature:
                return False
            return True
        der = _der_from_raw(signature)
        if der is None:
            return False
        try:
            self._key.verify(der, data, t_ec.ECDSA(t_hashes.SM3()))
        except Exception:  # noqa: BLE001 - tongsuopy raises its own InvalidSignature
            return False
        return True

    def jwk(self, **extra: str) -> dict[str, str]:
        """The public JWK, with `kid` and `alg` and any extra members."""
        return {**self._jwk, "kid": self.kid, "alg": str(self.alg), **extra}

    def pem(self) -> str:
        pem: bytes
        if self.alg is Alg.EDDSA:
            pem = self._key.public_bytes(
                c_ser.Encoding.PEM, c_ser.PublicFormat.SubjectPublicKeyInfo
            )
        else:
            pem = self._key.public_bytes(
                t_ser.Encoding.PEM, t_ser.PublicFormat.SubjectPublicKeyInfo
            )
        return pem.decode()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublicKey) and other.kid == self.kid

    def __hash__(self) -> int:
        return hash(self.kid)

    def __repr__(self) -> str:
        return f"PublicKey({self.alg}, kid={self.kid})"


class PrivateKey:
    """A signing key. Never leaves its node: only `public()` travels."""

    __slots__ = ("alg", "_key", "_public")

    def __init__(self, alg: Alg, key: Any) -> None:
        self.alg = alg
        self._key = key
        self._public = PublicKey(alg, key.public_key())

    @property
    def kid(self) -> str:
        return self._public.kid

    def public(self) -> PublicKey:
        return self._public

    def sign(self, data: bytes) -> bytes:
        if self.alg is Alg.EDDSA:
            return bytes(self._key.sign(data))
        der = self._key.sign(data, t_ec.ECDSA(t_hashes.SM3()))
        r, s = decode_dss_signature(der)
        return _int32(r) + _int32(s)

    def pem(self, passphrase: bytes | None = None) -> str:
        """PKCS#8 PEM, encrypted when a passphrase is given."""
        if self.alg is Alg.EDDSA:
            enc: Any = (
                c_ser.BestAvailableEncryption(passphrase) if passphrase else c_ser.NoEncryption()
            )
            pem: bytes = self._key.private_bytes(c_ser.Encoding.PEM, c_ser.PrivateFormat.PKCS8, enc)
            return pem.decode()
        enc = t_ser.BestAvailableEncryption(passphrase) if passphrase else t_ser.NoEncryption()
        pem = self._key.private_bytes(t_ser.Encoding.PEM, t_ser.PrivateFormat.PKCS8, enc)
        return pem.decode()

    def __repr__(self) -> str:
        return f"PrivateKey({self.alg}, kid={self.kid})"


def generate(alg: Alg | str = Alg.EDDSA) -> PrivateKey:
    """A fresh key pair of suite `alg`."""
    alg = Alg(alg)
    if alg is Alg.EDDSA:
        return PrivateKey(alg, Ed25519PrivateKey.generate())
    return PrivateKey(alg, t_ec.generate_private_key(t_ec.SM2()))


def load_private_pem(pem: str | bytes, passphrase: bytes | None = None) -> PrivateKey:
    """Read a PKCS#8 PEM of either suite."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = c_ser.load_pem_private_key(data, password=passphrase)
        if isinstance(key, Ed25519PrivateKey):
            return PrivateKey(Alg.EDDSA, key)
    except (ValueError, TypeError):
        pass
    except Exception:  # noqa: BLE001 - cryptography refuses SM2 keys in its own ways
        pass
    try:
        tkey = t_ser.load_pem_private_key(data, password=passphrase)
    except Exception as exc:  # noqa: BLE001
        raise KeyError_("not an Ed25519 or SM2 private key") from exc
    if not isinstance(getattr(tkey, "curve", None), t_ec.SM2):
        raise KeyError_("not an Ed25519 or SM2 private key")
    return PrivateKey(Alg.SM2, tkey)


def load_public_pem(pem: str | bytes) -> PublicKey:
    """Read a SubjectPublicKeyInfo PEM of either suite."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = c_ser.load_pem_public_key(data)
        if isinstance(key, Ed25519PublicKey):
            return PublicKey(Alg.EDDSA, key)
    except Exception:  # noqa: BLE001
        pass
    try:
        tkey = t_ser.load_pem_public_key(data)
    except Exception as exc:  # noqa: BLE001
        raise KeyError_("not an Ed25519 or SM2 public key") from exc
    if not isinstance(getattr(tkey, "curve", None), t_ec.SM2):
        raise KeyError_("not an Ed25519 or SM2 public key")
    return PublicKey(Alg.SM2, tkey)


def public_from_jwk(jwk: dict[str, Any]) -> PublicKey:
    """Read a public JWK of either suite; raises KeyError_ on anything else."""
    try:
        if jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519":
            raw = b64u_decode(jwk["x"])
            if len(raw) != 32:
                raise ValueError("bad x")
            return PublicKey(Alg.EDDSA, Ed25519PublicKey.from_public_bytes(raw))
        if jwk.get("kty") == "EC" and jwk.get("crv") == "SM2":
            x = int.from_bytes(b64u_decode(jwk["x"]), "big")
            y = int.from_bytes(b64u_decode(jwk["y"]), "big")
            return PublicKey(
                Alg.SM2, t_ec.EllipticCurvePublicNumbers(x, y, t_ec.SM2()).public_key()
            )
    except KeyError_:
        raise
    except Exception as exc:  # noqa: BLE001 - malformed members, point not on the curve
        raise KeyError_("malformed JWK") from exc
    raise KeyError_("unsupported JWK (Ed25519 or SM2 only)")


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url) of a public JWK."""
    members = ("crv", "kty", "x") if jwk["kty"] == "OKP" else ("crv", "kty", "x", "y")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return b64u(hashlib.sha256(canonical.encode()).digest())


# --- holder device keys (licence key binding) -------------------------------------------
#
# A licence holder's device key signs the key-binding JWT of a presentation. Browsers
# make it with WebCrypto, where ECDSA P-256 (JOSE ``ES256``) is the one algorithm every
# engine offers as a non-extractable key; Ed25519 is accepted too (Chromium has it).
# These keys never sign node messages or licences, so they are kept out of `Alg` and of
# `public_from_jwk`: a trust list or a peer's key set can never carry one.

ES256 = "ES256"


class P256PublicKey:
    """An ECDSA P-256 (ES256) verification key; signatures are JOSE ``r || s``."""

    __slots__ = ("_key", "_jwk", "kid")
    alg_name = ES256

    def __init__(self, key: Any) -> None:
        self._key = key
        nums = key.public_numbers()
        self._jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": b64u(_int32(nums.x)),
            "y": b64u(_int32(nums.y)),
        }
        self.kid = thumbprint(self._jwk)

    def verify(self, data: bytes, signature: bytes) -> bool:
        """True when `signature` (64 bytes, r || s) is this key's ES256 signature."""
        der = _der_from_raw(signature)
        if der is None:
            return False
        try:
            self._key.verify(der, data, c_ec.ECDSA(c_hashes.SHA256()))
        except InvalidSignature:
            return False
        return True

    def jwk(self) -> dict[str, str]:
        """The public JWK (RFC 7518 §6.2), without private members."""
        return dict(self._jwk)

    def __repr__(self) -> str:
        return f"P256PublicKey(kid={self.kid})"


class P256PrivateKey:
    """An ES256 signing key: what a holder's device holds (tests and non-browser clients
    use this class; the server never holds a holder's private key)."""

    __slots__ = ("_key", "_public")
    alg_name = ES256

    def __init__(self, key: Any) -> None:
        self._key = key
        self._public = P256PublicKey(key.public_key())

    @classmethod
    def generate(cls) -> P256PrivateKey:
        return cls(c_ec.generate_private_key(c_ec.SECP256R1()))

    @property
    def kid(self) -> str:
        return self._public.kid

    def public(self) -> P256PublicKey:
        return self._public

    def sign(self, data: bytes) -> bytes:
        r, s = decode_dss_signature(self._key.sign(data, c_ec.ECDSA(c_hashes.SHA256())))
        return _int32(r) + _int32(s)


#: A holder's device key, either suite.
HolderPublicKey = PublicKey | P256PublicKey


def holder_alg(key: HolderPublicKey) -> str:
    """The JOSE `alg` of a holder key: ``ES256`` or ``EdDSA``."""
    return key.alg_name if isinstance(key, P256PublicKey) else str(key.alg)


def holder_key_from_jwk(jwk: Any) -> HolderPublicKey:
    """Read a holder device key from its public JWK: EC P-256 (ES256) or OKP Ed25519.
    Refuses anything else, and any JWK carrying a private member (``d``): a client that
    sends its private key has leaked it. Raises KeyError_."""
    if not isinstance(jwk, dict):
        raise KeyError_("a JWK is a JSON object")
    if "d" in jwk:
        raise KeyError_("the JWK carries a private key")
    if jwk.get("kty") == "EC" and jwk.get("crv") == "P-256":
        try:
            raw_x, raw_y = b64u_decode(jwk["x"]), b64u_decode(jwk["y"])
            if len(raw_x) != 32 or len(raw_y) != 32:
                raise ValueError("bad coordinate length")
            nums = c_ec.EllipticCurvePublicNumbers(
                int.from_bytes(raw_x, "big"), int.from_bytes(raw_y, "big"), c_ec.SECP256R1()
            )
            return P256PublicKey(nums.public_key())
        except Exception as exc:  # noqa: BLE001 - missing members, point not on the curve
            raise KeyError_("malformed P-256 JWK") from exc
    if jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519":
        return public_from_jwk({"kty": "OKP", "crv": "Ed25519", "x": jwk.get("x")})
    raise KeyError_("unsupported holder key (EC P-256 or Ed25519 only)")
