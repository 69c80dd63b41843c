"""SD-JWT (RFC 9901, draft-ietf-oauth-selective-disclosure-jwt) for e-licences.

What is implemented, exactly as the specification says:

- a Disclosure is the base64url encoding of the UTF-8 JSON array ``[salt, name, value]``;
  its digest is ``base64url(hash(ASCII(disclosure)))`` with the hash named by ``_sd_alg``
  (``sha-256`` by default; ``sm3`` is also understood, for an all-national-standard
  suite);
- the issuer-signed JWT carries the digests in a top-level ``_sd`` array (sorted, which
  hides the original order of the claims) and ``_sd_alg``;
- the compact form is ``<issuer-signed JWT>~<Disclosure>~...~<Disclosure>~``.

Scope: the issuer here makes only top-level claims selectively disclosable (a
licence's claims are flat), but verification follows RFC 9901 §7.1 in full:
``_sd`` arrays in nested objects, array elements ``{"...": digest}`` and their
two-element disclosures ``[salt, value]``, recursively — so licences from other
conformant issuers (the OpenWallet Foundation's `sd-jwt` adds decoys to nested
objects, for instance) verify too.

Key binding (KB-JWT, RFC 9901 §4.3): a compact SD-JWT whose last component is not
empty carries a KB-JWT, ``<issuer-signed JWT>~<Disclosure>~...~<KB-JWT>``. Parsing
splits it off (`ParsedSdJwt.kb_jwt`, and `sd_part`, the text its ``sd_hash`` covers);
`keybinding.py` checks it against the ``cnf`` key of the licence and the verifier's
policy. A presentation missing its final ``~`` reads as one whose KB-JWT is its last
disclosure, which then fails to parse as a JWS (MALFORMED).
"""

from __future__ import annotations

import binascii
import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tongban.crypto.signing import PrivateKey, b64u, sm3
from tongban.licences.jws import (
    ParsedJws,
    b64u_decode,
    dumps,
    loads,
    parse_compact,
    sign_compact,
)
from tongban.licences.rejection import LicenceRejected, RejectReason

#: Registered claims of SD-JWT VC that MUST NOT be selectively disclosable.
NEVER_DISCLOSABLE: frozenset[str] = frozenset(
    {"iss", "nbf", "exp", "cnf", "vct", "vct#integrity", "status", "_sd", "_sd_alg", "..."}
)
SD_ALGS: frozenset[str] = frozenset({"sha-256", "sm3"})
_CONTAINERS = (dict, list)
_SEQUENCES = (list, tuple)
SALT_BYTES = 16  # 128 bits, as RFC 9901 §9.3 recommends


@dataclass(slots=True)  # not frozen: frozen dataclasses are slow to build
class Disclosure:
    """One decoded disclosure and its digest (base64url) under the token's `_sd_alg`;
    `name` is None for an array-element disclosure ``[salt, value]``."""

    salt: str
    name: str | None
    value: Any
    encoded: str
    digest: str


@dataclass(slots=True)
class ParsedSdJwt:
    """An SD-JWT split into its issuer-signed JWT (unverified) and its disclosures."""

    jws: ParsedJws
    disclosures: list[Disclosure]
    issuer_jwt: str
    #: The key-binding JWT after the last '~', None when the presentation has none.
    kb_jwt: str | None = None
    #: Everything before the KB-JWT (issuer JWT, disclosures, the last '~'): what the
    #: KB-JWT's ``sd_hash`` is computed over.
    sd_part: str = ""


_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_sha256 = hashlib.sha256
_b2a = binascii.b2a_base64


def _hash_b64(sd_alg: str, encoded: str) -> str:
    data = encoded.encode("ascii")
    raw = _sha256(data).digest() if sd_alg == "sha-256" else sm3(data)
    # b64u() inlined: this runs once per disclosure on the verification hot path
    return _b2a(raw, newline=False).translate(_TO_URLSAFE).rstrip(b"=").decode("ascii")


def make_disclosure(name: str, value: Any, sd_alg: str = "sha-256") -> Disclosure:
    """A fresh disclosure of claim `name` with a 128-bit random salt."""
    salt = b64u(secrets.token_bytes(SALT_BYTES))
    encoded = b64u(dumps([salt, name, value]))
    return Disclosure(salt, name, value, encoded, _hash_b64(sd_alg, encoded))


