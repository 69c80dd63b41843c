"""ORM tables of this context: issued licences, their append-only events, the status
lists this node publishes (or has fetched), serial counters and the use of a licence in
place of a material (免提交)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tongban.db import Base, UTCDateTime, new_id, utcnow
from tongban.kernel.history import EventRow, HasHistory


class Licence(Base, HasHistory["LicenceEvent"]):
    """One issued e-licence (电子证照). The signed SD-JWT VC is kept for the holder's
    wallet; its status travels in the jurisdiction's status list at (`status_list`,
    `status_index`). Its history is `events` (numbered by the kernel); every UPDATE
    checks `row_version` (the kernel's version guard under another name: `version` is
    the GB/T 36904 identifier's version)."""

    __tablename__ = "licence"
    __table_args__ = (UniqueConstraint("jurisdiction_code", "status_list", "status_index"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    #: GB/T 36904 identifier 1.2.156.3005.2.<type>.<issuer>.<serial>.<version>.<check>
    identifier: Mapped[str] = mapped_column(String(120), unique=True)
    type_code: Mapped[str] = mapped_column(String(40), index=True)
    #: resident | enterprise
    holder_type: Mapped[str] = mapped_column(String(20))
    #: ID number or unified social credit code of the holder.
    holder_identifier: Mapped[str] = mapped_column(String(18), index=True)
    holder_name: Mapped[str] = mapped_column(String(120))
    holder_account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("account.id"), index=True
    )
    jurisdiction_code: Mapped[str] = mapped_column(ForeignKey("jurisdiction.code"), index=True)
    authority_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("authority.id"), index=True)
    authority_name: Mapped[str] = mapped_column(String(80))
    #: The issuer's 18-character credit code used in the identifier.
    issuer_code: Mapped[str] = mapped_column(String(18))
    serial: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, default=1)
    claims: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: valid | suspended | revoked
    status: Mapped[str] = mapped_column(String(12), default="valid", index=True)
    status_list: Mapped[int] = mapped_column(Integer)
    status_index: Mapped[int] = mapped_column(Integer)
    status_uri: Mapped[str] = mapped_column(String(300))
    #: The issued SD-JWT VC (compact, every disclosure included).
    compact: Mapped[str] = mapped_column(Text)
    kid: Mapped[str] = mapped_column(String(64))
    alg: Mapped[str] = mapped_column(String(10))
    #: Thumbprint of the holder's device key in the licence's `cnf.jwk` (HolderKey);
    #: None for a bearer licence (no holder binding).
    cnf_kid: Mapped[str | None] = mapped_column(String(64))
    #: The case whose delivery produced it, if any.
    case_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("service_case.id"), index=True)
    #: direct | case | bulk | demo
    source: Mapped[str] = mapped_column(String(10), default="direct")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    row_version: Mapped[int] = mapped_column(Integer, nullable=False, default=1, server_default="1")
    __mapper_args__ = {"version_id_col": row_version}

    events: Mapped[list[LicenceEvent]] = relationship(
        back_populates="licence", order_by="LicenceEvent.seq", cascade="all, delete-orphan"
    )


class LicenceEvent(Base, EventRow):
    """Append-only history of a licence: issued, suspended, reinstated, revoked, re-bound
    (kernel EventRow: unique (licence_id, seq), each one in the audit chain). The
    columns keep their names of before the kernel (from_status, to_status, reason)."""

    __tablename__ = "licence_event"
    __history_key__ = "licence_id"
    __audit_kind__ = "licence.event"
    __audit_subject__ = ("licence", "licence_id")
    licence_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("licence.id"), index=True)
    action: Mapped[str] = mapped_column(String(20))
    from_state: Mapped[str | None] = mapped_column("from_status", String(12))
    to_state: Mapped[str] = mapped_column("to_status", String(12))
    comment: Mapped[str] = mapped_column("reason", Text, default="")

    licence: Mapped[Licence] = relationship(back_populates="events")

    # The names the API (EventPublic) and the pages use.
    @property
    def from_status(self) -> str | None:
        return self.from_state

    @property
    def to_status(self) -> str:
        return self.to_state

    @property
    def reason(self) -> str:
        return self.comment


class StatusListToken(Base):
    """A status list as a signed `statuslist+jwt`: built here for the jurisdictions whose
    licences this node issues (`own`), or fetched from the node that publishes it.
    `token` NULL means a status changed since it was built: rebuild before serving."""

    __tablename__ = "licence_status_list"
    jurisdiction_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    list_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    own: Mapped[bool] = mapped_column(Boolean, default=True)
    uri: Mapped[str] = mapped_column(String(300))
    token: Mapped[str | None] = mapped_column(Text)
    built_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LicenceUse(Base):
    """免提交: a case material satisfied by the applicant's licence, with each verification
    (at submission, again at the decision)."""

    __tablename__ = "licence_use"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("service_case.id"), index=True)
    material_code: Mapped[str] = mapped_column(String(40))
    licence_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("licence.id"), index=True)
    identifier: Mapped[str] = mapped_column(String(120))
    type_code: Mapped[str] = mapped_column(String(40))
    #: submission | decision
    stage: Mapped[str] = mapped_column(String(12))
    #: valid, or the rejection reason code
    result: Mapped[str] = mapped_column(String(30))
    detail: Mapped[str] = mapped_column(Text, default="")
    verified_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class HolderKey(Base):
    """A device key of a licence holder (resident or enterprise account): the public JWK
    of a key their device made and keeps (non-extractable in the browser); the private
    key never reaches the node. Licences issued or re-issued to the account while it has
    a key carry it as `cnf.jwk`, and presentations are bound with a KB-JWT it signs."""

    __tablename__ = "holder_key"
    __table_args__ = (UniqueConstraint("account_id", "thumbprint"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id"), index=True)
    #: The public JWK as registered (EC P-256 or OKP Ed25519, public members only).
    jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: RFC 7638 thumbprint of the JWK.
    thumbprint: Mapped[str] = mapped_column(String(64))
    #: ES256 | EdDSA
    alg: Mapped[str] = mapped_column(String(10))
    #: The holder's name for the device (e.g. the browser).
    label: Mapped[str] = mapped_column(String(80), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ShortLink(Base):
    """A short link to a presentation (licences.shortlinks): `/v/<token>` opens the
    verify page with it, so that the QR code the holder shows stays small."""

    __tablename__ = "licence_short_link"
    #: 16 random bytes, base32 without padding (26 characters): unguessable.
    token: Mapped[str] = mapped_column(String(32), primary_key=True)
    presentation: Mapped[str] = mapped_column(Text)
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
