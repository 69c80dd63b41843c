"""Uploaded materials: checked for type (by content, not by the name given) and size,
stored outside the web root under their SHA-256."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

from sqlalchemy.orm import Session

from tongban.cases.models import Attachment
from tongban.errors import DomainError, NotFound, PermissionDenied
from tongban.identity.models import Account

#: Content types accepted, recognised by their leading bytes.
SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)
ALLOWED_LABEL = "PDF、PNG、JPEG"


class UploadRejected(DomainError):
    status = 422
    type = "upload-rejected"
    title = "上传文件不符合要求"


def sniff(data: bytes) -> str | None:
    for magic, content_type in SIGNATURES:
        if data.startswith(magic):
            return content_type
    return None


def blob_path(upload_dir: Path, sha256: str) -> Path:
    return upload_dir / sha256[:2] / sha256


def store_upload(
    session: Session,
    actor: Account,
    *,
    material_code: str,
    filename: str,
    data: bytes,
    upload_dir: Path,
    max_bytes: int,
) -> Attachment:
    """Check and store one material; the row is linked to a case when the case is submitted."""
    field = [{"field": f"materials.{material_code}", "message": ""}]
    if not data:
        field[0]["message"] = "文件为空"
        raise UploadRejected("上传的文件为空", errors=field)
    if len(data) > max_bytes:
        field[0]["message"] = f"文件超过 {max_bytes // (1024 * 1024)} MB"
        raise UploadRejected(
            f"文件大小 {len(data)} 字节，超过上限 {max_bytes} 字节", status=413, errors=field
        )
    content_type = sniff(data)
    if content_type is None:
        field[0]["message"] = f"仅支持 {ALLOWED_LABEL} 文件"
        raise UploadRejected(f"文件类型不受支持，仅支持 {ALLOWED_LABEL}", status=415, errors=field)
    digest = hashlib.sha256(data).hexdigest()
    path = blob_path(upload_dir, digest)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{uuid.uuid4().hex}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # atomic: a reader never sees half a file
    att = Attachment(
        material_code=material_code,
        filename=os.path.basename(filename)[:200] or "upload",
        content_type=content_type,
        size=len(data),
        sha256=digest,
        uploaded_by=actor.id,
    )
    session.add(att)
    session.flush()
    return att


def claim_uploads(
    session: Session, actor: Account, attachment_ids: list[uuid.UUID]
) -> list[Attachment]:
    """The caller's own, not yet attached uploads with these ids."""
    found = []
    for att_id in attachment_ids:
        att = session.get(Attachment, att_id)
        if att is None:
            raise NotFound(
                "附件不存在",
                type="unknown-attachment",
                errors=[{"field": "attachment_ids", "message": "附件不存在"}],
            )
        if att.uploaded_by != actor.id or att.case_id is not None:
            raise PermissionDenied("不能使用他人或已提交的附件", type="attachment-not-yours")
        found.append(att)
    return found