def issue_sd_jwt(
    claims: dict[str, Any],
    disclosable: Iterable[str],
    key: PrivateKey,
    *,
    typ: str = "dc+sd-jwt",
    header_extra: dict[str, Any] | None = None,
    decoys: int = 0,
    sd_alg: str = "sha-256",
) -> str:
    """Sign `claims` as an SD-JWT; each claim named in `disclosable` (and present) becomes
    a top-level selectively disclosable claim, the others stay plain. `decoys` adds that
    many random digests that match no disclosure (hides how many claims there are).
    Returns the compact form with every disclosure, ending with ``~``."""
    if sd_alg not in SD_ALGS:
        raise ValueError(f"unsupported _sd_alg {sd_alg}")
    names = set(disclosable)
    forbidden = names & NEVER_DISCLOSABLE
    if forbidden:
        raise ValueError(f"claims that may not be selectively disclosable: {sorted(forbidden)}")
    payload: dict[str, Any] = {}
    disclosures: list[Disclosure] = []
    for name, value in claims.items():
        if name in names:
            disclosures.append(make_disclosure(name, value, sd_alg))
        else:
            payload[name] = value
    digests = [d.digest for d in disclosures]
    digests += [_hash_b64(sd_alg, b64u(secrets.token_bytes(SALT_BYTES))) for _ in range(decoys)]
    if digests:
        payload["_sd"] = sorted(digests)
        payload["_sd_alg"] = sd_alg
    header = {**(header_extra or {}), "typ": typ}
    jwt = sign_compact(header, payload, key)
    return jwt + "~" + "".join(d.encoded + "~" for d in disclosures)


def _split(compact: str) -> tuple[str, list[str], str]:
    """(issuer JWT, encoded disclosures, KB-JWT or "")."""
    if not isinstance(compact, str):
        raise LicenceRejected(RejectReason.MALFORMED, "SD-JWT is not a string")
    parts = compact.split("~")
    if len(parts) < 2:
        raise LicenceRejected(RejectReason.MALFORMED, "no '~': not an SD-JWT")
    encoded = parts[1:-1]
    if "" in encoded:
        raise LicenceRejected(RejectReason.MALFORMED, "empty disclosure")
    return parts[0], encoded, parts[-1]


def _decode_disclosure(encoded: str, sd_alg: str) -> Disclosure:
    try:
        value = loads(b64u_decode(encoded))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise LicenceRejected(RejectReason.MALFORMED, "disclosure is not base64url JSON") from exc
    size = len(value) if type(value) is list else 0
    if size == 3:
        salt, name, claim = value
        if type(name) is not str:
            raise LicenceRejected(RejectReason.MALFORMED, "disclosed claim name not a string")
    elif size == 2:
        salt, claim = value
        name = None
    else:
        raise LicenceRejected(RejectReason.MALFORMED, "disclosure is not [salt, (name,) value]")
    if type(salt) is not str:
        raise LicenceRejected(RejectReason.MALFORMED, "disclosure salt not a string")
    return Disclosure(salt, name, claim, encoded, _hash_b64(sd_alg, encoded))


def parse_sd_jwt(compact: str) -> ParsedSdJwt:
    """Split and decode an SD-JWT (nothing verified yet; a KB-JWT is split off, not
    parsed); LicenceRejected(MALFORMED) when it cannot be read or names an unknown
    `_sd_alg`."""
    jwt, encoded, kb = _split(compact)
    jws = parse_compact(jwt)
    sd_alg = jws.payload.get("_sd_alg", "sha-256")
    if not isinstance(sd_alg, str) or sd_alg not in SD_ALGS:
        raise LicenceRejected(RejectReason.MALFORMED, f"unknown _sd_alg {sd_alg!r}")
    return ParsedSdJwt(
        jws,
        [_decode_disclosure(e, sd_alg) for e in encoded],
        jwt,
        kb or None,
        compact[: len(compact) - len(kb)],
    )


