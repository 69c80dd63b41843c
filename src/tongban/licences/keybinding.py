"""Holder binding of a licence presentation: SD-JWT key binding (RFC 9901 §4.3, the
KB-JWT) against the device key the licence names in ``cnf.jwk`` (RFC 7800, SD-JWT VC).

Without it a presentation is a bearer token: whoever copies the QR text can show it.
With it the holder's device signs, for each showing, a short JWT

    header  {"typ": "kb+jwt", "alg": "ES256" | "EdDSA"}
    payload {"iat", "aud", "nonce", "sd_hash"}

where ``sd_hash`` is base64url(hash(the presentation up to and including its last
``~``)) under the licence's ``_sd_alg``, so the KB-JWT covers exactly the disclosures
shown. Two modes, the verifier's choice:

- **nonce**: the verifier shows a fresh challenge (核验码), the holder's device signs it;
  a copy made for another verifier (another nonce) is refused;
- **time window** (offline, no channel back to the holder): the verifier gives no
  nonce; ``iat`` must lie within ``window`` seconds; a copy is replayable only that long.

Pure: no database, no settings (`BindingPolicy` says what the verifier wants).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

from tongban.crypto.signing import (
    ES256,
    Alg,
    HolderPublicKey,
    KeyError_,
    P256PrivateKey,
    PrivateKey,
    b64u,
    holder_alg,
    holder_key_from_jwk,
)
from tongban.licences import sdjwt
from tongban.licences.jws import dumps, parse_compact
from tongban.licences.rejection import LicenceRejected, RejectReason

KB_TYP = "kb+jwt"
KB_ALGS: frozenset[str] = frozenset({ES256, Alg.EDDSA.value})
#: `aud` of a KB-JWT made for whichever verifier (the offline, time-window mode).
ANY_VERIFIER = "urn:tongban:verifier:any"
DEFAULT_WINDOW = 300
#: The verifier's challenge: 8 characters without look-alikes (0/O, 1/I/L), easy to
#: read off a screen and type; about 40 bits, fresh for every verification.
NONCE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
NONCE_LENGTH = 8
MAX_NONCE = 200


def new_nonce() -> str:
    """A fresh verifier challenge (核验码)."""
    return "".join(secrets.choice(NONCE_ALPHABET) for _ in range(NONCE_LENGTH))


def normalise_nonce(value: str | None) -> str | None:
    """A nonce as typed (blanks removed); None when empty."""
    text = "".join((value or "").split())
    return text[:MAX_NONCE] or None


@dataclass(frozen=True, slots=True)
class BindingPolicy:
    """What a verifier asks of a presentation's holder binding."""

    #: Refuse a presentation without a valid KB-JWT.
    required: bool = False
    #: The verifier's challenge; None means the time-window mode (no nonce checked).
    nonce: str | None = None
    #: `aud` values accepted (this verifier's ids and, unless removed, ANY_VERIFIER).
    audiences: frozenset[str] = field(default_factory=lambda: frozenset({ANY_VERIFIER}))
    #: How old a KB-JWT's `iat` may be, in seconds.
    window: int = DEFAULT_WINDOW
    #: Clock difference accepted for an `iat` in the future, in seconds.
    leeway: int = 60


def sd_hash(sd_part: str, sd_alg: str = "sha-256") -> str:
    """base64url(hash(`sd_part`)): the presentation up to and including its last '~'."""
    return sdjwt._hash_b64(sd_alg, sd_part)


def bind(
    presentation: str,
    key: P256PrivateKey | PrivateKey,
    *,
    nonce: str,
    aud: str = ANY_VERIFIER,
    iat: int,
    sd_alg: str = "sha-256",
    header_extra: dict[str, Any] | None = None,
    payload_extra: dict[str, Any] | None = None,
) -> str:
    """`presentation` (ending with '~') with a KB-JWT by the holder's `key` appended, as
    a holder's device makes it (the browser wallet does the same in JavaScript)."""
    if not presentation.endswith("~"):
        raise ValueError("a presentation ends with '~' before its KB-JWT")
    alg = key.alg_name if isinstance(key, P256PrivateKey) else key.alg.value
    header = {"typ": KB_TYP, "alg": alg, **(header_extra or {})}
    payload = {
        "iat": iat,
        "aud": aud,
        "nonce": nonce,
        "sd_hash": sd_hash(presentation, sd_alg),
        **(payload_extra or {}),
    }
    signing_input = b64u(dumps(header)) + "." + b64u(dumps(payload))
    signature = key.sign(signing_input.encode("ascii"))
    return presentation + signing_input + "." + b64u(signature)


