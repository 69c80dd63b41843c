"""Media recording of a virtual-window session on the clerk's node (setting
`vw_recording`, off by default; docs/virtual-window.md): the clerk's browser uploads the
counter's recording in chunks; each chunk's SHA-256 is recorded as an event of the
session on the competent node (its audit chain seals it) and the chunk is kept here
until the retention passes (`purge`, a job); the hashes stay. Never commits."""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from tongban.config import Settings
from tongban.errors import Conflict, FieldError, ValidationFailed
from tongban.identity.models import Account
from tongban.kernel.node import settings_of
from tongban.kernel.registry import Job
from tongban.virtualwindow import relay
from tongban.virtualwindow.models import WindowTicket

log = logging.getLogger(__name__)

DIRECTORY = "vw-recordings"


def root(settings: Settings) -> Path:
    return Path(settings.upload_dir) / DIRECTORY


def chunk_path(settings: Settings, session_id: uuid.UUID, sha256: str) -> Path:
    """Where a chunk is kept: named by its SHA-256, the hash the session's event holds."""
    return root(settings) / str(session_id) / f"{sha256}.webm"


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def upload_chunk(
    session: Session, clerk: Account, ticket: WindowTicket, data: bytes
) -> dict[str, Any]:
    """Keep one chunk of the session's recording: refused when recording is off here,
    when it is empty or above the size limit, or by the competent node (the session not
    live, a chunk already recorded); else its hash is an event of the session there and
    the chunk is stored here. Returns the session's view."""
    settings = settings_of(session)
    if not settings.vw_recording:
        raise Conflict("本节点未开启远程窗口录音录像", type="recording-off")
    if not data or len(data) > settings.vw_recording_max_chunk_bytes:
        limit = settings.vw_recording_max_chunk_bytes // (1024 * 1024) or 1
        raise ValidationFailed(
            f"录制片段为空或超过 {limit} MB",
            errors=[FieldError("chunk", "片段为空或过大")],
            status=413 if data else 422,
        )
    sha = sha256_of(data)
    args = {"size": len(data), "sha256": sha}
    view = relay.relay(session, clerk, ticket, "recording", args)
    path = chunk_path(settings, ticket.session_id, sha)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return view


def purge(factory: sessionmaker[Session], settings: Settings, now: float | None = None) -> int:
    """Delete the chunks older than the retention (and the folders left empty); the
    hashes stay in the competent node's record. Returns how many were deleted."""
    cutoff = (time.time() if now is None else now) - settings.vw_recording_retention_days * 86400
    base = root(settings)
    if not base.is_dir():
        return 0
    deleted = 0
    for folder in base.iterdir():
        if not folder.is_dir():
            continue
        for chunk in folder.glob("*.webm"):
            if chunk.stat().st_mtime < cutoff:
                chunk.unlink(missing_ok=True)
                deleted += 1
        if not any(folder.iterdir()):
            folder.rmdir()
    if deleted:
        log.info("virtualwindow: deleted %s recording chunks past the retention", deleted)
    return deleted


JOBS = [Job("virtualwindow.recordings", 3600.0, purge)]
