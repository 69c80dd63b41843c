"""The attachment store shared by every context that takes uploads (case materials,
work-order photos): files checked for type (by content, not by the name given) and
size, stored outside the web root under their SHA-256.

Every stored file is reached through `blob_path`, which takes nothing but a SHA-256 (64
lowercase hex characters) and checks that the resolved path lies under the upload
directory: a hash from a message, a row or a request can never name another file.
Files are written by `write_blob`, which remembers those it created in the session, so
that a transaction that rolls back (a failed application, a refused message) removes
them again: nothing is orphaned on disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from fastapi.responses import Response
from sqlalchemy import delete, event, insert, select
from sqlalchemy.orm import Session, SessionTransaction

from tongban.db import new_id, utcnow
from tongban.errors import DomainError, NotFound, PermissionDenied
from tongban.files.models import Attachment, StagedFile
from tongban.identity.models import Account
from tongban.web.downloads import file_download

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


#: File extension of each accepted content type (the name's own extension is dropped).
EXTENSIONS = {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg"}
_SHA256 = re.compile(r"[0-9a-f]{64}")
#: Characters never kept in a file name: path separators, quotes and what a shell, a
#: header or Windows would read specially.
_UNSAFE = frozenset("/\\\"'<>:|?*;`$")
MAX_FILENAME = 120


class BadBlobPath(ValueError):
    """A SHA-256 that is not 64 lowercase hex characters, or a path that would leave the
    upload directory."""


def is_sha256(value: object) -> bool:
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None


def blob_path(upload_dir: Path | str, sha256: str) -> Path:
    """Where the file with this SHA-256 lives: under `upload_dir`, always. The one place
    that turns a hash into a path; raises BadBlobPath for anything else."""
    if not is_sha256(sha256):
        raise BadBlobPath(f"not a SHA-256: {str(sha256)[:80]!r}")
    root = Path(upload_dir).resolve()
    path = (root / sha256[:2] / sha256).resolve()
    if not path.is_relative_to(root):
        raise BadBlobPath(f"{sha256} resolves outside the upload directory")
    return path


_NEW_BLOBS = "tongban.files.new_blobs"


def write_blob(session: Session, upload_dir: Path | str, data: bytes) -> str:
    """Store `data` under its SHA-256 (atomically) and return the digest. A file created
    here is removed again if the session's transaction rolls back."""
    digest = hashlib.sha256(data).hexdigest()
    path = blob_path(upload_dir, digest)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # atomic: a reader never sees half a file
        session.info.setdefault(_NEW_BLOBS, []).append(path)
    return digest


@event.listens_for(Session, "after_commit")
def _keep_blobs(session: Session) -> None:
    session.info.pop(_NEW_BLOBS, None)


@event.listens_for(Session, "after_soft_rollback")
def _remove_blobs(session: Session, previous: SessionTransaction) -> None:
    """The transaction that wrote these files rolled back: no row refers to them."""
    if previous.nested:
        return  # a savepoint: the outer transaction may still commit
    for path in session.info.pop(_NEW_BLOBS, ()):
        with contextlib.suppress(OSError):  # e.g. a read-only disk: the file stays
            path.unlink(missing_ok=True)


def safe_filename(name: str, content_type: str) -> str:
    """A file name fit to store and to serve: no directories, control or format
    characters, quotes or separators, bounded length, and the extension of the
    content type detected (never the one given)."""
    base = unicodedata.normalize("NFC", str(name)).replace("\\", "/").rsplit("/", 1)[-1]
    kept = "".join(
        ch
        for ch in base
        if ch == " " or (ch not in _UNSAFE and unicodedata.category(ch)[0] not in "CZ")
    )
    stem = kept.rsplit(".", 1)[0] if "." in kept else kept
    stem = stem.strip(" .-")[:MAX_FILENAME].strip(" .") or "upload"
    return stem + EXTENSIONS.get(content_type, "")


def serve_attachment(
    upload_dir: Path | str, att: Attachment | None, missing: str = "附件不存在"
) -> Response:
    """The stored file of `att` as a download (the caller has checked who may see it):
    only ever a file under the upload directory, typed as one of the accepted types."""
    try:
        path = blob_path(upload_dir, att.sha256) if att is not None else None
    except BadBlobPath:
        path = None
    if att is None or path is None or not path.is_file():
        raise NotFound(missing, type="unknown-attachment")
    media = att.content_type if att.content_type in EXTENSIONS else "application/octet-stream"
    return file_download(path, media, safe_filename(att.filename, media))


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
    """Check and store one file; a case links its materials when it is submitted, a
    work order its photos."""
    att = Attachment(
        **vars(
            _checked_upload(session, actor, material_code, filename, data, upload_dir, max_bytes)
        )
    )
    session.add(att)
    session.flush()
    return att


