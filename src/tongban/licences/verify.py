"""Verifying an e-licence (an SD-JWT VC presentation) — typed failures, one order.

Order of the checks (the first failure is the reason given):

1. parse — the compact SD-JWT, its JWS and every disclosure decode; header ``typ`` is
   ``dc+sd-jwt`` (``vc+sd-jwt`` accepted, the earlier name); header ``kid`` and payload
   ``iss`` (string), ``iat`` (integer), ``vct`` (string) present; ``nbf``/``exp``
   integers when present; ``status`` well formed when present  → MALFORMED
2. issuer — ``(iss, kid)`` in the trust list and the key usable at ``iat``
   → UNKNOWN_ISSUER
3. signature — by that key, with the header's ``alg`` equal to the key's → BAD_SIGNATURE
4. disclosures — RFC 9901 §7.1 processing (recursive): each disclosure's digest in the
   payload, none repeated, no clash → TAMPERED_DISCLOSURE (a disclosed SD-JWT VC
   registered claim such as ``exp`` at the top level → MALFORMED)
5. time — ``iat`` or ``nbf`` later than now + leeway → NOT_YET_VALID; ``exp`` at or
   before now − leeway → EXPIRED. ``exp`` is OPTIONAL: some licences (degree
   certificates, birth certificates) have no end of validity; a licence that must end
   carries ``exp`` and one that must stop early is revoked through its status list.
6. status — through ``status.status_list {idx, uri}``: 1 → REVOKED, 2 → SUSPENDED, any
   other non-zero value → REVOKED (fail closed); a source that cannot answer
   → STATUS_UNAVAILABLE. With ``statuses=None`` (an offline check) or a licence without
   a ``status`` claim, no status is checked and ``status`` is -1 ("unchecked").
7. holder binding — the KB-JWT against ``cnf.jwk`` and the verifier's `BindingPolicy`
   (keybinding.py): KEY_BINDING_MISSING, NOT_HOLDER_BOUND, KEY_BINDING_BAD_SIGNATURE,
   KEY_BINDING_STALE, KEY_BINDING_AUDIENCE_MISMATCH, KEY_BINDING_NONCE_MISMATCH,
   KEY_BINDING_SD_HASH_MISMATCH (MALFORMED for an unreadable KB-JWT). Last, so that a
   revoked licence is reported as revoked whoever shows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from typing_extensions import TypeIs

from tongban.licences import keybinding, sdjwt
from tongban.licences.keybinding import BindingPolicy
from tongban.licences.rejection import LicenceRejected, RejectReason
from tongban.licences.trustlist import TrustList


class StatusSource(Protocol):
    def status_of(self, uri: str, idx: int) -> int:
        """The status of entry `idx` of status list `uri`; raises
        LicenceRejected(STATUS_UNAVAILABLE) when it cannot answer."""
        ...


UNCHECKED = -1
TYPS: frozenset[str] = frozenset({"dc+sd-jwt", "vc+sd-jwt"})
#: Claims kept out of VerifiedLicence.claims.
TECHNICAL: frozenset[str] = frozenset({"_sd", "_sd_alg", "cnf", "status"})
#: SD-JWT VC registered claims a disclosure may not carry.
_NOT_DISCLOSABLE: frozenset[str] = frozenset(
    {"iss", "nbf", "exp", "cnf", "vct", "vct#integrity", "status", "iat"}
)


@dataclass(slots=True)
class VerifiedLicence:
    issuer: str
    jurisdiction: str
    kid: str
    vct: str
    licence_id: str | None
    iat: int
    nbf: int | None
    exp: int | None
    status: int
    claims: dict[str, Any]
    disclosed: tuple[str, ...] = ()
    #: True when a KB-JWT by the licence's `cnf` key was verified (holder binding).
    holder_bound: bool = False


def _int(value: Any) -> TypeIs[int]:
    return type(value) is int


def _malformed(detail: str) -> LicenceRejected:
    return LicenceRejected(RejectReason.MALFORMED, detail)


def status_reference(payload: dict[str, Any]) -> tuple[str, int] | None:
    """``(uri, idx)`` of the payload's ``status.status_list``; None when absent;
    LicenceRejected(MALFORMED) when malformed."""
    status = payload.get("status")
    if status is None:
        return None
    ref = status.get("status_list") if isinstance(status, dict) else None
    if not isinstance(ref, dict):
        raise _malformed("status claim without status_list")
    uri, idx = ref.get("uri"), ref.get("idx")
    if not isinstance(uri, str) or not uri or not _int(idx) or idx < 0:
        raise _malformed("status_list needs uri and a non-negative idx")
    return uri, idx


def verify_licence(
    compact: str,
    trust: TrustList,
    statuses: StatusSource | None,
    *,
    now: int,
    leeway: int = 60,
    binding: BindingPolicy | None = None,
) -> VerifiedLicence:
    """Verify a licence presentation (compact SD-JWT VC, with or without a KB-JWT) in the
    order of the module docstring; returns what it proves or raises LicenceRejected with
    the reason. `binding` None accepts an unbound presentation (and still checks a
    KB-JWT that is present)."""
    # 1. parse
    parsed = sdjwt.parse_sd_jwt(compact)
    header, payload = parsed.jws.header, parsed.jws.payload
    typ = header.get("typ")
    if not isinstance(typ, str) or typ not in TYPS:
        raise _malformed("typ is not dc+sd-jwt")
    kid, iss, iat, vct = (
        header.get("kid"),
        payload.get("iss"),
        payload.get("iat"),
        payload.get("vct"),
    )
    if not isinstance(kid, str) or not isinstance(iss, str) or not isinstance(vct, str):
        raise _malformed("kid, iss and vct are required strings")
    if not _int(iat):
        raise _malformed("iat is a required integer")
    nbf, exp = payload.get("nbf"), payload.get("exp")
    if (nbf is not None and not _int(nbf)) or (exp is not None and not _int(exp)):
        raise _malformed("nbf and exp must be integers")
    ref = status_reference(payload)
    # 2. issuer and key
    key = trust.key_for(iss, kid, iat)
    if key is None:
        raise LicenceRejected(RejectReason.UNKNOWN_ISSUER, f"{iss} / {kid} not trusted at iat")
    # 3. signature
    if not parsed.jws.verify_with(key):
        raise LicenceRejected(RejectReason.BAD_SIGNATURE, "issuer signature does not verify")
    # 4. disclosures
    claims = sdjwt.disclosed_claims(parsed, forbidden=_NOT_DISCLOSABLE)
    # 5. time
    if iat > now + leeway or (nbf is not None and nbf > now + leeway):
        raise LicenceRejected(RejectReason.NOT_YET_VALID, "licence not yet valid")
    if exp is not None and exp <= now - leeway:
        raise LicenceRejected(RejectReason.EXPIRED, "licence expired")
    # 6. status
    status = UNCHECKED
    if statuses is not None and ref is not None:
        status = statuses.status_of(ref[0], ref[1])
        if status == 2:
            raise LicenceRejected(RejectReason.SUSPENDED, "licence suspended")
        if status != 0:
            raise LicenceRejected(RejectReason.REVOKED, f"licence status {status}")
    # 7. holder binding
    bound = keybinding.check(parsed, binding or BindingPolicy(), now=now)
    issuer = trust.issuer(iss)
    licence_id = claims.get("licence_id")
    for name in TECHNICAL:
        claims.pop(name, None)
    return VerifiedLicence(
        issuer=iss,
        jurisdiction=issuer.jurisdiction if issuer is not None else "",
        kid=kid,
        vct=vct,
        licence_id=licence_id if isinstance(licence_id, str) else None,
        iat=iat,
        nbf=nbf,
        exp=exp,
        status=status,
        claims=claims,
        disclosed=tuple(d.name for d in parsed.disclosures if d.name is not None),
        holder_bound=bound,
    )
