"""File responses: every download the app serves goes through here, so that each one
says `X-Content-Type-Options: nosniff` (a browser never guesses a stored file to be
HTML or script), is not cached by shared caches, and carries a Content-Disposition whose
file name cannot break the header (RFC 6266: an ASCII fallback and the UTF-8 name)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

from fastapi.responses import FileResponse, Response

_ASCII_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def download_headers() -> dict[str, str]:
    return {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store"}


def content_disposition(filename: str, disposition: str = "attachment") -> str:
    """`attachment; filename="…"; filename*=UTF-8''…` for any given name."""
    name = "".join(ch for ch in filename if ch.isprintable()).strip() or "download"
    fallback = _ASCII_SAFE.sub("_", name).strip("._") or "download"
    return f"{disposition}; filename=\"{fallback[:150]}\"; filename*=UTF-8''{quote(name[:150])}"


def file_download(path: Path, media_type: str, filename: str) -> FileResponse:
    """A stored file as a download."""
    return FileResponse(
        path,
        media_type=media_type,
        headers={**download_headers(), "Content-Disposition": content_disposition(filename)},
    )


def bytes_download(data: bytes, media_type: str, filename: str) -> Response:
    """Generated content (an export) as a download."""
    return Response(
        data,
        media_type=media_type,
        headers={**download_headers(), "Content-Disposition": content_disposition(filename)},
    )