@dataclass(frozen=True)
class StoredUpload:
    """An upload as `insert_upload` wrote it: the row's values, no ORM object."""

    id: uuid.UUID
    material_code: str
    filename: str
    content_type: str
    size: int
    sha256: str
    uploaded_by: uuid.UUID
    uploaded_at: datetime


#: One compiled statement for every upload (SQLAlchemy caches its compiled form).
_INSERT_ATTACHMENT = insert(Attachment.__table__)  # type: ignore[arg-type]


def insert_upload(
    session: Session,
    actor: Account,
    *,
    material_code: str,
    filename: str,
    data: bytes,
    upload_dir: Path,
    max_bytes: int,
) -> StoredUpload:
    """`store_upload` for a caller that never reads the row back in its transaction (the
    upload API): the same checks, file and row, the row written by one Core INSERT on the
    session's connection, in its transaction — no unit-of-work flush for one row (issue
    14). The row is not in the session's identity map; a later `session.get` reads it.
    An attachment is not audited (no ``__audit_kind__``): a Core insert on the
    connection is seen by no audit hook, so this must stay a table without one."""
    row = _checked_upload(session, actor, material_code, filename, data, upload_dir, max_bytes)
    # vars(), not dataclasses.asdict: asdict deep-copies every value (a profile showed it).
    session.connection().execute(_INSERT_ATTACHMENT, {**vars(row), "case_id": None})
    return row


def _checked_upload(
    session: Session,
    actor: Account,
    material_code: str,
    filename: str,
    data: bytes,
    upload_dir: Path,
    max_bytes: int,
) -> StoredUpload:
    """The checks every upload passes (`checked_type`), its file written (`write_blob`,
    removed again if the transaction rolls back) and the values of its row."""
    content_type = checked_type(material_code, data, max_bytes)
    digest = write_blob(session, upload_dir, data)
    return StoredUpload(
        id=new_id(),
        material_code=material_code,
        filename=safe_filename(filename, content_type),
        content_type=content_type,
        size=len(data),
        sha256=digest,
        uploaded_by=actor.id,
        uploaded_at=utcnow(),
    )


def checked_type(material_code: str, data: bytes, max_bytes: int) -> str:
    """The checks every stored file passes (not empty, at most `max_bytes`, a PDF, PNG
    or JPEG by its content): its content type, or UploadRejected on the material."""
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
    return content_type


# --- files kept across a refused form ------------------------------------------------
# What a window clerk chose for an application that came back with an error is kept
# (checked like any upload: type by content, size, SHA-256), so the resubmission need
# not ask for it again. A kept file is bound to the account that chose it and to a
# random form token (only its SHA-256 is stored) and lives for STAGE_LIFETIME. Another
# account, a forged token, or one whose files expired or were used gets none of them:
# `staged_files` refuses with 403 or 410. Rows are written by the caller's transaction;
# the bytes go to this store (`write_blob`). Expired rows are purged at use
# (`purge_staged`), with their bytes when nothing else refers to them.

#: How long a kept file waits for the resubmission.
STAGE_LIFETIME = timedelta(hours=2)
#: Bounds per form token: how many files, and their total size in upload limits.
STAGE_MAX_FILES = 10
STAGE_MAX_TOTAL_UPLOADS = 5
#: A token is `secrets.token_urlsafe(32)` (43 characters); anything longer is forged.
_TOKEN_MAX = 64


class StagedFilesGone(DomainError):
    status = 410
    type = "staged-files-gone"
    title = "已保留的文件已失效"


def new_form_token() -> str:
    """A fresh, unguessable form token (256 random bits)."""
    return secrets.token_urlsafe(32)


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def staged_files(
    session: Session, actor: Account, token: str | None, upload_dir: Path
) -> list[StagedFile]:
    """The live files kept under `token` for `actor` ([] without a token). A token whose
    files belong to another account is PermissionDenied (403); one that names no live
    file (forged, expired, already used, its bytes gone) is StagedFilesGone (410)."""
    if not token:
        return []
    gone = StagedFilesGone(
        "已保留的文件已过期、已使用或不存在，请重新打开受理页面并选择文件",
        errors=[{"field": "staged_token", "message": "已保留的文件已失效"}],
    )
    if len(token) > _TOKEN_MAX or not token.isascii() or not token.isprintable():
        raise gone
    rows = list(
        session.scalars(
            select(StagedFile)
            .where(StagedFile.token_sha256 == _token_digest(token))
            .order_by(StagedFile.created_at, StagedFile.id)
        )
    )
    if any(r.account_id != actor.id for r in rows):
        raise PermissionDenied("这些已保留的文件属于其他账户，不能使用", type="staged-not-yours")
    now = utcnow()
    live = [r for r in rows if r.expires_at > now and _present(upload_dir, r.sha256)]
    if not live:
        raise gone
    return live


