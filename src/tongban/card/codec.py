"""The dynamic code's binary format (docs/card-format.md): a credential the holder's node
signs for a device key, and a code the device signs with that key every 30 s.

Hand-packed fixed fields rather than CBOR/COSE: every field has a fixed size and place,
so a code is ~200 bytes (a CBOR map with COSE headers would add 30–50 bytes of keys and
tags for nothing a gate reads), a hostile input is refused by its length before any
field is read, and the browser builds it with a DataView — no CBOR library to vendor.

Pure: no database, no web. Signatures are made and checked by the caller (verifier.py,
credentials.py, device.py) over `credential_signing_input` / `code_signing_input`,
each with its own domain-separation prefix (a NUL byte inside, so neither can ever be a
JWS signing input, which is ASCII text).

Credential (132 bytes with an Ed25519 device key, 133 with P-256)::

    0   1  version            0xC1
    1   1  suites             issuer alg << 4 | device alg   (1 Ed25519 / 2 SM2; 1 P-256 / 2 Ed25519)
    2   3  jurisdiction       uint24, GB/T 2260 (the issuer's = the holder's)
    5   3  city               uint24, GB/T 2260 (the holder's card city)
    8   8  issuer key id      the first 8 bytes of the key's RFC 7638 thumbprint
    16  8  card reference     random per credential (pseudonymous)
    24  1  age band           domain.AgeBand
    25  1  concessions        domain.Concession bits
    26  1  card status        0 normal (1 lost, 2 replaced, 3 cancelled: never issued)
    27  1  card flags         bit 0 transport function; bits 4-7 generation (2 or 3)
    28  4  issued at          uint32, Unix seconds
    32  4  expires at         uint32, Unix seconds
    36  33 device public key  P-256 compressed point (or 32 bytes Ed25519)
    69  64 issuer signature   over "tongban/card/credential/1\\0" || bytes 0..68

Code = credential || uint32 time (Unix seconds) || 64-byte device signature over
"tongban/card/code/1\\0" || credential || time. 200 bytes (201 with P-256); in a QR code
it is the text "TBC1:" + base45(code) (RFC 9285; QR alphanumeric mode), 305 characters.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum, StrEnum

from tongban.card.domain import CONCESSION_MASK, AgeBand, CardStatus, Generation

VERSION = 0xC1
CREDENTIAL_PREFIX = b"tongban/card/credential/1\x00"
CODE_PREFIX = b"tongban/card/code/1\x00"
QR_PREFIX = "TBC1:"
SIGNATURE_LEN = 64
HEAD_LEN = 36
TIME_LEN = 4

#: A credential's longest validity a gate accepts (the node issues 24 h).
MAX_LIFETIME = 7 * 24 * 3600


class IssuerAlg(IntEnum):
    """The issuing node's suite (tongban.crypto.signing.Alg)."""

    ED25519 = 1
    SM2 = 2


class DeviceAlg(IntEnum):
    """The device key's suite: what WebCrypto offers."""

    P256 = 1
    ED25519 = 2


ISSUER_ALG_NAMES = {IssuerAlg.ED25519: "EdDSA", IssuerAlg.SM2: "SM2"}
DEVICE_ALG_NAMES = {DeviceAlg.P256: "ES256", DeviceAlg.ED25519: "EdDSA"}
DEVICE_KEY_LEN = {DeviceAlg.P256: 33, DeviceAlg.ED25519: 32}

STATUS_CODES = {
    CardStatus.NORMAL: 0,
    CardStatus.LOST: 1,
    CardStatus.REPLACED: 2,
    CardStatus.CANCELLED: 3,
}
_STATUS_OF = {v: k for k, v in STATUS_CODES.items()}

_HEAD = struct.Struct(">BB3s3s8s8sBBBBII")
assert _HEAD.size == HEAD_LEN


class Malformed(ValueError):
    """Bytes that are not a credential or code of this format (the reason says what)."""


class Field(StrEnum):
    """What a malformed input got wrong (for tests and logs)."""

    LENGTH = "length"
    VERSION = "version"
    SUITES = "suites"
    REGION = "region"
    AGE_BAND = "age_band"
    CONCESSIONS = "concessions"
    STATUS = "status"
    FLAGS = "flags"
    TIMES = "times"
    DEVICE_KEY = "device_key"
    TEXT = "text"


