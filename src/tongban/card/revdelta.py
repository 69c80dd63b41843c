"""The wire form of a revocation-list delta (docs/card-format.md): what a gate that holds
a jurisdiction's list gets instead of the whole list when it syncs again.

    0   4  magic        "TBRD"
    4   1  version      1
    5   1  issuer alg   IssuerAlg
    6   3  jurisdiction uint24
    9   8  issuer key id
    17  4  base seq     the sequence of the list the delta applies to
    21  4  base iat     when that list was signed
    25  8  base digest  digest() of that list's references
    33  4  issued at    of the new list
    37  4  expires at   of the new list
    41  4  sequence     of the new list
    45  4  count        references in the new list
    49  .. added        a Rice section: the references added, as sorted 64-bit values
    ..  .. removed      a Rice section: the positions, in the base list, of the
                        references that left it (their credential expired)
    ..  64 signature    the issuer's signature of the NEW FULL LIST (RevocationList)

A Rice section is n (uint32), k (uint8), its byte length (uint32), then n gaps between
ascending values (the first from 0), each as q = gap >> k one-bits, a zero bit, and the
k low bits of the gap; zero bits pad it to a whole byte.

The gate applies it to the list it holds, rebuilds the new full list and checks the
issuer's signature over it: a delta is exactly as trustworthy as a full list, whoever
computed it, and a gate keeps only full lists. A wrong base, a forged or altered delta
or one cut short fails; so does an older one (its issued-at is before the held list's).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from tongban.card.codec import (
    MAX_REVOKED,
    SIGNATURE_LEN,
    Field,
    IssuerAlg,
    Malformed,
    RevocationList,
    _bad,
    _region,
)

DELTA_MAGIC = b"TBRD"
_HEAD = struct.Struct(">4sBB3s8sII8sIIII")
HEAD_LEN = _HEAD.size
_SECTION = struct.Struct(">IBI")
VALUE_SPACE = 1 << 64


def digest(refs: tuple[bytes, ...] | list[bytes]) -> bytes:
    """8 bytes naming a set of references: SHA-256 of them, ascending, concatenated."""
    return hashlib.sha256(b"".join(refs)).digest()[:8]


def rice_encode(values: list[int], space: int) -> bytes:
    """Ascending, distinct values in [0, space) as a Rice section."""
    n = len(values)
    k = min(63, max(0, (space // max(n, 1)).bit_length() - 1))
    parts: list[str] = []
    previous = 0
    for v in values:
        gap = v - previous
        previous = v
        parts.append("1" * (gap >> k) + "0" + (format(gap & ((1 << k) - 1), f"0{k}b") if k else ""))
    text = "".join(parts)
    text += "0" * (-len(text) % 8)
    body = int(text, 2).to_bytes(len(text) // 8, "big") if text else b""
    return _SECTION.pack(n, k, len(body)) + body


def rice_decode(data: bytes, offset: int, space: int) -> tuple[list[int], int]:
    """The values of the Rice section at `offset` and where it ends; Malformed if they are
    not ascending and distinct, below `space`, or the section is cut short."""
    if len(data) < offset + _SECTION.size:
        raise _bad(Field.LENGTH, "Rice section header cut short")
    n, k, length = _SECTION.unpack_from(data, offset)
    start = offset + _SECTION.size
    end = start + length
    if end > len(data) or n > MAX_REVOKED or k > 63 or n * (k + 1) > length * 8:
        raise _bad(Field.LENGTH, f"Rice section of {n} values in {length} bytes")
    text = bin(int.from_bytes(data[start:end], "big") | (1 << (length * 8)))[3:]
    out: list[int] = []
    pos, previous = 0, 0
    for _ in range(n):
        stop = text.find("0", pos)
        if stop < 0 or stop + 1 + k > len(text):
            raise _bad(Field.LENGTH, "Rice section cut short")
        q = stop - pos
        low = int(text[stop + 1 : stop + 1 + k], 2) if k else 0
        pos = stop + 1 + k
        gap = (q << k) | low
        value = previous + gap
        if (out and gap == 0) or value >= space:
            raise _bad(Field.LENGTH, "Rice values not ascending and in range")
        out.append(value)
        previous = value
    if text[pos:].strip("0") or len(text) - pos >= 8:
        raise _bad(Field.LENGTH, "Rice section has bytes to spare")
    return out, end


@dataclass(frozen=True, slots=True)
class RevocationDelta:
    issuer_alg: IssuerAlg
    jurisdiction: str
    kid8: bytes
    base_seq: int
    base_iat: int
    base_digest: bytes
    iat: int
    exp: int
    seq: int
    count: int
    added: tuple[bytes, ...]
    removed: tuple[int, ...]
    signature: bytes

    def to_bytes(self) -> bytes:
        head = _HEAD.pack(
            DELTA_MAGIC,
            1,
            int(self.issuer_alg),
            int(self.jurisdiction).to_bytes(3, "big"),
            self.kid8,
            self.base_seq,
            self.base_iat,
            self.base_digest,
            self.iat,
            self.exp,
            self.seq,
            self.count,
        )
        added = rice_encode([int.from_bytes(r, "big") for r in self.added], VALUE_SPACE)
        # Positions run up to the base count, which is count - added + removed.
        base_count = self.count - len(self.added) + len(self.removed)
        removed = rice_encode(list(self.removed), max(base_count, 1))
        return head + added + removed + self.signature

    def apply(self, base: RevocationList) -> RevocationList:
        """The new full list (signature as carried, not checked); Malformed when this
        delta does not chain onto `base` or does not add up."""
        if (
            base.jurisdiction != self.jurisdiction
            or base.seq != self.base_seq
            or base.iat != self.base_iat
            or digest(base.refs) != self.base_digest
        ):
            raise _bad(Field.VERSION, "the delta does not apply to the list held")
        if any(p >= len(base.refs) for p in self.removed):
            raise _bad(Field.LENGTH, "removed position beyond the list held")
        gone = set(self.removed)
        kept = [r for i, r in enumerate(base.refs) if i not in gone]
        refs = sorted(set(kept).union(self.added))
        if len(refs) != self.count or len(refs) != len(kept) + len(self.added):
            raise _bad(Field.LENGTH, "the delta does not add up to its count")
        return RevocationList(
            self.issuer_alg,
            self.jurisdiction,
            self.kid8,
            self.iat,
            self.exp,
            self.seq,
            tuple(refs),
            self.signature,
        )


def make_delta(base: RevocationList, new: RevocationList) -> RevocationDelta:
    """The delta that turns `base` into the signed list `new`: anyone holding both can
    make it (it carries `new`'s signature)."""
    old = set(base.refs)
    now = set(new.refs)
    return RevocationDelta(
        new.issuer_alg,
        new.jurisdiction,
        new.kid8,
        base.seq,
        base.iat,
        digest(base.refs),
        new.iat,
        new.exp,
        new.seq,
        len(new.refs),
        tuple(sorted(now - old)),
        tuple(i for i, r in enumerate(base.refs) if r not in now),
        new.signature,
    )


def decode_delta(data: bytes) -> RevocationDelta:
    """A delta from its bytes; Malformed otherwise (nothing about its base is checked)."""
    if len(data) < HEAD_LEN + 2 * _SECTION.size + SIGNATURE_LEN:
        raise _bad(Field.LENGTH, f"{len(data)} bytes")
    (magic, version, alg, jur, kid8, base_seq, base_iat, base_digest, iat, exp, seq, count) = (
        _HEAD.unpack_from(data)
    )
    if magic != DELTA_MAGIC or version != 1:
        raise _bad(Field.VERSION, "not a revocation delta")
    try:
        issuer_alg = IssuerAlg(alg)
    except ValueError:
        raise _bad(Field.SUITES, f"issuer alg {alg}") from None
    jurisdiction = _region(jur, "jurisdiction")
    if not 0 < iat < exp or count > MAX_REVOKED:
        raise _bad(Field.TIMES, f"iat {iat}, exp {exp}, count {count}")
    values, at = rice_decode(data, HEAD_LEN, VALUE_SPACE)
    if len(data) < at + _SECTION.size:
        raise _bad(Field.LENGTH, "removed section missing")
    n_removed = _SECTION.unpack_from(data, at)[0]
    base_count = count - len(values) + n_removed
    positions, at = rice_decode(data, at, max(base_count, 1))
    if len(data) != at + SIGNATURE_LEN:
        raise _bad(Field.LENGTH, f"{len(data) - at} bytes where the signature is")
    return RevocationDelta(
        issuer_alg,
        jurisdiction,
        bytes(kid8),
        base_seq,
        base_iat,
        bytes(base_digest),
        iat,
        exp,
        seq,
        count,
        tuple(v.to_bytes(8, "big") for v in values),
        tuple(positions),
        bytes(data[at:]),
    )


def is_delta(data: bytes) -> bool:
    return data[:4] == DELTA_MAGIC


__all__ = [
    "DELTA_MAGIC",
    "Malformed",
    "RevocationDelta",
    "decode_delta",
    "digest",
    "is_delta",
    "make_delta",
]
