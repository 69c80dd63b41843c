"""Files kept across a refused application form (the window's and the online one): the
files chosen are kept server-side (tongban.files: checked like uploads, bound to the
account and a random form token, for two hours), shown under their material on the
form that comes back, used by the resubmission for the materials not chosen again, and
consumed by the submission that succeeds. What the pages do with a form; the store is
tongban.files.service."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from tongban.config import Settings
from tongban.errors import FieldError
from tongban.files import service as files
from tongban.files.models import StagedFile
from tongban.identity.models import Account

#: The form's fields: the token, and the kept files the user removed (their ids).
TOKEN_FIELD, REMOVE_FIELD = "staged_token", "staged_remove"


@dataclass
class Resubmission:
    """What a form sent back about the files kept for it: the token, the live files kept
    under it (this account's only), those the user removed, and those this submission
    uses (neither removed nor replaced by a file chosen again)."""

    token: str | None
    kept: list[StagedFile] = field(default_factory=list)
    removed: set[str] = field(default_factory=set)
    use: list[StagedFile] = field(default_factory=list)


@dataclass
class Kept:
    """What a refused form keeps: the token to send back, the files kept under it, and
    the files that could not be kept (material field, message)."""

    token: str | None
    files: list[StagedFile]
    not_kept: list[FieldError]


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _uploads(form: FormData, matter: Any) -> list[tuple[str, UploadFile]]:
    return [
        (m.code, upload)
        for m in matter.materials
        for upload in form.getlist(f"material_{m.code}")
        if isinstance(upload, UploadFile) and upload.filename
    ]


def resubmission(
    session: Session, actor: Account, form: FormData, matter: Any, upload_dir: Path
) -> Resubmission:
    """The kept files a submitted form refers to. Another account's token is
    PermissionDenied (403), a forged, expired or spent one StagedFilesGone (410): the
    form gets none of them."""
    token = _text(form, TOKEN_FIELD) or None
    kept = files.staged_files(session, actor, token, upload_dir)
    removed = {v.strip() for v in form.getlist(REMOVE_FIELD) if isinstance(v, str)}
    again = {code for code, _ in _uploads(form, matter)}
    use = [k for k in kept if str(k.id) not in removed and k.material_code not in again]
    return Resubmission(token, kept, removed, use)


def attach_kept(
    session: Session, actor: Account, r: Resubmission, upload_dir: Path
) -> list[uuid.UUID]:
    """Uploads made from the kept files this submission uses (ids for the application)."""
    return [files.attach_staged(session, actor, k, upload_dir).id for k in r.use]


def consume_kept(session: Session, r: Resubmission) -> None:
    """The submission succeeded: the kept files it used are gone, the others expire."""
    files.consume_staged(session, r.use, [k for k in r.kept if k not in r.use])


def keep_after_refusal(
    session: Session,
    actor: Account,
    form: FormData,
    matter: Any,
    r: Resubmission,
    settings: Settings,
    errors: dict[str, str],
) -> Kept:
    """After a refused application (its transaction rolled back): keep the files just
    chosen under the form's token, each replacing the kept file of its material; drop
    the kept files the user removed. A file that fails the upload checks or the bounds
    is not kept: its message goes under its input in `errors`."""
    upload_dir, max_bytes = settings.upload_dir, settings.max_upload_bytes
    files.purge_staged(session, upload_dir)
    token = r.token if r.kept and r.token else files.new_form_token()
    staying = [k for k in r.kept if str(k.id) not in r.removed]
    files.retire_staged([k for k in r.kept if str(k.id) in r.removed])
    not_kept: list[FieldError] = []
    for code, upload in _uploads(form, matter):
        upload.file.seek(0)
        data = upload.file.read(max_bytes + 1)
        filename = upload.filename or ""
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
        except files.UploadRejected as e:
            reason = e.errors[0]["message"] if e.errors else e.detail
            problem = FieldError(f"materials.{code}", f"“{filename}”未能保留：{reason}")
            not_kept.append(problem)
            errors.setdefault(f"material_{code}", problem["message"])
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


def kept_context(kept: Kept | None) -> dict[str, Any]:
    """For the form's template: `kept` (material code → its kept files: id, name, size)
    and `staged_token` (None: no hidden field)."""
    by_material: dict[str, list[dict[str, Any]]] = {}
    for f in kept.files if kept else []:
        shown = {"id": f.id, "filename": f.filename, "size": size_label(f.size)}
        by_material.setdefault(f.material_code, []).append(shown)
    return {"kept": by_material, "staged_token": kept.token if kept else None}
