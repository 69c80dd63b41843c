from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tongban.db import Base, UTCDateTime, utcnow


class SigningKey(Base):
    """A key pair (or, for other nodes' keys, only the public half).

    `retired_at` set: no longer signs, still verifies what it signed.
    `not_after` set: verifies nothing signed after that instant (compromise, expiry)."""

    __tablename__ = "signing_key"
    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: licence | node | audit | root (the federation root that signs the trust list)
    purpose: Mapped[str] = mapped_column(String(20))
    #: jurisdiction code (licence), node id (node, audit) or "federation" (root)
    owner: Mapped[str] = mapped_column(String(40))
    alg: Mapped[str] = mapped_column(String(10))
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: PKCS#8 PEM (encrypted when TONGBAN_KEY_PASSPHRASE is set); NULL for foreign keys.
    private_pem: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    not_after: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_signing_key_purpose_owner", "purpose", "owner"),)
