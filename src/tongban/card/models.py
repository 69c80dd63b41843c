"""ORM tables of the card context: cards and their history (the kernel's EventRow, in the
audit chain), the short-lived credentials a holder's node issued to their devices, the
revocation lists received from the other nodes, and the uses of codes at gates."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Integer, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tongban.db import Base, UTCDateTime, new_id, utcnow
from tongban.kernel.history import EventRow, HasHistory, Versioned


class Card(Base, HasHistory["CardEvent"], Versioned):
    """One social-security card (社会保障卡) of a holder. It lives on the node of its
    jurisdiction (the holder's); other nodes learn only the pseudonymous references of
    its credentials once it is lost, replaced or cancelled (the revocation set)."""

    __tablename__ = "card"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    #: The issuing city, an 8-digit sequence and a Luhn digit (domain.card_number).
    number: Mapped[str] = mapped_column(String(20), unique=True)
    jurisdiction_code: Mapped[str] = mapped_column(ForeignKey("jurisdiction.code"), index=True)
    city_code: Mapped[str] = mapped_column(ForeignKey("city.code"), index=True)
    holder_account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("account.id"), index=True
    )
    #: The holder's citizen ID number (社会保障号码 is the ID number).
    holder_id_number: Mapped[str] = mapped_column(String(18), index=True)
    holder_name: Mapped[str] = mapped_column(String(80))
    #: For the age band a credential carries; never put in a code.
    birth_date: Mapped[date | None] = mapped_column(Date)
    #: domain.Concession bits.
    concessions: Mapped[int] = mapped_column(Integer, default=0)
    #: domain.Generation: 2 or 3.
    generation: Mapped[int] = mapped_column(Integer, default=3)
    #: The transport function (交通联合).
    transport: Mapped[bool] = mapped_column(Boolean, default=True)
    #: domain.CardStatus.
    state: Mapped[str] = mapped_column(String(12), default="normal", index=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The card this one replaced (补换), if any.
    replaces_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("card.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    events: Mapped[list[CardEvent]] = relationship(
        back_populates="card", order_by="CardEvent.seq", cascade="all, delete-orphan"
    )


class CardEvent(Base, EventRow):
    """Append-only history of a card: issued, reported lost, found, replaced, cancelled,
    a device enrolled (kernel EventRow: numbered per card, each one in the audit chain)."""

    __tablename__ = "card_event"
    __history_key__ = "card_id"
    __audit_kind__ = "card.event"
    __audit_subject__ = ("card", "card_id")
    card_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("card.id"), index=True)
    card: Mapped[Card] = relationship(back_populates="events")


class CardCredential(Base):
    """A short-lived credential the card's node signed for one device key of the holder
    (codec.Credential): the device signs every dynamic code with that key. `ref` is the
    pseudonymous reference the credential carries instead of the card number: random,
    fresh for every credential, so gates cannot link one day's codes to another's. A
    credential of a card that is no longer normal, or superseded by another device's, is
    in the revocation set until it expires."""

    __tablename__ = "card_credential"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    card_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("card.id"), index=True)
    #: 8 random bytes, as 16 lowercase hex characters.
    ref: Mapped[str] = mapped_column(String(16), unique=True)
    #: RFC 7638 thumbprint of the device's public key, its JOSE alg and public JWK.
    device_kid: Mapped[str] = mapped_column(String(64), index=True)
    device_alg: Mapped[str] = mapped_column(String(10))
    device_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: Kid and alg of the issuing (jurisdiction's) key.
    issuer_kid: Mapped[str] = mapped_column(String(64))
    issuer_alg: Mapped[str] = mapped_column(String(10))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    #: Another device took over, or the holder withdrew this one: refused from then on.
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The account that enrolled the device (the holder, or a clerk's kiosk).
    enrolled_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("account.id"))


class ReceivedRevocations(Base):
    """The newest revocation list of another node's jurisdiction (federation.py), as
    received and verified: passed on unchanged to this node's gates."""

    __tablename__ = "card_revocations_received"
    jurisdiction_code: Mapped[str] = mapped_column(
        ForeignKey("jurisdiction.code"), primary_key=True
    )
    #: The signed list (codec.RevocationList bytes).
    data: Mapped[bytes] = mapped_column(LargeBinary)
    seq: Mapped[int] = mapped_column(Integer)
    count: Mapped[int] = mapped_column(Integer)
    iat: Mapped[datetime] = mapped_column(UTCDateTime)
    exp: Mapped[datetime] = mapped_column(UTCDateTime)
    source_node: Mapped[str | None] = mapped_column(String(40))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReceivedRevocationsVersion(Base):
    """A revocation list of another node's jurisdiction received in the last day, kept
    after a newer one replaced it: a gate may hold it, and gets a delta onto it
    (revocations.list_or_delta). Pruned when a newer list arrives."""

    __tablename__ = "card_revocations_received_version"
    jurisdiction_code: Mapped[str] = mapped_column(
        ForeignKey("jurisdiction.code"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Unix seconds, as in the list (a gate names the list it holds by them).
    iat: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CardUse(Base):
    """A code shown at a gate or venue: admitted or refused, why, and the benefit rule
    that applied. A gate keeps it and uploads it later under its own id (store and
    forward: the upload is idempotent); the gate's node keeps it and forwards it to the
    node of the card's jurisdiction, which links it to the card (its holder's 用卡记录).
    The gate learns no card number: `card_ref` is the credential's reference."""

    __tablename__ = "card_use"
    #: Made by the gate: the same record uploaded twice is stored once.
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    gate_id: Mapped[str] = mapped_column(String(64), index=True)
    venue_code: Mapped[str] = mapped_column(String(60), index=True)
    venue_name: Mapped[str] = mapped_column(String(120))
    venue_city: Mapped[str] = mapped_column(String(6))
    #: The jurisdiction and reference of the credential shown (None: unreadable code).
    card_jurisdiction: Mapped[str | None] = mapped_column(String(6), index=True)
    #: The holder's city, as the credential said (None: unreadable code, or a gate
    #: older than this column).
    card_city: Mapped[str | None] = mapped_column(String(6))
    card_ref: Mapped[str | None] = mapped_column(String(16), index=True)
    #: On the card's own node: the card the reference belongs to.
    card_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("card.id"), index=True)
    used_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    #: When the device made the code (Unix seconds): with `card_ref`, what a replay is.
    code_time: Mapped[int | None] = mapped_column(Integer)
    admitted: Mapped[bool] = mapped_column(Boolean)
    #: verifier.Refusal of a refused code.
    reason: Mapped[str | None] = mapped_column(String(20))
    #: The benefit rule that decided, and the benefit and why, in Chinese.
    rule: Mapped[str | None] = mapped_column(String(80))
    benefit: Mapped[str | None] = mapped_column(String(120))
    why: Mapped[str | None] = mapped_column(String(300))
    #: Admitted by a gate whose sync was stale (policy "admit and flag").
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CardGate(Base):
    """A gate or venue device allowed to upload its uses to this node: registered by the
    node's operator with the public half of a key the gate made (Ed25519); every upload
    is signed with it (gateauth.py)."""

    __tablename__ = "card_gate"
    gate_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    venue_code: Mapped[str] = mapped_column(String(60), index=True)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    registered_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("account.id"))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class VenueStaff(Base):
    """Which venue a venue staff account (identity Role.VENUE) scans codes for: granted
    by the node's administrator (`tongban card grant-venue`), or by the demo loader. An
    account may serve several venues; it scans for none it was not granted."""

    __tablename__ = "card_venue_staff"
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id"), primary_key=True)
    #: A venue of data/venues.json.
    venue_code: Mapped[str] = mapped_column(String(60), primary_key=True)
    granted_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("account.id"))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