def _bad(field: Field, detail: str) -> Malformed:
    err = Malformed(f"{field}: {detail}")
    err.field = field  # type: ignore[attr-defined]
    return err


def _region(raw: bytes, what: str) -> str:
    value = int.from_bytes(raw, "big")
    if not 110000 <= value <= 829999:
        raise _bad(Field.REGION, f"{what} {value} is not a GB/T 2260 code")
    return f"{value:06d}"


@dataclass(frozen=True, slots=True)
class Credential:
    """What the holder's node signed for one device key (see the module docstring)."""

    issuer_alg: IssuerAlg
    device_alg: DeviceAlg
    jurisdiction: str
    city: str
    kid8: bytes
    ref: bytes
    age_band: AgeBand
    concessions: int
    status: CardStatus
    transport: bool
    generation: int
    iat: int
    exp: int
    device_key: bytes
    signature: bytes = b""

    def body(self) -> bytes:
        """Bytes 0 .. the device key: what the issuer signs (after the prefix)."""
        flags = (int(self.transport) & 1) | ((self.generation & 0x0F) << 4)
        head = _HEAD.pack(
            VERSION,
            (int(self.issuer_alg) << 4) | int(self.device_alg),
            int(self.jurisdiction).to_bytes(3, "big"),
            int(self.city).to_bytes(3, "big"),
            self.kid8,
            self.ref,
            int(self.age_band),
            self.concessions,
            STATUS_CODES[self.status],
            flags,
            self.iat,
            self.exp,
        )
        return head + self.device_key

    def signing_input(self) -> bytes:
        return CREDENTIAL_PREFIX + self.body()

    def to_bytes(self) -> bytes:
        if len(self.signature) != SIGNATURE_LEN:
            raise ValueError("an unsigned credential has no wire form")
        return self.body() + self.signature


def credential_length(device_alg: DeviceAlg) -> int:
    return HEAD_LEN + DEVICE_KEY_LEN[device_alg] + SIGNATURE_LEN


def _device_alg(suites: int) -> tuple[IssuerAlg, DeviceAlg]:
    try:
        return IssuerAlg(suites >> 4), DeviceAlg(suites & 0x0F)
    except ValueError:
        raise _bad(Field.SUITES, f"unknown suites byte {suites:#04x}") from None


_GENERATIONS = frozenset(int(g) for g in Generation)


def decode_credential(data: bytes) -> Credential:
    """A credential from its bytes (exactly: nothing before or after); Malformed when
    any field is outside the format. Signatures are not checked here."""
    if len(data) < 2:
        raise _bad(Field.LENGTH, f"{len(data)} bytes")
    if data[0] != VERSION:
        raise _bad(Field.VERSION, f"version byte {data[0]:#04x}")
    issuer_alg, device_alg = _device_alg(data[1])
    if len(data) != credential_length(device_alg):
        raise _bad(Field.LENGTH, f"{len(data)} bytes, not {credential_length(device_alg)}")
    (_v, _s, jur, city, kid8, ref, band, concessions, status, flags, iat, exp) = _HEAD.unpack_from(
        data
    )
    jurisdiction = _region(jur, "jurisdiction")
    if not jurisdiction.endswith("0000"):
        raise _bad(Field.REGION, f"jurisdiction {jurisdiction} is not province-level")
    city_code = _region(city, "city")
    if city_code[:2] != jurisdiction[:2]:
        raise _bad(Field.REGION, f"city {city_code} is not in {jurisdiction}")
    try:
        age_band = AgeBand(band)
    except ValueError:
        raise _bad(Field.AGE_BAND, f"{band}") from None
    if concessions & ~CONCESSION_MASK:
        raise _bad(Field.CONCESSIONS, f"unknown bits {concessions:#04x}")
    if status not in _STATUS_OF:
        raise _bad(Field.STATUS, f"{status}")
    generation = flags >> 4
    if flags & 0x0E or generation not in _GENERATIONS:
        raise _bad(Field.FLAGS, f"{flags:#04x}")
    if not (0 < iat < exp and exp - iat <= MAX_LIFETIME):
        raise _bad(Field.TIMES, f"iat {iat}, exp {exp}")
    key_end = HEAD_LEN + DEVICE_KEY_LEN[device_alg]
    device_key = bytes(data[HEAD_LEN:key_end])
    if device_alg is DeviceAlg.P256 and device_key[0] not in (2, 3):
        raise _bad(Field.DEVICE_KEY, "not a compressed P-256 point")
    return Credential(
        issuer_alg=issuer_alg,
        device_alg=device_alg,
        jurisdiction=jurisdiction,
        city=city_code,
        kid8=bytes(kid8),
        ref=bytes(ref),
        age_band=age_band,
        concessions=concessions,
        status=_STATUS_OF[status],
        transport=bool(flags & 1),
        generation=generation,
        iat=iat,
        exp=exp,
        device_key=device_key,
        signature=bytes(data[key_end:]),
    )


