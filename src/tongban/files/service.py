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
import unicodedata
import uuid
from pathlib import Path

from fastapi.responses import Response
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from tongban.errors import DomainError, NotFound
from tongban.files.models import Attachment
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
    digest = write_blob(session, upload_dir, data)
    att = Attachment(
        material_code=material_code,
        filename=safe_filename(filename, content_type),
        content_type=content_type,
        size=len(data),
        sha256=digest,
        uploaded_by=actor.id,
    )
    session.add(att)
    session.flush()
    return att
