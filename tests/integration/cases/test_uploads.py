"""Stored materials (issue 10 items 1 and 11): a failed application leaves no file behind,
a stored file name is safe, every download says nosniff and a safe Content-Disposition."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.cases.attachments import safe_filename, store_upload
from tongban.config import Settings
from tongban.db import utcnow
from tongban.files import service as files
from tongban.files.models import StagedFile
from tongban.files.service import blob_path
from tongban.identity.models import Account

from builders import PASSWORD, make_resident

MATTER = "YRD-GA-0002"  # 户籍类证明开具, as in test_views.py
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    m = CSRF.search(html)
    assert m, "no CSRF token on the page"
    return m.group(1)


def login(client: TestClient, account: Account) -> None:
    page = client.get("/login")
    r = client.post(
        "/login",
        data={"username": account.username, "password": PASSWORD, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


def application(csrf: str, **overrides: str) -> dict[str, str]:
    data = {
        "csrf_token": csrf,
        "competent_jurisdiction": "320000",
        "competent_city": "320500",
        "mode": "online",
        "delivery_method": "electronic",
        "consent": "1",
        "proof_type": "亲属关系证明",
        "subject_name": "王小明",
        "subject_id_number": "340102199003071232",
        "purpose": "办理入学",
    }
    data.update(overrides)
    return data


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _apply(client: TestClient, data: bytes, name: str, **overrides: str) -> Any:
    page = client.get(f"/apply/{MATTER}")
    form = application(csrf_of(page.text), **overrides)
    if overrides.get("consent") == "":
        del form["consent"]
    return client.post(
        f"/apply/{MATTER}",
        data=form,
        files={"material_id_card": (name, data, "application/pdf")},
        follow_redirects=False,
    )


def test_a_failed_application_leaves_only_the_files_it_keeps_for_the_resubmission(
    client: TestClient, session: Session, settings: Settings
) -> None:
    """A refused application rolls back whatever it stored; the one file left is the one
    kept for the resubmission (已保留, bound to the applicant), and it goes when its kept
    row expires and is purged — unless a case refers to the same bytes."""
    resident = make_resident(session)
    login(client, resident)
    kept = PDF + b"% kept\n"
    r = _apply(client, kept, "ok.pdf")
    assert r.status_code == 303
    before = _files(settings.upload_dir)
    assert len(before) == 1
    # Fails after its upload was checked (no consent): nothing of the case is written,
    # and the chosen file stays only as the applicant's kept file.
    r = _apply(client, PDF + b"% new\n", "new.pdf", consent="")
    assert r.status_code in (400, 422)
    assert "已保留" in r.text
    rows = session.scalars(select(StagedFile)).all()
    assert [row.account_id for row in rows] == [resident.id]
    after = _files(settings.upload_dir)
    assert len(after) == 2 and set(before) < set(after)
    assert set(after) - set(before) == {blob_path(settings.upload_dir, rows[0].sha256)}
    # A file a case refers to adds nothing when a refused form sends it again.
    r = _apply(client, kept, "again.pdf", consent="")
    assert r.status_code in (400, 422)
    assert _files(settings.upload_dir) == after
    # Expired and purged: the kept-only bytes go, the case's stay.
    for row in session.scalars(select(StagedFile)):
        row.expires_at = utcnow() - timedelta(minutes=1)
    session.commit()
    assert files.purge_staged(session, settings.upload_dir) == 2
    session.commit()
    assert _files(settings.upload_dir) == before


def test_a_rolled_back_upload_leaves_no_file(session: Session, tmp_path: Path) -> None:
    resident = make_resident(session)
    session.commit()
    root = tmp_path / "up"
    store_upload(
        session,
        resident,
        material_code="id_card",
        filename="a.pdf",
        data=PDF + b"% rolled back\n",
        upload_dir=root,
        max_bytes=10_000,
    )
    assert len(_files(root)) == 1
    session.rollback()
    assert _files(root) == []


def test_stored_names_are_safe_and_downloads_say_nosniff(
    client: TestClient, session: Session
) -> None:
    resident = make_resident(session)
    login(client, resident)
    r = _apply(client, PDF + b"% named\n", '..\\..\\etc/"evil\u202egpj.exe\r\n')
    assert r.status_code == 303
    case_id = r.headers["location"].rsplit("/", 1)[-1]
    detail = client.get(f"/my/cases/{case_id}")
    att = re.search(r"/attachments/([0-9a-f-]{36})", detail.text)
    assert att is not None
    download = client.get(f"/cases/{case_id}/attachments/{att.group(1)}")
    assert download.status_code == 200 and download.content.startswith(b"%PDF")
    assert download.headers["x-content-type-options"] == "nosniff"
    disposition = download.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert "evilgpj.pdf" in disposition and ".exe" not in disposition
    assert "\u202e" not in disposition and "/" not in disposition.split("filename*")[0]


def test_safe_filename() -> None:
    assert safe_filename("../../etc/passwd", "application/pdf") == "passwd.pdf"
    assert safe_filename("C:\\Users\\me\\报告.PDF", "application/pdf") == "报告.pdf"
    assert safe_filename("photo.php", "image/jpeg") == "photo.jpg"
    assert safe_filename("a\x00b\x1fc\u200bd.png", "image/png") == "abcd.png"
    assert safe_filename('x";y.pdf', "application/pdf") == "xy.pdf"
    assert safe_filename("", "image/png") == "upload.png"
    assert safe_filename("...", "image/png") == "upload.png"
    assert len(safe_filename("长" * 1000 + ".pdf", "application/pdf")) <= 124