@dataclass(frozen=True, slots=True)
class Code:
    """A dynamic code: a credential, the time the device made the code, its signature."""

    credential: Credential
    credential_bytes: bytes
    time: int
    signature: bytes = b""

    def signing_input(self) -> bytes:
        return code_signing_input(self.credential_bytes, self.time)

    def to_bytes(self) -> bytes:
        if len(self.signature) != SIGNATURE_LEN:
            raise ValueError("an unsigned code has no wire form")
        return self.credential_bytes + self.time.to_bytes(TIME_LEN, "big") + self.signature


def code_signing_input(credential: bytes, time: int) -> bytes:
    """What the device signs for a code made at `time` with `credential`."""
    return CODE_PREFIX + credential + time.to_bytes(TIME_LEN, "big")


def decode_code(data: bytes) -> Code:
    """A code from its bytes; Malformed otherwise (signatures are not checked here)."""
    if len(data) < 2:
        raise _bad(Field.LENGTH, f"{len(data)} bytes")
    _issuer, device_alg = _device_alg(data[1]) if data[0] == VERSION else (None, None)
    if device_alg is None:
        raise _bad(Field.VERSION, f"version byte {data[0]:#04x}")
    n = credential_length(device_alg)
    if len(data) != n + TIME_LEN + SIGNATURE_LEN:
        raise _bad(Field.LENGTH, f"{len(data)} bytes, not {n + TIME_LEN + SIGNATURE_LEN}")
    credential_bytes = bytes(data[:n])
    credential = decode_credential(credential_bytes)
    time = int.from_bytes(data[n : n + TIME_LEN], "big")
    return Code(credential, credential_bytes, time, bytes(data[n + TIME_LEN :]))


# --- the QR text: base45 (RFC 9285) ------------------------------------------------------

B45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_B45_VALUE = {c: i for i, c in enumerate(B45)}
#: bytes.translate table: a base45 character's byte to its value, anything else to 0xFF.
_B45_DIGITS = bytes(_B45_VALUE.get(chr(b), 0xFF) for b in range(256))