def stage_file(
    session: Session,
    actor: Account,
    token: str,
    *,
    material_code: str,
    filename: str,
    data: bytes,
    upload_dir: Path,
    max_bytes: int,
    others: list[StagedFile],
) -> StagedFile:
    """Check `data` as an upload and keep it under `token` for `actor`, next to `others`
    (the token's files that stay): at most STAGE_MAX_FILES files and STAGE_MAX_TOTAL_UPLOADS upload
    limits in all, else UploadRejected on the material."""
    content_type = checked_type(material_code, data, max_bytes)
    field = [{"field": f"materials.{material_code}", "message": ""}]
    if len(others) + 1 > STAGE_MAX_FILES:
        field[0]["message"] = f"最多保留 {STAGE_MAX_FILES} 个文件"
        raise UploadRejected(f"最多保留 {STAGE_MAX_FILES} 个文件", status=413, errors=field)
    total = sum(o.size for o in others) + len(data)
    if total > STAGE_MAX_TOTAL_UPLOADS * max_bytes:
        limit_mb = STAGE_MAX_TOTAL_UPLOADS * max_bytes / (1024 * 1024)
        field[0]["message"] = f"保留的文件合计超过 {limit_mb:.1f} MB"
        raise UploadRejected(f"保留的文件合计超过 {limit_mb:.1f} MB", status=413, errors=field)
    now = utcnow()
    row = StagedFile(
        token_sha256=_token_digest(token),
        account_id=actor.id,
        material_code=material_code,
        filename=safe_filename(filename, content_type),
        content_type=content_type,
        size=len(data),
        sha256=write_blob(session, upload_dir, data),
        created_at=now,
        expires_at=now + STAGE_LIFETIME,
    )
    session.add(row)
    session.flush()
    return row


def _present(upload_dir: Path, sha256: str) -> bool:
    try:
        return blob_path(upload_dir, sha256).is_file()
    except BadBlobPath:
        return False


def attach_staged(
    session: Session, actor: Account, row: StagedFile, upload_dir: Path
) -> Attachment:
    """An upload of `actor` made from a kept file, for the submission to claim. The
    kept file itself is consumed by `consume_staged` in the same transaction."""
    if row.account_id != actor.id or not _present(upload_dir, row.sha256):
        raise StagedFilesGone(
            f"已保留的文件“{row.filename}”已失效，请重新选择",
            errors=[{"field": f"materials.{row.material_code}", "message": "已保留的文件已失效"}],
        )
    att = Attachment(
        material_code=row.material_code,
        filename=row.filename,
        content_type=row.content_type,
        size=row.size,
        sha256=row.sha256,
        uploaded_by=actor.id,
    )
    session.add(att)
    session.flush()
    return att


def consume_staged(session: Session, used: list[StagedFile], dropped: list[StagedFile]) -> None:
    """A successful submission: the kept files it used are gone (their bytes now belong
    to its attachments); those it did not use expire now, for `purge_staged` to remove."""
    for row in used:
        session.delete(row)
    retire_staged(dropped)
    session.flush()


def retire_staged(rows: list[StagedFile]) -> None:
    """Expire these kept files now (removed or replaced by the clerk)."""
    now = utcnow()
    for row in rows:
        row.expires_at = min(row.expires_at, now)


def purge_staged(session: Session, upload_dir: Path, *, limit: int = 200) -> int:
    """Remove up to `limit` expired kept files, and their bytes where no attachment and
    no other kept file refers to them. Returns how many rows went."""
    rows = list(
        session.scalars(
            select(StagedFile)
            .where(StagedFile.expires_at <= utcnow())
            .order_by(StagedFile.expires_at)
            .limit(limit)
        )
    )
    if not rows:
        return 0
    ids = [r.id for r in rows]
    digests = {r.sha256 for r in rows}
    session.execute(delete(StagedFile).where(StagedFile.id.in_(ids)))
    still = set(session.scalars(select(Attachment.sha256).where(Attachment.sha256.in_(digests))))
    still |= set(session.scalars(select(StagedFile.sha256).where(StagedFile.sha256.in_(digests))))
    for sha in digests - still:
        with contextlib.suppress(BadBlobPath, OSError):
            blob_path(upload_dir, sha).unlink(missing_ok=True)
    return len(rows)
