"""The window keeps the files a clerk chose across a refused form: kept server-side
(checked like uploads) under a random form token bound to the clerk, shown under their
material, used by the resubmission for the materials not chosen again and consumed by
it; removed or replaced on request; never given to another account or a forged or
expired token; bounded in count and size (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.cases.models import Case
from tongban.db import utcnow
from tongban.errors import PermissionDenied
from tongban.files import service as files
from tongban.files.models import Attachment, StagedFile
from tongban.files.service import UploadRejected, blob_path

from builders import csrf_of, make_clerk, sign_in

MATTER = "YRD-GA-0002"  # 户籍类证明开具: the ID card required, two optional materials
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
GOOD_ID = "340102199003071232"


def window_form(csrf: str, **overrides: str) -> dict[str, str]:
    data = {
        "csrf_token": csrf,
        "competent_jurisdiction": "320000",
        "competent_city": "320500",
        "mode": "proxy",
        "delivery_method": "window",
        "consent": "1",
        "proof_type": "亲属关系证明",
        "subject_name": "王小明",
        "subject_id_number": GOOD_ID,
        "purpose": "办理入学",
        "applicant_type": "resident",
        "applicant_name": "赵六",
        "applicant_identifier": GOOD_ID,
        "identity_verified": "1",
        "materials_checked": "1",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v != ""}


def token_of(html: str) -> str:
    found = re.search(r'name="staged_token" value="([^"]+)"', html)
    assert found, "no staged token on the page"
    return found.group(1)


def kept_ids(html: str) -> list[str]:
    return re.findall(r'name="staged_remove" value="([^"]+)"', html)


def refuse_with_files(
    client: TestClient, files: dict[str, tuple[str, bytes, str]], status: int = 422
) -> str:
    """A window form refused (identity check not ticked) with these files chosen."""
    page = client.get(f"/window/new/{MATTER}")
    r = client.post(
        f"/window/new/{MATTER}",
        data=window_form(csrf_of(page.text), identity_verified=""),
        files=files,
    )
    assert r.status_code == status, r.text
    return r.text


def test_a_refused_form_keeps_the_file_and_the_resubmission_uses_it(
    client: TestClient, session: Session, settings: object
) -> None:
    clerk = make_clerk(session, "310000")
    sign_in(client, clerk)
    html = refuse_with_files(client, {"material_id_card": ("身份证.pdf", PDF, "application/pdf")})
    assert "已保留：" in html and "身份证.pdf" in html and "请重新选择" not in html
    assert "material_id_card" not in re.findall(r'<a href="#([^"]+)">', html)  # not missing
    token = token_of(html)
    rows = session.scalars(select(StagedFile).where(StagedFile.account_id == clerk.id)).all()
    assert len(rows) == 1 and rows[0].size == len(PDF) and rows[0].material_code == "id_card"
    assert token not in {r.token_sha256 for r in rows}  # only its digest is stored
    assert blob_path(settings.upload_dir, rows[0].sha256).is_file()  # type: ignore[attr-defined]
    # Nothing of the refused application itself stayed.
    assert session.scalar(select(Attachment).where(Attachment.uploaded_by == clerk.id)) is None

    # Refused again (no consent): still kept, nothing half-written.
    r = client.post(
        f"/window/new/{MATTER}",
        data={**window_form(csrf_of(html), consent=""), "staged_token": token},
    )
    assert r.status_code == 422 and "已保留：" in r.text and token_of(r.text) == token
    assert session.scalar(select(Attachment).where(Attachment.uploaded_by == clerk.id)) is None
    assert len(session.scalars(select(StagedFile)).all()) == 1

    # Right now, with a newly chosen optional material too: the case has exactly both.
    r = client.post(
        f"/window/new/{MATTER}",
        data={**window_form(csrf_of(r.text)), "staged_token": token},
        files={"material_supporting_proof": ("证明.png", PNG, "image/png")},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    case = session.scalar(select(Case).where(Case.clerk_id == clerk.id))
    assert case is not None
    assert sorted((a.material_code, a.filename, a.size) for a in case.attachments) == [
        ("id_card", "身份证.pdf", len(PDF)),
        ("supporting_proof", "证明.png", len(PNG)),
    ]
    assert session.scalars(select(StagedFile)).all() == []  # consumed
    # The token is spent: a replay gets nothing (410), no second case.
    r = client.post(
        f"/window/new/{MATTER}",
        data={**window_form(csrf_of(html)), "staged_token": token},
    )
    assert r.status_code == 410 and "已保留的文件" in r.text
    assert len(session.scalars(select(Case).where(Case.clerk_id == clerk.id)).all()) == 1


def test_a_kept_file_can_be_removed_or_replaced(client: TestClient, session: Session) -> None:
    sign_in(client, make_clerk(session, "310000"))
    html = refuse_with_files(client, {"material_id_card": ("旧.pdf", PDF, "application/pdf")})
    token, [old_id] = token_of(html), kept_ids(html)
    # Replaced: the new file is kept in its place.
    r = client.post(
        f"/window/new/{MATTER}",
        data={**window_form(csrf_of(html), consent=""), "staged_token": token},
        files={"material_id_card": ("新.png", PNG, "image/png")},
    )
    assert r.status_code == 422 and "新.png" in r.text and "旧.pdf" not in r.text
    [new_id] = kept_ids(r.text)
    assert new_id != old_id and token_of(r.text) == token
    # Removed: nothing kept, the material is missing again, no token any more.
    r = client.post(
        f"/window/new/{MATTER}",
        data={
            **window_form(csrf_of(r.text), consent=""),
            "staged_token": token,
            "staged_remove": new_id,
        },
    )
    assert r.status_code == 422 and "已保留：" not in r.text
    assert 'name="staged_token"' not in r.text
    assert "material_id_card" in re.findall(r'<a href="#([^"]+)">', r.text)


def test_another_clerk_a_forged_or_an_expired_token_gets_nothing(
    app: object, client: TestClient, session: Session
) -> None:
    owner = make_clerk(session, "310000")
    sign_in(client, owner)
    html = refuse_with_files(client, {"material_id_card": ("身份证.pdf", PDF, "application/pdf")})
    token = token_of(html)

    with TestClient(app) as other:  # type: ignore[arg-type]
        sign_in(other, make_clerk(session, "310000"))
        page = other.get(f"/window/new/{MATTER}")
        r = other.post(
            f"/window/new/{MATTER}",
            data={**window_form(csrf_of(page.text)), "staged_token": token},
        )
        assert r.status_code == 403 and "身份证.pdf" not in r.text
        r = other.post(
            f"/window/new/{MATTER}",
            data={**window_form(csrf_of(page.text)), "staged_token": token[:-2] + "xy"},
        )
        assert r.status_code == 410 and "身份证.pdf" not in r.text
    assert session.scalar(select(Case)) is None

    # Expired: gone for its owner too.
    for row in session.scalars(select(StagedFile)):
        row.expires_at = utcnow() - timedelta(minutes=1)
    session.commit()
    r = client.post(
        f"/window/new/{MATTER}",
        data={**window_form(csrf_of(html)), "staged_token": token},
    )
    assert r.status_code == 410
    assert session.scalar(select(Case)) is None


def test_an_over_size_or_wrong_type_file_is_not_kept(client: TestClient, session: Session) -> None:
    sign_in(client, make_clerk(session, "310000"))
    big = b"%PDF-1.4\n" + b"0" * 200_001
    html = refuse_with_files(
        client,
        {
            "material_id_card": ("大.pdf", big, "application/pdf"),
            "material_supporting_proof": ("说明.txt", b"plain text", "text/plain"),
        },
        status=413,  # the first refusal's own status: the file too large
    )
    assert "未能保留" in html and "已保留：" not in html
    assert session.scalars(select(StagedFile)).all() == []


def test_the_bounds_per_token(session: Session, settings: object, tmp_path: Path) -> None:
    clerk = make_clerk(session, "310000")
    token, kept = files.new_form_token(), []
    limit = 1000
    for n in range(files.STAGE_MAX_TOTAL_UPLOADS):
        data = b"%PDF-" + bytes([n]) * (limit - 5)
        kept.append(
            files.stage_file(
                session,
                clerk,
                token,
                material_code=f"m{n}",
                filename=f"{n}.pdf",
                data=data,
                upload_dir=tmp_path,
                max_bytes=limit,
                others=list(kept),
            )
        )
    try:  # one byte more than five upload limits in all
        files.stage_file(
            session,
            clerk,
            token,
            material_code="m9",
            filename="x.pdf",
            data=b"%PDF-1",
            upload_dir=tmp_path,
            max_bytes=limit,
            others=list(kept),
        )
    except UploadRejected as e:
        assert e.status == 413 and "合计超过" in e.detail
    else:
        raise AssertionError("the total bound was not enforced")
    many = [*kept] * 2  # count bound: MAX_FILES already kept
    try:
        files.stage_file(
            session,
            clerk,
            token,
            material_code="m9",
            filename="x.pdf",
            data=b"%PDF-1",
            upload_dir=tmp_path,
            max_bytes=10**9,
            others=many,
        )
    except UploadRejected as e:
        assert "最多保留" in e.detail
    else:
        raise AssertionError("the count bound was not enforced")
    assert len(files.staged_files(session, clerk, token, tmp_path)) == files.STAGE_MAX_TOTAL_UPLOADS
    try:
        files.staged_files(session, make_clerk(session, "310000"), token, tmp_path)
    except PermissionDenied:
        pass
    else:
        raise AssertionError("another account got the files")
    # Purged once expired, bytes included (nothing else refers to them).
    files.retire_staged(kept)
    digests = [k.sha256 for k in kept]
    assert files.purge_staged(session, tmp_path) == len(digests)
    assert not any(blob_path(tmp_path, d).exists() for d in digests)