def b45encode(data: bytes) -> str:
    """RFC 9285 base45: two bytes -> three characters, a last byte -> two."""
    out = []
    for i in range(0, len(data) - 1, 2):
        n = data[i] * 256 + data[i + 1]
        c, n = n % 45, n // 45
        d, e = n % 45, n // 45
        out.append(B45[c] + B45[d] + B45[e])
    if len(data) % 2:
        n = data[-1]
        out.append(B45[n % 45] + B45[n // 45])
    return "".join(out)


def b45decode(text: str) -> bytes:
    """Strict RFC 9285 decoding; ValueError on a character outside the alphabet, a
    length of 3n+1, or a group whose value does not fit (not canonical)."""
    size = len(text)
    if size % 3 == 1:
        raise ValueError("base45 length")
    # Each character to its value in C (`translate`); a gate decodes every code it sees,
    # and a loop over the groups in Python cost a tenth of a code's two signatures.
    digits = text.encode("ascii").translate(_B45_DIGITS)  # UnicodeEncodeError: a ValueError
    if 0xFF in digits:
        raise ValueError("not base45")
    n = size // 3
    full = 3 * n
    # The groups side by side in one integer, 24 bits each (a group is below 45**3, so
    # none carries into the next): value = c + 45 d + 2025 e for every group at once.
    lanes = []
    for k in range(3):
        lane = bytearray(full)
        lane[2::3] = digits[k:full:3]
        lanes.append(int.from_bytes(lane, "big"))
    spread = (lanes[0] + 45 * lanes[1] + 2025 * lanes[2]).to_bytes(full, "big")
    if spread[0::3].strip(b"\x00"):
        raise ValueError("base45 group out of range")
    out = bytearray(2 * n)
    out[0::2] = spread[1::3]
    out[1::2] = spread[2::3]
    if size > full:
        last = digits[full] + 45 * digits[full + 1]
        if last > 0xFF:
            raise ValueError("base45 group out of range")
        out.append(last)
    return bytes(out)


#: The longest QR text read (a code is 305 characters): anything longer is refused
#: before it is decoded.
MAX_TEXT = 400


def to_qr_text(code: bytes) -> str:
    return QR_PREFIX + b45encode(code)


def from_qr_text(text: str) -> bytes:
    """The code bytes of a scanned QR text; Malformed when it is not one."""
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise _bad(Field.TEXT, "not a code's text")
    text = text.strip()
    if not text.startswith(QR_PREFIX):
        raise _bad(Field.TEXT, f"does not start with {QR_PREFIX}")
    try:
        return b45decode(text[len(QR_PREFIX) :])
    except ValueError as e:
        raise _bad(Field.TEXT, str(e)) from None


# --- the revocation list of a jurisdiction ------------------------------------------------
#
#     0   4  magic      "TBRV"
#     4   1  version    1
#     5   1  issuer alg IssuerAlg
#     6   3  jurisdiction uint24
#     9   8  issuer key id (8 bytes of the thumbprint)
#     17  4  issued at  uint32
#     21  4  expires at uint32
#     25  4  sequence   uint32 (the jurisdiction's counter: newer lists have higher ones)
#     29  4  count      uint32
#     33  8n references, ascending, each once
#     ..  64 signature  over "tongban/card/revocations/1\0" || everything before it
#
# The references of the credentials of its cards that are lost, replaced or cancelled
# (or whose device was superseded) while the credential is still within its validity:
# after that a gate refuses the credential as expired anyway, so the list stays small.

REVOCATIONS_MAGIC = b"TBRV"
REVOCATIONS_PREFIX = b"tongban/card/revocations/1\x00"
_REV_HEAD = struct.Struct(">4sBB3s8sIIII")
REV_HEAD_LEN = _REV_HEAD.size
#: The most references a list may carry (a zip bomb of a list is refused by length).
MAX_REVOKED = 20_000_000


@dataclass(frozen=True, slots=True)
class RevocationList:
    issuer_alg: IssuerAlg
    jurisdiction: str
    kid8: bytes
    iat: int
    exp: int
    seq: int
    refs: tuple[bytes, ...]
    signature: bytes = b""

    def body(self) -> bytes:
        head = _REV_HEAD.pack(
            REVOCATIONS_MAGIC,
            1,
            int(self.issuer_alg),
            int(self.jurisdiction).to_bytes(3, "big"),
            self.kid8,
            self.iat,
            self.exp,
            self.seq,
            len(self.refs),
        )
        return head + b"".join(self.refs)

    def signing_input(self) -> bytes:
        return REVOCATIONS_PREFIX + self.body()

    def to_bytes(self) -> bytes:
        if len(self.signature) != SIGNATURE_LEN:
            raise ValueError("an unsigned revocation list has no wire form")
        return self.body() + self.signature


def decode_revocations(data: bytes) -> RevocationList:
    """A revocation list from its bytes; Malformed otherwise (signature not checked)."""
    if len(data) < REV_HEAD_LEN + SIGNATURE_LEN:
        raise _bad(Field.LENGTH, f"{len(data)} bytes")
    magic, version, alg, jur, kid8, iat, exp, seq, count = _REV_HEAD.unpack_from(data)
    if magic != REVOCATIONS_MAGIC or version != 1:
        raise _bad(Field.VERSION, "not a revocation list")
    if count > MAX_REVOKED or len(data) != REV_HEAD_LEN + 8 * count + SIGNATURE_LEN:
        raise _bad(Field.LENGTH, f"{len(data)} bytes for {count} references")
    try:
        issuer_alg = IssuerAlg(alg)
    except ValueError:
        raise _bad(Field.SUITES, f"issuer alg {alg}") from None
    jurisdiction = _region(jur, "jurisdiction")
    if not 0 < iat < exp:
        raise _bad(Field.TIMES, f"iat {iat}, exp {exp}")
    end = REV_HEAD_LEN + 8 * count
    refs = tuple(bytes(data[i : i + 8]) for i in range(REV_HEAD_LEN, end, 8))
    if any(a >= b for a, b in zip(refs, refs[1:], strict=False)):
        raise _bad(Field.LENGTH, "references not ascending and unique")
    return RevocationList(issuer_alg, jurisdiction, bytes(kid8), iat, exp, seq, refs, data[end:])
