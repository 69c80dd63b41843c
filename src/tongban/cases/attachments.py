"""A case's materials: uploads claimed by the application that uses them. The store itself
(type and size checks, files under their SHA-256, `blob_path`, `write_blob`,
`safe_filename`, serving) is the shared tongban.files module, re-exported here for the
case modules that use it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from tongban.errors import FieldError, NotFound, PermissionDenied
from tongban.files import service as files
from tongban.files.models import Attachment, StagedFile
from tongban.files.service import (
    ALLOWED_LABEL,
    EXTENSIONS,
    MAX_FILENAME,
    SIGNATURES,
    BadBlobPath,
    UploadRejected,
    blob_path,
    is_sha256,
    safe_filename,
    serve_attachment,
    sniff,
    store_upload,
    write_blob,
)
from tongban.identity.models import Account

__all__ = [
    "ALLOWED_LABEL",
    "EXTENSIONS",
    "MAX_FILENAME",
    "SIGNATURES",
    "Attachment",
    "BadBlobPath",
    "Kept",
    "StagedFile",
    "UploadRejected",
    "blob_path",
    "claim_uploads",
    "is_sha256",
    "keep_chosen",
    "safe_filename",
    "serve_attachment",
    "size_label",
    "sniff",
    "store_upload",
    "write_blob",
]


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


# --- files kept across a refused window form (tongban.files.service) -------------------


@dataclass
class Kept:
    """What a refused form keeps: the token to send back, the files kept under it, and
    the files that could not be kept (material field, message)."""

    token: str | None
    files: list[StagedFile]
    not_kept: list[FieldError]


def keep_chosen(
    session: Session,
    actor: Account,
    token: str | None,
    kept: list[StagedFile],
    removed: set[str],
    chosen: list[tuple[str, str, bytes]],
    *,
    upload_dir: Path,
    max_bytes: int,
) -> Kept:
    """After a refused application (its transaction rolled back): keep the files just
    chosen (material code, file name, bytes) under the form's token, each replacing the
    kept file of its material; drop the kept files the clerk removed. A file that fails
    the upload checks or the bounds is not kept, and says why."""
    files.purge_staged(session, upload_dir)
    token = token if kept and token else files.new_form_token()
    staying = [k for k in kept if str(k.id) not in removed]
    files.retire_staged([k for k in kept if str(k.id) in removed])
    not_kept: list[FieldError] = []
    for code, filename, data in chosen:
        others = [k for k in staying if k.material_code != code]
        try:
            row = files.stage_file(
                session,
                actor,
                token,
                material_code=code,
                filename=filename,
                data=data,
                upload_dir=upload_dir,
                max_bytes=max_bytes,
                others=others,
            )
        except UploadRejected as e:
            reason = e.errors[0]["message"] if e.errors else e.detail
            not_kept.append(FieldError(f"materials.{code}", f"“{filename}”未能保留：{reason}"))
            continue
        files.retire_staged([k for k in staying if k.material_code == code])
        staying = [*others, row]
    return Kept(token if staying else None, staying, not_kept)


def size_label(size: int) -> str:
    if size < 1024:
        return f"{size} 字节"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"
