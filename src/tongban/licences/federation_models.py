"""The table of the licences' federation: which issuer id another node announced for a
jurisdiction it issues for (its licences' `iss` is built from that node's public URL,
not from ours)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from tongban.db import Base, UTCDateTime, utcnow


class ForeignIssuer(Base):
    """A jurisdiction whose licences another node issues: its issuer id as that node
    published it with its licence keys (`licence.keys_published`)."""

    __tablename__ = "licence_foreign_issuer"
    jurisdiction_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    #: <public url of the issuing node>/issuers/<code>
    issuer: Mapped[str] = mapped_column(String(300))
    #: The node that published it (None when applied locally).
    node_id: Mapped[str | None] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
