"""An application claims its uploads with one SELECT, whatever their number (issue 14),
in the order given, and refuses exactly as before: an unknown id 404, another's or an
already used upload 403, for the first id in the list that fails, with nothing written."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import event, func, select

from tongban.cases.attachments import claim_uploads
from tongban.cases.models import Attachment, Case
from tongban.errors import NotFound, PermissionDenied

from builders import api_upload, make_resident, online_application, token_for, upload


@pytest.fixture
def attachment_selects(connection):  # type: ignore[no-untyped-def]
    seen: list[str] = []

    def statement(_conn, _cursor, sql, *_args):  # type: ignore[no-untyped-def]
        if sql.lstrip().upper().startswith("SELECT") and "FROM attachment" in sql:
            seen.append(sql)

    event.listen(connection, "before_cursor_execute", statement)
    yield seen
    event.remove(connection, "before_cursor_execute", statement)


def test_several_uploads_are_claimed_by_one_select_in_their_order(session, attachment_selects):  # type: ignore[no-untyped-def]
    me = make_resident(session)
    mine = [upload(session, me, code).id for code in ("id_card", "household", "photo")]
    session.expire_all()
    attachment_selects.clear()
    got = claim_uploads(session, me, [mine[2], mine[0], mine[1]])
    assert [a.id for a in got] == [mine[2], mine[0], mine[1]]
    assert len(attachment_selects) == 1, attachment_selects
    attachment_selects.clear()
    assert claim_uploads(session, me, []) == []
    assert attachment_selects == []


def test_the_first_failing_id_decides_the_refusal(session):  # type: ignore[no-untyped-def]
    me, other = make_resident(session), make_resident(session)
    ok = upload(session, me).id
    theirs = upload(session, other).id
    unknown = uuid.uuid4()
    with pytest.raises(NotFound) as nf:
        claim_uploads(session, me, [ok, unknown, theirs])
    assert nf.value.type == "unknown-attachment"
    assert nf.value.errors == [{"field": "attachment_ids", "message": "附件不存在"}]
    with pytest.raises(PermissionDenied) as pd:
        claim_uploads(session, me, [ok, theirs, unknown])
    assert pd.value.type == "attachment-not-yours"
    # One id (read by its primary key): the same refusals.
    with pytest.raises(NotFound):
        claim_uploads(session, me, [unknown])
    with pytest.raises(PermissionDenied):
        claim_uploads(session, me, [theirs, theirs])
    assert [a.id for a in claim_uploads(session, me, [ok])] == [ok]


def test_refusals_through_the_api_write_nothing(client, session):  # type: ignore[no-untyped-def]
    me, other = make_resident(session), make_resident(session)
    h, h_other = token_for(client, me), token_for(client, other)
    mine, theirs = api_upload(client, h), api_upload(client, h_other)

    def cases() -> int:
        session.expire_all()
        return int(session.scalar(select(func.count()).select_from(Case)) or 0)

    before = cases()
    body = online_application(mine, attachment_ids=[mine, str(uuid.uuid4())])
    r = client.post("/api/v1/cases", json=body, headers=h)
    assert r.status_code == 404, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"].endswith("unknown-attachment")
    assert [e["field"] for e in r.json()["errors"]] == ["attachment_ids"]
    body = online_application(mine, attachment_ids=[mine, theirs])
    r = client.post("/api/v1/cases", json=body, headers=h)
    assert r.status_code == 403 and r.json()["type"].endswith("attachment-not-yours"), r.text
    assert cases() == before
    assert session.get(Attachment, uuid.UUID(mine)).case_id is None  # type: ignore[union-attr]
    # Claimed once, an upload is refused to the next application.
    assert client.post("/api/v1/cases", json=online_application(mine), headers=h).status_code == 201
    r = client.post("/api/v1/cases", json=online_application(mine), headers=h)
    assert r.status_code == 403 and r.json()["type"].endswith("attachment-not-yours"), r.text
    assert cases() == before + 1


def test_one_upload_is_read_by_one_select_and_held_as_loaded(session, connection):  # type: ignore[no-untyped-def]
    me = make_resident(session)
    att_id = upload(session, me).id
    session.flush()
    session.expunge_all()  # not in the session: read from the database
    seen: list[str] = []

    def statement(_conn, _cursor, sql, *_args):  # type: ignore[no-untyped-def]
        seen.append(sql)

    event.listen(connection, "before_cursor_execute", statement)
    try:
        (att,) = claim_uploads(session, me, [att_id])
        values = {c.key: getattr(att, c.key) for c in Attachment.__table__.c}
        assert session.get(Attachment, att_id) is att
    finally:
        event.remove(connection, "before_cursor_execute", statement)
    assert len(seen) == 1 and "FROM attachment" in seen[0]  # every column from that one
    assert att in session and not session.dirty
    session.expire(att)
    assert {c.key: getattr(att, c.key) for c in Attachment.__table__.c} == values


def test_an_upload_still_pending_in_the_session_is_found(session):  # type: ignore[no-untyped-def]
    me = make_resident(session)
    session.flush()
    att = Attachment(
        id=uuid.uuid4(),
        material_code="id_card",
        filename="id_card.pdf",
        content_type="application/pdf",
        size=1,
        sha256="0" * 64,
        uploaded_by=me.id,
    )
    session.add(att)  # added, not flushed
    assert att in session.new
    assert claim_uploads(session, me, [att.id]) == [att]
    assert att not in session.new  # flushed first, as get's autoflush would
