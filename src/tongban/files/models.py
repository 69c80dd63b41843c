"""The attachment store's table: one row per uploaded file, the bytes on disk under their
SHA-256 (tongban.files.service). Cases link their materials to it (`case_id`), work
orders their photos (`ticket_photo.attachment_id`); the table keeps its name."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from tongban.db import Base, UTCDateTime, new_id, utcnow


class Attachment(Base):
    """An uploaded file; the bytes live on disk under their SHA-256."""

    __tablename__ = "attachment"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    # The case a material belongs to, once the application is submitted (None for a
    # work order's photo, or an upload not yet used). Named by table, not by class:
    # the files module knows no context.
    case_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("service_case.id"), index=True)
    material_code: Mapped[str] = mapped_column(String(40))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(80))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    uploaded_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("account.id"))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StagedFile(Base):
    """A file kept for a form that was refused (a window clerk's application with an
    error): checked like an upload, its bytes on disk under their SHA-256, bound to the
    account that chose it and to the digest of the form's random token, for a short
    time. The resubmission uses it; a successful one consumes it
    (tongban.files.staging)."""

    __tablename__ = "staged_file"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    #: SHA-256 (hex) of the form token; the token itself is never stored.
    token_sha256: Mapped[str] = mapped_column(String(64), index=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id"), index=True)
    material_code: Mapped[str] = mapped_column(String(40))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(80))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
