"""The federation trust list: which issuers exist and which keys each may sign with.

A trust list is a JWS (header ``typ: trustlist+jwt``) signed by a federation root key,
with the payload::

    {"iss": "federation", "iat": 1700000000, "exp": 1700086400,
     "issuers": [{"iss": "https://js.example/licences", "jurisdiction": "320000",
                  "name": "江苏省", "keys": [{<public JWK>, "kid", "alg", "nbf": int,
                                              "exp": int (optional), "revoked": bool
                                              (optional)}]}]}

A key is usable for a token whose ``iat`` lies in ``[nbf, exp)``: rotating to a new key
sets the old key's ``exp`` to the rotation time, so licences it signed earlier still
verify while anything it "signs" later does not; withdrawing a key does the same at the
withdrawal time. ``iat`` is asserted by the signer, so a *stolen* key could back-date
tokens: such a key is marked ``revoked: true`` and then verifies nothing at all (and
the licences it signed are revoked through their status lists and re-issued).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from typing_extensions import TypeIs

from tongban.crypto.signing import KeyError_, PrivateKey, PublicKey, public_from_jwk
from tongban.licences.jws import parse_compact, sign_compact
from tongban.licences.rejection import LicenceRejected, RejectReason

TYP = "trustlist+jwt"
FEDERATION = "federation"
_KEY_MEMBERS = ("nbf", "exp", "revoked")


def key_entry(
    public: PublicKey, *, nbf: int, exp: int | None = None, revoked: bool = False
) -> dict[str, Any]:
    """The trust-list entry of a public key: its JWK with kid, alg, nbf, exp, revoked."""
    entry: dict[str, Any] = {**public.jwk(), "nbf": nbf}
    if exp is not None:
        entry["exp"] = exp
    if revoked:
        entry["revoked"] = True
    return entry


@dataclass(frozen=True)
class TrustedIssuer:
    """An issuing jurisdiction: its id (a URL), GB/T 2260 code, Chinese name and keys
    (trust-list entries as made by `key_entry`)."""

    iss: str
    jurisdiction: str
    name: str
    keys: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "iss": self.iss,
            "jurisdiction": self.jurisdiction,
            "name": self.name,
            "keys": [dict(k) for k in self.keys],
        }


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """A key of the list, its PublicKey built once."""

    iss: str
    kid: str
    public: PublicKey
    nbf: int
    exp: int | None
    revoked: bool

    def usable_at(self, at: int) -> bool:
        return not self.revoked and self.nbf <= at and (self.exp is None or at < self.exp)


def _int(value: Any) -> TypeIs[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _malformed(detail: str) -> LicenceRejected:
    return LicenceRejected(RejectReason.MALFORMED, f"trust list: {detail}")


def _read_key(iss: str, entry: Any) -> TrustedKey:
    if not isinstance(entry, dict):
        raise _malformed("key entry is not an object")
    jwk = {k: v for k, v in entry.items() if k not in _KEY_MEMBERS}
    try:
        public = public_from_jwk(jwk)
    except KeyError_ as exc:
        raise _malformed(f"bad key of {iss}: {exc}") from exc
    if entry.get("kid") != public.kid or entry.get("alg") != public.alg.value:
        raise _malformed(f"kid/alg of a key of {iss} do not match the key")
    nbf, exp, revoked = entry.get("nbf"), entry.get("exp"), entry.get("revoked", False)
    if not _int(nbf) or (exp is not None and not _int(exp)) or not isinstance(revoked, bool):
        raise _malformed(f"nbf/exp/revoked of key {public.kid}")
    return TrustedKey(iss, public.kid, public, nbf, exp, revoked)


class TrustList:
    """A verified trust list, indexed for O(1) key look-ups."""

    __slots__ = ("iat", "exp", "issuers", "_by_iss", "_keys")

    def __init__(self, issuers: Iterable[TrustedIssuer], *, iat: int, exp: int) -> None:
        self.iat = iat
        self.exp = exp
        self.issuers: list[TrustedIssuer] = list(issuers)
        self._by_iss: dict[str, TrustedIssuer] = {}
        self._keys: dict[tuple[str, str], TrustedKey] = {}
        for issuer in self.issuers:
            if not isinstance(issuer.iss, str) or not issuer.iss:
                raise _malformed("issuer without iss")
            if issuer.iss in self._by_iss:
                raise _malformed(f"issuer {issuer.iss} listed twice")
            self._by_iss[issuer.iss] = issuer
            for entry in issuer.keys:
                key = _read_key(issuer.iss, entry)
                if (issuer.iss, key.kid) in self._keys:
                    raise _malformed(f"key {key.kid} listed twice for {issuer.iss}")
                self._keys[(issuer.iss, key.kid)] = key

    def key_for(self, iss: str, kid: str, at: int) -> PublicKey | None:
        """The key `kid` of issuer `iss` if it may have signed a token issued at `at`."""
        key = self._keys.get((iss, kid))
        if key is None or not key.usable_at(at):
            return None
        return key.public

    def trusted_key(self, iss: str, kid: str) -> TrustedKey | None:
        """The entry of key `kid` of `iss`, whatever its validity period."""
        return self._keys.get((iss, kid))

    def issuer(self, iss: str) -> TrustedIssuer | None:
        return self._by_iss.get(iss)

    def issuer_of_jurisdiction(self, jurisdiction: str) -> TrustedIssuer | None:
        for issuer in self.issuers:
            if issuer.jurisdiction == jurisdiction:
                return issuer
        return None

    def to_json(self) -> str:
        """For a cache: the verified content (NOT the signature; cache only lists that
        `verify_trust_list` returned, and re-verify the token when it is refreshed)."""
        return json.dumps(
            {"iat": self.iat, "exp": self.exp, "issuers": [i.to_dict() for i in self.issuers]},
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> TrustList:
        data = json.loads(text)
        return cls(_read_issuers(data.get("issuers")), iat=data["iat"], exp=data["exp"])


def _read_issuers(raw: Any) -> list[TrustedIssuer]:
    if not isinstance(raw, list):
        raise _malformed("issuers is not an array")
    out = []
    for item in raw:
        if not isinstance(item, dict):
            raise _malformed("issuer is not an object")
        iss, jur, name, keys = (item.get(k) for k in ("iss", "jurisdiction", "name", "keys"))
        if not all(isinstance(v, str) for v in (iss, jur, name)) or not isinstance(keys, list):
            raise _malformed("issuer needs iss, jurisdiction, name, keys")
        out.append(TrustedIssuer(iss, jur, name, keys))  # type: ignore[arg-type]
    return out


def sign_trust_list(issuers: list[TrustedIssuer], root: PrivateKey, *, iat: int, exp: int) -> str:
    """The trust list as a JWS signed by the federation `root` key."""
    TrustList(issuers, iat=iat, exp=exp)  # refuse to sign a list that would not load
    payload = {
        "iss": FEDERATION,
        "iat": iat,
        "exp": exp,
        "issuers": [i.to_dict() for i in issuers],
    }
    return sign_compact({"typ": TYP}, payload, root)


def verify_trust_list(
    token: str, roots: Iterable[PublicKey], *, now: int, leeway: int = 60
) -> TrustList:
    """Check a trust list against the federation root keys and load it.

    Raises LicenceRejected: MALFORMED (not a trust list), UNKNOWN_ISSUER (signed by no
    root we know), BAD_SIGNATURE, NOT_YET_VALID, EXPIRED."""
    jws = parse_compact(token)
    if jws.header.get("typ") != TYP:
        raise _malformed(f"typ is not {TYP}")
    kid = jws.header.get("kid")
    root = next((r for r in roots if r.kid == kid), None)
    if root is None:
        raise LicenceRejected(RejectReason.UNKNOWN_ISSUER, "trust list signed by an unknown root")
    if not jws.verify_with(root):
        raise LicenceRejected(RejectReason.BAD_SIGNATURE, "trust list signature")
    p = jws.payload
    iat, exp = p.get("iat"), p.get("exp")
    if p.get("iss") != FEDERATION or not _int(iat) or not _int(exp):
        raise _malformed("iss, iat, exp")
    if iat > now + leeway:
        raise LicenceRejected(RejectReason.NOT_YET_VALID, "trust list issued in the future")
    if exp <= now:
        raise LicenceRejected(RejectReason.EXPIRED, "trust list expired")
    return TrustList(_read_issuers(p.get("issuers")), iat=iat, exp=exp)
