"""Token Status List (draft-ietf-oauth-status-list) for e-licence revocation.

A status list is a byte array holding one status of `bits` bits (1, 2, 4 or 8) per
licence; the status of index ``i`` sits in byte ``i * bits // 8`` starting at bit
``(i * bits) % 8``, counting from the least-significant bit. In JSON the array is
ZLIB-compressed (RFC 1950, DEFLATE at the highest level) and base64url-encoded as
``lst``. Values: 0 VALID, 1 INVALID (revoked), 2 SUSPENDED, 3 application-specific.

The list is published as a Status List Token: a JWS with header ``typ:
statuslist+jwt`` and claims ``sub`` (the list's URI, which licences reference), ``iat``,
``exp``, ``ttl`` (seconds a verifier may cache it) and ``status_list: {bits, lst}``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from typing_extensions import TypeIs

from tongban.crypto.signing import PrivateKey, PublicKey, b64u
from tongban.licences.jws import b64u_decode, parse_compact, sign_compact
from tongban.licences.rejection import LicenceRejected, RejectReason

VALID = 0
INVALID = 1
SUSPENDED = 2

TYP = "statuslist+jwt"
BITS: tuple[int, ...] = (1, 2, 4, 8)
#: Largest decompressed list accepted (a zlib bomb stops here): 16 MiB, i.e. 128 million
#: one-bit statuses.
MAX_BYTES = 16 * 1024 * 1024


class StatusList:
    """A mutable status list of `size` entries of `bits` bits each, all VALID at first."""

    __slots__ = ("bits", "size", "_data", "_mask", "_per_byte", "_shift")

    def __init__(self, bits: int = 1, size: int = 0, data: bytes | bytearray | None = None):
        if bits not in BITS:
            raise ValueError("bits must be 1, 2, 4 or 8")
        self.bits = bits
        self._per_byte = 8 // bits
        self._shift = {1: 3, 2: 2, 4: 1, 8: 0}[bits]  # log2(entries per byte)
        self._mask = (1 << bits) - 1
        if data is None:
            if size < 0:
                raise ValueError("size must be >= 0")
            self._data = bytearray(-(-size * bits // 8))
            self.size = size
        else:
            self._data = bytearray(data)
            self.size = len(self._data) * self._per_byte

    def __len__(self) -> int:
        return self.size

    def _check(self, idx: int) -> None:
        if not isinstance(idx, int) or isinstance(idx, bool) or not 0 <= idx < self.size:
            raise IndexError(f"status index {idx!r} outside 0..{self.size - 1}")

    def get(self, idx: int) -> int:
        """The status at `idx`; IndexError outside the list."""
        self._check(idx)
        byte = self._data[idx >> self._shift]
        return (byte >> ((idx & (self._per_byte - 1)) * self.bits)) & self._mask

    def set(self, idx: int, value: int) -> None:
        """Set the status at `idx` (0 ≤ value < 2**bits)."""
        self._check(idx)
        if not isinstance(value, int) or not 0 <= value <= self._mask:
            raise ValueError(f"status {value!r} does not fit in {self.bits} bits")
        pos = idx >> self._shift
        offset = (idx & (self._per_byte - 1)) * self.bits
        self._data[pos] = (self._data[pos] & ~(self._mask << offset) & 0xFF) | (value << offset)

    def to_bytes(self) -> bytes:
        """The uncompressed byte array."""
        return bytes(self._data)

    def encode(self) -> str:
        """`lst`: base64url of the ZLIB-compressed byte array."""
        return b64u(zlib.compress(bytes(self._data), 9))

    @classmethod
    def decode(cls, lst: str, bits: int) -> StatusList:
        """Read `lst`; raises LicenceRejected(MALFORMED) on bad base64url/zlib or bits."""
        if bits not in BITS or isinstance(bits, bool):
            raise LicenceRejected(RejectReason.MALFORMED, "bits must be 1, 2, 4 or 8")
        try:
            compressed = b64u_decode(lst)
            inflater = zlib.decompressobj()
            data = inflater.decompress(compressed, MAX_BYTES)
            if inflater.unconsumed_tail:
                raise ValueError("status list too large")
            if not inflater.eof or inflater.unused_data:
                raise ValueError("truncated or trailing zlib data")
        except (ValueError, zlib.error) as exc:
            raise LicenceRejected(RejectReason.MALFORMED, f"lst: {exc}") from exc
        return cls(bits, data=data)

    def __repr__(self) -> str:
        return f"StatusList(bits={self.bits}, size={self.size})"


@dataclass(frozen=True, slots=True)
class StatusListToken:
    """A verified Status List Token."""

    uri: str
    iat: int
    exp: int | None
    ttl: int | None
    status_list: StatusList
    iss: str | None = None
    kid: str | None = None


def sign_status_list(
    lst: str,
    bits: int,
    uri: str,
    key: PrivateKey,
    *,
    iat: int,
    exp: int,
    ttl: int,
    iss: str | None = None,
) -> str:
    """A Status List Token for list `uri` (its `sub`), signed by `key`. `iss` (optional,
    the issuer id of the trust list) lets a verifier find the key by (iss, kid)."""
    if bits not in BITS:
        raise ValueError("bits must be 1, 2, 4 or 8")
    payload: dict[str, Any] = {"sub": uri, "iat": iat, "exp": exp, "ttl": ttl}
    if iss is not None:
        payload["iss"] = iss
    payload["status_list"] = {"bits": bits, "lst": lst}
    return sign_compact({"typ": TYP}, payload, key)


def _int(value: Any) -> TypeIs[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def verify_status_list(
    token: str,
    key_for: Callable[[dict[str, Any]], PublicKey | None],
    *,
    now: int,
    leeway: int = 60,
    uri: str | None = None,
) -> StatusListToken:
    """Check a Status List Token and decode its list.

    `key_for` receives the protected header (``alg``, ``kid``, ``typ``) with the
    payload's ``iss`` and ``iat`` added (``None`` when absent) and returns the key
    trusted for it, or None. When `uri` is given the token's ``sub`` must equal it.
    Raises LicenceRejected: MALFORMED (not a status list token, wrong typ, bad claims,
    bad lst, other `sub`), UNKNOWN_ISSUER (no key), BAD_SIGNATURE, NOT_YET_VALID (iat
    in the future beyond `leeway`), EXPIRED (exp passed)."""
    jws = parse_compact(token)
    if jws.header.get("typ") != TYP:
        raise LicenceRejected(RejectReason.MALFORMED, f"typ is not {TYP}")
    p = jws.payload
    key = key_for({**jws.header, "iss": p.get("iss"), "iat": p.get("iat")})
    if key is None:
        raise LicenceRejected(RejectReason.UNKNOWN_ISSUER, "no trusted key for this status list")
    if not jws.verify_with(key):
        raise LicenceRejected(RejectReason.BAD_SIGNATURE, "status list signature")
    sub, iat, exp, ttl, sl = (
        p.get("sub"),
        p.get("iat"),
        p.get("exp"),
        p.get("ttl"),
        p.get("status_list"),
    )
    if not isinstance(sub, str) or not sub:
        raise LicenceRejected(RejectReason.MALFORMED, "sub missing")
    if uri is not None and sub != uri:
        raise LicenceRejected(RejectReason.MALFORMED, "status list is not the one referenced")
    if not _int(iat):
        raise LicenceRejected(RejectReason.MALFORMED, "iat missing")
    if exp is not None and not _int(exp):
        raise LicenceRejected(RejectReason.MALFORMED, "exp not an integer")
    if ttl is not None and (not _int(ttl) or ttl <= 0):
        raise LicenceRejected(RejectReason.MALFORMED, "ttl not a positive integer")
    if not isinstance(sl, dict) or not _int(sl.get("bits")) or not isinstance(sl.get("lst"), str):
        raise LicenceRejected(RejectReason.MALFORMED, "status_list {bits, lst} missing")
    if iat > now + leeway:
        raise LicenceRejected(RejectReason.NOT_YET_VALID, "status list issued in the future")
    if exp is not None and exp <= now:
        raise LicenceRejected(RejectReason.EXPIRED, "status list expired")
    iss = p.get("iss")
    return StatusListToken(
        uri=sub,
        iat=iat,
        exp=exp,
        ttl=ttl,
        status_list=StatusList.decode(sl["lst"], sl["bits"]),
        iss=iss if isinstance(iss, str) else None,
        kid=jws.header.get("kid"),
    )


class LocalStatuses:
    """A StatusSource over decoded lists held in memory (uri -> StatusList): what a
    verifier builds from the Status List Tokens it has fetched and verified."""

    __slots__ = ("lists",)

    def __init__(self, lists: dict[str, StatusList] | None = None) -> None:
        self.lists: dict[str, StatusList] = dict(lists or {})

    def add(self, token: StatusListToken) -> None:
        self.lists[token.uri] = token.status_list

    def status_of(self, uri: str, idx: int) -> int:
        """The status of `idx` in list `uri`; STATUS_UNAVAILABLE when the list is not
        held or the index is outside it."""
        lst = self.lists.get(uri)
        if lst is None:
            raise LicenceRejected(RejectReason.STATUS_UNAVAILABLE, f"no status list {uri}")
        try:
            return lst.get(idx)
        except IndexError as exc:
            raise LicenceRejected(RejectReason.STATUS_UNAVAILABLE, str(exc)) from exc
