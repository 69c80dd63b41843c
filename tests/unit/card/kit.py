"""A small issuer and device kit for the card tests: credentials and codes made the way
the node and the page make them, with keys the test controls."""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Any

from tongban.card import codec
from tongban.card.codec import Credential, DeviceAlg, IssuerAlg
from tongban.card.device import Device
from tongban.card.domain import AgeBand, CardStatus
from tongban.card.verifier import IssuerKey, MemoryReplay, Policy, Verifier, index_keys, kid8
from tongban.crypto.signing import Alg, PrivateKey, generate

NOW = 1_780_000_000  # 2026-05-28


def issuer(alg: str = "EdDSA") -> PrivateKey:
    return generate(Alg(alg))


def issuer_key(key: PrivateKey, jurisdiction: str = "320000", **kw: Any) -> IssuerKey:
    return IssuerKey(
        jurisdiction, key.kid, key.public(), kw.pop("nbf", 0), kw.pop("exp", None), **kw
    )


def credential(
    key: PrivateKey,
    device: Device,
    *,
    jurisdiction: str = "320000",
    city: str = "320100",
    iat: int = NOW - 3600,
    exp: int | None = None,
    **fields: Any,
) -> bytes:
    """A credential signed by `key` for `device` (fields override the defaults)."""
    unsigned = Credential(
        issuer_alg=IssuerAlg.SM2 if key.alg is Alg.SM2 else IssuerAlg.ED25519,
        device_alg=device.alg,
        jurisdiction=jurisdiction,
        city=city,
        kid8=kid8(key.kid),
        ref=fields.pop("ref", secrets.token_bytes(8)),
        age_band=fields.pop("age_band", AgeBand.AGE_70_PLUS),
        concessions=fields.pop("concessions", 0),
        status=fields.pop("status", CardStatus.NORMAL),
        transport=fields.pop("transport", True),
        generation=fields.pop("generation", 3),
        iat=iat,
        exp=exp if exp is not None else iat + 24 * 3600,
        device_key=device.public_raw(),
    )
    unsigned = replace(unsigned, **fields)
    return replace(unsigned, signature=key.sign(unsigned.signing_input())).to_bytes()


def enrolled(key: PrivateKey, alg: str = "ES256", **kw: Any) -> Device:
    device = Device.generate(alg)
    device.credential = credential(key, device, **kw)
    return device


def verifier(
    *keys: IssuerKey, revoked: dict[str, frozenset[bytes]] | None = None, **kw: Any
) -> Verifier:
    if revoked is None:  # an empty list for every issuer's jurisdiction (it synced them)
        revoked = {k.jurisdiction: frozenset() for k in keys}
    return Verifier(
        index_keys(keys),
        revoked,
        synced_at=kw.pop("synced_at", NOW - 60),
        policy=kw.pop("policy", Policy()),
        replay=kw.pop("replay", MemoryReplay()),
        **kw,
    )


__all__ = ["DeviceAlg", "codec"]
