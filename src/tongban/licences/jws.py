"""Compact JWS (RFC 7515) with the two suites of tongban.crypto.signing.

Only ``EdDSA`` (Ed25519) and ``SM2`` (SM2 with SM3, signature ``r || s``) are accepted;
``none`` and every other ``alg`` are refused when parsing, before any key is looked up.
A header carrying ``crit`` is refused too: no JOSE extension is understood here.
Member names must be unique in the header and the payload (RFC 7515 §4 / RFC 7519 §4
allow refusing duplicates, and refusing them means two parsers can never read one
token two ways).
"""

from __future__ import annotations

import binascii
import json
from dataclasses import dataclass
from typing import Any

from tongban.crypto.signing import Alg, PrivateKey, PublicKey, b64u
from tongban.licences.rejection import LicenceRejected, RejectReason

#: The `alg` values a token may carry.
ALGS: frozenset[str] = frozenset({Alg.EDDSA.value, Alg.SM2.value})


@dataclass(slots=True)  # not frozen: frozen dataclasses are slow to build
class ParsedJws:
    """A compact JWS split and decoded, signature NOT yet checked."""

    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes

    def verify_with(self, key: PublicKey) -> bool:
        """True when `key` (of the header's alg) signed this token."""
        return key.alg.value == self.header["alg"] and key.verify(
            self.signing_input, self.signature
        )


# "-_" become "+/", and "+/=" become "!" which binascii's strict mode refuses: one pass
_TO_STANDARD = bytes.maketrans(b"-_+/=", b"+/!!!")
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_VALUE = {c: i for i, c in enumerate(_ALPHABET)}


def b64u_decode(text: str) -> bytes:
    """Strict base64url without padding, as tongban.crypto.signing.b64u_decode (same
    accepted inputs, ValueError otherwise) but cheaper, as it runs several times per
    licence check: instead of re-encoding to check canonicity, it refuses "+", "/",
    "=" and (through binascii's strict mode) every other character outside the
    alphabet, a length of 4n+1, and non-zero unused bits in the last character."""
    if not isinstance(text, str):
        raise ValueError("not base64url")
    data = text.encode("ascii")  # UnicodeEncodeError is a ValueError
    rem = len(data) % 4
    if rem == 1:
        raise ValueError("not base64url")
    if rem and _VALUE.get(text[-1], 0) & (0x0F if rem == 2 else 0x03):
        raise ValueError("not canonical base64url")
    try:
        return binascii.a2b_base64(
            data.translate(_TO_STANDARD) + b"=" * (-rem % 4), strict_mode=True
        )
    except binascii.Error as exc:
        raise ValueError("not base64url") from exc


def dumps(value: Any) -> bytes:
    """The JSON encoding used for every signed part: compact, UTF-8, non-ASCII kept."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign_compact(header: dict[str, Any], payload: dict[str, Any], key: PrivateKey) -> str:
    """Sign `payload` as a compact JWS; `alg` and `kid` of `header` are set from `key`."""
    head = {"alg": key.alg.value, "kid": key.kid}
    head.update((k, v) for k, v in header.items() if k not in ("alg", "kid"))
    signing_input = b64u(dumps(head)) + "." + b64u(dumps(payload))
    return signing_input + "." + b64u(key.sign(signing_input.encode("ascii")))


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate member name")
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_decoder = json.JSONDecoder(object_pairs_hook=_unique_object, parse_constant=_no_constant)


def loads(data: bytes) -> Any:
    """Strict JSON: UTF-8, no duplicate member names, no NaN/Infinity; ValueError otherwise."""
    return _decoder.decode(data.decode("utf-8"))


def decode_part(part: str, what: str) -> dict[str, Any]:
    """A base64url-encoded JSON object; LicenceRejected(MALFORMED) otherwise."""
    try:
        value = loads(b64u_decode(part))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise LicenceRejected(RejectReason.MALFORMED, f"{what} is not base64url JSON") from exc
    if not isinstance(value, dict):
        raise LicenceRejected(RejectReason.MALFORMED, f"{what} is not a JSON object")
    return value


def parse_compact(token: str, algs: frozenset[str] = ALGS) -> ParsedJws:
    """Split and decode a compact JWS; raises LicenceRejected(MALFORMED) on anything odd,
    including an `alg` outside `algs` (the issuers' suites unless a caller, such as the
    key-binding check, names others)."""
    if not isinstance(token, str):
        raise LicenceRejected(RejectReason.MALFORMED, "token is not a string")
    parts = token.split(".")
    if len(parts) != 3:
        raise LicenceRejected(RejectReason.MALFORMED, f"{len(parts)} parts instead of 3")
    header = decode_part(parts[0], "header")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algs:
        raise LicenceRejected(RejectReason.MALFORMED, f"alg {alg!r} not accepted")
    if "crit" in header:
        raise LicenceRejected(RejectReason.MALFORMED, "crit header not understood")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise LicenceRejected(RejectReason.MALFORMED, "kid is not a string")
    payload = decode_part(parts[1], "payload")
    try:
        signature = b64u_decode(parts[2])
    except ValueError as exc:
        raise LicenceRejected(RejectReason.MALFORMED, "signature is not base64url") from exc
    if not signature:
        raise LicenceRejected(RejectReason.MALFORMED, "empty signature")
    signing_input = token[: len(parts[0]) + 1 + len(parts[1])].encode("ascii")
    return ParsedJws(header, payload, signing_input, signature)
