"""The upload API (POST /api/v1/attachments) writes its row by one Core INSERT on the
request's connection, without a unit-of-work flush (issue 14): the same row, the same
answer, the same refusals, and nothing left behind when the request fails after it."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from tongban.cases import api as cases_api
from tongban.cases.models import Attachment
from tongban.files.service import blob_path

from builders import make_resident, online_application, token_for


def _pdf() -> bytes:
    """A PDF no other upload of the test has (its blob is new)."""
    return b"%PDF-1.4\n%" + uuid.uuid4().hex.encode() + b"\ntrailer<<>>\n%%EOF\n"


def _upload(client, headers, data: bytes, name: str = "身份证.pdf", code: str = "id_card"):  # type: ignore[no-untyped-def]
    return client.post(
        "/api/v1/attachments",
        headers=headers,
        data={"material_code": code},
        files={"file": (name, data, "application/pdf")},
    )


def _attachments(session: Session) -> int:
    session.expire_all()
    return int(session.scalar(select(func.count()).select_from(Attachment)) or 0)


def test_an_upload_is_one_insert_without_a_flush(client, session, connection, settings):  # type: ignore[no-untyped-def]
    account = make_resident(session)
    h = token_for(client, account)
    data = _pdf()
    inserts: list[str] = []
    flushes: list[int] = []

    def statement(_conn, _cursor, sql, *_args):  # type: ignore[no-untyped-def]
        if sql.lstrip().upper().startswith("INSERT INTO ATTACHMENT"):
            inserts.append(sql)

    def flushed(s, _ctx, _instances):  # type: ignore[no-untyped-def]
        if s.new or s.dirty:
            flushes.append(len(s.new) + len(s.dirty))

    event.listen(connection, "before_cursor_execute", statement)
    event.listen(Session, "before_flush", flushed)
    try:
        r = _upload(client, h, data)
    finally:
        event.remove(connection, "before_cursor_execute", statement)
        event.remove(Session, "before_flush", flushed)
    assert r.status_code == 201, r.text
    assert len(inserts) == 1 and flushes == [], (inserts, flushes)
    body = r.json()
    session.expire_all()
    row = session.get(Attachment, uuid.UUID(body["id"]))
    assert row is not None
    assert (row.material_code, row.filename, row.content_type, row.size, row.sha256) == (
        body["material_code"],
        body["filename"],
        "application/pdf",
        len(data),
        body["sha256"],
    )
    assert body["filename"].endswith(".pdf") and body["size"] == len(data)
    assert row.uploaded_by == account.id and row.case_id is None
    assert blob_path(settings.upload_dir, body["sha256"]).read_bytes() == data
    # The application claims the row the upload wrote.
    r = client.post("/api/v1/cases", json=online_application(body["id"]), headers=h)
    assert r.status_code == 201, r.text
    session.expire_all()
    assert str(session.get(Attachment, uuid.UUID(body["id"])).case_id) == r.json()["id"]  # type: ignore[union-attr]


def test_a_failure_after_the_insert_leaves_no_row_and_no_file(
    client, session, settings, monkeypatch
):  # type: ignore[no-untyped-def]
    h = token_for(client, make_resident(session))
    before = _attachments(session)
    data = _pdf()
    written: list[Path] = []

    class Failing:
        @staticmethod
        def model_validate(att):  # type: ignore[no-untyped-def]
            written.append(blob_path(settings.upload_dir, att.sha256))
            assert written[0].exists()  # the file and the row exist by now
            raise StaleDataError("changed meanwhile")

    monkeypatch.setattr(cases_api, "AttachmentPublic", Failing)
    r = _upload(client, h, data)
    assert r.status_code == 409, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert _attachments(session) == before
    assert len(written) == 1 and not written[0].exists()
    monkeypatch.undo()
    assert _upload(client, h, data).status_code == 201  # the same file is taken next time
    assert _attachments(session) == before + 1


def test_a_refused_file_writes_nothing(client, session, settings):  # type: ignore[no-untyped-def]
    h = token_for(client, make_resident(session))
    before = _attachments(session)
    for data, status in (
        (b"", 422),
        (b"plain text, not a PDF", 415),
        (b"%PDF-" + b"0" * (settings.max_upload_bytes + 1), 413),
    ):
        r = _upload(client, h, data)
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert [e["field"] for e in r.json()["errors"]] == ["materials.id_card"]
    assert _attachments(session) == before
    stored = settings.upload_dir
    assert not stored.exists() or not [p for p in stored.rglob("*") if p.is_file()]


def test_an_attachment_is_not_audited() -> None:
    """`insert_upload` writes on the connection, where no audit hook sees the row: it is
    right only while an attachment has no audit entry."""
    assert getattr(Attachment, "__audit_kind__", None) is None
    assert not hasattr(Attachment, "__audit__")
