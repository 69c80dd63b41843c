"""The revocation list of each jurisdiction whose cards live on this node: the
references of credentials that are still within their validity but must be refused
(their card is lost, replaced or cancelled, or another device of the holder superseded
them), signed by the jurisdiction's issuing key. Gates sync it; the other nodes receive
it as a published state (federation.py) and pass it on to their gates. Never commits."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from tongban.card import codec, domain, revdelta
from tongban.card.codec import IssuerAlg
from tongban.card.models import Card, CardCredential
from tongban.card.verifier import kid8
from tongban.crypto.signing import Alg, PrivateKey
from tongban.db import utcnow
from tongban.errors import NotFound
from tongban.exchange import service as exchange
from tongban.kernel import numbering
from tongban.keys import service as keys
from tongban.regions.models import Jurisdiction

#: How long a revocation list is valid: a gate needs a newer one within this time.
REVOCATIONS_LIFETIME = timedelta(hours=24)
#: The key purpose that signs credentials and revocation lists: the jurisdiction's
#: issuing key, which the federation trust list carries to every node and gate.
ISSUING_PURPOSE = "licence"


def issuer_alg_of(key: PrivateKey) -> IssuerAlg:
    return IssuerAlg.SM2 if key.alg is Alg.SM2 else IssuerAlg.ED25519


@dataclass(frozen=True)
class IssuingKey:
    """This node's key that signs for a jurisdiction's cards: the key, its kid, and the
    first second a signature of it may claim (the trust list's `nbf` of the key)."""

    key: PrivateKey
    kid: str
    not_before: int

    def issued_at(self, now: datetime) -> int:
        """`now` as the `iat` of something this key signs (never before the key)."""
        return max(int(now.timestamp()), self.not_before)


def issuing_key(session: Session, jurisdiction: str) -> IssuingKey:
    """This node's key that signs for `jurisdiction`'s cards (made on first use)."""
    if session.get(Jurisdiction, jurisdiction) is None or not exchange.serves_here(
        session, jurisdiction
    ):
        raise NotFound(f"本节点不为 {jurisdiction} 签发社保卡", type="unknown-issuer")
    key, row = keys.signing_key(session, ISSUING_PURPOSE, jurisdiction)
    start = row.not_before or row.created_at
    return IssuingKey(key, row.kid, math.ceil(start.timestamp()) if start else 0)


def revoked_refs(session: Session, jurisdiction: str, now: datetime) -> list[bytes]:
    """References of `jurisdiction`'s credentials that are still within their validity
    but must be refused: their card is lost, replaced or cancelled, or another device
    superseded them. Ascending."""
    rows = session.scalars(
        select(CardCredential.ref)
        .join(Card, Card.id == CardCredential.card_id)
        .where(
            Card.jurisdiction_code == jurisdiction,
            CardCredential.expires_at > now,
            or_(
                Card.state.in_([s.value for s in domain.REVOKED_STATUSES]),
                CardCredential.superseded_at.is_not(None),
            ),
        )
    )
    return sorted(bytes.fromhex(r) for r in rows)


def revoked_refs_at(session: Session, jurisdiction: str, at: int) -> list[bytes]:
    """The references a list signed at Unix second `at` held, as far as the database
    still says: credentials expiring after `at` whose device was superseded, or whose
    card was revoked, by then (a card's last change stands for its revocation; when it
    changed again since, the list comes out different and the gate gets a full list)."""
    moment = datetime.fromtimestamp(at + 1, UTC)
    rows = session.scalars(
        select(CardCredential.ref)
        .join(Card, Card.id == CardCredential.card_id)
        .where(
            Card.jurisdiction_code == jurisdiction,
            CardCredential.expires_at > datetime.fromtimestamp(at, UTC),
            or_(
                and_(
                    Card.state.in_([s.value for s in domain.REVOKED_STATUSES]),
                    Card.updated_at < moment,
                ),
                CardCredential.superseded_at < moment,
            ),
        )
    )
    return sorted(bytes.fromhex(r) for r in rows)


def revocations_seq(session: Session, jurisdiction: str) -> int:
    """How many times `jurisdiction`'s revocation list changed (its sequence)."""
    return numbering.peek(session, f"card.revocations:{jurisdiction}")


def revocation_list(
    session: Session, jurisdiction: str, *, now: datetime | None = None
) -> codec.RevocationList:
    """`jurisdiction`'s current revocation list, signed by its issuing key."""
    now = now or utcnow()
    signer = issuing_key(session, jurisdiction)
    key = signer.key
    unsigned = codec.RevocationList(
        issuer_alg=issuer_alg_of(key),
        jurisdiction=jurisdiction,
        kid8=kid8(signer.kid),
        iat=signer.issued_at(now),
        exp=int((now + REVOCATIONS_LIFETIME).timestamp()),
        seq=revocations_seq(session, jurisdiction),
        refs=tuple(revoked_refs(session, jurisdiction, now)),
    )
    return replace(unsigned, signature=key.sign(unsigned.signing_input()))


@dataclass(frozen=True)
class Served:
    """A revocation list this node serves to its gates."""

    jurisdiction: str
    own: bool
    seq: int
    count: int | None = None
    iat: datetime | None = None
    exp: datetime | None = None


def served(session: Session) -> list[Served]:
    """Every revocation list a gate syncing with this node gets: those of the
    jurisdictions this node serves that have cards (signed when fetched), then those
    received from the other nodes (as received)."""
    from tongban.card.models import ReceivedRevocations

    own_codes = sorted(
        c
        for c in session.scalars(select(Card.jurisdiction_code).distinct())
        if exchange.serves_here(session, c)
    )
    out = [Served(c, True, revocations_seq(session, c)) for c in own_codes]
    for row in session.scalars(
        select(ReceivedRevocations).order_by(ReceivedRevocations.jurisdiction_code)
    ):
        if row.jurisdiction_code not in own_codes:
            out.append(Served(row.jurisdiction_code, False, row.seq, row.count, row.iat, row.exp))
    return out


def list_bytes(session: Session, jurisdiction: str) -> bytes:
    """The signed revocation list of `jurisdiction` for a gate: this node's own, signed
    now, or the one received from the jurisdiction's node. NotFound otherwise."""
    if exchange.serves_here(session, jurisdiction):
        return revocation_list(session, jurisdiction).to_bytes()
    return _received(session, jurisdiction)


def _received(session: Session, jurisdiction: str) -> bytes:
    from tongban.card.models import ReceivedRevocations

    row = session.get(ReceivedRevocations, jurisdiction)
    if row is None:
        raise NotFound(f"本节点没有 {jurisdiction} 的吊销名单", type="unknown-revocation-list")
    return bytes(row.data)


@dataclass(frozen=True)
class Since:
    """The list a gate holds: its sequence, when it was signed, its references' digest."""

    seq: int
    iat: int
    digest: bytes


def list_or_delta(session: Session, jurisdiction: str, since: Since | None) -> bytes:
    """What a gate holding `since` gets for `jurisdiction`: a delta (revdelta.py) onto it
    when this node signs the jurisdiction's list and can tell what the held one contained;
    the full signed list otherwise (no list held, the held one older than a list's
    lifetime, the sequence restarted, the database no longer agrees with the held
    digest). For another node's jurisdiction, a delta between the list the gate holds,
    if this node still keeps it, and the newest received (_relayed_delta)."""
    if since is None:
        return list_bytes(session, jurisdiction)
    if not exchange.serves_here(session, jurisdiction):
        return _relayed_delta(session, jurisdiction, since)
    now = utcnow()
    new = revocation_list(session, jurisdiction, now=now)
    if (
        since.seq > new.seq
        or since.iat > new.iat
        or new.iat - since.iat > REVOCATIONS_LIFETIME.total_seconds()
    ):
        return new.to_bytes()
    base_refs = revoked_refs_at(session, jurisdiction, since.iat)
    if revdelta.digest(base_refs) != since.digest:
        return new.to_bytes()
    base = replace(new, iat=since.iat, seq=since.seq, refs=tuple(base_refs))
    delta = revdelta.make_delta(base, new).to_bytes()
    full = new.to_bytes()
    return delta if len(delta) < len(full) else full


def _relayed_delta(session: Session, jurisdiction: str, since: Since) -> bytes:
    """A delta from the list of another node's jurisdiction a gate holds — the newest
    received, or one kept from the last day (ReceivedRevocationsVersion) — onto the
    newest; the newest in full when the held one is not kept here or differs. The delta
    carries the issuer's signature of the newest list: this node signs nothing."""
    from tongban.card.models import ReceivedRevocations, ReceivedRevocationsVersion

    current = _received(session, jurisdiction)
    row = session.get(ReceivedRevocations, jurisdiction)
    assert row is not None  # _received raised NotFound otherwise
    if since.seq == row.seq and since.iat == int(row.iat.timestamp()):
        held = current
    else:
        version = session.get(ReceivedRevocationsVersion, (jurisdiction, since.seq, since.iat))
        if version is None:
            return current
        held = bytes(version.data)
    try:
        base = codec.decode_revocations(held)
        new = codec.decode_revocations(current)
    except codec.Malformed:
        return current
    if revdelta.digest(base.refs) != since.digest or base.iat > new.iat:
        return current
    delta = revdelta.make_delta(base, new).to_bytes()
    return delta if len(delta) < len(current) else current
