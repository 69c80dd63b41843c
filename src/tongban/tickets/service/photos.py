"""Photos of a work order: a reporter's, or an authority's evidence of a fix — stored as
uploads first (PNG or JPEG only), then linked to the work order by the step that uses
them."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.errors import NotFound, PermissionDenied, ValidationFailed
from tongban.files.models import Attachment
from tongban.files.service import sniff, store_upload
from tongban.identity.models import Account
from tongban.tickets.models import TicketPhoto, WorkOrder

PHOTO_TYPES = ("image/png", "image/jpeg")
PHOTO_MATERIAL = "ticket_photo"


def store_photo(
    session: Session,
    actor: Account,
    *,
    filename: str,
    data: bytes,
    upload_dir: Path,
    max_bytes: int,
) -> Attachment:
    """Check (PNG or JPEG only) and store one photo; linked to a work order later."""
    if data and sniff(data) not in PHOTO_TYPES:
        raise ValidationFailed(
            "照片仅支持 PNG、JPEG 格式",
            type="photo-rejected",
            status=415,
            errors=[{"field": "photos", "message": "仅支持 PNG、JPEG 照片"}],
        )
    return store_upload(
        session,
        actor,
        material_code=PHOTO_MATERIAL,
        filename=filename,
        data=data,
        upload_dir=upload_dir,
        max_bytes=max_bytes,
    )


def attach_photos(
    session: Session, actor: Account, wo: WorkOrder, photo_ids: list[uuid.UUID], kind: str
) -> list[TicketPhoto]:
    """Link the caller's own, unused photo uploads to `wo`."""
    out = []
    for pid in photo_ids:
        att = session.get(Attachment, pid)
        if att is None or att.material_code != PHOTO_MATERIAL:
            raise NotFound("照片不存在", type="unknown-photo")
        used = session.scalar(select(TicketPhoto.id).where(TicketPhoto.attachment_id == pid))
        if att.uploaded_by != actor.id or att.case_id is not None or used is not None:
            raise PermissionDenied("不能使用他人或已使用的照片", type="photo-not-yours")
        photo = TicketPhoto(attachment_id=pid, kind=kind)
        wo.photos.append(photo)
        out.append(photo)
    session.flush()
    return out
