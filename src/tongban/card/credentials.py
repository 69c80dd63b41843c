"""Device credentials and revocation lists, on the card's own node. Never commits.

A holder's device (the code page, a kiosk, `tongban card enrol`) registers the public
half of a key it made; the node answers with a credential (codec.Credential) binding
that key to what a gate needs of the holder for 24 hours, signed by the jurisdiction's
issuing key — the key its e-licences are signed with, which the federation trust list
already carries to every node and gate, used here under its own domain-separation
prefix (codec.CREDENTIAL_PREFIX). The device then signs every code itself: the node
signs once a day per device, not once per code.

A new device supersedes the holder's other devices (their credentials are revoked); a
card that is lost, replaced or cancelled revokes every credential of it. The
jurisdiction's revocation list carries the references of such credentials while they
are still within their validity."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.card import codec, devicekeys, domain
from tongban.card.cards import current_card
from tongban.card.domain import CardAction, CardStatus
from tongban.card.federation import revocations_changed
from tongban.card.models import Card, CardCredential
from tongban.card.revocations import issuer_alg_of, issuing_key
from tongban.card.verifier import kid8
from tongban.db import utcnow
from tongban.errors import Conflict, ValidationFailed
from tongban.identity.models import Account
from tongban.kernel import history
from tongban.localtime import local_date

#: How long a credential lets a device make codes offline.
CREDENTIAL_LIFETIME = timedelta(hours=24)


class CardNotUsable(Conflict):
    type = "card-not-usable"


@dataclass(frozen=True)
class Issued:
    """A credential just issued: its row, its bytes and the card it is for."""

    row: CardCredential
    data: bytes
    card: Card
    credential: codec.Credential


def _bad_key(message: str) -> ValidationFailed:
    return ValidationFailed(message, errors=[{"field": "jwk", "message": message}])


def _live(session: Session, card: Card, now: datetime) -> list[CardCredential]:
    return list(
        session.scalars(
            select(CardCredential).where(
                CardCredential.card_id == card.id,
                CardCredential.superseded_at.is_(None),
                CardCredential.expires_at > now,
            )
        )
    )


def enrol(session: Session, user: Account, jwk: Any, *, now: datetime | None = None) -> Issued:
    """A credential for the holder's current card and the device key `jwk` (public JWK:
    P-256 or Ed25519). A key the card has not seen before is recorded as an event and
    supersedes the credentials of the card's other devices; the same key again (the
    daily renewal) just gets a fresh credential. Raises ValidationFailed (`jwk`),
    CardNotUsable (409: no card, or not normal)."""
    now = now or utcnow()
    card = current_card(session, user)
    if card is None:
        raise CardNotUsable("您名下没有社保卡，请到窗口申领")
    if card.state != CardStatus.NORMAL.value:
        label = domain.STATUS_LABELS[CardStatus(card.state)]
        raise CardNotUsable(f"社保卡当前状态为“{label}”，不能生成电子社保卡码")
    try:
        alg, raw, device_kid, public = devicekeys.from_jwk(jwk)
    except devicekeys.BadDeviceKey:
        raise _bad_key("设备公钥无效（须为 P-256 或 Ed25519 公钥，且不得包含私钥）") from None
    seen = session.scalar(
        select(CardCredential.id)
        .where(CardCredential.card_id == card.id, CardCredential.device_kid == device_kid)
        .limit(1)
    )
    if seen is None:
        superseded = [c for c in _live(session, card, now) if c.device_kid != device_kid]
        for old in superseded:
            old.superseded_at = now
        if superseded:
            revocations_changed(session, card.jurisdiction_code)
        history.record(
            session,
            card,
            CardAction.ENROL,
            user,
            card.state,
            card.state,
            "",
            {
                "device": device_kid,
                "alg": codec.DEVICE_ALG_NAMES[alg],
                "superseded": len(superseded),
            },
        )
    return issue_credential(session, card, alg, raw, device_kid, public, user, now=now)


def issue_credential(
    session: Session,
    card: Card,
    alg: codec.DeviceAlg,
    raw: bytes,
    device_kid: str,
    public: dict[str, str],
    enrolled_by: Account | None,
    *,
    now: datetime,
) -> Issued:
    """Sign and store a credential of `card` for a device key."""
    signer = issuing_key(session, card.jurisdiction_code)
    key, kid = signer.key, signer.kid
    iat = signer.issued_at(now)
    exp = iat + int(CREDENTIAL_LIFETIME.total_seconds())
    ref = secrets.token_bytes(8)
    unsigned = codec.Credential(
        issuer_alg=issuer_alg_of(key),
        device_alg=alg,
        jurisdiction=card.jurisdiction_code,
        city=card.city_code,
        kid8=kid8(kid),
        ref=ref,
        age_band=domain.age_band(card.birth_date, local_date(now)),
        concessions=card.concessions,
        status=CardStatus(card.state),
        transport=card.transport,
        generation=card.generation,
        iat=iat,
        exp=exp,
        device_key=raw,
    )
    signature = key.sign(unsigned.signing_input())
    credential = replace(unsigned, signature=signature)
    row = CardCredential(
        card_id=card.id,
        ref=ref.hex(),
        device_kid=device_kid,
        device_alg=codec.DEVICE_ALG_NAMES[alg],
        device_jwk=public,
        issuer_kid=kid,
        issuer_alg=key.alg.value,
        issued_at=datetime.fromtimestamp(iat, UTC),
        expires_at=datetime.fromtimestamp(exp, UTC),
        enrolled_by=enrolled_by.id if enrolled_by is not None else None,
    )
    session.add(row)
    session.flush()
    return Issued(row, credential.to_bytes(), card, credential)