def holder_key(payload: dict[str, Any]) -> HolderPublicKey | None:
    """The device key a licence's payload names in ``cnf.jwk``; None without ``cnf``;
    LicenceRejected(MALFORMED) for a ``cnf`` that is not a usable JWK."""
    cnf = payload.get("cnf")
    if cnf is None:
        return None
    jwk = cnf.get("jwk") if isinstance(cnf, dict) else None
    if not isinstance(jwk, dict):
        raise LicenceRejected(RejectReason.MALFORMED, "cnf without jwk")
    try:
        return holder_key_from_jwk(jwk)
    except KeyError_ as exc:
        raise LicenceRejected(RejectReason.MALFORMED, f"cnf.jwk unusable: {exc}") from exc


def check(parsed: sdjwt.ParsedSdJwt, policy: BindingPolicy, *, now: int) -> bool:
    """Check the holder binding of a presentation whose issuer signature and disclosures
    were verified. True: a KB-JWT by the licence's ``cnf`` key verified; False: no KB-JWT
    and the policy accepts an unbound presentation. Otherwise LicenceRejected:

    - KEY_BINDING_MISSING — binding required, the licence is bound, no KB-JWT;
    - NOT_HOLDER_BOUND — binding required (or a KB-JWT given) but the licence has no
      ``cnf``: it cannot be bound;
    - MALFORMED — the KB-JWT or ``cnf`` cannot be read, wrong ``typ``, claims missing;
    - KEY_BINDING_BAD_SIGNATURE — not signed by the ``cnf`` key (another device, a
      forged or altered KB-JWT);
    - KEY_BINDING_STALE — ``iat`` older than the window, or in the future;
    - KEY_BINDING_AUDIENCE_MISMATCH — ``aud`` is not this verifier;
    - KEY_BINDING_NONCE_MISMATCH — ``nonce`` is not the verifier's challenge;
    - KEY_BINDING_SD_HASH_MISMATCH — the KB-JWT was made for other disclosures.

    A KB-JWT that is present is always checked, even when not required: a verifier never
    says nothing about a binding it was shown."""
    payload = parsed.jws.payload
    if parsed.kb_jwt is None:
        if not policy.required:
            return False  # a cnf this verifier cannot read does not matter then
        if payload.get("cnf") is None:
            raise LicenceRejected(
                RejectReason.NOT_HOLDER_BOUND, "binding required; the licence has no cnf"
            )
        raise LicenceRejected(RejectReason.KEY_BINDING_MISSING, "binding required; no KB-JWT")
    kb = parse_compact(parsed.kb_jwt, KB_ALGS)
    if kb.header.get("typ") != KB_TYP:
        raise LicenceRejected(RejectReason.MALFORMED, "KB-JWT typ is not kb+jwt")
    key = holder_key(payload)
    if key is None:
        raise LicenceRejected(RejectReason.NOT_HOLDER_BOUND, "a KB-JWT, but no cnf to check it")
    if kb.header["alg"] != holder_alg(key) or not key.verify(kb.signing_input, kb.signature):
        raise LicenceRejected(
            RejectReason.KEY_BINDING_BAD_SIGNATURE, "KB-JWT not signed by the cnf key"
        )
    claims = kb.payload
    iat, aud, nonce, digest = (claims.get(n) for n in ("iat", "aud", "nonce", "sd_hash"))
    if type(iat) is not int or not all(isinstance(v, str) for v in (aud, nonce, digest)):
        raise LicenceRejected(
            RejectReason.MALFORMED, "KB-JWT needs iat (integer), aud, nonce and sd_hash"
        )
    assert isinstance(aud, str) and isinstance(nonce, str) and isinstance(digest, str)
    if iat > now + policy.leeway or iat < now - policy.window:
        raise LicenceRejected(
            RejectReason.KEY_BINDING_STALE, f"KB-JWT iat {iat} outside {policy.window}s of now"
        )
    if aud not in policy.audiences:
        raise LicenceRejected(
            RejectReason.KEY_BINDING_AUDIENCE_MISMATCH, f"KB-JWT aud {aud!r} is not this verifier"
        )
    if policy.nonce is not None and not hmac.compare_digest(
        nonce.encode("utf-8"), policy.nonce.encode("utf-8")
    ):
        raise LicenceRejected(
            RejectReason.KEY_BINDING_NONCE_MISMATCH, "KB-JWT nonce is not this verifier's"
        )
    sd_alg = payload.get("_sd_alg", "sha-256")
    if not hmac.compare_digest(digest.encode("utf-8"), sd_hash(parsed.sd_part, sd_alg).encode()):
        raise LicenceRejected(
            RejectReason.KEY_BINDING_SD_HASH_MISMATCH, "KB-JWT sd_hash does not match"
        )
    return True
