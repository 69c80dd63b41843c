"""A case's materials: uploads claimed by the application that uses them. The store itself
(type and size checks, files under their SHA-256, `blob_path`, `write_blob`,
`safe_filename`, serving) is the shared tongban.files module, re-exported here for the
case modules that use it."""

from __future__ import annotations

import uuid
from typing import cast

from sqlalchemy import Table, bindparam, inspect, select, update
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from tongban.errors import NotFound, PermissionDenied
from tongban.files.models import Attachment
from tongban.files.service import (
    ALLOWED_LABEL,
    EXTENSIONS,
    MAX_FILENAME,
    SIGNATURES,
    BadBlobPath,
    UploadRejected,
    blob_path,
    insert_upload,
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
    "UploadRejected",
    "blob_path",
    "claim_uploads",
    "link_uploads",
    "insert_upload",
    "is_sha256",
    "safe_filename",
    "serve_attachment",
    "sniff",
    "store_upload",
    "write_blob",
]


def claim_uploads(
    session: Session, actor: Account, attachment_ids: list[uuid.UUID]
) -> list[Attachment]:
    """The caller's own, not yet attached uploads with these ids, in their order. One
    SELECT for all of them (issue 14: not one a material); the refusals as before, for the
    first id in the list that fails."""
    wanted = set(attachment_ids)
    if len(wanted) <= 1:  # the usual case: by primary key, no IN list to render
        one = _by_id(session, attachment_ids[0]) if wanted else None
        by_id = {one.id: one} if one is not None else {}
    else:
        by_id = {
            att.id: att
            for att in session.scalars(select(Attachment).where(Attachment.id.in_(wanted)))
        }
    found = []
    for att_id in attachment_ids:
        att = by_id.get(att_id)
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


_TABLE = cast(Table, Attachment.__table__)
#: The claim's read of one upload: one compiled statement.
_BY_ID = select(*_TABLE.c).where(_TABLE.c.id == bindparam("att_id"))


def _by_id(session: Session, att_id: uuid.UUID) -> Attachment | None:
    """`session.get(Attachment, att_id)` without the ORM's loading path (issue 14): the
    object the session holds, else the row read by one compiled SELECT on the session's
    connection and the object built from it as loaded. What the session has pending is
    flushed first, as `get`'s autoflush would (an upload stored in the same transaction)."""
    key = identity_key(Attachment, att_id)
    found = session.identity_map.get(key)
    if found is None and session.new:
        session.flush()
        found = session.identity_map.get(key)
    if found is not None:
        return found
    row = session.connection().execute(_BY_ID, {"att_id": att_id}).mappings().first()
    if row is None:
        return None
    att: Attachment = _MANAGER.new_instance()
    att.__dict__.update(row)
    make_transient_to_detached(att)
    session.add(att)
    return att


_MANAGER = inspect(Attachment).class_manager


#: Give an upload its case, only while it is still the uploader's and unused: one compiled
#: statement (SQLAlchemy caches its compiled form), by primary key.
_LINK = (
    update(Attachment)
    .where(
        Attachment.id == bindparam("att_id"),
        Attachment.uploaded_by == bindparam("owner"),
        Attachment.case_id.is_(None),
    )
    .values(case_id=bindparam("case_id"))
)


def link_uploads(
    session: Session, actor: Account, case_id: uuid.UUID, attachments: list[Attachment]
) -> None:
    """Give the uploads `claim_uploads` returned their case, each by one UPDATE on the
    session's connection that matches only while the upload is still `actor`'s and
    unused (issue 14: no flush for it; and two applications racing for one upload
    cannot both have it — the second's UPDATE finds it taken, or waits for the first
    and then does). The objects are set as loaded with their case. Raises the same
    refusal as `claim_uploads` (403 ``attachment-not-yours``) when one was taken
    meanwhile; the caller's transaction is then rolled back whole."""
    connection = session.connection()
    for att in attachments:
        params = {"att_id": att.id, "owner": actor.id, "case_id": case_id}
        if connection.execute(_LINK, params).rowcount != 1:
            raise PermissionDenied("不能使用他人或已提交的附件", type="attachment-not-yours")
        set_committed_value(att, "case_id", case_id)
