"""The issuing keys a card credential or revocation list may be signed with: those of the
federation trust list (the one e-licences use: each jurisdiction's issuing keys with
their validity windows, signed by the federation root), as the verifier indexes them."""

from __future__ import annotations

from tongban.card.verifier import IssuerKey
from tongban.licences import service as licences


def issuer_keys(trust: licences.TrustList) -> list[IssuerKey]:
    """Every key of a verified trust list, with its jurisdiction and window."""
    out = []
    for issuer in trust.issuers:
        for entry in issuer.keys:
            kid = entry.get("kid")
            key = trust.trusted_key(issuer.iss, kid) if isinstance(kid, str) else None
            if key is None:
                continue
            out.append(
                IssuerKey(issuer.jurisdiction, key.kid, key.public, key.nbf, key.exp, key.revoked)
            )
    return out