class _Unpacker:
    """RFC 9901 §7.1 step 3: replace digests by the disclosed claims, recursively."""

    __slots__ = ("by_digest", "seen", "used", "forbidden")

    def __init__(self, disclosures: list[Disclosure], forbidden: frozenset[str]) -> None:
        self.by_digest: dict[str, Disclosure] = {}
        for d in disclosures:
            if d.digest in self.by_digest:
                raise LicenceRejected(RejectReason.TAMPERED_DISCLOSURE, "a disclosure is repeated")
            self.by_digest[d.digest] = d
        self.seen: set[str] = set()
        self.used: set[str] = set()
        self.forbidden = forbidden

    def _take(self, digest: Any) -> Disclosure | None:
        if not isinstance(digest, str):
            raise LicenceRejected(RejectReason.MALFORMED, "a digest is not a string")
        if digest in self.seen:
            raise LicenceRejected(RejectReason.MALFORMED, "a digest appears twice")
        self.seen.add(digest)
        d = self.by_digest.get(digest)
        if d is not None:
            self.used.add(digest)
        return d

    def value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return self.object(value, top=False)
        if isinstance(value, list):
            return self.array(value)
        return value

    def object(self, obj: dict[str, Any], *, top: bool) -> dict[str, Any]:
        sd = obj.get("_sd", ())
        if not isinstance(sd, _SEQUENCES):
            raise LicenceRejected(RejectReason.MALFORMED, "_sd is not an array")
        out = {
            k: (self.value(v) if isinstance(v, _CONTAINERS) else v)
            for k, v in obj.items()
            if k != "_sd" and not (top and k == "_sd_alg")
        }
        for digest in sd:
            d = self._take(digest)
            if d is None:
                continue  # a decoy, or a claim the holder did not disclose
            if d.name is None:
                raise LicenceRejected(
                    RejectReason.TAMPERED_DISCLOSURE, "array-element disclosure used for a claim"
                )
            if d.name == "_sd" or d.name == "..." or d.name in out:
                raise LicenceRejected(
                    RejectReason.TAMPERED_DISCLOSURE, f"disclosed claim {d.name!r} clashes"
                )
            if top and d.name in self.forbidden:
                raise LicenceRejected(
                    RejectReason.MALFORMED, f"claim {d.name!r} may not be selectively disclosed"
                )
            out[d.name] = self.value(d.value)
        return out

    def array(self, items: list[Any]) -> list[Any]:
        out = []
        for item in items:
            if isinstance(item, dict) and len(item) == 1 and "..." in item:
                d = self._take(item["..."])
                if d is None:
                    continue  # an element the holder did not disclose
                if d.name is not None:
                    raise LicenceRejected(
                        RejectReason.TAMPERED_DISCLOSURE, "claim disclosure used for an element"
                    )
                out.append(self.value(d.value))
            else:
                out.append(self.value(item))
        return out


def disclosed_claims(
    parsed: ParsedSdJwt, *, forbidden: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The plain claims of the payload plus the disclosed ones, `_sd`/`_sd_alg` removed
    (RFC 9901 §7.1, recursively through nested objects and arrays).

    Raises LicenceRejected(TAMPERED_DISCLOSURE) for a disclosure whose digest is nowhere
    in the payload, a disclosure given twice, or a disclosed name that is `_sd`, `...`,
    or a claim already present; MALFORMED for a bad `_sd`, a digest the issuer listed
    twice, or a top-level disclosed name in `forbidden`. The caller must have checked
    the issuer's signature first."""
    unpacker = _Unpacker(parsed.disclosures, forbidden)
    try:
        claims = unpacker.object(parsed.jws.payload, top=True)
    except RecursionError as exc:
        raise LicenceRejected(RejectReason.MALFORMED, "nested too deeply") from exc
    if len(unpacker.used) != len(unpacker.by_digest):
        raise LicenceRejected(
            RejectReason.TAMPERED_DISCLOSURE, "a disclosure matches no digest of the issuer"
        )
    return claims


def present(compact: str, disclose: Iterable[str]) -> str:
    """The holder's presentation: the issuer-signed JWT unchanged and only the
    disclosures of the claims named in `disclose` (names that this licence does not
    hold as disclosures are ignored: plain claims are always visible). Ends with ``~``:
    the holder's device appends a KB-JWT to it (keybinding.bind) when the licence is
    bound to that device."""
    jwt, encoded, _kb = _split(compact)
    parse_compact(jwt)  # refuse to present something that is not a JWS at all
    wanted = set(disclose)
    kept = [e for e in encoded if _decode_disclosure(e, "sha-256").name in wanted]
    # array-element and nested disclosures have no top-level name: presenting a
    # subset of them is not offered (licences issued here have none)
    return jwt + "~" + "".join(e + "~" for e in kept)
