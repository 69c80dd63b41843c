"""Trust distribution: each jurisdiction's issuer metadata (JWKS), the federation trust
list signed by the root key, and the TrustList this node verifies with.

Everything is derived from the `signing_key` rows (own and imported) and cached in the
process under a fingerprint of those rows: a rotation, withdrawal or import changes the
fingerprint, and the next request rebuilds."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.errors import NotFound
from tongban.kernel.node import settings_of
from tongban.keys import service as keys
from tongban.keys.models import SigningKey
from tongban.licences import domain
from tongban.licences.trustlist import TrustedIssuer, TrustList, key_entry, sign_trust_list
from tongban.regions.models import Jurisdiction

#: Seconds a signed trust list is valid; it is re-signed after half of it.
TRUST_LIST_LIFETIME = 24 * 3600

_lock = threading.Lock()


@dataclass
class _Cached:
    fingerprint: tuple[Any, ...]
    trust: TrustList
    token: str | None = None
    token_iat: int = 0


_cache: dict[str, _Cached] = {}


def _ts(value: Any) -> int | None:
    return int(value.timestamp()) if value is not None else None


def _rows(session: Session, purpose: str) -> list[SigningKey]:
    return keys.public_rows(session, purpose)


def _foreign_issuers(session: Session) -> dict[str, str]:
    """Issuer ids other nodes announced for the jurisdictions they issue for."""
    from tongban.licences.federation_models import ForeignIssuer

    return {f.jurisdiction_code: f.issuer for f in session.scalars(select(ForeignIssuer))}


def _fingerprint(
    public_url: str, rows: list[SigningKey], roots: list[SigningKey], foreign: dict[str, str]
) -> tuple[Any, ...]:
    return (
        public_url,
        tuple(sorted(foreign.items())),
        tuple(
            (r.kid, r.owner, _ts(r.not_before), _ts(r.retired_at), _ts(r.not_after))
            for r in [*rows, *roots]
        ),
    )


def key_window(row: SigningKey) -> tuple[int, int | None]:
    """(nbf, exp) of a licence key in the trust list: from its start to its retirement
    or withdrawal, whichever comes first (a licence signed in that window verifies)."""
    # Retirement is a rotation: the key signed nothing after it, so round its end up (a
    # licence signed in the same second as the rotation keeps verifying); a withdrawal
    # (compromise) rounds down.
    retired = math.ceil(row.retired_at.timestamp()) if row.retired_at is not None else None
    ends = [t for t in (retired, _ts(row.not_after)) if t is not None]
    nbf = _ts(row.not_before) or _ts(row.created_at) or 0
    return nbf, (min(ends) if ends else None)


def _issuers(session: Session, rows: list[SigningKey]) -> list[TrustedIssuer]:
    names = {j.code: j.name for j in session.scalars(select(Jurisdiction))}
    url = settings_of(session).public_url
    foreign = _foreign_issuers(session)
    by_owner: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        nbf, exp = key_window(row)
        by_owner.setdefault(row.owner, []).append(key_entry(keys.public_key(row), nbf=nbf, exp=exp))
    return [
        TrustedIssuer(
            foreign.get(code) or domain.issuer_id(url, code), code, names.get(code, code), entries
        )
        for code, entries in sorted(by_owner.items())
    ]


def _current(session: Session) -> _Cached:
    rows, roots = _rows(session, "licence"), _rows(session, "root")
    fp = _fingerprint(settings_of(session).public_url, rows, roots, _foreign_issuers(session))
    with _lock:
        cached = _cache.get("local")
        if cached is not None and cached.fingerprint == fp:
            return cached
    now = int(time.time())
    trust = TrustList(_issuers(session, rows), iat=now, exp=now + TRUST_LIST_LIFETIME)
    fresh = _Cached(fp, trust)
    with _lock:
        _cache["local"] = fresh
    return fresh


def invalidate() -> None:
    """Forget the cached trust list (tests; key changes are noticed by themselves)."""
    with _lock:
        _cache.clear()


def local_trust(session: Session) -> TrustList:
    """The TrustList of every licence key this node knows (own and imported)."""
    return _current(session).trust


def trust_list_token(session: Session) -> str:
    """The federation trust list as a JWS (`typ: trustlist+jwt`) signed by the root key,
    valid TRUST_LIST_LIFETIME seconds, re-signed after half of it or when a key changed."""
    cached = _current(session)
    now = int(time.time())
    if cached.token is not None and now < cached.token_iat + TRUST_LIST_LIFETIME // 2:
        return cached.token
    root, _row = keys.signing_key(session, "root", "federation")
    issuers = _issuers(session, _rows(session, "licence"))
    token = sign_trust_list(issuers, root, iat=now, exp=now + TRUST_LIST_LIFETIME)
    # Creating the root key on first use changed the fingerprint: cache under the new one.
    cached = _current(session)
    with _lock:
        cached.token, cached.token_iat = token, now
    return token


def root_keys(session: Session) -> list[dict[str, Any]]:
    """Public JWKs of the federation root keys (what a verifier pins)."""
    keys.signing_key(session, "root", "federation")
    return [keys.public_key(r).jwk() for r in _rows(session, "root")]


def issuer_metadata(session: Session, jurisdiction_code: str) -> dict[str, Any]:
    """SD-JWT VC issuer metadata of a jurisdiction: its issuer id and a JWKS of every
    licence key it has had (current and retired: retired keys still verify what they
    signed; the trust list gives each key's validity window)."""
    rows = keys.public_rows(session, "licence", jurisdiction_code)
    if not rows:
        if session.get(Jurisdiction, jurisdiction_code) is None:
            raise NotFound("签发方不存在", type="unknown-issuer")
        keys.signing_key(session, "licence", jurisdiction_code)
        rows = keys.public_rows(session, "licence", jurisdiction_code)
    jwks = []
    for row in rows:
        nbf, exp = key_window(row)
        extra = {"use": "sig"}
        jwk = keys.public_key(row).jwk(**extra)
        jwk["nbf"] = nbf  # type: ignore[assignment]
        if exp is not None:
            jwk["exp"] = exp  # type: ignore[assignment]
        jwks.append(jwk)
    return {
        "issuer": _foreign_issuers(session).get(jurisdiction_code)
        or domain.issuer_id(settings_of(session).public_url, jurisdiction_code),
        "jwks": {"keys": jwks},
    }
